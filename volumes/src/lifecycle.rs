//! A volume's life: `init` formats it (with integrity and its tag wipe when configured) and
//! creates its file system; `open` unlocks it with its provider's key and maps it; `close`
//! unmaps it. An `otp` volume is formatted anew on every open.
//!
//! `init` formats with the LUKS2 subsystem `cryptpilot-initializing` and sets `cryptpilot`
//! (what the existing tool writes) only once the file system exists, so an interrupted init
//! is seen and redone, never trusted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use activate::{open_device, Mapper, Options};
use keyprovider::for_config;
use luks2::{FormatOptions, HashAlg, KdfLimits, Luks2, PbkdfParams, SegmentIntegrity, VolumeKey};

use crate::{Error, MakeFs, Result, Volume};

/// The subsystem of a volume whose init finished (the existing tool's value).
pub const DONE: &str = "cryptpilot";
/// The subsystem while init runs.
pub const INITIALIZING: &str = "cryptpilot-initializing";

/// What a volume's device holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The device does not exist.
    Missing,
    /// A finished init.
    Initialized,
    /// An init that did not finish.
    Interrupted,
    /// Something else: a file system or another tool's LUKS (its signature), or nothing
    /// recognised.
    Other(Option<&'static str>),
}

/// What `v`'s device holds now.
pub fn state(v: &Volume) -> State {
    let Ok(mut f) = File::open(&v.dev) else {
        return State::Missing;
    };
    match Luks2::open(&mut f) {
        Ok(dev) if dev.header().subsystem() == INITIALIZING => State::Interrupted,
        Ok(dev) if dev.header().subsystem() == DONE => State::Initialized,
        _ => State::Other(luks2::probe::signature(&mut f).ok().flatten()),
    }
}

/// What the caller is asked or told while a volume is worked on.
pub trait Ui {
    /// Whether to go on with `warning` (an erase): `false` refuses.
    fn confirm(&mut self, warning: &str) -> bool;
    /// Something worth telling, not an error.
    fn notice(&mut self, message: &str);
    /// `done` of `total` bytes of the integrity tag wipe.
    fn wipe_progress(&mut self, done: u64, total: u64);
}

fn refused(v: &Volume, reason: String) -> Error {
    Error::Refused {
        volume: v.name.to_string(),
        reason,
    }
}

fn missing(v: &Volume) -> Error {
    Error::Activate(activate::Error::device(&v.dev, "open")(
        std::io::ErrorKind::NotFound.into(),
    ))
}

/// Formats `v` with its provider's key and creates its file system; an initialised volume is
/// only redone with `force_reinit`, and anything on the device is erased only once `ui`
/// confirms.
///
/// # Errors
/// [`Error::Refused`] for an `otp` volume, an initialised one without `force_reinit`, or an
/// erase not confirmed; [`Error::Provider`] when no key comes; mapping and tool errors.
pub fn init(v: &Volume, force_reinit: bool, ui: &mut dyn Ui) -> Result<()> {
    init_inner(v, force_reinit, false, ui)
}

/// As [`init`] with `force_reinit`, leaving the volume mapped as [`open`] would, with the
/// volume key the format made: its key is derived once, not again to open it (a boot that
/// recreates a volume every time saves a whole key derivation).
///
/// # Errors
/// As [`init`].
pub fn init_open(v: &Volume, ui: &mut dyn Ui) -> Result<()> {
    init_inner(v, true, true, ui)
}

fn init_inner(v: &Volume, force_reinit: bool, keep_open: bool, ui: &mut dyn Ui) -> Result<()> {
    let provider = for_config(&v.provider);
    if provider.is_temporary() {
        return Err(refused(
            v,
            "the otp key provider formats the volume anew on every open; it needs no init".into(),
        ));
    }
    let erase = |what: &str, ui: &mut dyn Ui| {
        let warning = format!(
            "{} ({}) holds {what}. Initializing volume {} erases it irrevocably.",
            v.dev.display(),
            v.name,
            v.name
        );
        if ui.confirm(&warning) {
            Ok(())
        } else {
            Err(refused(
                v,
                format!(
                    "{} holds {what}; not initialized (pass -y to erase it)",
                    v.dev.display()
                ),
            ))
        }
    };
    match state(v) {
        State::Missing => return Err(missing(v)),
        State::Initialized if !force_reinit => {
            return Err(refused(
                v,
                "already initialized; --force-reinit erases and initializes it again".into(),
            ))
        }
        State::Initialized => erase("an initialized volume", ui)?,
        State::Interrupted => ui.notice(&format!(
            "{}: an earlier init was interrupted; redoing it",
            v.name
        )),
        State::Other(Some(sig)) => erase(&format!("a {sig} signature"), ui)?,
        State::Other(None) => {}
    }
    let pass = provider.passphrase()?;
    let mut opts = FormatOptions {
        subsystem: INITIALIZING.into(),
        ..FormatOptions::default()
    };
    format_and_fill(v, &mut opts, &pass, keep_open, ui)?;
    let done = (|| {
        let mut f = open_device(&v.dev, true, false)?;
        let mut dev = Luks2::open(&mut f).map_err(activate::Error::luks(&v.dev))?;
        dev.set_labels(None, Some(DONE))
            .map_err(activate::Error::luks(&v.dev))?;
        Ok(())
    })();
    if done.is_err() && keep_open {
        let _ = close(v);
    }
    done
}

/// Formats the device (with integrity and its tag wipe when configured), maps it, creates
/// the file system if configured and the mapping is empty, and leaves it mapped when
/// `keep_open` (a temporary `otp` volume, [`init_open`]).
fn format_and_fill(
    v: &Volume,
    opts: &mut FormatOptions,
    pass: &luks2::Passphrase,
    keep_open: bool,
    ui: &mut dyn Ui,
) -> Result<()> {
    let mapper = Mapper::open()?;
    mapper.ensure_free(&v.name)?;
    let mut f = open_device(&v.dev, true, true)?;
    // The exclusive handle is closed before mapping: the mapping claims the device.
    let (header, vk) = if v.integrity {
        let kind = SegmentIntegrity::Hmac(HashAlg::Sha256);
        opts.integrity = Some(kind);
        opts.key_size += kind.mac_key_size();
        let mut report = |done, total| ui.wipe_progress(done, total);
        activate::format_with_integrity(&v.dev, f, opts, pass, true, Some((&mapper, &mut report)))?
    } else {
        let (dev, vk) = luks2::format(&mut f, opts, pass).map_err(activate::Error::luks(&v.dev))?;
        let header = dev.header().clone();
        drop(dev);
        // The exclusive (O_EXCL) handle must be closed, or the kernel refuses the mapping.
        drop(f);
        (header, vk)
    };
    let path = map(&mapper, v, &header, &vk)?;
    let made = makefs(v, &path, ui);
    if made.is_err() || !keep_open {
        mapper.close(&v.name)?;
    }
    made
}

/// Maps an unlocked volume as volumes are always mapped: read-write, journalled integrity,
/// default performance options. Returns the `/dev/mapper` path.
fn map(mapper: &Mapper, v: &Volume, header: &luks2::Header, vk: &VolumeKey) -> Result<PathBuf> {
    let mut f = open_device(&v.dev, false, false)?;
    Ok(mapper.open_luks2(&v.dev, &mut f, header, vk, &v.name, &Options::default())?)
}

/// Unlocks `v` with its provider's key and maps it as `/dev/mapper/<volume>` (an `otp`
/// volume is formatted anew, with its file system). With `check_fs`, the file system is
/// checked first and a damaged one unmapped again.
///
/// # Errors
/// [`Error::Refused`] for a volume that is not initialised (or whose init was interrupted);
/// [`Error::Provider`], unlock, mapping and tool errors.
pub fn open(v: &Volume, check_fs: bool, ui: &mut dyn Ui) -> Result<()> {
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
        return format_and_fill(v, &mut opts, &pass, true, ui);
    }
    match state(v) {
        State::Initialized => {}
        State::Interrupted => {
            return Err(refused(
                v,
                "its init was interrupted; run init again".into(),
            ))
        }
        State::Missing => return Err(missing(v)),
        State::Other(_) => {
            return Err(refused(
                v,
                format!("{} is not initialized; run init first", v.dev.display()),
            ))
        }
    }
    let mapper = Mapper::open()?;
    mapper.ensure_free(&v.name)?;
    let pass = provider.passphrase()?;
    let mut f = open_device(&v.dev, false, false)?;
    let mut dev = Luks2::open(&mut f).map_err(activate::Error::luks(&v.dev))?;
    let (_, vk) = dev
        .unlock(&pass, None, &KdfLimits::default())
        .map_err(activate::Error::luks(&v.dev))?;
    let header = dev.header().clone();
    drop(dev);
    let path = map(&mapper, v, &header, &vk)?;
    if check_fs {
        if let Err(e) = check_fs_on(v, &path) {
            let _ = mapper.close(&v.name);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmaps `v` (and its integrity layer).
///
/// # Errors
/// Mapping errors: not mapped, busy.
pub fn close(v: &Volume) -> Result<()> {
    Ok(Mapper::open()?.close(&v.name)?)
}

/// Creates the configured file system on the mapping, unless it already holds a signature.
fn makefs(v: &Volume, path: &Path, ui: &mut dyn Ui) -> Result<()> {
    let Some(fs) = v.makefs else {
        return Ok(());
    };
    let mut f = File::open(path).map_err(activate::Error::device(path, "open"))?;
    let sig = luks2::probe::signature(&mut f).map_err(activate::Error::device(path, "read"))?;
    if let Some(sig) = sig {
        ui.notice(&format!(
            "{}: holds a {sig} signature already; no {} file system created",
            v.name,
            fs.name()
        ));
        return Ok(());
    }
    let (tool, args): (&str, &[&str]) = match fs {
        // No discard: it would be lost on integrity volumes and reveals nothing useful here.
        MakeFs::Ext4 => ("mkfs.ext4", &["-q", "-F", "-E", "nodiscard"]),
        MakeFs::Xfs => ("mkfs.xfs", &["-q", "-f", "-K"]),
        MakeFs::Vfat => ("mkfs.vfat", &[]),
        MakeFs::Swap => ("mkswap", &[]),
    };
    run_tool(v, tool, args, path)
}

/// Checks the file system on the mapping with its own tool.
fn check_fs_on(v: &Volume, path: &Path) -> Result<()> {
    let mut f = File::open(path).map_err(activate::Error::device(path, "open"))?;
    let sig = luks2::probe::signature(&mut f).map_err(activate::Error::device(path, "read"))?;
    let (tool, args): (&str, &[&str]) = match sig {
        Some("ext4") => ("e2fsck", &["-p"]),
        Some("xfs") => ("xfs_repair", &["-n"]),
        Some("vfat") => ("fsck.vfat", &["-n"]),
        Some("swap") | None if v.makefs == Some(MakeFs::Swap) => return Ok(()),
        other => {
            return Err(refused(
                v,
                format!(
                    "--check-fs: no file system to check ({})",
                    other.unwrap_or("no signature")
                ),
            ))
        }
    };
    run_tool(v, tool, args, path)
}

fn run_tool(v: &Volume, tool: &str, args: &[&str], path: &Path) -> Result<()> {
    let fail = |reason: String| Error::Tool {
        volume: v.name.to_string(),
        reason,
    };
    let out = Command::new(tool)
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| fail(format!("cannot run {tool}: {e}")))?;
    // e2fsck's 1 means "errors corrected": the file system is fine now.
    let fine = out.status.success() || (tool == "e2fsck" && out.status.code() == Some(1));
    if !fine {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!(
            "{tool} {} failed ({}): {}",
            path.display(),
            out.status,
            err.split_whitespace().collect::<Vec<_>>().join(" ")
        )));
    }
    Ok(())
}
