//! Plain dm-crypt keys: cryptsetup's passphrase hashing for `open --type plain`, where no
//! header exists and the key is a hash of what the user types.
//!
//! cryptsetup turns a passphrase into a `key_size`-byte key by a hash spec `NAME[:LEN]`:
//! LEN bytes (default: the whole key) are `H(pass) || H("A" || pass) || H("AA" || pass) ...`
//! cut to length, and the rest of the key is zeros. `plain` takes the passphrase's own bytes:
//! `plain:LEN` needs at least LEN of them; bare `plain` pads a short passphrase with zeros
//! and cuts a long one, as cryptsetup's `--hash plain` does.

use zeroize::{Zeroize, Zeroizing};

use crate::{Error, HashAlg, Result, VolumeKey};

/// The largest key cryptsetup maps (1024 bytes).
pub const MAX_KEY_SIZE: usize = 1024;

/// A parsed hash spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHash {
    /// The hash, or `None` for `plain` (the passphrase's bytes).
    pub hash: Option<HashAlg>,
    /// `:LEN`: how many key bytes come from the passphrase (the rest are zeros).
    pub len: Option<usize>,
}

impl PlainHash {
    /// Parses `NAME[:LEN]` for a key of `key_size` bytes.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an unknown hash; [`Error::InvalidArgument`] for a LEN that
    /// is not a number or exceeds the key.
    pub fn parse(spec: &str, key_size: usize) -> Result<Self> {
        let (name, len) = match spec.split_once(':') {
            Some((n, l)) => {
                let len = l
                    .parse::<usize>()
                    .ok()
                    .filter(|&l| l <= key_size)
                    .ok_or_else(|| {
                        Error::invalid(
                            "hash",
                            format!("'{spec}': the length after ':' must be a number of at most {key_size} (the key size in bytes)"),
                        )
                    })?;
                (n, Some(len))
            }
            None => (spec, None),
        };
        let hash = match name {
            "plain" => None,
            other => Some(HashAlg::parse(other)?),
        };
        Ok(Self { hash, len })
    }

    /// The `key_size`-byte key for `pass`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key size of 0 or over [`MAX_KEY_SIZE`], or a
    /// passphrase shorter than `plain:LEN` asks for.
    pub fn key(&self, key_size: usize, pass: &[u8]) -> Result<VolumeKey> {
        if key_size == 0 || key_size > MAX_KEY_SIZE {
            return Err(Error::invalid(
                "key size",
                format!("{key_size} bytes (1 to {MAX_KEY_SIZE})"),
            ));
        }
        let want = self.len.unwrap_or(key_size).min(key_size);
        // Sized once: the key never reallocates.
        let mut key = Zeroizing::new(Vec::with_capacity(key_size));
        match self.hash {
            None => {
                if self.len.is_some() && pass.len() < want {
                    return Err(Error::invalid(
                        "passphrase",
                        format!("plain:{want} needs at least {want} bytes"),
                    ));
                }
                key.extend_from_slice(&pass[..want.min(pass.len())]);
            }
            Some(h) => {
                let mut round = 0usize;
                while key.len() < want {
                    let prefix = Zeroizing::new(vec![b'A'; round]);
                    let mut d = h.digest(&[&prefix, pass]);
                    let take = (want - key.len()).min(d.len());
                    key.extend_from_slice(&d[..take]);
                    d.zeroize();
                    round += 1;
                }
            }
        }
        key.resize(key_size, 0);
        Ok(VolumeKey::from_slice(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: &str, size: usize, pass: &[u8]) -> String {
        let k = PlainHash::parse(spec, size)
            .and_then(|h| h.key(size, pass))
            .expect("key");
        crate::hex::encode(k.as_bytes())
    }

    // Expected values from the algorithm's definition computed with Python's hashlib
    // (`hashlib.new("ripemd160", b"A"*i + pass)`), independent of this code.
    #[test]
    fn hash_rounds_prefix_a_and_cut_to_length() {
        // One round: sha256("pass"), the whole 32-byte key.
        assert_eq!(
            key("sha256", 32, b"pass"),
            "d74ff0ee8da3b9806b18c877dbf29bbde50b5bd8e4dad7a3a725000feb82e8f1"
        );
        // Two rounds of ripemd160 (20 bytes each) fill 32: H(pass) || H("A" pass)[..12].
        assert_eq!(
            key("ripemd160", 32, b"pass"),
            "e37a88681eaafdf47a5a86b4c3998693e7b313abbb28bf68751f4c62df2eb77c"
        );
        // sha256:20 gives 20 bytes and 12 zeros.
        assert_eq!(
            key("sha256:20", 32, b"pass"),
            "d74ff0ee8da3b9806b18c877dbf29bbde50b5bd8000000000000000000000000"
        );
    }

    #[test]
    fn plain_takes_the_bytes() {
        assert_eq!(key("plain", 4, b"ab"), "61620000");
        assert_eq!(key("plain", 2, b"abcd"), "6162");
        assert_eq!(key("plain:2", 4, b"abc"), "61620000");
        assert!(PlainHash::parse("plain:3", 4)
            .and_then(|h| h.key(4, b"ab"))
            .is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(PlainHash::parse("sha256:33", 32).is_err());
        assert!(PlainHash::parse("sha256:x", 32).is_err());
        assert!(PlainHash::parse("whirlpool", 32).is_err());
        let h = PlainHash::parse("sha256", 32).expect("spec");
        assert!(h.key(0, b"x").is_err());
        assert!(h.key(MAX_KEY_SIZE + 1, b"x").is_err());
    }
}
