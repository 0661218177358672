//! Volume-key digests: how a candidate key from a keyslot is recognised as the right one.

use crate::hash::HashAlg;
use crate::util::ct_eq;
use crate::Result;

/// A validated `pbkdf2` digest object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDigest {
    /// PBKDF2 hash.
    pub hash: HashAlg,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// Salt.
    pub salt: Vec<u8>,
    /// The stored digest; its length is the PBKDF2 output length (20 bytes for volumes
    /// converted from LUKS1, the hash length otherwise).
    pub digest: Vec<u8>,
}

impl KeyDigest {
    /// Computes a new digest of `key`.
    ///
    /// # Errors
    /// [`crate::Error::Random`] if the salt cannot be generated.
    pub fn compute(key: &[u8], hash: HashAlg, iterations: u32) -> Result<Self> {
        let salt = crate::util::random_bytes(32)?;
        let mut digest = vec![0u8; hash.output_len()];
        hash.pbkdf2(key, &salt, iterations, &mut digest);
        Ok(Self {
            hash,
            iterations,
            salt,
            digest,
        })
    }

    /// Whether `key` matches, compared in constant time.
    pub fn verify(&self, key: &[u8]) -> bool {
        let mut out = zeroize::Zeroizing::new(vec![0u8; self.digest.len()]);
        self.hash.pbkdf2(key, &self.salt, self.iterations, &mut out);
        ct_eq(&out, &self.digest)
    }
}
