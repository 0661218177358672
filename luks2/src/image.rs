//! The data segment in userspace: sectors encrypted and decrypted exactly as dm-crypt maps
//! them, for offline images (no root, no device-mapper).
//!
//! dm-crypt counts IVs in 512-byte units whatever the sector size (LUKS2 does not set
//! `iv_large_sectors`), starting at the segment's `iv_tweak`.

use crate::sector::{CipherSpec, SectorCipher};
use crate::units::Bytes;
use crate::{Activation, Error, Result, VolumeKey};

/// A keyed data segment.
#[derive(Debug)]
pub struct SegmentCipher {
    cipher: SectorCipher,
    sector_size: usize,
    iv_tweak: u64,
    offset: u64,
}

impl SegmentCipher {
    /// Keys the segment described by `a`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for integrity-protected segments (their tags live on a
    /// dm-integrity device) or a cipher without a userspace implementation; a key size error.
    pub fn new(a: &Activation, key: &VolumeKey) -> Result<Self> {
        if let Some(i) = a.integrity {
            return Err(Error::unsupported(
                "offline access to an integrity-protected segment",
                i.json_type(),
            ));
        }
        let spec = CipherSpec::parse(&a.cipher)?;
        Ok(Self {
            cipher: SectorCipher::new(&spec, key.as_bytes())?,
            sector_size: a.sector_size as usize,
            iv_tweak: a.iv_tweak,
            offset: a.offset,
        })
    }

    /// Encryption sector size in bytes.
    pub fn sector_size(&self) -> usize {
        self.sector_size
    }

    /// Byte offset of the segment on the device.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Which XTS data path is in use (`vaes`, `aes-ni`, `portable`).
    pub fn implementation(&self) -> &'static str {
        self.cipher.implementation()
    }

    /// IVs per encryption sector: dm-crypt counts them in 512-byte units.
    fn iv_step(&self) -> u64 {
        Bytes(self.sector_size as u64).sectors().0
    }

    fn check(&self, pos: u64, len: usize) -> Result<u64> {
        let ss = self.sector_size as u64;
        if !pos.is_multiple_of(ss) || !(len as u64).is_multiple_of(ss) {
            return Err(Error::invalid(
                "range",
                format!(
                    "{len} bytes at {pos} is not whole {} -byte sectors",
                    self.sector_size
                ),
            ));
        }
        Ok(self.iv_tweak.wrapping_add(Bytes(pos).sectors().0))
    }

    /// Encrypts `data` in place: the plaintext of the segment bytes at `pos` (from the segment
    /// start), a whole number of sectors, on `threads` threads.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a range that is not whole sectors.
    pub fn encrypt(&self, pos: u64, data: &mut [u8], threads: usize) -> Result<()> {
        let iv = self.check(pos, data.len())?;
        self.cipher
            .crypt_parallel(iv, self.iv_step(), self.sector_size, data, true, threads)
    }

    /// Decrypts in place; see [`SegmentCipher::encrypt`].
    ///
    /// # Errors
    /// As [`SegmentCipher::encrypt`].
    pub fn decrypt(&self, pos: u64, data: &mut [u8], threads: usize) -> Result<()> {
        let iv = self.check(pos, data.len())?;
        self.cipher
            .crypt_parallel(iv, self.iv_step(), self.sector_size, data, false, threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activation(sector_size: u32, iv_tweak: u64) -> Activation {
        Activation {
            cipher: "aes-xts-plain64".into(),
            key_size: 64,
            iv_tweak,
            offset: 16 << 20,
            size: None,
            sector_size,
            flags: vec![],
            integrity: None,
        }
    }

    /// A 4096-byte sector is encrypted with the IV of its first 512-byte unit.
    #[test]
    fn ivs_count_512_byte_units() {
        let key = VolumeKey::new(vec![9; 64]);
        let big = SegmentCipher::new(&activation(4096, 5), &key).unwrap();
        let spec = CipherSpec::parse("aes-xts-plain64").unwrap();
        let raw = SectorCipher::new(&spec, &[9; 64]).unwrap();
        let mut a = vec![3u8; 8192];
        big.encrypt(4096, &mut a, 2).unwrap();
        let mut b = vec![3u8; 8192];
        raw.encrypt(5 + 8, 4096, &mut b[..4096]).unwrap();
        raw.encrypt(5 + 16, 4096, &mut b[4096..]).unwrap();
        assert_eq!(a, b);
        big.decrypt(4096, &mut a, 1).unwrap();
        assert_eq!(a, vec![3u8; 8192]);
        assert!(big.encrypt(512, &mut a, 1).is_err());
        assert!(big.encrypt(0, &mut a[..100], 1).is_err());
    }
}
