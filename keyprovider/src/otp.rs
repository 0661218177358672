//! `otp`: 64 random bytes, different on every open; never written anywhere.

use luks2::{Passphrase, VolumeKey};

use crate::error::Errors;
use crate::{KeyProvider, Result};

/// The `otp` provider.
#[derive(Debug, Clone, Copy)]
pub struct Otp;

impl KeyProvider for Otp {
    fn passphrase(&self) -> Result<Passphrase> {
        let key = VolumeKey::random(64).map_err(|e| Errors("otp").unavailable(e))?;
        Ok(Passphrase::from_slice(key.as_bytes()))
    }

    fn is_temporary(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_is_fresh_each_time() {
        let (a, b) = (Otp.passphrase().unwrap(), Otp.passphrase().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(Otp.is_temporary());
        assert!(format!("{a:?}").contains("REDACTED"), "{a:?}");
    }
}
