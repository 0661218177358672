//! `luks add-key`, `remove-key`, `change-key` and `kill-slot`.

use super::{confirm, keyslot_options, open_luks, read_volume_key, unlock};
use crate::args::{AddKeyArgs, ChangeKeyArgs, KillSlotArgs, RemoveKeyArgs};
use crate::error::{CliError, CliResult};
use crate::keys::Keys;

const LAST_SLOT: &str =
    "This is the last keyslot. The device will become unusable after purging this key.";

/// Adds a keyslot; an existing passphrase or the volume key proves access.
pub(super) fn add(a: AddKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_luks(device, true)?;
    let vk = match &a.volume_key_file {
        Some(f) => {
            let vk = read_volume_key(f)?;
            dev.verify_volume_key(&vk).map_err(CliError::luks(device))?;
            vk
        }
        None => {
            let pass = keys.existing(&a.key, "Enter any existing passphrase: ")?;
            unlock(&mut dev, device, &pass, None, &a.key)?.1
        }
    };
    let new = keys.new_passphrase(
        a.new_key_file.as_deref(),
        "Enter new passphrase for key slot: ",
    )?;
    let opts = keyslot_options(&a.pbkdf)?;
    dev.add_keyslot(&vk, &new, a.key.key_slot, &opts)
        .map_err(CliError::luks(device))?;
    Ok(0)
}

/// Removes the keyslot the given passphrase opens (confirmed when it is the last).
pub(super) fn remove(a: RemoveKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_luks(device, true)?;
    let key = &a.key;
    let pass = match a.passphrase_file.as_ref() {
        Some(f) => Keys::from_file(f, key.keyfile_offset, key.keyfile_size)?,
        None => keys.existing(key, "Enter passphrase to be deleted: ")?,
    };
    let (slot, _) = unlock(&mut dev, device, &pass, key.key_slot, key)?;
    if dev.header().keyslot_ids().len() == 1 {
        confirm(&a.common, LAST_SLOT)?;
    }
    dev.kill_keyslot(slot).map_err(CliError::luks(device))?;
    Ok(0)
}

/// Changes a keyslot's passphrase (the slot keeps its number).
pub(super) fn change(a: ChangeKeyArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_luks(device, true)?;
    let old = keys.existing(&a.key, "Enter passphrase to be changed: ")?;
    let (slot, vk) = unlock(&mut dev, device, &old, a.key.key_slot, &a.key)?;
    let new = keys.new_passphrase(a.new_key_file.as_deref(), "Enter new passphrase: ")?;
    let opts = keyslot_options(&a.pbkdf)?;
    dev.change_keyslot(slot, &vk, &new, &opts)
        .map_err(CliError::luks(device))?;
    Ok(0)
}

/// Wipes keyslot `slot`; a remaining passphrase is asked unless `--batch-mode`.
pub(super) fn kill(a: KillSlotArgs, keys: &mut Keys) -> CliResult<i32> {
    let device = a.hdr.of(&a.device);
    let mut dev = open_luks(device, true)?;
    if !dev.header().keyslot_ids().contains(&a.slot) {
        return Err(CliError::luks(device)(luks2::Error::KeyslotNotFound(
            a.slot,
        )));
    }
    if !a.common.batch || a.key.key_file.is_some() {
        let pass = keys.existing(&a.key, "Enter any remaining passphrase: ")?;
        unlock(&mut dev, device, &pass, None, &a.key)?;
    }
    if dev.header().keyslot_ids().len() == 1 {
        confirm(&a.common, LAST_SLOT)?;
    }
    dev.kill_keyslot(a.slot).map_err(CliError::luks(device))?;
    Ok(0)
}
