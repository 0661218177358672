//! Authenticated encryption of a data segment: the segment's `integrity` object.
//!
//! cryptsetup protects a LUKS2 segment against tampering by stacking dm-crypt in AEAD mode
//! over a dm-integrity device that stores a tag per sector. The segment names the
//! authentication (`"integrity": {"type": "hmac(sha256)", ...}` or `"aead"`); the volume key
//! is the cipher key followed by the MAC key; dm-crypt gets a kernel-API cipher and an
//! `integrity:<tag bytes>:aead` option.

use crate::{Error, HashAlg, Result};

/// How a segment's sectors are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentIntegrity {
    /// HMAC over each sector with a key after the cipher key (`hmac(sha256)`, ...), for
    /// ciphers like `aes-xts-plain64` or `aes-xts-random`.
    Hmac(HashAlg),
    /// The cipher authenticates itself (`aes-gcm-random`).
    Aead,
}

/// IV bytes a `-random` IV stores in the tag: one cipher block for XTS, 12 for GCM.
fn random_iv_bytes(mode: &str) -> usize {
    if mode == "gcm" {
        12
    } else {
        16
    }
}

impl SegmentIntegrity {
    /// Parses cryptsetup's `--integrity` names (`hmac-sha256`, `aead`) or the metadata's
    /// (`hmac(sha256)`).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for anything else.
    pub fn parse(name: &str) -> Result<Self> {
        if name == "aead" {
            return Ok(SegmentIntegrity::Aead);
        }
        let hash = name
            .strip_prefix("hmac-")
            .or_else(|| name.strip_prefix("hmac(").and_then(|h| h.strip_suffix(')')));
        match hash.map(HashAlg::parse) {
            Some(Ok(h)) if !matches!(h, HashAlg::Sha384 | HashAlg::Ripemd160) => {
                Ok(SegmentIntegrity::Hmac(h))
            }
            _ => Err(Error::unsupported("integrity", name)),
        }
    }

    /// The metadata's `type` string.
    pub fn json_type(self) -> String {
        match self {
            SegmentIntegrity::Hmac(h) => format!("hmac({})", h.name()),
            SegmentIntegrity::Aead => "aead".into(),
        }
    }

    /// Bytes of MAC key that follow the cipher key in the volume key.
    pub fn mac_key_size(self) -> usize {
        match self {
            SegmentIntegrity::Hmac(h) => h.output_len(),
            SegmentIntegrity::Aead => 0,
        }
    }

    /// dm-crypt's cipher string and the tag bytes per sector for `cipher`
    /// (`aes-xts-plain64` with HMAC-SHA256 is `capi:authenc(hmac(sha256),xts(aes))-plain64`
    /// with 32-byte tags).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a cipher this protection cannot be combined with.
    pub fn dm_params(self, cipher: &str) -> Result<(String, u32)> {
        let unsupported = || Error::unsupported("cipher with integrity", cipher);
        let mut parts = cipher.splitn(3, '-');
        let (Some(c), Some(mode), Some(iv)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(unsupported());
        };
        if c != "aes" || !matches!(iv, "plain64" | "random") {
            return Err(unsupported());
        }
        let iv_tag = if iv == "random" {
            random_iv_bytes(mode)
        } else {
            0
        };
        let (capi, auth) = match self {
            SegmentIntegrity::Hmac(h) if mode == "xts" || mode == "cbc" => (
                format!("capi:authenc(hmac({}),{mode}({c}))-{iv}", h.name()),
                h.output_len(),
            ),
            SegmentIntegrity::Aead if mode == "gcm" && iv == "random" => {
                (format!("capi:{mode}({c})-{iv}"), 16)
            }
            _ => return Err(unsupported()),
        };
        Ok((capi, (auth + iv_tag) as u32))
    }

    /// The inverse of [`dm_params`](Self::dm_params) for the cipher part: dm-crypt's
    /// kernel-API cipher back to the LUKS2 cipher and its protection
    /// (`capi:authenc(hmac(sha256),xts(aes))-plain64` is `aes-xts-plain64` with
    /// `hmac(sha256)`), as cryptsetup's `status` names them; `None` for another string.
    pub fn from_dm_cipher(capi: &str) -> Option<(String, Self)> {
        let (spec, iv) = capi.strip_prefix("capi:")?.rsplit_once(')')?;
        let iv = iv.strip_prefix('-')?;
        let (protection, inner) = match spec.strip_prefix("authenc(hmac(") {
            Some(rest) => {
                let (hash, inner) = rest.split_once("),")?;
                let h = HashAlg::parse(hash).ok()?;
                (SegmentIntegrity::Hmac(h), inner)
            }
            None => (SegmentIntegrity::Aead, spec),
        };
        let inner = match protection {
            SegmentIntegrity::Hmac(_) => inner.strip_suffix(')')?,
            SegmentIntegrity::Aead => inner,
        };
        let (mode, cipher) = inner.split_once('(')?;
        let cipher = cipher.strip_suffix(')').unwrap_or(cipher);
        let name = format!("{cipher}-{mode}-{iv}");
        // Only what dm_params builds reads back.
        match protection.dm_params(&name) {
            Ok((again, _)) if again == capi => Some((name, protection)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables cryptsetup 2.6.1 loaded for these headers (seen in the VM).
    #[test]
    fn dm_parameters_equal_cryptsetups() {
        let cases = [
            (
                "hmac-sha256",
                "aes-xts-plain64",
                "capi:authenc(hmac(sha256),xts(aes))-plain64",
                32,
            ),
            (
                "hmac-sha256",
                "aes-xts-random",
                "capi:authenc(hmac(sha256),xts(aes))-random",
                48,
            ),
            ("aead", "aes-gcm-random", "capi:gcm(aes)-random", 28),
            (
                "hmac(sha512)",
                "aes-xts-plain64",
                "capi:authenc(hmac(sha512),xts(aes))-plain64",
                64,
            ),
        ];
        for (name, cipher, capi, tag) in cases {
            let i = SegmentIntegrity::parse(name).unwrap();
            assert_eq!(i.dm_params(cipher).unwrap(), (capi.to_string(), tag));
            assert_eq!(
                SegmentIntegrity::from_dm_cipher(capi),
                Some((cipher.to_string(), i))
            );
        }
        for other in [
            "aes-xts-plain64",
            "capi:xts(aes)-plain64",
            "capi:authenc(hmac(md4),xts(aes))-plain64",
            "capi:authenc(hmac(sha256),xts(aes)-plain64",
            "capi:gcm(aes)",
            "capi:rfc7539(chacha20,poly1305)-random",
        ] {
            assert_eq!(SegmentIntegrity::from_dm_cipher(other), None, "{other}");
        }
        assert_eq!(
            SegmentIntegrity::parse("hmac-sha256").unwrap().json_type(),
            "hmac(sha256)"
        );
    }

    #[test]
    fn impossible_combinations_are_refused() {
        for name in ["hmac-md5", "crc32c", "hmac(sha256", "", "hmac-sha384"] {
            assert!(SegmentIntegrity::parse(name).is_err(), "{name}");
        }
        let aead = SegmentIntegrity::Aead;
        let hmac = SegmentIntegrity::Hmac(HashAlg::Sha256);
        assert!(aead.dm_params("aes-xts-plain64").is_err());
        assert!(aead.dm_params("aes-gcm-plain64").is_err());
        assert!(hmac.dm_params("aes-gcm-random").is_err());
        assert!(hmac.dm_params("twofish-xts-plain64").is_err());
        assert!(hmac.dm_params("aes").is_err());
    }
}
