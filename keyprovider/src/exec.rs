//! `exec`: the passphrase is a command's standard output, byte for byte.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use luks2::{Passphrase, SecretBuf};

use crate::error::Errors;
use crate::{ExecConfig, KeyProvider, Result};

/// The most a command may print: cryptsetup's key-file limit, 8 MiB.
pub(crate) const MAX_OUTPUT: usize = 8 << 20;

const ERR: Errors = Errors("exec");

/// The `exec` provider for one `[encrypt.exec]` table.
#[derive(Debug, Clone, Copy)]
pub struct Exec<'a>(pub &'a ExecConfig);

impl KeyProvider for Exec<'_> {
    /// # Errors
    /// [`crate::ErrorKind::Config`] when the command cannot be started,
    /// [`crate::ErrorKind::Refused`] when it fails, prints nothing, or prints more than
    /// 8 MiB (its standard error is in the reason).
    fn passphrase(&self) -> Result<Passphrase> {
        let cmd = &self.0.command;
        let mut child = Command::new(cmd)
            .args(&self.0.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ERR.config(format!("cannot run '{cmd}': {e}")))?;
        let mut stderr = child.stderr.take();
        let errors = std::thread::spawn(move || {
            // The first 64 KiB are shown; the rest is drained so the command never blocks.
            let mut text = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(64 << 10).read_to_end(&mut text);
                let _ = std::io::copy(s, &mut std::io::sink());
            }
            text
        });
        // The output is the key: read into a buffer that never grows, wiped on drop.
        let mut out = SecretBuf::with_capacity(MAX_OUTPUT);
        let read = match child.stdout.take() {
            Some(mut s) => out.read_to_end(&mut s),
            None => Ok(0),
        };
        if read.is_err() {
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(|e| ERR.refused(format!("'{cmd}': {e}")))?;
        let stderr = String::from_utf8_lossy(&errors.join().unwrap_or_default()).into_owned();
        let shown = if stderr.trim().is_empty() {
            String::new()
        } else {
            format!(": {stderr}")
        };
        if let Err(e) = read {
            return Err(ERR.refused(format!("'{cmd}' output: {e}{shown}")));
        }
        if !status.success() {
            return Err(ERR.refused(format!("'{cmd}' failed ({status}){shown}")));
        }
        if out.is_empty() {
            return Err(ERR.refused(format!("'{cmd}' printed no passphrase{shown}")));
        }
        Ok(Passphrase::from(out))
    }

    fn check(&self) -> Result<()> {
        let cmd = Path::new(&self.0.command);
        let found = if self.0.command.contains('/') {
            cmd.is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(cmd).is_file()))
        };
        if found {
            Ok(())
        } else {
            Err(ERR.config(format!("command '{}' not found", self.0.command)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn exec(command: &str, args: &[&str]) -> Result<Passphrase> {
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
        let e = exec("sh", &["-c", "echo 'no such secret' >&2; exit 3"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        let e = e.to_string();
        assert!(
            e.starts_with("exec key provider: ")
                && e.contains("failed")
                && e.contains("no such secret"),
            "{e}"
        );
        let e = exec("true", &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.to_string().contains("printed no passphrase"), "{e}");
        let e = exec("/nonexistent/tool", &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("cannot run"), "{e}");
    }

    #[test]
    fn a_command_that_floods_standard_error_does_not_hang() {
        let p = exec("sh", &["-c", "head -c 1000000 /dev/zero >&2; printf key"]).expect("key");
        assert_eq!(p.as_bytes(), b"key");
    }

    #[test]
    fn exec_output_over_the_limit_is_refused() {
        let e = exec("head", &["-c", "8388609", "/dev/zero"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert!(e.to_string().contains("more than 8388608 bytes"), "{e}");
        let p = exec("head", &["-c", "8388608", "/dev/zero"]).expect("at the limit");
        assert_eq!(p.len(), MAX_OUTPUT);
    }
}
