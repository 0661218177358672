//! `luks format`.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use luks2::SegmentIntegrity;

use super::any::luks1_pbkdf;
use super::{confirm_format, format_options, open_device, read_volume_key, say, Warn};
use crate::args::FormatArgs;
use crate::error::{CliError, CliResult};
use crate::keys::Keys;
use crate::progress::Progress;

/// Formats the device as LUKS2 (with a dm-integrity layer and its tag wipe for
/// `--integrity`), after confirming when it carries a signature.
pub(super) fn run(a: FormatArgs, keys: &mut Keys) -> CliResult<i32> {
    let mut created = None;
    let result = format(&a, keys, &mut created);
    if let (Err(_), Some(path)) = (&result, created) {
        // A header file this run created holds nothing of the user's: take it away again.
        let _ = std::fs::remove_file(path);
    }
    result
}

fn format<'a>(
    a: &'a FormatArgs,
    keys: &mut Keys,
    created: &mut Option<&'a Path>,
) -> CliResult<i32> {
    let key_file = super::key_file_of(a.passphrase_file.as_deref(), &a.key)?;
    let mut opts = format_options(&a.new, &a.pbkdf, &a.key)?;
    let luks1 = a.luks_type.as_deref() == Some("luks1");
    if luks1 {
        let needs_luks2 = [
            (a.integrity.is_some(), "--integrity"),
            (a.new.metadata_size.is_some(), "--luks2-metadata-size"),
            (a.new.keyslots_size.is_some(), "--luks2-keyslots-size"),
            (a.new.label.is_some(), "--label"),
            (a.new.subsystem.is_some(), "--subsystem"),
        ];
        if let Some((_, opt)) = needs_luks2.iter().find(|(given, _)| *given) {
            return Err(CliError::Usage(format!(
                "{opt} is not supported for LUKS1: format LUKS2 (the default) for it"
            )));
        }
        opts.keyslot.pbkdf = luks1_pbkdf(&a.pbkdf)?;
    }
    // cryptsetup skips the digest's benchmark too when the iterations are forced: it takes
    // the minimum, 1000.
    if a.pbkdf.pbkdf_force_iterations.is_some() {
        opts.digest_iterations = Some(1000);
    }
    if let Some(kind) = a.integrity {
        with_integrity(&mut opts, kind)?;
    }
    // Even --align-payload 0 (the default alignment) is refused with --offset.
    if a.align_payload.is_some() && a.new.offset.is_some() {
        return Err(CliError::Usage(
            "Options --align-payload and --offset cannot be combined.".into(),
        ));
    }
    if let Some(align) = a.align_payload.filter(|&n| n > 0) {
        if a.hdr.header.is_some() {
            return Err(CliError::Usage(
                "--align-payload with a detached --header is not supported".into(),
            ));
        }
        // The first multiple of the alignment past the keyslots (LUKS1) or the default
        // header areas (LUKS2), as cryptsetup places it.
        let unit = align
            .checked_mul(512)
            .ok_or_else(|| CliError::Usage(format!("--align-payload {align} is too large")))?;
        let base = match luks1 {
            true => luks2::luks1::planned_header_size(&opts),
            false => opts.planned_data_offset(),
        }
        .map_err(CliError::luks(&a.device))?;
        opts.data_offset = Some(
            base.div_ceil(unit)
                .checked_mul(unit)
                .ok_or_else(|| CliError::Usage(format!("--align-payload {align} is too large")))?,
        );
        // The keyslots area keeps its default size; only the data moves.
        if !luks1 && opts.keyslots_size.is_none() {
            opts.keyslots_size = Some(base.saturating_sub(2 * opts.metadata_size));
        }
    }
    if let Some(f) = &a.volume_key_file {
        opts.volume_key = Some(read_volume_key(f, opts.key_size)?);
    }
    // The wipe needs device-mapper: make sure of it before anything is written.
    let mapper = if a.integrity.is_some() && !a.integrity_no_wipe {
        Some(activate::Mapper::open().map_err(|e| CliError::Usage(format!(
            "initialising integrity tags needs device-mapper ({e}); pass --integrity-no-wipe to format without it"
        )))?)
    } else {
        None
    };
    let mut header_size = None;
    if let Some(header) = &a.hdr.header {
        if a.integrity.is_some() {
            return Err(CliError::Usage(
                "--integrity with a detached --header is not supported".into(),
            ));
        }
        // The data device must exist; only its size is read (its data is not touched).
        let mut data = open_device(&a.device, false, false)?;
        let size = luks2::BlockIo::size(&mut data).map_err(CliError::device(&a.device, "read"))?;
        opts.detached_data_size = Some(size);
        // Refused before the header file is created or grown.
        if luks1 {
            luks2::luks1::check(&opts).map_err(CliError::luks(header))?;
        }
        let size = match luks1 {
            true => luks2::luks1::planned_header_size(&opts),
            false => opts.planned_header_size(),
        }
        .map_err(CliError::luks(header))?;
        if create_header_file(header, size)? {
            *created = Some(header);
        }
        header_size = Some(size);
    } else if luks1 {
        // Refused before the questions and the passphrase.
        luks2::luks1::check(&opts).map_err(CliError::luks(&a.device))?;
    }
    let device = a.hdr.of(&a.device);
    let mut f = open_device(device, true, true)?;
    let sig = luks2::probe::signature(&mut f).map_err(CliError::device(device, "read"))?;
    confirm_format(&a.common, device, sig, Warn::BeforeAsking)?;
    let pass = keys.new_passphrase(
        key_file,
        a.key.keyfile_offset,
        a.key.keyfile_size,
        &format!("Enter passphrase for {}: ", a.device.display()),
    )?;
    if let Some(size) = header_size {
        // An existing header file shorter than the areas grows (only after confirming).
        let meta = f.metadata().map_err(CliError::file(device, "read"))?;
        if meta.is_file() && meta.len() < size {
            f.set_len(size)
                .map_err(CliError::file(device, "size header file"))?;
        }
    }
    let created_slot = format!("Key slot {} created.", a.key.key_slot.unwrap_or(0));
    if luks1 {
        luks2::luks1::format(&mut f, &opts, &pass).map_err(CliError::luks(device))?;
        say(&created_slot);
        return Ok(0);
    }
    if opts.integrity.is_none() {
        luks2::format(&mut f, &opts, &pass).map_err(CliError::luks(device))?;
        say(&created_slot);
        return Ok(0);
    }
    let mut progress = Progress::new("Wiping device to initialize integrity checksum");
    let mut report = |done, total| progress.update(done, total);
    let wipe = mapper
        .as_ref()
        .map(|m| (m, &mut report as activate::ProgressFn<'_>));
    let fix_padding = !a.integrity_legacy_padding;
    activate::format_with_integrity(device, f, &opts, &pass, fix_padding, wipe)?;
    progress.finish();
    say(&created_slot);
    Ok(0)
}

/// Creates a missing detached header file of `size` bytes (mode 0600), as cryptsetup does
/// for `--header`. True when it created it; an existing file or device is left as it is.
fn create_header_file(path: &Path, size: u64) -> CliResult<bool> {
    let new = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match new {
        Ok(f) => {
            f.set_len(size)
                .map_err(CliError::file(path, "size header file"))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CliError::file(path, "create header file")(e)),
    }
}

/// Adds `kind` to the format options: checked against the cipher, its MAC key added to the
/// key size.
pub(crate) fn with_integrity(
    opts: &mut luks2::FormatOptions,
    kind: SegmentIntegrity,
) -> CliResult<()> {
    kind.dm_params(&opts.cipher)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    opts.integrity = Some(kind);
    opts.key_size += kind.mac_key_size();
    Ok(())
}
