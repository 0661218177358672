//! A LUKS device of either version, for the verbs that serve both as cryptsetup does
//! (dump, open, is-luks, uuid and the keyslot verbs); every other verb needs LUKS2.

use std::fs::File;
use std::path::Path;

use luks2::{Luks1, Luks2, Passphrase, PbkdfKind, VolumeKey};

use super::{keyslot_options, open_device, pbkdf_params};
use crate::args::{KeyOpts, PbkdfOpts};
use crate::error::{CliError, CliResult};

/// A LUKS1 or LUKS2 device (opened once per command: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum AnyLuks {
    V1(Luks1<File>),
    V2(Luks2<File>),
}

/// Opens `path` as whichever LUKS version its header is.
pub(crate) fn open_any(path: &Path, write: bool) -> CliResult<AnyLuks> {
    let mut f = open_device(path, write, false)?;
    Ok(if starts_luks1(&mut f) {
        AnyLuks::V1(Luks1::open(f).map_err(CliError::luks(path))?)
    } else {
        AnyLuks::V2(Luks2::open(f).map_err(CliError::luks(path))?)
    })
}

/// Refuses a header of another version than `--type` names (`luks1`, `luks2`; `luks` takes
/// either; any other name none), as cryptsetup loads a header of the type asked for: "not
/// a valid LUKS device", exit 1.
pub(crate) fn check_type(path: &Path, f: &mut File, ty: &str) -> CliResult {
    let v1 = starts_luks1(f);
    // cryptsetup compares the names without case; an empty one is any LUKS.
    match (ty.to_ascii_lowercase().as_str(), v1) {
        ("" | "luks", _) | ("luks1", true) | ("luks2", false) => Ok(()),
        _ => Err(CliError::WrongType {
            device: path.to_owned(),
            ty: ty.to_owned(),
        }),
    }
}

/// [`check_type`] on the device (or detached header) at `path`.
pub(crate) fn require_type(path: &Path, ty: &str) -> CliResult {
    check_type(path, &mut open_device(path, false, false)?, ty)
}

/// Whether the device starts with a LUKS1 header's magic and version.
pub(crate) fn starts_luks1(f: &mut File) -> bool {
    let mut head = [0u8; 8];
    luks2::BlockIo::read_exact_at(f, &mut head, 0).is_ok() && luks2::luks1::is_luks1(&head)
}

/// New LUKS1 keyslots: PBKDF2 only (cryptsetup: "Requested PBKDF type is not supported for
/// LUKS1"), calibrated to --iter-time unless forced.
pub(crate) fn luks1_pbkdf(o: &PbkdfOpts) -> CliResult<luks2::PbkdfParams> {
    if o.pbkdf.is_some_and(|k| k != PbkdfKind::Pbkdf2) {
        return Err(CliError::Usage(
            "the requested PBKDF type is not supported for LUKS1 (pbkdf2 only)".into(),
        ));
    }
    let mut p = pbkdf_params(o)?;
    p.kind = PbkdfKind::Pbkdf2;
    Ok(p)
}

impl AnyLuks {
    /// Refuses KDF options the volume's format cannot take, before any passphrase is asked.
    pub(crate) fn check_pbkdf(&self, pbkdf: &PbkdfOpts) -> CliResult {
        match self {
            AnyLuks::V1(_) => luks1_pbkdf(pbkdf).map(|_| ()),
            AnyLuks::V2(_) => Ok(()),
        }
    }

    /// Unlocks with `pass` (silently: each verb reports what cryptsetup -v says for it).
    pub(crate) fn unlock(
        &mut self,
        device: &Path,
        pass: &Passphrase,
        slot: Option<u32>,
        key: &KeyOpts,
    ) -> CliResult<(u32, VolumeKey)> {
        let limits = key.kdf_limits();
        let (n, vk) = match self {
            AnyLuks::V1(d) => d.unlock(pass, slot, &limits),
            AnyLuks::V2(d) => d.unlock(pass, slot, &limits),
        }
        .map_err(CliError::luks(device))?;
        Ok((n, vk))
    }

    /// The volume key's size in bytes.
    pub(crate) fn key_size(&self, device: &Path) -> CliResult<usize> {
        match self {
            AnyLuks::V1(d) => Ok(d.header().key_bytes as usize),
            AnyLuks::V2(d) => d
                .header()
                .activation()
                .map(|a| a.key_size)
                .map_err(CliError::luks(device)),
        }
    }

    pub(crate) fn verify_volume_key(&self, device: &Path, vk: &VolumeKey) -> CliResult {
        match self {
            AnyLuks::V1(d) => d.verify_volume_key(vk),
            AnyLuks::V2(d) => d.verify_volume_key(vk),
        }
        .map_err(CliError::luks(device))
    }

    pub(crate) fn keyslot_ids(&self) -> Vec<u32> {
        match self {
            AnyLuks::V1(d) => d.header().keyslot_ids(),
            AnyLuks::V2(d) => d.header().keyslot_ids(),
        }
    }

    pub(crate) fn uuid(&self) -> String {
        match self {
            AnyLuks::V1(d) => d.header().uuid().into_owned(),
            AnyLuks::V2(d) => d.header().uuid().to_owned(),
        }
    }

    pub(crate) fn add_keyslot(
        &mut self,
        device: &Path,
        vk: &VolumeKey,
        pass: &Passphrase,
        slot: Option<u32>,
        pbkdf: &PbkdfOpts,
    ) -> CliResult<u32> {
        match self {
            AnyLuks::V1(d) => d.add_keyslot(vk, pass, slot, &luks1_pbkdf(pbkdf)?),
            AnyLuks::V2(d) => d.add_keyslot(vk, pass, slot, &keyslot_options(pbkdf)?),
        }
        .map_err(CliError::luks(device))
    }

    /// Gives keyslot `slot` a new passphrase; returns the keyslot that holds it now (a LUKS1
    /// key moves to a free slot unless the user named the slot, as with cryptsetup).
    pub(crate) fn change_keyslot(
        &mut self,
        device: &Path,
        slot: u32,
        vk: &VolumeKey,
        pass: &Passphrase,
        pbkdf: &PbkdfOpts,
        named: bool,
    ) -> CliResult<u32> {
        match self {
            AnyLuks::V1(d) => d.change_keyslot(slot, vk, pass, &luks1_pbkdf(pbkdf)?, named),
            AnyLuks::V2(d) => d
                .change_keyslot(slot, vk, pass, &keyslot_options(pbkdf)?)
                .map(|()| slot),
        }
        .map_err(CliError::luks(device))
    }

    pub(crate) fn kill_keyslot(&mut self, device: &Path, slot: u32) -> CliResult {
        match self {
            AnyLuks::V1(d) => d.kill_keyslot(slot),
            AnyLuks::V2(d) => d.kill_keyslot(slot),
        }
        .map_err(CliError::luks(device))
    }

    pub(crate) fn set_uuid(&mut self, device: &Path, uuid: &str) -> CliResult {
        match self {
            AnyLuks::V1(d) => d.set_uuid(uuid),
            AnyLuks::V2(d) => d.set_uuid(uuid),
        }
        .map_err(CliError::luks(device))
    }
}
