//! Units: byte counts and 512-byte sectors (the unit of device-mapper tables, LUKS2 payload
//! offsets and dm-integrity superblocks) as types, so that a sector count is never added to
//! a byte offset.

use std::fmt;

/// Bytes in a sector.
pub const SECTOR_SIZE: u64 = 512;

/// A number of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// A number of 512-byte sectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sectors(pub u64);

impl Bytes {
    /// The whole sectors in this many bytes (rounded down).
    pub fn sectors(self) -> Sectors {
        Sectors(self.0 / SECTOR_SIZE)
    }

    /// Whether this is a whole number of sectors.
    pub fn is_sector_aligned(self) -> bool {
        self.0.is_multiple_of(SECTOR_SIZE)
    }
}

impl Sectors {
    /// These sectors in bytes, or `None` when that does not fit in 64 bits.
    pub fn bytes(self) -> Option<Bytes> {
        self.0.checked_mul(SECTOR_SIZE).map(Bytes)
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes", self.0)
    }
}

impl fmt::Display for Sectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sectors", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Bytes(16 << 20).sectors(), Sectors(32768));
        assert_eq!(Bytes(1023).sectors(), Sectors(1));
        assert!(Bytes(4096).is_sector_aligned() && !Bytes(100).is_sector_aligned());
        assert_eq!(Sectors(8).bytes(), Some(Bytes(4096)));
        assert_eq!(Sectors(u64::MAX / 256).bytes(), None);
        assert_eq!(Sectors(3).to_string(), "3 sectors");
    }
}
