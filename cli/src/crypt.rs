//! `cryptpilot crypt` (also run as `cryptpilot-crypt`): data volumes from configuration
//! files, keys from key providers, the `luks2`/`integrity`/`dmioctl` libraries underneath.
//!
//! Lifecycle: `init` formats with the LUKS2 subsystem `cryptpilot-initializing`, creates the
//! file system, then sets the subsystem to `cryptpilot` (what the existing tool writes), so an
//! interrupted init is seen and redone, never trusted.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use activate::{DmName, Mapper};
use luks2::{FormatOptions, KdfLimits, Luks2, PbkdfParams};
use serde_json::json;

use crate::args::{BootStage, CryptArgs, CryptCommand, CryptConfigCommand};
use crate::error::{code, CliError, CliResult};
use crate::luks::{open_device, write_out};
use crate::progress::Progress;
use keyprovider::for_config;
use volumes::{self as config, MakeFs, Volume};

/// The subsystem of a volume whose init finished (the existing tool's value).
const DONE: &str = "cryptpilot";
/// The subsystem while init runs.
const INITIALIZING: &str = "cryptpilot-initializing";

/// What a volume's device holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Missing,
    Initialized,
    Interrupted,
    /// Something else: a file system, another tool's LUKS, or nothing we recognise.
    Other(Option<&'static str>),
}

fn state(v: &Volume) -> State {
    let Ok(mut f) = File::open(&v.dev) else {
        return State::Missing;
    };
    match Luks2::open(&mut f) {
        Ok(dev) if dev.header().subsystem() == INITIALIZING => State::Interrupted,
        Ok(dev) if dev.header().subsystem() == DONE => State::Initialized,
        _ => State::Other(luks2::probe::signature(&mut f).ok().flatten()),
    }
}

fn is_open(mapper: Option<&Mapper>, name: &DmName) -> Option<bool> {
    Some(mapper?.is_active(name))
}

fn select<'a>(all: &'a [Volume], names: &[String]) -> CliResult<Vec<&'a Volume>> {
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            all.iter().find(|v| v.name.as_str() == n).ok_or_else(|| {
                CliError::Usage(format!("no volume named '{n}' in the configuration"))
            })
        })
        .collect()
}

fn load(dir: &Path) -> CliResult<Vec<Volume>> {
    let (volumes, errors) = config::load_all(dir);
    match errors.into_iter().next() {
        Some(e) => Err(CliError::Usage(e.to_string())),
        None => Ok(volumes),
    }
}

pub(crate) fn run(args: CryptArgs, out: &mut dyn Write) -> CliResult<i32> {
    let dir = &args.config_dir;
    match args.command {
        CryptCommand::Config(CryptConfigCommand::Check { keep_checking: _ }) => {
            let (volumes, errors) = config::load_all(dir);
            for e in &errors {
                eprintln!("cryptpilot: {e}");
            }
            // Then what each provider can check offline: commands, URLs, certificates, keys.
            let mut bad_providers = 0;
            for v in &volumes {
                if let Err(e) = for_config(&v.provider).check() {
                    eprintln!("cryptpilot: {}: volume '{}': {e}", v.file.display(), v.name);
                    bad_providers += 1;
                }
            }
            if errors.is_empty() && bad_providers == 0 {
                write_out(
                    out,
                    &format!("configuration OK: {} volume(s)\n", volumes.len()),
                )
            } else {
                Ok(code::FAILURE)
            }
        }
        CryptCommand::Show { volumes, json } => {
            let all = load(dir)?;
            let dm = Mapper::open().ok();
            let mut rows = Vec::new();
            let mut text = format!(
                "{:<16} {:<24} {:<8} {:<12} {:<6} {:<10} {}\n",
                "Volume", "Device", "Provider", "Initialized", "Open", "Integrity", "Auto-open"
            );
            for v in select(&all, &volumes)? {
                let init = match (v.provider.name(), state(v)) {
                    (_, State::Missing) => "no device",
                    ("otp", _) => "not needed",
                    (_, State::Initialized) => "yes",
                    (_, State::Interrupted) => "interrupted",
                    (_, State::Other(_)) => "no",
                };
                let open = match is_open(dm.as_ref(), &v.name) {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                };
                text += &format!(
                    "{:<16} {:<24} {:<8} {:<12} {:<6} {:<10} {}\n",
                    v.name,
                    v.dev.display(),
                    v.provider.name(),
                    init,
                    open,
                    if v.integrity { "yes" } else { "no" },
                    if v.auto_open { "yes" } else { "no" }
                );
                rows.push(json!({
                    "volume": v.name.as_str(), "dev": v.dev.display().to_string(),
                    "key_provider": v.provider.name(), "initialized": init, "open": open,
                    "integrity": v.integrity, "auto_open": v.auto_open,
                    "makefs": v.makefs.map(MakeFs::name), "config_file": v.file.display().to_string(),
                }));
            }
            if json {
                write_out(out, &format!("{}\n", serde_json::Value::Array(rows)))
            } else {
                write_out(out, &text)
            }
        }
        CryptCommand::Init {
            volumes,
            force_reinit,
            yes,
        } => {
            let all = load(dir)?;
            for v in select(&all, &volumes)? {
                init(v, force_reinit, yes)?;
                writeln!(out, "{}: initialized", v.name).ok();
            }
            Ok(0)
        }
        CryptCommand::Open { volumes, check_fs } => {
            let all = load(dir)?;
            for v in select(&all, &volumes)? {
                open(v, check_fs)?;
            }
            Ok(0)
        }
        CryptCommand::Close { volumes } => {
            let all = load(dir)?;
            let mapper = Mapper::open()?;
            for v in select(&all, &volumes)? {
                mapper.close(&v.name)?;
            }
            Ok(0)
        }
        CryptCommand::BootService {
            stage: BootStage::SystemVolumesAutoOpen,
        } => {
            let (volumes, errors) = config::load_all(dir);
            let mut failed = errors.len();
            for e in &errors {
                eprintln!("cryptpilot: skipped: {e}");
            }
            let dm = Mapper::open().ok();
            for v in volumes.iter().filter(|v| v.auto_open) {
                if is_open(dm.as_ref(), &v.name) == Some(true) {
                    writeln!(out, "{}: already open", v.name).ok();
                    continue;
                }
                match open(v, false) {
                    Ok(()) => {
                        writeln!(out, "{}: opened", v.name).ok();
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("cryptpilot: {}: {e}", v.name);
                    }
                }
            }
            Ok(if failed == 0 { 0 } else { code::FAILURE })
        }
    }
}

fn confirm_erase(v: &Volume, what: &str, yes: bool) -> CliResult {
    if yes {
        return Ok(());
    }
    let common = crate::args::Common { batch: false };
    crate::luks::confirm(
        &common,
        &format!(
            "{} ({}) holds {what}. Initializing volume {} erases it irrevocably.",
            v.dev.display(),
            v.name,
            v.name
        ),
    )
    .map_err(|_| {
        CliError::Refused(format!(
            "{}: {} holds {what}; not initialized (pass -y to erase it)",
            v.name,
            v.dev.display()
        ))
    })
}

fn init(v: &Volume, force_reinit: bool, yes: bool) -> CliResult {
    let provider = for_config(&v.provider);
    if provider.is_temporary() {
        return Err(CliError::Usage(format!(
            "{}: the otp key provider formats the volume anew on every open; it needs no init",
            v.name
        )));
    }
    match state(v) {
        State::Missing => {
            return Err(CliError::device(&v.dev, "open")(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            )))
        }
        State::Initialized if !force_reinit => {
            return Err(CliError::Refused(format!(
                "{}: already initialized; --force-reinit erases and initializes it again",
                v.name
            )))
        }
        State::Initialized => confirm_erase(v, "an initialized volume", yes)?,
        State::Interrupted => eprintln!("{}: an earlier init was interrupted; redoing it", v.name),
        State::Other(Some(sig)) => confirm_erase(v, &format!("a {sig} signature"), yes)?,
        State::Other(None) => {}
    }
    let pass = provider.passphrase()?;
    let mut opts = FormatOptions {
        subsystem: INITIALIZING.into(),
        ..FormatOptions::default()
    };
    format_and_fill(v, &mut opts, pass.as_bytes())?;
    let mut f = open_device(&v.dev, true, false)?;
    let mut dev = Luks2::open(&mut f).map_err(CliError::luks(&v.dev))?;
    dev.set_labels(None, Some(DONE))
        .map_err(CliError::luks(&v.dev))?;
    Ok(())
}

/// Formats the device (with integrity and its tag wipe when configured), opens it as the
/// volume's name, creates the file system if configured and the mapping is empty, and leaves
/// it open only when `keep_open`.
fn format_and_fill(v: &Volume, opts: &mut FormatOptions, pass: &[u8]) -> CliResult {
    let mapper = Mapper::open()?;
    mapper.ensure_free(&v.name)?;
    let mut f = open_device(&v.dev, true, true)?;
    // The exclusive handle is closed before mapping: the mapping claims the device.
    let (header, vk) = if v.integrity {
        let kind = luks2::SegmentIntegrity::Hmac(luks2::HashAlg::Sha256);
        opts.integrity = Some(kind);
        opts.key_size += kind.mac_key_size();
        let mut progress = Progress::new("Wiping device to initialize integrity checksum");
        let mut report = |done, total| progress.update(done, total);
        let made = activate::format_with_integrity(
            &v.dev,
            f,
            opts,
            pass,
            true,
            Some((&mapper, &mut report)),
        )?;
        progress.finish();
        made
    } else {
        let (dev, vk) = luks2::format(&mut f, opts, pass).map_err(CliError::luks(&v.dev))?;
        let header = dev.header().clone();
        drop(dev);
        drop(f);
        (header, vk)
    };
    let mut f = open_device(&v.dev, false, false)?;
    let path = map(&mapper, v, &mut f, &header, &vk)?;
    let made = makefs(v, &path);
    if made.is_err() || !for_config(&v.provider).is_temporary() {
        mapper.close(&v.name)?;
    }
    made
}

/// Maps an unlocked volume as crypt volumes are always mapped: read-write, journalled
/// integrity, default performance options. Returns the `/dev/mapper` path.
fn map(
    mapper: &Mapper,
    v: &Volume,
    f: &mut File,
    header: &luks2::Header,
    vk: &luks2::VolumeKey,
) -> CliResult<std::path::PathBuf> {
    let options = activate::Options::default();
    Ok(mapper.open_luks2(&v.dev, f, header, vk, &v.name, &options)?)
}

/// Creates the configured file system on the mapping, unless it already holds a signature.
fn makefs(v: &Volume, path: &Path) -> CliResult {
    let Some(fs) = v.makefs else {
        return Ok(());
    };
    let mut f = File::open(path).map_err(CliError::device(path, "open"))?;
    if let Some(sig) = luks2::probe::signature(&mut f).map_err(CliError::device(path, "read"))? {
        eprintln!(
            "{}: holds a {sig} signature already; no {} file system created",
            v.name,
            fs.name()
        );
        return Ok(());
    }
    let (tool, args): (&str, &[&str]) = match fs {
        // No discard: it would be lost on integrity volumes and reveals nothing useful here.
        MakeFs::Ext4 => ("mkfs.ext4", &["-q", "-F", "-E", "nodiscard"]),
        MakeFs::Xfs => ("mkfs.xfs", &["-q", "-f", "-K"]),
        MakeFs::Vfat => ("mkfs.vfat", &[]),
        MakeFs::Swap => ("mkswap", &[]),
    };
    run_tool(tool, args, path).map(|_| ())
}

fn run_tool(tool: &str, args: &[&str], path: &Path) -> CliResult<i32> {
    let out = Command::new(tool)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| CliError::Usage(format!("cannot run {tool}: {e}")))?;
    let code = out.status.code().unwrap_or(-1);
    // e2fsck's 1 means "errors corrected": the file system is fine now.
    let fine = out.status.success() || (tool == "e2fsck" && code == 1);
    if !fine {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(CliError::Usage(format!(
            "{tool} {} failed ({}): {}",
            path.display(),
            out.status,
            err.split_whitespace().collect::<Vec<_>>().join(" ")
        )));
    }
    Ok(code)
}

fn open(v: &Volume, check_fs: bool) -> CliResult {
    let provider = for_config(&v.provider);
    if provider.is_temporary() {
        // A fresh random key each time: the previous contents are gone for good. The key has
        // full entropy, so a cheap KDF loses nothing.
        let pass = provider.passphrase()?;
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams {
            force_iterations: Some(1000),
            ..PbkdfParams::insecure_fast()
        };
        opts.digest_iterations = Some(1000);
        return format_and_fill(v, &mut opts, pass.as_bytes());
    }
    match state(v) {
        State::Initialized => {}
        State::Interrupted => {
            return Err(CliError::Refused(format!(
                "{}: its init was interrupted; run init again",
                v.name
            )))
        }
        State::Missing => {
            return Err(CliError::device(&v.dev, "open")(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            )))
        }
        State::Other(_) => {
            return Err(CliError::Refused(format!(
                "{}: {} is not initialized; run init first",
                v.name,
                v.dev.display()
            )))
        }
    }
    let mapper = Mapper::open()?;
    mapper.ensure_free(&v.name)?;
    let pass = provider.passphrase()?;
    let mut f = open_device(&v.dev, false, false)?;
    let mut dev = Luks2::open(&mut f).map_err(CliError::luks(&v.dev))?;
    let (_, vk) = dev
        .unlock(pass.as_bytes(), None, &KdfLimits::default())
        .map_err(CliError::luks(&v.dev))?;
    let header = dev.header().clone();
    drop(dev);
    let path = map(&mapper, v, &mut f, &header, &vk)?;
    if check_fs {
        if let Err(e) = check_fs_on(v, &path) {
            let _ = mapper.close(&v.name);
            return Err(e);
        }
    }
    Ok(())
}

fn check_fs_on(v: &Volume, path: &Path) -> CliResult {
    let mut f = File::open(path).map_err(CliError::device(path, "open"))?;
    let sig = luks2::probe::signature(&mut f).map_err(CliError::device(path, "read"))?;
    let (tool, args): (&str, &[&str]) = match sig {
        Some("ext4") => ("e2fsck", &["-p"]),
        Some("xfs") => ("xfs_repair", &["-n"]),
        Some("vfat") => ("fsck.vfat", &["-n"]),
        Some("swap") | None if v.makefs == Some(MakeFs::Swap) => return Ok(()),
        other => {
            return Err(CliError::Refused(format!(
                "{}: --check-fs: no file system to check ({})",
                v.name,
                other.unwrap_or("no signature")
            )))
        }
    };
    run_tool(tool, args, path).map(|_| ())
}
