//! `luks format`.

use luks2::SegmentIntegrity;

use super::{confirm, format_options, open_device, read_volume_key};
use crate::args::FormatArgs;
use crate::error::{CliError, CliResult};
use crate::keys::Keys;
use crate::progress::Progress;

/// Formats the device as LUKS2 (with a dm-integrity layer and its tag wipe for
/// `--integrity`), after confirming when it carries a signature.
pub(super) fn run(a: FormatArgs, keys: &mut Keys) -> CliResult<i32> {
    if a.passphrase_file.is_some() && a.key.key_file.is_some() {
        return Err(CliError::Usage(
            "give the key file either as an argument or with --key-file, not both".into(),
        ));
    }
    let mut opts = format_options(&a.new, &a.pbkdf, &a.key)?;
    if let Some(kind) = a.integrity {
        with_integrity(&mut opts, kind)?;
    }
    if let Some(f) = &a.volume_key_file {
        opts.volume_key = Some(read_volume_key(f)?);
    }
    // The wipe needs device-mapper: make sure of it before anything is written.
    let mapper = if a.integrity.is_some() && !a.integrity_no_wipe {
        Some(activate::Mapper::open().map_err(|e| CliError::Usage(format!(
            "initialising integrity tags needs device-mapper ({e}); pass --integrity-no-wipe to format without it"
        )))?)
    } else {
        None
    };
    let device = &a.device;
    let mut f = open_device(device, true, true)?;
    let sig = luks2::probe::signature(&mut f).map_err(CliError::device(device, "read"))?;
    if let Some(sig) = sig {
        let warning = format!(
            "{} contains a {sig} signature. This will overwrite data on it irrevocably.",
            device.display()
        );
        confirm(&a.common, &warning)?;
    }
    let pass = match a.passphrase_file.as_ref().or(a.key.key_file.as_ref()) {
        Some(kf) => Keys::new_from_file(kf, a.key.keyfile_offset, a.key.keyfile_size)?,
        None => keys.new_passphrase(
            None,
            &format!("Enter passphrase for {}: ", device.display()),
        )?,
    };
    if opts.integrity.is_none() {
        luks2::format(&mut f, &opts, &pass).map_err(CliError::luks(device))?;
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
    Ok(0)
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
