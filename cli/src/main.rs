//! `cryptpilot`: LUKS2 disk encryption without libcryptsetup.
//!
//! This binary only parses arguments, reads passphrases and calls the `luks2` library; the
//! format logic lives there. Errors are printed as one line, with cryptsetup's exit codes:
//! 1 wrong parameters, 2 no permission or bad passphrase, 3 out of memory, 4 wrong device,
//! 5 device busy.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod benchmark;
mod compat;
mod crypt;
mod docs;
mod error;
mod fde_cmd;
mod input;
mod integrity_cmd;
mod keys;
mod luks;
mod mapping;
mod output;
mod progress;
mod terminal;
mod verity;

use clap::Parser;

/// Keeps keys out of swap and core dumps where the system allows it.
fn protect_memory() {
    // A process that cannot be dumped leaves no core file with keys in it.
    let _ = nix::sys::prctl::set_dumpable(false);
    // Locking all memory is only safe with no lock limit (root); elsewhere a large Argon2
    // allocation could fail under the limit, so it is skipped.
    if nix::unistd::geteuid().is_root() {
        use nix::sys::mman::{mlockall, MlockAllFlags};
        let _ = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE);
    }
}

/// clap's message on one line: the text before its usage block, without the `error:` tag.
fn one_line(msg: &str) -> String {
    let text: Vec<&str> = msg
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}

fn main() {
    // As /init of our initrd (process 1, started by the kernel as "/init"), the binary boots
    // the system; as process 1 of a container it is an ordinary command.
    if std::process::id() == 1 && std::env::args_os().next().as_deref() == Some("/init".as_ref()) {
        fde::init::run();
    }
    // Usage errors exit 1 as in cryptsetup (clap's own code, 2, means "permission" there).
    // Run as `cryptpilot-crypt`, the binary is `cryptpilot crypt`.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned());
    // Run as `cryptpilot-fde-guest` or `cryptpilot-fde-host` (the existing tool's names for the
    // boot and the host side), it is `cryptpilot fde`.
    match invoked_as.as_deref() {
        Some("cryptpilot-crypt") => argv.insert(1, "crypt".into()),
        Some("cryptpilot-fde-guest" | "cryptpilot-fde-host") => argv.insert(1, "fde".into()),
        Some("cryptpilot-convert") => {
            argv.insert(1, "fde".into());
            argv.insert(2, "convert".into());
        }
        _ => {}
    }
    // Run as `cryptsetup`, `veritysetup` or `integritysetup` (or `cryptpilot cryptsetup`), it
    // takes their command lines and speaks under their names.
    let mut prog = "cryptpilot";
    let mut verbose = false;
    let mut luks2_only = false;
    let mut type_check = None;
    let as_tool = match invoked_as.as_deref().and_then(compat::Tool::from_name) {
        Some(t) => Some((t, 1)),
        None => argv.get(1).and_then(|a| compat::tool_of(a)).map(|t| (t, 2)),
    };
    if let Some((tool, skip)) = as_tool {
        prog = tool.name();
        match compat::translate(tool, &argv[skip.min(argv.len())..]) {
            Ok(compat::Request::Print(text)) => {
                print!("{text}");
                std::process::exit(0);
            }
            Ok(compat::Request::Run {
                argv: ours,
                verbose: v,
                luks2_only: only,
                type_check: check,
                disable_locks,
            }) => {
                if disable_locks {
                    activate::disable_locks();
                }
                argv = ours;
                verbose = v;
                luks2_only = only;
                type_check = check;
                luks::cryptsetup_conventions(tool != compat::Tool::Veritysetup, verbose);
            }
            Ok(compat::Request::Fail {
                line,
                code,
                verbose,
            }) => {
                eprintln!("{}", error::escape_controls(&line));
                if verbose {
                    println!(
                        "Command failed with code -{code} ({}).",
                        compat::failure_words(code)
                    );
                }
                std::process::exit(code);
            }
            Err(compat::Refused(why)) => {
                eprintln!("{prog}: {}", error::escape_controls(&why));
                std::process::exit(1);
            }
        }
    }
    let cli = match args::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{prog}: {} (see --help)", one_line(&e.to_string()));
            if verbose {
                // On standard output, as the tools print it.
                println!(
                    "Command failed with code -1 ({}).",
                    compat::failure_words(1)
                );
            }
            std::process::exit(1);
        }
    };
    protect_memory();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let checked = match &type_check {
        Some(t) => luks::any::require_type(&t.device, &t.ty).map_err(|e| match e {
            error::CliError::WrongType { .. } if t.quiet => error::CliError::Aborted("", 1),
            e => e,
        }),
        None => Ok(()),
    };
    let result = checked.and_then(|()| match cli.command {
        args::Command::Luks(cmd) => luks::run(cmd, &mut out),
        args::Command::Verity(cmd) => verity::run(cmd, &mut out),
        args::Command::Integrity(cmd) => integrity_cmd::run(cmd, &mut out),
        args::Command::Plain(args::PlainCommand::Open(a)) => {
            mapping::open_plain(&a, &mut keys::Keys::new(args::seconds(a.timeout)))
        }
        args::Command::Crypt(cmd) => crypt::run(cmd, &mut out),
        args::Command::Fde(cmd) => fde_cmd::run(cmd, &mut out),
        args::Command::Completions { shell } => docs::completions(shell, &mut out),
        args::Command::Manpages { dir } => docs::manpages(&dir, &mut out),
        args::Command::Benchmark(a) => benchmark::run(&a, &mut out),
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Under a drop-in name, the real tool's sentence where it has one.
            let known = as_tool.and_then(|(tool, _)| compat::tool_message(&e, tool, luks2_only));
            let lines = known.unwrap_or_else(|| vec![error::chain(prog, &e)]);
            let text: Vec<String> = lines.iter().map(|l| error::escape_controls(l)).collect();
            // Under a drop-in name an abort may say nothing (as cryptsetup's volume-key
            // dump), or end in a blank line (its other questions).
            match &e {
                error::CliError::Aborted("", _) | error::CliError::Quiet(_)
                    if as_tool.is_some() => {}
                error::CliError::Aborted(..) if as_tool.is_some() => {
                    eprintln!("{}\n", text.join("\n"))
                }
                _ => eprintln!("{}", text.join("\n")),
            }
            e.exit_code()
        }
    };
    if verbose {
        if code == 0 {
            println!("Command successful.");
        } else {
            // On standard output, as cryptsetup prints it.
            println!(
                "Command failed with code -{code} ({}).",
                compat::failure_words(code)
            );
        }
    }
    std::process::exit(code);
}
