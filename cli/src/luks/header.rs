//! `luks dump`, `header-backup`, `header-restore`, `repair`, `uuid`, `is-luks`, `config` and
//! `token`: the header and its metadata.

use std::io::Write;

use luks2::Luks2;

use super::any::{open_any, starts_luks1, AnyLuks};
use super::{
    confirm, confirm_as, confirm_overwrite, open_device, open_luks, unlock, write_bytes, write_out,
    write_secret_file,
};
use crate::args::{
    ConfigArgs, ConvertArgs, DumpArgs, HeaderBackupArgs, HeaderRestoreArgs, IsLuksArgs, RepairArgs,
    TokenAction, TokenArgs, UuidArgs,
};
use crate::error::{code, CliError, CliResult};
use crate::input::{read_bounded, HEADER_BACKUP_MAX, TOKEN_JSON_MAX};
use crate::keys::Keys;

/// cryptsetup's warning before a volume key dump.
const VOLUME_KEY_WARNING: &str = "The header dump with volume key is sensitive information\nthat allows access to encrypted partition without a passphrase.\nThis dump should be stored encrypted in a safe place.";

/// cryptsetup's luksDump text, the JSON metadata, or (after confirming and unlocking) the
/// volume key.
pub(super) fn dump(a: DumpArgs, keys: &mut Keys, out: &mut dyn Write) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = match open_any(device, false)? {
        AnyLuks::V2(dev) => dev,
        AnyLuks::V1(mut dev) => return dump_luks1(&a, &mut dev, device, keys, out),
    };
    if !a.dump_volume_key {
        let text = if a.json {
            // As cryptsetup prints it: json-c's layout, no final newline.
            dev.header().metadata_json_pretty().into_bytes()
        } else {
            // The label and subsystem as stored, as cryptsetup prints them.
            luks2::dump_bytes(dev.header())
        };
        return write_bytes(out, &text);
    }
    confirm_as(&a.common, VOLUME_KEY_WARNING, ("", 2))?;
    let prompt = format!("Enter passphrase for {}: ", device.display());
    let (_, vk) = match super::try_tokens(&mut dev, device, &a.key, &Default::default())? {
        Some(unlocked) => unlocked,
        None => {
            let pass = keys.existing(&a.key, &prompt)?;
            unlock(&mut dev, device, &pass, a.key.key_slot, &a.key)?
        }
    };
    let name = device.display().to_string();
    if let Some(f) = a.volume_key_file {
        write_secret_file(&f, vk.as_bytes())?;
        let file = f.display().to_string();
        let text = luks2::dump_volume_key_stored_text(dev.header(), &name, vk.len(), &file);
        return write_out(out, &text);
    }
    let text = luks2::dump_volume_key_text(dev.header(), &name, &vk);
    write_out(out, &text)
}

/// cryptsetup's LUKS1 luksDump (its JSON dump does not exist: refused as cryptsetup does).
fn dump_luks1(
    a: &DumpArgs,
    dev: &mut luks2::Luks1<std::fs::File>,
    device: &std::path::Path,
    keys: &mut Keys,
    out: &mut dyn Write,
) -> CliResult<i32> {
    let name = device.display().to_string();
    if a.json {
        return Err(CliError::Usage(
            "dump operation is not supported for this device type (LUKS1 has no JSON metadata)"
                .into(),
        ));
    }
    if !a.dump_volume_key {
        return write_out(out, &dev.header().dump_text(&name));
    }
    confirm_as(&a.common, VOLUME_KEY_WARNING, ("", 2))?;
    let pass = keys.existing(&a.key, &format!("Enter passphrase for {name}: "))?;
    let (_, vk) = dev
        .unlock(&pass, a.key.key_slot, &a.key.kdf_limits())
        .map_err(CliError::luks(device))?;
    if let Some(f) = &a.volume_key_file {
        write_secret_file(f, vk.as_bytes())?;
        let file = f.display().to_string();
        return write_out(out, &dev.header().dump_volume_key_stored_text(&name, &file));
    }
    write_out(out, &dev.header().dump_volume_key_text(&name, &vk))
}

/// Saves the header and keyslots area to a new file (mode 0400).
pub(super) fn backup(a: HeaderBackupArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let bytes = match open_any(device, false)? {
        AnyLuks::V1(mut dev) => dev.backup(),
        AnyLuks::V2(mut dev) => dev.backup(),
    }
    .map_err(CliError::luks(device))?;
    write_secret_file(&a.file, &bytes)?;
    Ok(0)
}

/// Writes a checked header backup back, after confirming what it replaces.
pub(super) fn restore(a: HeaderRestoreArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let bytes = read_bounded(Some(&a.file), HEADER_BACKUP_MAX, "a header backup").map_err(|e| {
        let (reason, unreadable) = match &e {
            CliError::File { source, .. } => (format!("cannot read it: {source}"), true),
            other => (other.to_string(), false),
        };
        CliError::Backup {
            path: a.file.clone(),
            reason,
            unreadable,
        }
    })?;
    if luks2::luks1::is_luks1(&bytes) {
        return restore_luks1(&a, device, &bytes);
    }
    let backup = luks2::check_backup(&bytes).map_err(|e| bad_backup(&a.file, e))?;
    let mut f = open_device(device, true, true)?;
    let current = Luks2::open(&mut f).map(|cur| cur.header().uuid().to_owned());
    let warning = replace_warning(device, "LUKS2", current.ok(), backup.uuid());
    confirm_as(&a.common, &warning, ("", 1))?;
    luks2::restore_backup(&mut f, &bytes).map_err(CliError::luks(device))?;
    Ok(0)
}

/// A backup file that holds no usable header.
fn bad_backup(path: &std::path::Path, e: luks2::Error) -> CliError {
    CliError::Backup {
        path: path.to_owned(),
        reason: format!("not a usable LUKS header backup: {e}"),
        unreadable: false,
    }
}

/// libcryptsetup's question before a header restore: what the device holds now (`kind`
/// LUKS2, or LUKS for LUKS1, with its UUID `current`), and whether the backup is another's.
fn replace_warning(
    device: &std::path::Path,
    kind: &str,
    current: Option<String>,
    backup: &str,
) -> String {
    let d = device.display();
    match current {
        None => format!(
            "Device {d} does not contain {kind} header. Replacing header can destroy data on that device."
        ),
        Some(u) => {
            let other = if u == backup {
                ""
            } else {
                "\nWARNING: real device header has different UUID than backup!"
            };
            format!(
                "Device {d} already contains {kind} header. Replacing header will destroy existing keyslots.{other}"
            )
        }
    }
}

/// Writes a LUKS1 backup back (cryptsetup's luksHeaderRestore for LUKS1), after confirming.
fn restore_luks1(a: &HeaderRestoreArgs, device: &std::path::Path, bytes: &[u8]) -> CliResult<i32> {
    let backup = luks2::luks1::check_backup(bytes).map_err(|e| bad_backup(&a.file, e))?;
    let mut f = open_device(device, true, true)?;
    let current = if starts_luks1(&mut f) {
        luks2::Luks1::open(&mut f)
            .ok()
            .map(|d| d.header().uuid().into_owned())
    } else {
        None
    };
    let warning = replace_warning(device, "LUKS", current, &backup.uuid());
    confirm_as(&a.common, &warning, ("", 1))?;
    luks2::luks1::restore_backup(&mut f, bytes).map_err(CliError::luks(device))?;
    Ok(0)
}

/// Rewrites a damaged or stale header copy from the good one.
pub(super) fn repair(a: RepairArgs, out: &mut dyn Write) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    // cryptsetup says nothing, or with -v that it found no known problem (after a repair
    // too).
    let report = |out: &mut dyn Write, ours: &str| match super::as_cryptsetup() {
        true => {
            super::say("No known problems detected for LUKS header.");
            Ok(0)
        }
        false => write_out(out, ours),
    };
    // LUKS1 has one header copy: a valid one needs nothing.
    if !a.overwrite_signature && starts_luks1(&mut open_device(device, false, false)?) {
        luks2::Luks1::open(open_device(device, false, false)?).map_err(CliError::luks(device))?;
        return report(out, "The LUKS1 header is valid; nothing to repair.\n");
    }
    let mut dev = if a.overwrite_signature {
        let mut f = open_device(device, true, true)?;
        if let Some(sig) =
            luks2::probe::foreign(&mut f).map_err(CliError::device(device, "read"))?
        {
            confirm_overwrite(
                &a.common,
                &format!(
                    "{} holds a {sig} signature where the primary LUKS2 header was. Repairing writes the old LUKS2 header over it and destroys what is there now.",
                    device.display()
                ),
            )?;
        }
        Luks2::open_over_foreign(f).map_err(CliError::luks(device))?
    } else {
        open_luks(device, true)?
    };
    let msg = match dev.repair().map_err(CliError::luks(device))? {
        Some(copy) => format!("Repaired the {copy} header copy.\n"),
        None => "Both header copies are valid; nothing to repair.\n".to_owned(),
    };
    report(out, &msg)
}

/// Prints the UUID, or sets it (confirmed).
pub(super) fn uuid(a: UuidArgs, out: &mut dyn Write) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let Some(u) = a.uuid else {
        let dev = open_any(device, false)?;
        return write_out(out, &format!("{}\n", dev.uuid()));
    };
    let mut dev = open_any(device, true)?;
    confirm_as(
        &a.common,
        "Do you really want to change UUID of device?",
        ("Operation aborted.", 2),
    )?;
    dev.set_uuid(device, &u)?;
    Ok(0)
}

/// Exit 0 for a valid LUKS2 header, 1 otherwise (saying why with `--verbose`).
pub(super) fn is_luks(a: IsLuksArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut f = open_device(device, false, false)?;
    let v1 = starts_luks1(&mut f);
    // cryptsetup isLuks --type luks1|luks2: a valid header of the other version is not it.
    match (a.luks_type.as_deref(), v1) {
        (Some("luks1"), false) | (Some("luks2"), true) => return Ok(code::FAILURE),
        _ => {}
    }
    let checked = if v1 {
        luks2::Luks1::open(f).map(|_| ())
    } else {
        Luks2::open(f).map(|_| ())
    };
    match checked {
        Ok(()) => Ok(0),
        Err(e) => {
            if a.verbose {
                eprintln!("{}: {e}", device.display());
            }
            Ok(code::FAILURE)
        }
    }
}

/// Sets the label and/or subsystem.
pub(super) fn config(a: ConfigArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    if a.label.is_none() && a.subsystem.is_none() && a.priority.is_none() {
        return Err(CliError::Usage(
            "Option --priority, --label or --subsystem is missing.".into(),
        ));
    }
    let priority = match a.priority.as_deref() {
        None => None,
        Some("ignore") => Some(0),
        Some("normal") => Some(1),
        Some("prefer") => Some(2),
        Some(_) => {
            return Err(CliError::Usage(
                "Option --priority can be only ignore/normal/prefer.".into(),
            ))
        }
    };
    if priority.is_some() && a.key_slot.is_none() {
        return Err(CliError::Stated(
            "Keyslot specification is required.".into(),
        ));
    }
    let mut dev = open_luks(device, true)?;
    if let (Some(p), Some(slot)) = (priority, a.key_slot) {
        dev.set_keyslot_priority(slot, p).map_err(|e| match e {
            // cryptsetup fails silently on a keyslot that is not active.
            luks2::Error::KeyslotNotFound(_) if super::as_cryptsetup() => {
                CliError::Aborted("", code::FAILURE)
            }
            e => CliError::luks(device)(e),
        })?;
    }
    if a.label.is_some() || a.subsystem.is_some() {
        dev.set_labels(a.label.as_deref(), a.subsystem.as_deref())
            .map_err(CliError::luks(device))?;
    }
    Ok(0)
}

/// "Token N created.": cryptsetup prints it with -v only.
fn report_created(id: u32, out: &mut dyn Write) -> CliResult<i32> {
    match super::as_cryptsetup() {
        true => {
            super::say(&format!("Token {id} created."));
            Ok(0)
        }
        false => write_out(out, &format!("Token {id} created.\n")),
    }
}

/// Under cryptsetup's name, its sentence for a failed token action (it names no cause); our
/// own error, which does, otherwise.
fn token_failure(sentence: impl FnOnce() -> String) -> impl FnOnce(CliError) -> CliError {
    move |e| match (super::as_cryptsetup(), &e) {
        // Sentences of their own (a token or keyslot that is in use or missing).
        (
            _,
            CliError::Activate(activate::Error::Luks {
                source: luks2::Error::TokenInUse(_) | luks2::Error::KeyslotNotFound(_),
                ..
            }),
        ) => e,
        (true, _) => CliError::Stated(sentence().into()),
        (false, _) => e,
    }
}

/// Before a token is added or imported as number `id`: cryptsetup's checks, in its order
/// (the number, whether it is free, then the keyslot to assign), so that nothing is read
/// from standard input or a file for an action that cannot succeed.
fn check_new_token(
    dev: &Luks2<std::fs::File>,
    a: &TokenArgs,
    device: &std::path::Path,
) -> CliResult<()> {
    let in_use = |id| Err(CliError::luks(device)(luks2::Error::TokenInUse(id)));
    match a.token_id {
        Some(id) if id >= luks2::MAX_OBJECTS => {
            return Err(token_failure(|| format!("Token {id} is invalid."))(
                CliError::luks(device)(luks2::Error::InvalidArgument {
                    name: "token id",
                    reason: format!("{id} is above {}", luks2::MAX_OBJECTS - 1),
                }),
            ))
        }
        Some(id) if !a.replace && dev.token_json(id).is_ok() => return in_use(id),
        _ => {}
    }
    match a.key_slot {
        Some(s) if s < luks2::MAX_OBJECTS && dev.header().keyslot(s).is_err() => {
            Err(CliError::luks(device)(luks2::Error::KeyslotNotFound(s)))
        }
        _ => Ok(()),
    }
}

/// Tokens: a keyring token added, JSON imported from standard input or a file, exported,
/// removed.
pub(super) fn token(a: TokenArgs, out: &mut dyn Write) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let need_id = || {
        a.token_id.ok_or_else(|| {
            CliError::Usage("Action requires specific token. Use --token-id parameter.".into())
        })
    };
    match a.action {
        TokenAction::Add => {
            let Some(description) = a.key_description.as_deref() else {
                return Err(CliError::Usage(
                    "--key-description parameter is mandatory for token add action.".into(),
                ));
            };
            let mut dev = open_luks(device, true)?;
            check_new_token(&dev, &a, device)?;
            let id = dev
                .add_keyring_token(description, a.key_slot, a.token_id, a.replace)
                .map_err(CliError::luks(device))
                .map_err(token_failure(|| {
                    format!(
                        "Failed to add luks2-keyring token {}.",
                        a.token_id.map_or(-1, i64::from)
                    )
                }))?;
            report_created(id, out)
        }
        TokenAction::Import => {
            let mut dev = open_luks(device, true)?;
            check_new_token(&dev, &a, device)?;
            // `-` is standard input, as without the option.
            let file = a
                .json_file
                .as_deref()
                .filter(|p| *p != std::path::Path::new("-"));
            let bytes = read_bounded(file, TOKEN_JSON_MAX, "token JSON").map_err(|e| {
                match (super::as_cryptsetup(), file, &e) {
                    (true, Some(p), CliError::File { .. }) => CliError::Stated(
                        format!("Failed to open file {} in read-only mode.", p.display()).into(),
                    ),
                    _ => e,
                }
            })?;
            let failed = || "Failed to import token from file.".to_string();
            let text = String::from_utf8(bytes)
                .map_err(|_| CliError::Usage("token JSON is not UTF-8 text".into()))
                .map_err(token_failure(failed))?;
            let id = dev
                .import_token_json_for(&text, a.token_id, a.replace, a.key_slot)
                .map_err(CliError::luks(device))
                .map_err(token_failure(failed))?;
            report_created(id, out)
        }
        TokenAction::Export => {
            let id = need_id()?;
            let dev = open_luks(device, false)?;
            // As cryptsetup writes it: the JSON alone, no final newline.
            let text =
                dev.token_json(id)
                    .map_err(CliError::luks(device))
                    .map_err(token_failure(|| {
                        format!("Failed to get token {id} for export.")
                    }))?;
            match &a.json_file {
                Some(p) => {
                    std::fs::write(p, text)
                        .map_err(CliError::file(p, "write token JSON"))
                        .map_err(token_failure(|| {
                            format!("Failed to open file {} in write mode.", p.display())
                        }))?;
                    Ok(0)
                }
                None => write_out(out, &text),
            }
        }
        TokenAction::Remove => {
            let id = need_id()?;
            let mut dev = open_luks(device, true)?;
            let sentence = match id < luks2::MAX_OBJECTS {
                true => format!("Token {id} is not in use."),
                false => format!("Token {id} is invalid."),
            };
            dev.remove_token(id)
                .map_err(CliError::luks(device))
                .map_err(token_failure(|| sentence))?;
            super::say(&format!("Token {id} removed."));
            Ok(0)
        }
    }
}

/// Converts a LUKS volume in place to the other version (`--type luks2` or `luks1`), after
/// confirming; refused while it is mapped.
pub(super) fn convert(a: ConvertArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    // As cryptsetup: lower case only.
    let to_luks1 = match a.kind.as_str() {
        "luks2" => false,
        "luks1" => true,
        _ => {
            return Err(CliError::Stated(
                "Invalid LUKS type, only luks1 and luks2 are supported.".into(),
            ))
        }
    };
    let mut f = open_device(device, true, true)?;
    let is_luks1 = starts_luks1(&mut f);
    if is_luks1 == to_luks1 {
        // Only a header of the other version gets here: anything else is not LUKS.
        if is_luks1 {
            luks2::Luks1::open(&mut f).map_err(CliError::luks(device))?;
            return Err(CliError::Stated("Device is already LUKS1 type.".into()));
        }
        Luks2::open(&mut f).map_err(CliError::luks(device))?;
        return Err(CliError::Stated("Device is already LUKS2 type.".into()));
    }
    let (prefix, target) = if is_luks1 {
        let dev = luks2::Luks1::open(&mut f).map_err(CliError::luks(device))?;
        (dev.header().dm_uuid(""), "LUKS2")
    } else {
        let dev = Luks2::open(&mut f).map_err(CliError::luks(device))?;
        (dev.header().dm_uuid(""), "LUKS1")
    };
    if let Some(name) = activate::Mapper::open()
        .ok()
        .and_then(|m| m.mapped_with_uuid_prefix(&prefix))
    {
        return Err(CliError::Busy(format!(
            "cannot convert {}: it is in use (mapped as {name})",
            device.display()
        )));
    }
    confirm(
        &a.common,
        &format!(
            "This operation will convert {} to {target} format.",
            device.display()
        ),
    )?;
    if is_luks1 {
        let dev = luks2::Luks1::open(f).map_err(CliError::luks(device))?;
        dev.convert_to_luks2().map_err(CliError::luks(device))?;
    } else {
        let dev = Luks2::open(f).map_err(CliError::luks(device))?;
        dev.convert_to_luks1().map_err(CliError::luks(device))?;
    }
    Ok(0)
}
