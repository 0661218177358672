//! `resize`: an open crypt mapping takes a new size (the full-disk boot grows its delta after
//! the disk grew), by loading the same table with a new length and swapping it in.

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::{DmName, TableKind};
use luks2::Sectors;

use crate::plan::KeyringKey;
use crate::{Error, Mapper, Result};

impl Mapper {
    /// Gives the crypt mapping `name` a length of `size` sectors, or, without one, all of its
    /// device after the data offset. Returns the new length in 512-byte sectors.
    ///
    /// The table is loaded as it is live with only its length changed, then swapped in with a
    /// suspend and resume; a table the kernel refuses leaves the mapping as it was. A table
    /// with its key in it needs nothing more; one that names a kernel keyring key (as
    /// cryptsetup and we map LUKS2 by default) needs that key again, as `key` (whose
    /// description must be the table's), because the kernel reads it from the keyring of the
    /// loading thread.
    ///
    /// # Errors
    /// [`Error::Dm`] (`NotFound` when `name` is not mapped), [`Error::Invalid`] for a mapping
    /// that is not a single crypt target, one over dm-integrity (whose size is fixed when its
    /// tags are laid out), or a size that is zero, not whole encryption sectors, or larger
    /// than the device holds, a keyring-keyed table without `key` or with a key of another
    /// description.
    pub fn resize(
        &self,
        name: &DmName,
        size: Option<Sectors>,
        key: Option<&KeyringKey>,
    ) -> Result<Sectors> {
        let dm = self.control();
        let info = dm.dev_status(name).map_err(Error::dm(name.as_str()))?;
        let table = dm
            .table_status(name, TableKind::Table)
            .map_err(Error::dm(name.as_str()))?;
        let invalid = |reason: String| Error::Invalid { reason };
        let [target] = table.as_slice() else {
            return Err(invalid(format!("{name} is not a single crypt mapping")));
        };
        if target.kind != "crypt" {
            return Err(invalid(format!("{name} is not a crypt mapping")));
        }
        let crypt = Crypt::parse(target.params()).map_err(Error::dm(name.as_str()))?;
        let mut sector_size = 512u64;
        for o in &crypt.options {
            match o {
                CryptOption::Integrity(..) => {
                    return Err(invalid(format!(
                        "{name} is over dm-integrity, whose size is fixed when it is formatted; it cannot be resized"
                    )))
                }
                CryptOption::SectorSize(n) => sector_size = u64::from(*n),
                _ => {}
            }
        }
        let room = device_sectors(&crypt.device)?
            .checked_sub(crypt.offset)
            .ok_or_else(|| invalid(format!("{name}'s data offset lies past its device's end")))?;
        let length = size.map_or(room, |s| s.0);
        if length == 0 || length > room || !length.is_multiple_of(sector_size / 512) {
            return Err(invalid(format!(
                "{length} sectors is not a size for {name}: its device holds {room} sectors after the data offset, in {sector_size}-byte encryption sectors"
            )));
        }
        let _loaded = match (&crypt.key, key) {
            (CryptKey::Hex(_), _) => None,
            (CryptKey::Keyring { description, .. }, None) => {
                return Err(invalid(format!(
                    "{name}'s volume key is in the kernel keyring ({description}): resizing needs the volume key (a passphrase)"
                )))
            }
            (CryptKey::Keyring { description, .. }, Some(k)) if *description != k.description => {
                return Err(invalid(format!(
                    "the key given is {}, but {name} uses {description}",
                    k.description
                )))
            }
            (CryptKey::Keyring { .. }, Some(k)) => Some(
                dmioctl::keyring::LogonKey::add(&k.description, k.key.as_bytes())
                    .map_err(Error::dm(name.as_str()))?,
            ),
        };
        let mut new = target.clone();
        new.length = length;
        dm.table_load(name, &[new], info.read_only, true)
            .map_err(Error::dm(name.as_str()))?;
        dm.dev_suspend(name).map_err(Error::dm(name.as_str()))?;
        dm.dev_resume(name).map_err(Error::dm(name.as_str()))?;
        Ok(Sectors(length))
    }
}

/// The size in 512-byte sectors of the block device `MAJOR:MINOR` (as a crypt table names
/// it), from sysfs.
fn device_sectors(device: &str) -> Result<u64> {
    let path = format!("/sys/dev/block/{device}/size");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Invalid {
            reason: format!("cannot read the size of device {device} ({path})"),
        })
}
