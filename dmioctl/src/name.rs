//! Validated device-mapper names and UUIDs.

use std::fmt;

use crate::sys::{DM_NAME_LEN, DM_UUID_LEN};
use crate::{Error, Result};

/// A device-mapper device name: 1 to 127 bytes, no `/`, not `.` or `..`, no NUL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DmName(String);

impl DmName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the rule it breaks.
    pub fn new(name: &str) -> Result<Self> {
        let bad = |r: &str| Err(Error::invalid("device name", format!("'{name}' {r}")));
        if name.is_empty() {
            return bad("is empty");
        }
        if name.len() >= DM_NAME_LEN {
            return bad(&format!("is longer than {} bytes", DM_NAME_LEN - 1));
        }
        if name.contains('/') || name.contains('\0') || name == "." || name == ".." {
            return bad("contains '/' or NUL, or is . or ..");
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a device UUID (`CRYPT-LUKS2-...`): at most 128 bytes, printable ASCII.
///
/// # Errors
/// [`Error::Invalid`].
pub fn check_uuid(uuid: &str) -> Result<()> {
    if uuid.len() >= DM_UUID_LEN || !uuid.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            "device uuid",
            format!("'{uuid}' is too long or not printable ASCII"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(DmName::new("data").is_ok());
        for bad in ["", ".", "..", "a/b", &"x".repeat(128)] {
            assert!(DmName::new(bad).is_err(), "{bad}");
        }
        assert!(DmName::new(&"x".repeat(127)).is_ok());
        assert!(check_uuid("CRYPT-LUKS2-0123-data").is_ok());
        assert!(check_uuid("has space").is_err());
    }
}
