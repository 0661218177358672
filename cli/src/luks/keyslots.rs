//! `luks add-key`, `remove-key`, `change-key` and `kill-slot`, on LUKS2 and LUKS1.

use super::any::open_any;
use super::{
    as_cryptsetup, confirm_as, keyslot_options, open_luks, read_volume_key, report_unlocked, say,
    Abort,
};
use crate::args::{
    AddKeyArgs, ChangeKeyArgs, ConvertKeyArgs, EraseArgs, KillSlotArgs, RemoveKeyArgs,
};
use crate::error::{CliError, CliResult};
use crate::keys::Keys;

const LAST_SLOT: &str =
    "This is the last keyslot. Device will become unusable after purging this key.";
/// A "no" to removing a keyslot (cryptsetup: exit 2).
const SLOT_KEPT: Abort = ("Operation aborted, the keyslot was NOT wiped.", 2);

/// Adds a keyslot; an existing passphrase or the volume key proves access.
pub(super) fn add(a: AddKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_any(device, true)?;
    dev.check_pbkdf(&a.pbkdf)?;
    // --new-key-slot names the new keyslot and leaves --key-slot to the unlock; alone,
    // --key-slot is the new keyslot (cryptsetup warns so).
    let (new_slot, unlock_slot) = match a.new_key_slot {
        Some(n) => (Some(n), a.key.key_slot),
        None => (a.key.key_slot, None),
    };
    if a.new_key_slot.is_none() && a.key.key_slot.is_some() && as_cryptsetup() && !a.common.batch {
        println!("WARNING: The --key-slot parameter is used for new keyslot number.");
    }
    let vk = match &a.volume_key_file {
        Some(f) => {
            let vk = read_volume_key(f, dev.key_size(device)?)?;
            dev.verify_volume_key(device, &vk)?;
            vk
        }
        None => {
            let pass = keys.existing(&a.key, "Enter any existing passphrase: ")?;
            match dev.unlock(device, &pass, unlock_slot, &a.key) {
                // cryptsetup says nothing when a key file's passphrase (not standard input's)
                // opens no keyslot here.
                Err(
                    e @ CliError::Activate(activate::Error::Luks {
                        source: luks2::Error::WrongPassphrase,
                        ..
                    }),
                ) if a
                    .key
                    .key_file
                    .as_deref()
                    .is_some_and(|f| f != std::path::Path::new("-")) =>
                {
                    return Err(CliError::Quiet(Box::new(e)))
                }
                r => r?.1,
            }
        }
    };
    let new = keys.new_passphrase(
        a.new_key_file.as_deref().or(a.new_keyfile.as_deref()),
        a.new_keyfile_offset,
        a.new_keyfile_size,
        "Enter new passphrase for key slot: ",
    )?;
    let slot = dev.add_keyslot(device, &vk, &new, new_slot, &a.pbkdf)?;
    say(&format!("Key slot {slot} created."));
    Ok(0)
}

/// Removes the keyslot the given passphrase opens (confirmed when it is the last).
pub(super) fn remove(a: RemoveKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_any(device, true)?;
    let key = &a.key;
    let pass = match super::key_file_of(a.passphrase_file.as_deref(), key)? {
        Some(f) => Keys::from_file(f, key.keyfile_offset, key.keyfile_size)?,
        None => keys.existing(key, "Enter passphrase to be deleted: ")?,
    };
    let (slot, _) = dev.unlock(device, &pass, key.key_slot, key)?;
    report_unlocked(slot);
    say(&format!("Keyslot {slot} is selected for deletion."));
    if dev.keyslot_ids().len() == 1 {
        confirm_as(&a.common, LAST_SLOT, SLOT_KEPT)?;
    }
    dev.kill_keyslot(device, slot)?;
    say(&format!("Key slot {slot} removed."));
    Ok(0)
}

/// Changes a keyslot's passphrase (a LUKS2 keyslot keeps its number; a LUKS1 one moves to
/// the first free keyslot when there is one, as cryptsetup does).
pub(super) fn change(a: ChangeKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_any(device, true)?;
    dev.check_pbkdf(&a.pbkdf)?;
    let old = keys.existing(&a.key, "Enter passphrase to be changed: ")?;
    let (slot, vk) = dev.unlock(device, &old, a.key.key_slot, &a.key)?;
    report_unlocked(slot);
    let new = keys.new_passphrase(a.new_key_file.as_deref(), 0, None, "Enter new passphrase: ")?;
    let slot = dev.change_keyslot(device, slot, &vk, &new, &a.pbkdf, a.key.key_slot.is_some())?;
    say(&format!("Key slot {slot} created."));
    Ok(0)
}

/// New key derivation costs for the keyslot the passphrase opens (LUKS2), the passphrase and
/// keyslot number kept.
pub(super) fn convert(a: ConvertKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_luks(device, true)?;
    // The new costs and the keyslot are checked before the passphrase is asked for.
    let opts = keyslot_options(&a.pbkdf)?;
    if let Some(s) = a.key.key_slot {
        if !dev.header().keyslot_ids().contains(&s) {
            return Err(CliError::luks(device)(luks2::Error::KeyslotNotFound(s)));
        }
    }
    let pass = keys.existing(&a.key, "Enter passphrase for keyslot to be converted: ")?;
    // No "unlocked" report: cryptsetup -v says only that the keyslot was created.
    let (slot, vk) = dev
        .unlock(&pass, a.key.key_slot, &a.key.kdf_limits())
        .map_err(CliError::luks(device))?;
    dev.change_keyslot(slot, &vk, &pass, &opts)
        .map_err(CliError::luks(device))?;
    say(&format!("Key slot {slot} created."));
    Ok(0)
}

/// Wipes keyslot `slot`; a remaining passphrase is asked unless `--batch-mode`.
pub(super) fn kill(a: KillSlotArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_any(device, true)?;
    if !dev.keyslot_ids().contains(&a.slot) {
        return Err(CliError::luks(device)(luks2::Error::KeyslotNotFound(
            a.slot,
        )));
    }
    say(&format!("Keyslot {} is selected for deletion.", a.slot));
    // The last keyslot: cryptsetup asks before the passphrase; our own verb checks the
    // passphrase first, so a wrong one is said before a question that cannot be asked.
    let last = dev.keyslot_ids().len() == 1;
    if last && as_cryptsetup() {
        confirm_as(&a.common, LAST_SLOT, SLOT_KEPT)?;
    }
    // As cryptsetup: without a question to ask (batch mode, no key file), a passphrase on
    // standard input that is not a terminal is still checked.
    if !a.common.batch
        || a.key.key_file.is_some()
        || !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        match keys.existing(&a.key, "Enter any remaining passphrase: ") {
            Ok(pass) => {
                let (slot, _) = dev.unlock(device, &pass, None, &a.key)?;
                report_unlocked(slot);
            }
            // Standard input giving nothing skips the check: cryptsetup says so; our own
            // name does it only in batch mode, where no check was asked for, and refuses
            // otherwise (the check guards against wiping the wrong keyslot).
            Err(CliError::NothingToRead(_))
                if (as_cryptsetup() || a.common.batch)
                    && a.key
                        .key_file
                        .as_deref()
                        .is_none_or(|f| f == std::path::Path::new("-")) =>
            {
                if as_cryptsetup() {
                    eprintln!("Nothing to read on input.");
                }
            }
            Err(e) => return Err(e),
        }
    }
    if last && !as_cryptsetup() {
        confirm_as(&a.common, LAST_SLOT, SLOT_KEPT)?;
    }
    dev.kill_keyslot(device, a.slot)?;
    say(&format!("Key slot {} removed.", a.slot));
    Ok(0)
}

/// Wipes every keyslot, one after the other as cryptsetup's `erase` (after confirming): the
/// header stays, with digests and tokens, and no passphrase opens the volume again.
pub(super) fn erase(a: EraseArgs) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_any(device, true)?;
    confirm_as(
        &a.common,
        &format!(
            "This operation will erase all keyslots on device {}.\nDevice will become unusable after this operation.",
            device.display()
        ),
        ("Operation aborted, keyslots were NOT wiped.", 2),
    )?;
    for slot in dev.keyslot_ids() {
        dev.kill_keyslot(device, slot)?;
        say(&format!("Key slot {slot} removed."));
    }
    Ok(0)
}
