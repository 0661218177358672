//! dm-integrity superblocks and journals, laid out exactly as the kernel formats them.
//!
//! A dm-integrity device starts (at its table's offset) with an 8-sector area whose first 512
//! bytes are the superblock, then the journal (`journal_sections` sections), then the data
//! interleaved with tag runs: every `interleave_sectors` data sectors are preceded by the
//! tags that protect them. The kernel formats a zeroed device itself when it first loads a
//! table over it; [`Superblock::new`] repeats that computation (the kernel's
//! `initialize_superblock`, `get_provided_data_sectors` and `calculate_device_limits`) so that
//! [`format`] can write the same bytes without a kernel, and [`Superblock::parse`] applies the
//! kernel's checks to a superblock read from an untrusted disk.

use luks2::BlockIo;

use crate::{Error, Result};

/// Sectors reserved for the superblock at the start of the device.
pub const SUPERBLOCK_SECTORS: u64 = 8;
const SECTOR: u64 = 512;
const MAGIC: &[u8; 8] = b"integrt\0";
/// The superblock carries a journal MAC (`journal_mac` in the table).
pub const FLAG_HAVE_JOURNAL_MAC: u32 = 0x1;
/// Tags are being recalculated (`recalc_sector` is valid).
pub const FLAG_RECALCULATING: u32 = 0x2;
/// The bitmap is dirty (bitmap mode).
pub const FLAG_DIRTY_BITMAP: u32 = 0x4;
/// Tag runs are padded to 4 KiB (`fix_padding`) instead of the legacy 128 KiB.
pub const FLAG_FIXED_PADDING: u32 = 0x8;
/// The superblock MAC and salt are used (`fix_hmac`).
pub const FLAG_FIXED_HMAC: u32 = 0x10;
const KNOWN_FLAGS: u32 = 0x1f;
/// Largest superblock version this code understands (6, inline tags, needs hardware support).
const MAX_VERSION: u8 = 5;
const JOURNAL_BLOCK_SECTORS: u64 = 8;
/// Bytes of a journal sector before its 8-byte commit id.
const JOURNAL_SECTOR_DATA: u64 = SECTOR - 8;
const JOURNAL_MAC_PER_SECTOR: u64 = 8;
const DEFAULT_INTERLEAVE_SECTORS: u32 = 32768;
const DEFAULT_MAX_JOURNAL_SECTORS: u64 = 131_072;
const DEFAULT_JOURNAL_SIZE_FACTOR: u32 = 7;
const DEFAULT_LOG2_SECTORS_PER_BITMAP_BIT: u8 = 15;
const METADATA_PADDING_SECTORS: u64 = 8;
/// The kernel's first commit id; ids of sector `j` in section `i` are xored with `i << 32 ^ j`.
const COMMIT_ID_0: u64 = 0x1111_1111_1111_1111;

/// What a new dm-integrity device is formatted with (the table options that shape it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityParams {
    /// Tag bytes per block (the table's tag size; 1 to 472 / sectors per block).
    pub tag_size: u16,
    /// Block size in bytes: 512, 1024, 2048 or 4096 (`block_size:`).
    pub block_size: u32,
    /// Journal size in sectors (`journal_sectors:`); `None` for the kernel's default, 1/128 of
    /// the device up to 64 MiB.
    pub journal_sectors: Option<u32>,
    /// Data sectors between tag runs (`interleave_sectors:`); `None` for 32768.
    pub interleave_sectors: Option<u32>,
    /// 4 KiB tag padding (`fix_padding`), what cryptsetup 2.x asks for unless told
    /// `--integrity-legacy-padding`.
    pub fix_padding: bool,
    /// Whether the journal is authenticated (`journal_mac:`).
    pub journal_mac: bool,
}

impl IntegrityParams {
    /// cryptsetup's choices for `tag_size` bytes per 512-byte sector.
    pub fn new(tag_size: u16) -> Self {
        Self {
            tag_size,
            block_size: 512,
            journal_sectors: None,
            interleave_sectors: None,
            fix_padding: true,
            journal_mac: false,
        }
    }
}

/// Why a dm-integrity superblock is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuperblockFault {
    /// No `integrt` signature: not a dm-integrity device.
    NoSignature,
    /// A version other than 1 to 5.
    Version(u8),
    /// A field the kernel refuses: which, and why.
    Field(String),
}

impl std::fmt::Display for SuperblockFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuperblockFault::NoSignature => f.write_str("no dm-integrity signature"),
            SuperblockFault::Version(v) => write!(f, "unknown version {v}"),
            SuperblockFault::Field(r) => f.write_str(r),
        }
    }
}

/// The on-disk superblock (the first 512 bytes; the rest of its 4 KiB area is zero).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Format version (1 to 5), implied by the flags.
    pub version: u8,
    /// log2 of the data sectors between tag runs.
    pub log2_interleave_sectors: u8,
    /// Tag bytes per block.
    pub tag_size: u16,
    /// Number of journal sections.
    pub journal_sections: u32,
    /// Usable data sectors: the size of the mapping (what userspace reads).
    pub provided_data_sectors: u64,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// log2 of the 512-byte sectors per block.
    pub log2_sectors_per_block: u8,
    /// log2 of blocks per bitmap bit (bitmap mode).
    pub log2_blocks_per_bitmap_bit: u8,
    /// Recalculation progress (with [`FLAG_RECALCULATING`]).
    pub recalc_sector: u64,
    /// Salt for the superblock MAC (with [`FLAG_FIXED_HMAC`]).
    pub salt: [u8; 16],
}

impl Superblock {
    /// The superblock the kernel writes when it formats a zeroed device of `device_sectors`
    /// sectors whose integrity area starts at sector `start`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad block or tag size, or a device too small to hold the
    /// superblock, journal and one tag run.
    pub fn new(params: &IntegrityParams, device_sectors: u64, start: u64) -> Result<Self> {
        let bs = params.block_size;
        if !(512..=4096).contains(&bs) || !bs.is_power_of_two() {
            return Err(Error::invalid(
                "block size",
                format!("{bs} is not a power of two from 512 to 4096"),
            ));
        }
        let log2_spb = (bs / 512).trailing_zeros() as u8;
        let mut sb = Superblock {
            version: 0,
            log2_interleave_sectors: 0,
            tag_size: params.tag_size,
            journal_sections: 0,
            provided_data_sectors: 0,
            flags: if params.journal_mac {
                FLAG_HAVE_JOURNAL_MAC
            } else {
                0
            },
            log2_sectors_per_block: log2_spb,
            log2_blocks_per_bitmap_bit: 0,
            recalc_sector: 0,
            salt: [0; 16],
        };
        let max_tag = JOURNAL_SECTOR_DATA - JOURNAL_MAC_PER_SECTOR - 8 - 8 * 8;
        if params.tag_size == 0 || u64::from(params.tag_size) > max_tag {
            return Err(Error::invalid(
                "tag size",
                format!("{} is not from 1 to {max_tag}", params.tag_size),
            ));
        }
        let journal_sectors = match params.journal_sectors {
            Some(0) => 1,
            Some(n) => u64::from(n),
            None => DEFAULT_MAX_JOURNAL_SECTORS.min(device_sectors >> DEFAULT_JOURNAL_SIZE_FACTOR),
        };
        let sections = (journal_sectors / sb.journal_section_sectors()).max(1);
        sb.journal_sections = u32::try_from(sections)
            .map_err(|_| Error::invalid("journal size", format!("{journal_sectors} sectors")))?;
        if params.fix_padding {
            sb.flags |= FLAG_FIXED_PADDING;
        }
        let interleave = params
            .interleave_sectors
            .filter(|&n| n != 0)
            .unwrap_or(DEFAULT_INTERLEAVE_SECTORS);
        sb.log2_interleave_sectors = (31 - interleave.leading_zeros() as u8).clamp(3, 31);

        // The largest size (a sum of powers of two from the top bit down) that still fits.
        let top = 63 - device_sectors.max(1).leading_zeros();
        for bit in (3..=top).rev() {
            let candidate = sb.provided_data_sectors | 1 << bit;
            if sb.fits(candidate, device_sectors, start) {
                sb.provided_data_sectors = candidate;
            }
        }
        if sb.provided_data_sectors == 0 {
            return Err(Error::invalid(
                "device size",
                format!(
                    "{device_sectors} sectors leave no room for data after the superblock and \
                     {} journal sectors at sector {start}",
                    sb.journal_area_sectors()
                ),
            ));
        }
        sb.log2_blocks_per_bitmap_bit = sb.bitmap_bit_shift();
        sb.version = sb.implied_version();
        Ok(sb)
    }

    fn implied_version(&self) -> u8 {
        if self.flags & FLAG_FIXED_HMAC != 0 {
            5
        } else if self.flags & FLAG_FIXED_PADDING != 0 {
            4
        } else if self.flags & FLAG_DIRTY_BITMAP != 0 {
            3
        } else if self.flags & FLAG_RECALCULATING != 0 {
            2
        } else {
            1
        }
    }

    /// Sectors per block.
    pub fn sectors_per_block(&self) -> u64 {
        1 << self.log2_sectors_per_block
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        512 << self.log2_sectors_per_block
    }

    /// Data sectors between tag runs.
    pub fn interleave_sectors(&self) -> u64 {
        1 << self.log2_interleave_sectors
    }

    fn journal_entry_size(&self) -> u64 {
        (8 + 8 * self.sectors_per_block() + u64::from(self.tag_size)).next_multiple_of(8)
    }

    fn journal_entries_per_sector(&self) -> u64 {
        let mut space = JOURNAL_SECTOR_DATA;
        if self.flags & FLAG_HAVE_JOURNAL_MAC != 0 {
            space -= JOURNAL_MAC_PER_SECTOR;
        }
        space / self.journal_entry_size()
    }

    /// Sectors of one journal section: 8 sectors of entries, then their data blocks.
    pub fn journal_section_sectors(&self) -> u64 {
        let entries = self.journal_entries_per_sector() * JOURNAL_BLOCK_SECTORS;
        (entries << self.log2_sectors_per_block) + JOURNAL_BLOCK_SECTORS
    }

    /// Sectors of the whole journal: the `journal_sectors:` value a table passes.
    pub fn journal_area_sectors(&self) -> u64 {
        self.journal_section_sectors() * u64::from(self.journal_sections)
    }

    /// Sectors before the first tag run: superblock and journal.
    pub fn initial_sectors(&self) -> u64 {
        SUPERBLOCK_SECTORS + self.journal_area_sectors()
    }

    /// Sectors of one tag run (the tags of `interleave_sectors` data sectors, padded).
    fn metadata_run(&self) -> u64 {
        let padding = if self.flags & FLAG_FIXED_PADDING != 0 {
            METADATA_PADDING_SECTORS * SECTOR
        } else {
            SECTOR << METADATA_PADDING_SECTORS
        };
        let tags = u64::from(self.tag_size)
            << (self.log2_interleave_sectors - self.log2_sectors_per_block);
        tags.next_multiple_of(padding) / SECTOR
    }

    /// Whether `provided` data sectors fit on the device (`calculate_device_limits`).
    fn fits(&self, provided: u64, device_sectors: u64, start: u64) -> bool {
        let initial = self.initial_sectors();
        if initial + METADATA_PADDING_SECTORS >= device_sectors || initial > u64::from(u32::MAX) {
            return false;
        }
        let last = provided - 1;
        let area = last >> self.log2_interleave_sectors;
        let offset = last & (self.interleave_sectors() - 1);
        let sector = (area << self.log2_interleave_sectors)
            .checked_add((area + 1).saturating_mul(self.metadata_run()))
            .and_then(|s| s.checked_add(initial + offset + start));
        matches!(sector, Some(s) if s >= start && s < device_sectors)
    }

    /// Sectors the device must have, from `start`, to hold this layout; `None` when that is
    /// more than a `u64` counts (a hostile superblock).
    pub fn required_sectors(&self) -> Option<u64> {
        let areas = self
            .provided_data_sectors
            .div_ceil(self.interleave_sectors());
        areas
            .checked_mul(self.metadata_run())?
            .checked_add(self.initial_sectors())?
            .checked_add(self.provided_data_sectors)
    }

    fn bitmap_bit_shift(&self) -> u8 {
        let mut log2 = DEFAULT_LOG2_SECTORS_PER_BITMAP_BIT.max(self.log2_sectors_per_block);
        let bits_in_journal = (self.journal_area_sectors() << 12).min(u64::from(u32::MAX));
        if bits_in_journal > 0 {
            while bits_in_journal < self.provided_data_sectors.div_ceil(1 << log2) {
                log2 += 1;
            }
        }
        log2 - self.log2_sectors_per_block
    }

    /// The 512 on-disk bytes (little-endian fields, zero padding).
    pub fn encode(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..8].copy_from_slice(MAGIC);
        b[8] = self.version;
        b[9] = self.log2_interleave_sectors;
        b[10..12].copy_from_slice(&self.tag_size.to_le_bytes());
        b[12..16].copy_from_slice(&self.journal_sections.to_le_bytes());
        b[16..24].copy_from_slice(&self.provided_data_sectors.to_le_bytes());
        b[24..28].copy_from_slice(&self.flags.to_le_bytes());
        b[28] = self.log2_sectors_per_block;
        b[29] = self.log2_blocks_per_bitmap_bit;
        b[32..40].copy_from_slice(&self.recalc_sector.to_le_bytes());
        b[48..64].copy_from_slice(&self.salt);
        b
    }

    /// Reads a superblock's fields as `integritysetup dump` does, checking only its signature
    /// and version: the other fields may be anything (see [`Superblock::check`]).
    ///
    /// # Errors
    /// [`Error::IntegritySuperblock`]: no signature, or a version integritysetup does not know.
    pub fn decode(b: &[u8]) -> Result<Self> {
        let bad = |f: SuperblockFault| Err(Error::IntegritySuperblock(f));
        if b.len() < 64 || &b[..8] != MAGIC {
            return bad(SuperblockFault::NoSignature);
        }
        let le16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let le32 = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let le64 = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        if b[8] == 0 || b[8] > MAX_VERSION {
            return bad(SuperblockFault::Version(b[8]));
        }
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&b[48..64]);
        Ok(Superblock {
            version: b[8],
            log2_interleave_sectors: b[9],
            tag_size: le16(10),
            journal_sections: le32(12),
            provided_data_sectors: le64(16),
            flags: le32(24),
            log2_sectors_per_block: b[28],
            log2_blocks_per_bitmap_bit: b[29],
            recalc_sector: le64(32),
            salt,
        })
    }

    /// Parses and checks a superblock the way the kernel does before it trusts one.
    ///
    /// # Errors
    /// [`Error::IntegritySuperblock`] with the first fault.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let sb = Self::decode(b)?;
        sb.check()?;
        Ok(sb)
    }

    /// The kernel's checks of a decoded superblock's fields.
    ///
    /// # Errors
    /// [`Error::IntegritySuperblock`] naming the first field that is wrong.
    pub fn check(&self) -> Result<()> {
        let sb = self;
        let bad = |r: String| Err(Error::IntegritySuperblock(SuperblockFault::Field(r)));
        if sb.flags & !KNOWN_FLAGS != 0 {
            return bad(format!("unknown flags {:#x}", sb.flags));
        }
        if sb.log2_sectors_per_block > 3 {
            return bad(format!(
                "block size 512 << {} is over 4096",
                sb.log2_sectors_per_block
            ));
        }
        if sb.tag_size == 0 || sb.journal_entries_per_sector() == 0 {
            return bad(format!(
                "tag size {} does not fit a journal entry",
                sb.tag_size
            ));
        }
        if sb.journal_sections == 0 {
            return bad("journal_sections is 0".into());
        }
        if !(3..=31).contains(&sb.log2_interleave_sectors)
            || sb.log2_interleave_sectors < sb.log2_sectors_per_block
        {
            return bad(format!(
                "interleave_sectors 2^{} is out of range",
                sb.log2_interleave_sectors
            ));
        }
        if sb.provided_data_sectors == 0
            || !sb
                .provided_data_sectors
                .is_multiple_of(sb.sectors_per_block())
        {
            return bad(format!(
                "provided_data_sectors {} is not a positive number of blocks",
                sb.provided_data_sectors
            ));
        }
        if sb.initial_sectors() > u64::from(u32::MAX) {
            return bad(format!(
                "a journal of {} sections is too large",
                sb.journal_sections
            ));
        }
        if sb.required_sectors().is_none() {
            return bad(format!(
                "provided_data_sectors {} needs more sectors than a device can have",
                sb.provided_data_sectors
            ));
        }
        Ok(())
    }

    /// The journal the kernel writes at format time: every entry unused, every sector
    /// carrying the commit id of sequence 0. Calls `write(sector_offset, bytes)` per section.
    fn write_journal(&self, mut write: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        let section_sectors = self.journal_section_sectors();
        let entry = self.journal_entry_size() as usize;
        let mut buf = vec![0u8; (section_sectors * SECTOR) as usize];
        for i in 0..u64::from(self.journal_sections) {
            buf.fill(0);
            for (j, sector) in buf.chunks_exact_mut(SECTOR as usize).enumerate() {
                if (j as u64) < JOURNAL_BLOCK_SECTORS {
                    for k in 0..self.journal_entries_per_sector() as usize {
                        // journal_entry_set_unused: the high half of the entry's sector = -1.
                        sector[k * entry + 4..k * entry + 8].fill(0xff);
                    }
                }
                let id = COMMIT_ID_0 ^ ((i << 32) ^ j as u64);
                sector[JOURNAL_SECTOR_DATA as usize..].copy_from_slice(&id.to_le_bytes());
            }
            write(i * section_sectors, &buf)?;
        }
        Ok(())
    }
}

/// Formats a dm-integrity device like the kernel does on its first load: the superblock at
/// sector `start`, then an empty journal. Tags are left as they are: reading a sector fails
/// until it is written (cryptsetup writes zeros over the whole mapping once).
///
/// # Errors
/// [`Error::Invalid`] from [`Superblock::new`]; [`Error::Io`] if writing fails.
pub fn format<D: BlockIo>(dev: &mut D, start: u64, params: &IntegrityParams) -> Result<Superblock> {
    let size = dev
        .size()
        .map_err(|e| Error::io("cannot read the device size", e))?;
    let sb = Superblock::new(params, size / SECTOR, start)?;
    let base = start * SECTOR;
    let mut area = vec![0u8; (SUPERBLOCK_SECTORS * SECTOR) as usize];
    area[..512].copy_from_slice(&sb.encode());
    // Journal first, superblock last: a torn format leaves no valid superblock behind.
    let journal = base + SUPERBLOCK_SECTORS * SECTOR;
    dev.write_all_at(&[0u8; 8], base)
        .map_err(|e| Error::io("cannot clear the dm-integrity superblock", e))?;
    sb.write_journal(|sector, bytes| {
        dev.write_all_at(bytes, journal + sector * SECTOR)
            .map_err(|e| Error::io("cannot write the dm-integrity journal", e))
    })?;
    dev.sync()
        .map_err(|e| Error::io("cannot flush the dm-integrity journal", e))?;
    dev.write_all_at(&area, base)
        .map_err(|e| Error::io("cannot write the dm-integrity superblock", e))?;
    dev.sync()
        .map_err(|e| Error::io("cannot flush the dm-integrity superblock", e))?;
    Ok(sb)
}

/// Reads and checks the superblock at sector `start`.
///
/// # Errors
/// [`Error::Io`] if reading fails; [`Error::IntegritySuperblock`] as [`Superblock::parse`].
pub fn read_superblock<D: BlockIo>(dev: &mut D, start: u64) -> Result<Superblock> {
    let mut b = [0u8; 512];
    dev.read_exact_at(&mut b, start * SECTOR)
        .map_err(|e| Error::io("cannot read the dm-integrity superblock", e))?;
    Superblock::parse(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use luks2::MemoryDevice;

    /// Found by the `superblocks` fuzz target (input kept in `fuzz/regressions/superblocks/`):
    /// `provided_data_sectors` near `u64::MAX` overflowed the layout's size.
    #[test]
    fn regression_required_sectors_overflow() {
        let input = include_bytes!("../../fuzz/regressions/superblocks/required-sectors-overflow");
        let err = Superblock::parse(input).unwrap_err();
        assert!(
            err.to_string()
                .contains("more sectors than a device can have"),
            "{err}"
        );
    }

    /// Superblocks cryptsetup 2.6.1 made on Linux 6.1 for a 256 MiB disk with a 16 MiB LUKS2
    /// header (`luksFormat --integrity ...`), first 32 bytes.
    #[test]
    fn equals_the_kernels_for_luks2_volumes() {
        let cases: [(u16, u32, bool, &str); 5] = [
            // hmac-sha256, 512-byte sectors
            (
                32,
                512,
                true,
                "696e74656772740004 0f 2000 2e000000 0000070000000000 08000000 00 0f 0000",
            ),
            // aes-gcm-random (16-byte tag + 12-byte IV)
            (
                28,
                512,
                true,
                "696e74656772740004 0f 1c00 2e000000 2807070000000000 08000000 00 0f 0000",
            ),
            // hmac-sha256, 4096-byte sectors
            (
                32,
                4096,
                true,
                "696e74656772740004 0f 2000 0f000000 8061070000000000 08000000 03 0c 0000",
            ),
            // aes-xts-random + hmac-sha256 (32 + 16)
            (
                48,
                512,
                true,
                "696e74656772740004 0f 3000 40000000 f8c7060000000000 08000000 00 0f 0000",
            ),
            // --integrity-legacy-padding
            (
                32,
                512,
                false,
                "696e74656772740001 0f 2000 2e000000 0000070000000000 00000000 00 0f 0000",
            ),
        ];
        for (tag, bs, fix, want) in cases {
            let mut p = IntegrityParams::new(tag);
            p.block_size = bs;
            p.fix_padding = fix;
            let sb = Superblock::new(&p, 256 * 2048, 32768).unwrap();
            let want: String = want.split_whitespace().collect();
            assert_eq!(
                crate::verity::to_hex(&sb.encode()[..32]),
                want,
                "tag {tag} block {bs} fix {fix}"
            );
            assert_eq!(Superblock::parse(&sb.encode()).unwrap(), sb);
        }
    }

    #[test]
    fn journal_sectors_match_the_table_cryptsetup_loads() {
        // `journal_sectors:4048` (512-byte) and `:3960` (4096-byte) in the tables above.
        let sb = Superblock::new(&IntegrityParams::new(32), 256 * 2048, 32768).unwrap();
        assert_eq!(sb.journal_area_sectors(), 4048);
        let mut p = IntegrityParams::new(32);
        p.block_size = 4096;
        let sb = Superblock::new(&p, 256 * 2048, 32768).unwrap();
        assert_eq!(sb.journal_area_sectors(), 3960);
    }

    #[test]
    fn provided_sectors_are_the_largest_that_fit() {
        for size in [4096u64, 40_000, 100_000, 1 << 20, 3 << 21] {
            let sb = Superblock::new(&IntegrityParams::new(32), size, 0).unwrap();
            assert!(sb.required_sectors().expect("fits") <= size, "size {size}");
            assert!(
                !sb.fits(sb.provided_data_sectors + 8, size, 0),
                "size {size}"
            );
        }
    }

    #[test]
    fn tiny_devices_and_bad_parameters_are_refused() {
        assert!(Superblock::new(&IntegrityParams::new(32), 64, 0).is_err());
        assert!(Superblock::new(&IntegrityParams::new(0), 1 << 20, 0).is_err());
        assert!(Superblock::new(&IntegrityParams::new(500), 1 << 20, 0).is_err());
        let mut p = IntegrityParams::new(32);
        p.block_size = 1536;
        assert!(Superblock::new(&p, 1 << 20, 0).is_err());
    }

    #[test]
    fn hostile_superblocks_are_refused() {
        let good = Superblock::new(&IntegrityParams::new(32), 1 << 20, 0)
            .unwrap()
            .encode();
        let mutate = |o: usize, v: u8| {
            let mut b = good;
            b[o] = v;
            Superblock::parse(&b)
        };
        assert!(mutate(0, b'x').is_err());
        assert!(mutate(8, 0).is_err());
        assert!(mutate(8, 9).is_err());
        assert!(mutate(9, 2).is_err());
        assert!(mutate(9, 40).is_err());
        assert!(mutate(10, 0).is_err() && mutate(11, 0).is_ok());
        assert!(mutate(11, 0xff).is_err());
        assert!(mutate(28, 4).is_err());
        assert!(mutate(27, 0x80).is_err());
        let mut b = good;
        b[12..16].fill(0);
        assert!(Superblock::parse(&b).is_err());
        b = good;
        b[12..16].fill(0xff);
        assert!(Superblock::parse(&b).is_err());
        assert!(Superblock::parse(&good[..40]).is_err());
        // What integritysetup dump reads: the signature and the version only.
        let fault = |b: &[u8]| match Superblock::decode(b) {
            Err(Error::IntegritySuperblock(f)) => f,
            other => panic!("{other:?}"),
        };
        let mut b = good;
        b[8] = 9;
        assert_eq!(fault(&b), SuperblockFault::Version(9));
        b[0] = b'x';
        assert_eq!(fault(&b), SuperblockFault::NoSignature);
        let mut b = good;
        b[10..12].fill(0);
        b[28] = 200;
        let odd = Superblock::decode(&b).expect("decoded");
        assert_eq!((odd.tag_size, odd.log2_sectors_per_block), (0, 200));
        assert!(matches!(
            odd.check(),
            Err(Error::IntegritySuperblock(SuperblockFault::Field(_)))
        ));
    }

    #[test]
    fn format_writes_journal_then_superblock() {
        let mut dev = MemoryDevice::new(64 << 20);
        let sb = format(&mut dev, 2048, &IntegrityParams::new(32)).unwrap();
        assert_eq!(read_superblock(&mut dev, 2048).unwrap(), sb);
        let mut s = [0u8; 512];
        // Section 0, sector 1: entries unused, commit id 0x1111.. ^ 1.
        dev.read_exact_at(&mut s, (2048 + 8 + 1) * 512).unwrap();
        assert_eq!(&s[504..], &(COMMIT_ID_0 ^ 1).to_le_bytes());
        assert_eq!(&s[..8], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        // Section 1, sector 0 (data sectors carry only the commit id).
        dev.read_exact_at(&mut s, (2048 + 8 + sb.journal_section_sectors()) * 512)
            .unwrap();
        assert_eq!(&s[504..], &(COMMIT_ID_0 ^ (1 << 32)).to_le_bytes());
        dev.read_exact_at(&mut s, (2048 + 8 + 20) * 512).unwrap();
        assert!(s[..504].iter().all(|&b| b == 0));
    }
}
