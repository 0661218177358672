//! Key providers: where a volume's passphrase comes from. One small trait; each provider is a
//! type behind it. Passphrases live in zeroizing buffers and are never printed.

use std::process::{Command, Stdio};

use luks2::{Passphrase, VolumeKey};

use crate::error::{CliError, CliResult};
use cryptpilot_config::{ExecConfig, Provider};

/// A source of one volume's passphrase.
pub(crate) trait KeyProvider {
    /// The passphrase for the volume's keyslot.
    fn passphrase(&self) -> CliResult<Passphrase>;
    /// Whether every open gets a fresh key (the volume is formatted anew each time).
    fn is_temporary(&self) -> bool {
        false
    }
    /// What can be checked without fetching anything (for `config check`): the command
    /// exists, URLs and certificates parse, the client key opens with its password.
    fn check(&self) -> CliResult<()> {
        Ok(())
    }
}

/// `otp`: 64 random bytes, different on every open; never written anywhere.
pub(crate) struct Otp;

impl KeyProvider for Otp {
    fn passphrase(&self) -> CliResult<Passphrase> {
        let key = VolumeKey::random(64).map_err(|e| CliError::Usage(format!("otp: {e}")))?;
        Ok(Passphrase::from_slice(key.as_bytes()))
    }

    fn is_temporary(&self) -> bool {
        true
    }
}

/// `exec`: the command's standard output, byte for byte.
pub(crate) struct Exec<'a>(pub(crate) &'a ExecConfig);

impl KeyProvider for Exec<'_> {
    fn passphrase(&self) -> CliResult<Passphrase> {
        let cmd = &self.0.command;
        let out = Command::new(cmd)
            .args(&self.0.args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| CliError::Usage(format!("exec key provider: cannot run '{cmd}': {e}")))?;
        // The output buffer holds the key: move it into a zeroizing passphrase at once.
        let pass = Passphrase::new(out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        let shown = if stderr.is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        if !out.status.success() {
            return Err(CliError::Usage(format!(
                "exec key provider: '{cmd}' failed ({}){shown}",
                out.status
            )));
        }
        if pass.is_empty() {
            return Err(CliError::Usage(format!(
                "exec key provider: '{cmd}' printed no passphrase{shown}"
            )));
        }
        Ok(pass)
    }

    fn check(&self) -> CliResult<()> {
        let cmd = std::path::Path::new(&self.0.command);
        let found = if self.0.command.contains('/') {
            cmd.is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(cmd).is_file()))
        };
        if found {
            Ok(())
        } else {
            Err(CliError::Usage(format!(
                "exec key provider: command '{}' not found",
                self.0.command
            )))
        }
    }
}

/// The provider a volume is configured with.
pub(crate) fn for_volume(p: &Provider) -> Box<dyn KeyProvider + '_> {
    match p {
        Provider::Otp => Box::new(Otp),
        Provider::Exec(e) => Box::new(Exec(e)),
        Provider::Kbs(c) => Box::new(super::kbs::Kbs {
            config: c,
            attester: None,
        }),
        Provider::Kms(c) => Box::new(super::kms::Kms::new(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(command: &str, args: &[&str]) -> CliResult<Passphrase> {
        let cfg = ExecConfig {
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        Exec(&cfg).passphrase()
    }

    #[test]
    fn exec_output_is_the_passphrase_byte_for_byte() {
        let p = exec("printf", &["a b\\n\\0c"]).unwrap();
        assert_eq!(p.as_bytes(), b"a b\n\0c");
    }

    #[test]
    fn exec_failures_show_the_commands_stderr() {
        let e = exec("sh", &["-c", "echo 'no such secret' >&2; exit 3"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed") && e.contains("no such secret"), "{e}");
        let e = exec("true", &[]).unwrap_err().to_string();
        assert!(e.contains("printed no passphrase"), "{e}");
        let e = exec("/nonexistent/tool", &[]).unwrap_err().to_string();
        assert!(e.contains("cannot run"), "{e}");
    }

    #[test]
    fn otp_is_fresh_each_time() {
        let (a, b) = (Otp.passphrase().unwrap(), Otp.passphrase().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(Otp.is_temporary());
        assert!(format!("{a:?}").contains("REDACTED"), "{a:?}");
    }
}
