//! Man pages and shell completions, generated from the argument definitions, so that they
//! never disagree with `--help`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use crate::compat::{self, Tool};
use crate::error::{CliError, CliResult};

/// Writes `SHELL`'s completion script for `cryptpilot` (and its multi-call names) to `out`.
pub(crate) fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> CliResult<i32> {
    let mut cmd = crate::args::Cli::command();
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cryptpilot", &mut script);
    crate::luks::write_bytes(out, &script)
}

/// Writes one man page per command group into `dir` (section 1 for the `cryptpilot` tree,
/// 8 for the drop-in names' page), and prints their names.
pub(crate) fn manpages(dir: &Path, out: &mut dyn Write) -> CliResult<i32> {
    std::fs::create_dir_all(dir).map_err(CliError::file(dir, "create"))?;
    let cmd = crate::args::Cli::command();
    let mut pages = Vec::new();
    page(&cmd, "cryptpilot", dir, &mut pages)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("cryptpilot-{}", sub.get_name());
        page(sub, &name, dir, &mut pages)?;
        for verb in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            page(
                verb,
                &format!("{name}-{}", verb.get_name()),
                dir,
                &mut pages,
            )?;
        }
    }
    // The existing tool's names, and the drop-in names' page.
    // (cryptpilot-crypt is the crypt group's own page.)
    for (alias, target) in [
        ("cryptpilot-convert", "cryptpilot-fde-convert"),
        ("cryptpilot-fde-guest", "cryptpilot-fde"),
        ("cryptpilot-fde-host", "cryptpilot-fde"),
    ] {
        let p = dir.join(format!("{alias}.1"));
        std::fs::write(&p, format!(".so man1/{target}.1\n"))
            .map_err(CliError::file(&p, "write"))?;
        pages.push(format!("{alias}.1"));
    }
    let p = dir.join("cryptpilot-cryptsetup.8");
    std::fs::write(&p, dropin_page()).map_err(CliError::file(&p, "write"))?;
    pages.push("cryptpilot-cryptsetup.8".into());
    for p in pages {
        crate::luks::write_out(out, &format!("{}\n", dir.join(p).display()))?;
    }
    Ok(0)
}

fn page(cmd: &clap::Command, name: &str, dir: &Path, pages: &mut Vec<String>) -> CliResult {
    let cmd = cmd.clone().name(name.to_owned());
    let file = format!("{name}.1");
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut buf)
        .map_err(CliError::file(&dir.join(&file), "render"))?;
    let p = dir.join(&file);
    std::fs::write(&p, buf).map_err(CliError::file(&p, "write"))?;
    pages.push(file);
    Ok(())
}

/// roff-escaped text: backslashes, and a leading dot or quote.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with(['.', '\'']) {
        format!("\\&{s}")
    } else {
        s
    }
}

/// The page for the names cryptsetup, veritysetup and integritysetup.
fn dropin_page() -> String {
    let mut s = format!(
        ".TH CRYPTPILOT\\-CRYPTSETUP 8 \"\" \"cryptpilot {}\"\n.SH NAME\n\
         cryptsetup, veritysetup, integritysetup \\- cryptpilot under the command lines of cryptsetup {}\n\
         .SH SYNOPSIS\n\\fBcryptsetup\\fR [\\fIOPTION\\fR...] \\fIaction\\fR \\fIaction-specific\\fR\n.br\n\
         \\fBcryptpilot cryptsetup\\fR [\\fIOPTION\\fR...] \\fIaction\\fR ...\n\
         .SH DESCRIPTION\nRun by one of these names (a link or copy of the binary), or as \
         \\fBcryptpilot cryptsetup\\fR, \\fBcryptpilot veritysetup\\fR or \\fBcryptpilot integritysetup\\fR, \
         cryptpilot takes the real tools' command lines: options anywhere on the line, short options \
         clustered, the same positional arguments, prompts, output and exit codes \
         (0 success, 1 wrong parameters, 2 no permission or bad passphrase, 3 out of memory, \
         4 wrong device, 5 device busy). An action, \\fB\\-\\-type\\fR or option that is not supported \
         is refused with one line naming it and exit code 1; nothing is ignored silently, except \
         \\fB\\-q\\fR (batch mode), accepted everywhere, and what the real tool ignores as well \
         (\\fB\\-\\-timeout\\fR where nothing is asked; \\fB\\-\\-type\\fR and \\fB\\-\\-readonly\\fR \
         with \\fBrefresh\\fR). As cryptsetup does, a question with no terminal \
         to ask on counts as answered yes, except before a format overwrites a file system or other \
         signature, which needs \\fB\\-q\\fR. A mapping may be named by a path to its device node \
         (\\fBclose /dev/mapper/\\fR\\fINAME\\fR), as libcryptsetup takes it; cryptsetup's \
         \\fB\\-\\-disable\\-locks\\fR takes no device locks. \\fBcryptsetup refresh\\fR \\fINAME\\fR \
         (\\fBopen \\-\\-refresh\\fR) gives an open LUKS or plain mapping new flags (\\fB\\-\\-allow\\-discards\\fR, \
         \\fB\\-\\-perf\\-*\\fR, \\fB\\-\\-integrity\\-no\\-journal\\fR) without closing it; \
         \\fB\\-\\-persistent\\fR stores them in the LUKS2 header. A passphrase typed on a terminal \
         is read with echo off, at most 512 bytes, within \\fB\\-\\-timeout\\fR seconds when given.\n",
        env!("CARGO_PKG_VERSION"),
        compat::COMPAT_VERSION
    );
    for tool in [Tool::Cryptsetup, Tool::Veritysetup, Tool::Integritysetup] {
        s.push_str(&format!(".SH {}\n", tool.name().to_ascii_uppercase()));
        for line in compat::usage(tool).lines().filter(|l| l.starts_with('\t')) {
            let (syntax, what) = line.trim().split_once(" - ").unwrap_or((line.trim(), ""));
            s.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", esc(syntax), esc(what)));
        }
    }
    s.push_str(
        ".SH NOT SUPPORTED\nTrueCrypt, VeraCrypt, BitLocker, FileVault and loop\\-AES volumes, \
         \\fBreencrypt\\fR and keyed dm\\-integrity \
         (\\fB\\-\\-integrity\\-key\\-file\\fR). \
         \\fBbenchmark\\fR prints \
         N/A for serpent, twofish and PBKDF2\\-whirlpool (not implemented).\n\
         .SH SEE ALSO\n\\fBcryptpilot\\-luks\\fR(1), \\fBcryptpilot\\-plain\\fR(1), \\fBcryptpilot\\-verity\\fR(1), \\fBcryptpilot\\-integrity\\fR(1)\n",
    );
    s
}
