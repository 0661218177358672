//! `crypt`: `CIPHER KEY IV_OFFSET DEVICE OFFSET [N OPTION...]` (dm-crypt's table format).
//!
//! # Security
//! The key is part of the parameter string. [`Crypt::params`] returns it in a zeroizing
//! string; `Debug` prints no key; load such tables with `DM_SECURE_DATA`.

use std::fmt;

use zeroize::Zeroizing;

use crate::table::Target;
use crate::{Error, Result};

/// How the key is given to dm-crypt.
#[derive(Clone, PartialEq, Eq)]
pub enum CryptKey {
    /// The key bytes, written as hex into the table.
    Hex(Zeroizing<Vec<u8>>),
    /// A kernel keyring reference `:SIZE:TYPE:DESCRIPTION`.
    Keyring {
        /// Key size in bytes.
        size: usize,
        /// Key type (`logon`, `user`, `encrypted`, `trusted`).
        key_type: String,
        /// Key description.
        description: String,
    },
}

impl fmt::Debug for CryptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptKey::Hex(k) => write!(f, "Hex([REDACTED; {} bytes])", k.len()),
            CryptKey::Keyring {
                size,
                key_type,
                description,
            } => write!(f, ":{size}:{key_type}:{description}"),
        }
    }
}

/// An optional dm-crypt feature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptOption {
    /// `allow_discards`.
    AllowDiscards,
    /// `same_cpu_crypt`.
    SameCpuCrypt,
    /// `submit_from_crypt_cpus`.
    SubmitFromCryptCpus,
    /// `no_read_workqueue`.
    NoReadWorkqueue,
    /// `no_write_workqueue`.
    NoWriteWorkqueue,
    /// `iv_large_sectors`.
    IvLargeSectors,
    /// `sector_size:N`.
    SectorSize(u32),
    /// `integrity:TAG_BYTES:TYPE` (e.g. `integrity:32:aead`).
    Integrity(u32, String),
    /// Any other option, kept verbatim.
    Other(String),
}

impl fmt::Display for CryptOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptOption::AllowDiscards => f.write_str("allow_discards"),
            CryptOption::SameCpuCrypt => f.write_str("same_cpu_crypt"),
            CryptOption::SubmitFromCryptCpus => f.write_str("submit_from_crypt_cpus"),
            CryptOption::NoReadWorkqueue => f.write_str("no_read_workqueue"),
            CryptOption::NoWriteWorkqueue => f.write_str("no_write_workqueue"),
            CryptOption::IvLargeSectors => f.write_str("iv_large_sectors"),
            CryptOption::SectorSize(n) => write!(f, "sector_size:{n}"),
            CryptOption::Integrity(n, t) => write!(f, "integrity:{n}:{t}"),
            CryptOption::Other(s) => f.write_str(s),
        }
    }
}

impl CryptOption {
    fn parse(s: &str) -> Self {
        let num = |v: &str| v.parse::<u32>().ok();
        match s {
            "allow_discards" => CryptOption::AllowDiscards,
            "same_cpu_crypt" => CryptOption::SameCpuCrypt,
            "submit_from_crypt_cpus" => CryptOption::SubmitFromCryptCpus,
            "no_read_workqueue" => CryptOption::NoReadWorkqueue,
            "no_write_workqueue" => CryptOption::NoWriteWorkqueue,
            "iv_large_sectors" => CryptOption::IvLargeSectors,
            _ => {
                if let Some(n) = s.strip_prefix("sector_size:").and_then(num) {
                    return CryptOption::SectorSize(n);
                }
                if let Some((n, t)) = s.strip_prefix("integrity:").and_then(|r| r.split_once(':')) {
                    if let Some(n) = num(n) {
                        return CryptOption::Integrity(n, t.to_owned());
                    }
                }
                CryptOption::Other(s.to_owned())
            }
        }
    }
}

/// Parameters of a crypt target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crypt {
    /// Cipher in dm-crypt notation (`aes-xts-plain64`, `capi:authenc(hmac(sha256),xts(aes))-plain64`).
    pub cipher: String,
    /// The key.
    pub key: CryptKey,
    /// IV offset in sectors.
    pub iv_offset: u64,
    /// Backing device (`MAJOR:MINOR` or a path).
    pub device: String,
    /// Start of the data on the backing device, in 512-byte sectors.
    pub offset: u64,
    /// Optional features, in order.
    pub options: Vec<CryptOption>,
}

impl Crypt {
    /// The table parameter string (it contains the key).
    ///
    /// # Security
    /// The string is sized up front for its exact length and never grows, so no unwiped copy
    /// of the key is left behind by a reallocation.
    pub fn params(&self) -> Zeroizing<String> {
        // Everything but the key first: it holds no secret and fixes the size.
        let mut tail = format!(" {} {} {}", self.iv_offset, self.device, self.offset);
        if !self.options.is_empty() {
            tail.push_str(&format!(" {}", self.options.len()));
            for o in &self.options {
                tail.push_str(&format!(" {o}"));
            }
        }
        let keyring = match &self.key {
            CryptKey::Hex(_) => None,
            CryptKey::Keyring {
                size,
                key_type,
                description,
            } => Some(format!(":{size}:{key_type}:{description}")),
        };
        let key_len = match (&self.key, &keyring) {
            (_, Some(text)) => text.len(),
            (CryptKey::Hex(k), None) => (k.len() * 2).max(1),
            (CryptKey::Keyring { .. }, None) => 0,
        };
        let mut s = Zeroizing::new(String::with_capacity(
            self.cipher.len() + 1 + key_len + tail.len(),
        ));
        let capacity = s.capacity();
        s.push_str(&self.cipher);
        s.push(' ');
        match (&self.key, keyring) {
            (_, Some(text)) => s.push_str(&text),
            (CryptKey::Hex(k), None) => {
                for b in k.iter() {
                    s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
                    s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
                }
                if k.is_empty() {
                    s.push('-');
                }
            }
            (CryptKey::Keyring { .. }, None) => {}
        }
        s.push_str(&tail);
        assert_eq!(s.capacity(), capacity, "a crypt table grew past its size");
        s
    }

    /// A table line mapping `length` sectors from `start`.
    pub fn target(&self, start: u64, length: u64) -> Target {
        Target::new(start, length, "crypt", self.params())
    }

    /// Parses a crypt parameter string, as the kernel reports it.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the malformed field.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |what: &str| Error::invalid("crypt table", format!("bad or missing {what}"));
        let mut it = s.split_whitespace();
        let cipher = it.next().ok_or_else(|| bad("cipher"))?.to_owned();
        let key_text = it.next().ok_or_else(|| bad("key"))?;
        let key = if let Some(r) = key_text.strip_prefix(':') {
            let mut parts = r.splitn(3, ':');
            match (
                parts.next().and_then(|n| n.parse().ok()),
                parts.next(),
                parts.next(),
            ) {
                (Some(size), Some(t), Some(d)) => CryptKey::Keyring {
                    size,
                    key_type: t.to_owned(),
                    description: d.to_owned(),
                },
                _ => return Err(bad("keyring key reference")),
            }
        } else if key_text == "-" {
            CryptKey::Hex(Zeroizing::new(Vec::new()))
        } else {
            let hex = key_text.as_bytes();
            if !hex.len().is_multiple_of(2) {
                return Err(bad("hex key"));
            }
            let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            let mut k = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
            for pair in hex.chunks_exact(2) {
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(hi), Some(lo)) => k.push(hi << 4 | lo),
                    _ => return Err(bad("hex key")),
                }
            }
            CryptKey::Hex(k)
        };
        let iv_offset = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("iv offset"))?;
        let device = it.next().ok_or_else(|| bad("device"))?.to_owned();
        let offset = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("offset"))?;
        let mut options = Vec::new();
        if let Some(n) = it.next() {
            let n: usize = n.parse().map_err(|_| bad("option count"))?;
            for _ in 0..n {
                options.push(CryptOption::parse(it.next().ok_or_else(|| bad("option"))?));
            }
        }
        if it.next().is_some() {
            return Err(bad("end of parameters (trailing fields)"));
        }
        Ok(Self {
            cipher,
            key,
            iv_offset,
            device,
            offset,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defect this guards against: a table built in a 256-byte buffer grew (and left an
    /// unwiped copy of the key behind) when a long key and options did not fit.
    #[test]
    fn long_keys_fit_the_buffer_without_growing() {
        let c = Crypt {
            cipher: "capi:authenc(hmac(sha512),xts(aes))-random".into(),
            key: CryptKey::Hex(Zeroizing::new(vec![0xa5; 128])),
            iv_offset: 0,
            device: "253:17".into(),
            offset: 0,
            options: vec![
                CryptOption::AllowDiscards,
                CryptOption::NoReadWorkqueue,
                CryptOption::NoWriteWorkqueue,
                CryptOption::Integrity(96, "aead".into()),
                CryptOption::SectorSize(4096),
            ],
        };
        let p = c.params();
        assert!(p.len() > 256, "{}", p.len());
        assert_eq!(p.capacity(), p.len(), "sized exactly, so it never grew");
        assert_eq!(Crypt::parse(&p).expect("parse"), c);
        let empty = Crypt {
            key: CryptKey::Hex(Zeroizing::new(Vec::new())),
            options: vec![],
            ..c.clone()
        };
        assert_eq!(empty.params().capacity(), empty.params().len());
        let ring = Crypt {
            key: CryptKey::Keyring {
                size: 64,
                key_type: "logon".into(),
                description: "cryptsetup:x-d0".into(),
            },
            ..c
        };
        assert!(ring.params().contains(" :64:logon:cryptsetup:x-d0 "));
    }

    #[test]
    fn round_trips() {
        for s in [
            "aes-xts-plain64 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff 0 254:0 32768",
            "aes-xts-plain64 :64:logon:cryptsetup:0123-d0 0 254:0 32768 1 sector_size:4096",
            "capi:authenc(hmac(sha256),xts(aes))-plain64 :96:logon:cryptsetup:u-d0 0 253:1 0 1 integrity:32:aead",
            "aes-xts-plain64 - 5 /dev/vda 0 5 allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue",
        ] {
            let c = Crypt::parse(s).expect(s);
            assert_eq!(&*c.params(), s);
        }
        let c = Crypt::parse("aes-xts-plain64 :64:logon:cryptsetup:x 0 254:0 32768 2 sector_size:4096 integrity:32:aead").expect("p");
        assert_eq!(
            c.options,
            vec![
                CryptOption::SectorSize(4096),
                CryptOption::Integrity(32, "aead".into())
            ]
        );
    }

    /// Found by the `dm_table` fuzz target: a multi-byte character in the key field made the
    /// hex parser slice inside a character and panic.
    #[test]
    fn regression_multibyte_key_field() {
        assert!(Crypt::parse("25\t\u{0}\u{3e0}8").is_err());
        assert!(Crypt::parse("aes \u{e9}\u{e9} 0 1:1 0").is_err());
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "aes",
            "aes zz 0 1:1 0",
            "aes 00 x 1:1 0",
            "aes 00 0 1:1",
            "aes 00 0 1:1 0 2 a",
            "aes 00 0 1:1 0 1 a b",
        ] {
            assert!(Crypt::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Crypt {
            cipher: "aes-xts-plain64".into(),
            key: CryptKey::Hex(Zeroizing::new(vec![0xab; 64])),
            iv_offset: 0,
            device: "1:2".into(),
            offset: 0,
            options: vec![],
        };
        let d = format!("{c:?} {:?}", c.target(0, 8));
        assert!(!d.contains("abab"), "{d}");
    }
}
