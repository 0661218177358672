//! Volume keys in the kernel keyring, as cryptsetup 2.6 loads them: a `logon` key (readable by
//! the kernel only, never by user space) in the thread keyring, named in the crypt table as
//! `:SIZE:logon:DESCRIPTION` so that the table, and `dmsetup table --showkeys`, never holds
//! the key itself. dm-crypt copies the key when the table is loaded; the key in the keyring is
//! revoked as soon as that is done.

use std::ffi::CString;

use crate::sys;
use crate::{Error, Result};

/// Whether the kernel has key management: `request_key` answers with anything but `ENOSYS`
/// (cryptsetup's probe).
pub fn supported() -> bool {
    sys::request_key(c"logon", c"cryptpilot:probe") != Err(nix::Error::ENOSYS)
}

/// A `logon` key in this thread's keyring, revoked and unlinked when dropped. Only the thread
/// that added it (and the kernel acting for that thread, as in `DM_TABLE_LOAD`) can find it.
#[derive(Debug)]
pub struct LogonKey {
    serial: i32,
    description: String,
}

impl LogonKey {
    /// Adds `key` as a `logon` key called `description` to the calling thread's keyring.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a description with a NUL byte or whitespace (dm-crypt refuses
    /// those), [`Error::Io`] when the kernel refuses the key.
    pub fn add(description: &str, key: &[u8]) -> Result<Self> {
        if description.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "key description",
                "it contains whitespace, which a crypt table cannot carry",
            ));
        }
        let desc = CString::new(description)
            .map_err(|_| Error::invalid("key description", "it contains a NUL byte"))?;
        let serial =
            sys::add_key(c"logon", &desc, key, sys::KEY_SPEC_THREAD_KEYRING).map_err(|e| {
                Error::io(
                    format!("adding the volume key to the kernel keyring as {description}"),
                    std::io::Error::from(e),
                )
            })?;
        Ok(Self {
            serial,
            description: description.to_owned(),
        })
    }

    /// The key's description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl Drop for LogonKey {
    fn drop(&mut self) {
        // A key that cannot be revoked is already gone (its keyring died with the thread).
        let _ = sys::revoke_and_unlink(self.serial, sys::KEY_SPEC_THREAD_KEYRING);
    }
}

/// The payload of the `user` key `description` that the calling thread can find (its
/// thread, process, session or user keyring), as cryptsetup's keyring token reads a
/// passphrase; `None` when there is no such key. The buffer is sized once from the key's
/// length, so the secret is never copied by a reallocation, and is wiped when dropped.
///
/// # Errors
/// [`Error::Invalid`] for a description with a NUL byte; [`Error::Io`] when the key exists
/// but cannot be read.
pub fn read_user_key(description: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let desc = CString::new(description)
        .map_err(|_| Error::invalid("key description", "it contains a NUL byte"))?;
    let serial = match sys::request_key(c"user", &desc) {
        Ok(s) => s,
        Err(nix::Error::ENOKEY | nix::Error::EKEYEXPIRED | nix::Error::EKEYREVOKED) => {
            return Ok(None)
        }
        Err(nix::Error::ENOSYS) => return Ok(None),
        Err(e) => return Err(read_error(description, e)),
    };
    // A key may change between asking its length and reading it: then ask again.
    loop {
        let len = sys::keyctl_read(serial, &mut []).map_err(|e| read_error(description, e))?;
        let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
        let got = sys::keyctl_read(serial, &mut buf).map_err(|e| read_error(description, e))?;
        if got <= len {
            buf.truncate(got);
            return Ok(Some(buf));
        }
    }
}

fn read_error(description: &str, e: nix::Error) -> Error {
    Error::io(
        format!("reading the key {description} from the kernel keyring"),
        std::io::Error::from(e),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logon_key_is_findable_by_its_thread_until_dropped() {
        if !supported() {
            eprintln!("no kernel key management here; nothing to check");
            return;
        }
        let desc = format!("cryptpilot:test-{}", std::process::id());
        let cdesc = CString::new(desc.clone()).expect("cstring");
        let key = LogonKey::add(&desc, &[7; 64]).expect("add_key");
        assert_eq!(key.description(), desc);
        let found = sys::request_key(c"logon", &cdesc).expect("the thread finds its key");
        assert_eq!(found, key.serial);
        // Another thread has its own thread keyring: it cannot find the key.
        let other = std::thread::spawn({
            let cdesc = cdesc.clone();
            move || sys::request_key(c"logon", &cdesc)
        })
        .join()
        .expect("thread");
        assert!(other.is_err(), "another thread found the key");
        drop(key);
        assert!(
            sys::request_key(c"logon", &cdesc).is_err(),
            "key outlived drop"
        );
        let e = LogonKey::add("cryptsetup:has space", b"k").expect_err("whitespace");
        assert!(e.to_string().contains("whitespace"), "{e}");
    }

    #[test]
    fn a_user_key_in_the_thread_keyring_is_read_back_and_a_missing_one_is_none() {
        if !supported() {
            eprintln!("no kernel key management here; nothing to check");
            return;
        }
        let desc = format!("cryptpilot:user-test-{}", std::process::id());
        let cdesc = CString::new(desc.clone()).expect("cstring");
        assert!(read_user_key(&desc).expect("read").is_none());
        let serial = sys::add_key(
            c"user",
            &cdesc,
            b"pass phrase",
            sys::KEY_SPEC_THREAD_KEYRING,
        )
        .expect("add_key");
        let got = read_user_key(&desc).expect("read");
        let _ = sys::revoke_and_unlink(serial, sys::KEY_SPEC_THREAD_KEYRING);
        assert_eq!(got.as_deref().map(Vec::as_slice), Some(&b"pass phrase"[..]));
        assert!(read_user_key(&desc).expect("read").is_none());
    }
}
