//! cryptsetup's `luksSuspend` and `luksResume`: I/O to a crypt mapping waits, with its key
//! wiped from the kernel, until the volume key is given back.

use dmioctl::target::crypt::{Crypt, CryptKey};
use dmioctl::{DmName, TableKind};
use luks2::VolumeKey;
use zeroize::Zeroizing;

use crate::{Error, Mapper, Result, SuspendRefusal};

/// The refusal `refusal` for `name`.
fn refused(name: &DmName, refusal: SuspendRefusal) -> Error {
    Error::Suspend {
        name: name.as_str().to_owned(),
        refusal,
    }
}

impl Mapper {
    /// The crypt table of `name` (its one target).
    fn crypt_table(&self, name: &DmName) -> Result<Crypt> {
        let table = self
            .control()
            .table_status(name, TableKind::Table)
            .map_err(Error::dm(name.as_str()))?;
        match table.as_slice() {
            [t] if t.kind == "crypt" => Crypt::parse(t.params()).map_err(Error::dm(name.as_str())),
            _ => Err(refused(name, SuspendRefusal::NotCrypt)),
        }
    }

    /// Suspends `name` (writes are flushed first, then I/O waits) and wipes its key from
    /// dm-crypt, as `cryptsetup luksSuspend`.
    ///
    /// # Errors
    /// [`Error::Dm`] (`NotFound` when not mapped), [`Error::Suspend`] for a mapping that is
    /// not LUKS, not one crypt target, or already suspended.
    pub fn suspend_and_wipe_key(&self, name: &DmName) -> Result<()> {
        let dm = self.control();
        let info = dm.dev_status(name).map_err(Error::dm(name.as_str()))?;
        // Only a LUKS volume can be resumed: its header gives the key back.
        if !(info.uuid.starts_with("CRYPT-LUKS1-") || info.uuid.starts_with("CRYPT-LUKS2-")) {
            return Err(refused(name, SuspendRefusal::NotLuks));
        }
        self.crypt_table(name)?;
        if info.suspended {
            return Err(refused(name, SuspendRefusal::AlreadySuspended));
        }
        dm.dev_suspend(name).map_err(Error::dm(name.as_str()))?;
        if let Err(e) = dm.target_msg(name, 0, "key wipe") {
            // Without the wipe the key stays: do not leave the device suspended for nothing.
            let _ = dm.dev_resume(name);
            return Err(Error::dm(name.as_str())(e));
        }
        Ok(())
    }

    /// Gives the suspended `name` its key back and resumes it, as `cryptsetup luksResume`:
    /// a table that names a keyring key gets `description` loaded for the message.
    ///
    /// # Errors
    /// [`Error::Dm`] (`NotFound` when not mapped; the kernel refusing the key), and
    /// [`Error::Suspend`] for a mapping that is not suspended or not one crypt target, or a
    /// key of another size or keyring description than the table's.
    pub fn resume_with_key(
        &self,
        name: &DmName,
        key: &VolumeKey,
        description: Option<&str>,
    ) -> Result<()> {
        let dm = self.control();
        let info = dm.dev_status(name).map_err(Error::dm(name.as_str()))?;
        let crypt = self.crypt_table(name)?;
        if !info.suspended {
            return Err(refused(name, SuspendRefusal::NotSuspended));
        }
        let size = key.as_bytes().len();
        let _loaded;
        let message = match &crypt.key {
            CryptKey::Keyring {
                size: want,
                description: d,
                ..
            } => {
                if *want != size || description.is_some_and(|x| x != d) {
                    return Err(refused(name, SuspendRefusal::ForeignKey));
                }
                _loaded = dmioctl::keyring::LogonKey::add(d, key.as_bytes())
                    .map_err(Error::dm(name.as_str()))?;
                Zeroizing::new(format!("key set :{size}:logon:{d}"))
            }
            CryptKey::Hex(old) => {
                if old.len() != size {
                    return Err(refused(name, SuspendRefusal::ForeignKey));
                }
                // Sized once, so the key is never left behind by a reallocation.
                let mut m = Zeroizing::new(String::with_capacity(8 + 2 * size));
                m.push_str("key set ");
                for b in key.as_bytes() {
                    m.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                    m.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
                }
                m
            }
        };
        dm.target_msg(name, 0, &message)
            .map_err(Error::dm(name.as_str()))?;
        dm.dev_resume(name).map_err(Error::dm(name.as_str()))?;
        Ok(())
    }
}
