//! Growing the disk's last GPT partition to the end of a grown disk (what `growpart` does for
//! the full-disk boot, whose LVM2 physical volume is the last partition), natively.
//!
//! Both headers and entry arrays are checked (signature, sizes, CRC-32s) before anything is
//! written. The new backup entries and header go to the new end of the disk first (space no
//! partition used), then the primary entries and header: an interruption leaves a table whose
//! primary header still names the old, intact backup. The old backup table, now inside the
//! grown partition (sectors no partition held), is cleared last.

use luks2::BlockIo;

/// The GPT header signature.
const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Bytes of the header the CRC covers at most (the header size field is checked).
const MAX_HEADER: usize = 512;
/// The most entry-array bytes accepted (128 entries of 128 bytes is the usual 16 KiB).
const MAX_ENTRIES_BYTES: u64 = 1 << 20;

/// Why a table cannot be grown.
#[derive(Debug)]
#[non_exhaustive]
pub enum GptError {
    /// Reading or writing failed.
    Io(std::io::Error),
    /// No GPT, or one that fails its checks.
    Invalid(String),
}

impl std::fmt::Display for GptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GptError::Io(e) => write!(f, "GPT: {e}"),
            GptError::Invalid(r) => write!(f, "GPT: {r}"),
        }
    }
}

impl std::error::Error for GptError {}

type Result<T> = std::result::Result<T, GptError>;

fn bad(r: impl Into<String>) -> GptError {
    GptError::Invalid(r.into())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A header's fields this module uses.
#[derive(Clone, Debug)]
struct Header {
    raw: Vec<u8>,
    size: usize,
    my_lba: u64,
    alt_lba: u64,
    last_usable: u64,
    entries_lba: u64,
    entries: u32,
    entry_size: u32,
}

impl Header {
    fn parse(b: &[u8], lba: u64) -> Result<Self> {
        if &b[..8] != SIGNATURE {
            return Err(bad(format!("no GPT header at sector {lba}")));
        }
        let size = le32(b, 12) as usize;
        if !(92..=MAX_HEADER).contains(&size) {
            return Err(bad(format!("header size {size}")));
        }
        let mut copy = b[..size].to_vec();
        copy[16..20].fill(0);
        if crc32fast::hash(&copy) != le32(b, 16) {
            return Err(bad(format!("header checksum mismatch at sector {lba}")));
        }
        let h = Header {
            raw: b[..size].to_vec(),
            size,
            my_lba: le64(b, 24),
            alt_lba: le64(b, 32),
            last_usable: le64(b, 48),
            entries_lba: le64(b, 72),
            entries: le32(b, 80),
            entry_size: le32(b, 84),
        };
        if h.my_lba != lba
            || h.entry_size < 128
            || !h.entry_size.is_power_of_two()
            || u64::from(h.entries) * u64::from(h.entry_size) > MAX_ENTRIES_BYTES
        {
            return Err(bad(format!("header at sector {lba} has impossible fields")));
        }
        Ok(h)
    }

    fn entries_bytes(&self) -> u64 {
        u64::from(self.entries) * u64::from(self.entry_size)
    }

    /// The header re-encoded with new locations and entry CRC, checksum recomputed.
    fn encode(&self, my: u64, alt: u64, last_usable: u64, entries_lba: u64, crc: u32) -> Vec<u8> {
        let mut b = self.raw.clone();
        b[24..32].copy_from_slice(&my.to_le_bytes());
        b[32..40].copy_from_slice(&alt.to_le_bytes());
        b[48..56].copy_from_slice(&last_usable.to_le_bytes());
        b[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        b[88..92].copy_from_slice(&crc.to_le_bytes());
        b[16..20].fill(0);
        let sum = crc32fast::hash(&b[..self.size]);
        b[16..20].copy_from_slice(&sum.to_le_bytes());
        b
    }
}

/// What [`grow_last_partition`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grown {
    /// The partition's number (1-based, as `sgdisk -i N`).
    pub number: u32,
    /// Its last sector before.
    pub old_last: u64,
    /// Its last sector now (equal when there was nothing to grow).
    pub new_last: u64,
}

/// Grows the partition that ends last to the disk's last usable sector, moving the backup
/// table to the disk's end and fitting the protective MBR. `lba` is the logical sector size
/// (512 for image files). Nothing is written when the table already reaches the end.
///
/// # Errors
/// [`GptError::Invalid`] for a missing or damaged table (both headers and entry arrays are
/// checked), no partitions, or a disk smaller than the table says; I/O errors.
pub fn grow_last_partition<D: BlockIo>(io: &mut D, lba: u64) -> Result<Grown> {
    grow(io, lba, None)
}

/// As [`grow_last_partition`], for partition `number` (1-based) only: it must be the one
/// that ends last, or nothing is written.
///
/// # Errors
/// As [`grow_last_partition`]; [`GptError::Invalid`] when another partition ends last.
pub fn grow_partition<D: BlockIo>(io: &mut D, lba: u64, number: u32) -> Result<Grown> {
    grow(io, lba, Some(number))
}

fn grow<D: BlockIo>(io: &mut D, lba: u64, only: Option<u32>) -> Result<Grown> {
    let size = io.size().map_err(GptError::Io)?;
    let disk_last = (size / lba)
        .checked_sub(1)
        .ok_or_else(|| bad("empty disk"))?;
    let read = |io: &mut D, at: u64, len: u64| -> Result<Vec<u8>> {
        let mut b = vec![0u8; len as usize];
        io.read_exact_at(&mut b, at * lba).map_err(GptError::Io)?;
        Ok(b)
    };
    let primary = Header::parse(&read(io, 1, lba)?, 1)?;
    if primary.alt_lba > disk_last {
        return Err(bad(format!(
            "the backup header at sector {} lies past the disk's end ({disk_last})",
            primary.alt_lba
        )));
    }
    let entries_len = primary.entries_bytes();
    let entry_sectors = entries_len.div_ceil(lba);
    // Every location read or written must lie on the disk (the header's numbers are only as
    // good as its checksum, which anyone can recompute).
    let on_disk = |at: u64, sectors: u64| {
        at >= 1 && at.checked_add(sectors).is_some_and(|e| e <= disk_last + 1)
    };
    if !on_disk(primary.entries_lba, entry_sectors) {
        return Err(bad("the partition entries lie outside the disk"));
    }
    let entries = read(io, primary.entries_lba, entries_len)?;
    if crc32fast::hash(&entries) != le32(&primary.raw, 88) {
        return Err(bad("partition entries checksum mismatch"));
    }
    let backup = Header::parse(&read(io, primary.alt_lba, lba)?, primary.alt_lba)?;
    if !on_disk(backup.entries_lba, entry_sectors) {
        return Err(bad("the backup partition entries lie outside the disk"));
    }
    if read(io, backup.entries_lba, entries_len)? != entries {
        return Err(bad(
            "the backup partition entries differ from the primary ones",
        ));
    }
    // The partition that ends last.
    let es = primary.entry_size as usize;
    let (idx, old_last) = (0..primary.entries as usize)
        .filter(|&i| entries[i * es..i * es + 16].iter().any(|&b| b != 0))
        .map(|i| (i, le64(&entries, i * es + 40)))
        .max_by_key(|&(_, last)| last)
        .ok_or_else(|| bad("no partitions"))?;
    if let Some(n) = only.filter(|&n| n as usize != idx + 1) {
        return Err(bad(format!(
            "partition {n} cannot grow: partition {} ends after it",
            idx + 1
        )));
    }
    if old_last > primary.last_usable {
        return Err(bad(format!(
            "partition {} ends at sector {old_last}, past the table's last usable sector {}",
            idx + 1,
            primary.last_usable
        )));
    }
    let new_backup_entries = disk_last
        .checked_sub(entry_sectors)
        .filter(|&e| e > old_last)
        .ok_or_else(|| bad("no room for the backup table after the last partition"))?;
    let new_last_usable = new_backup_entries - 1;
    if old_last > new_last_usable {
        return Err(bad(format!(
            "partition {} ends at sector {old_last}, past the usable end {new_last_usable}",
            idx + 1
        )));
    }
    let grown = Grown {
        number: idx as u32 + 1,
        old_last,
        new_last: new_last_usable,
    };
    if primary.alt_lba == disk_last && old_last == new_last_usable {
        return Ok(grown);
    }
    let mut new_entries = entries.clone();
    new_entries[idx * es + 40..idx * es + 48].copy_from_slice(&new_last_usable.to_le_bytes());
    let crc = crc32fast::hash(&new_entries);
    let pad = |mut v: Vec<u8>| {
        v.resize(v.len().div_ceil(lba as usize) * lba as usize, 0);
        v
    };
    let write = |io: &mut D, at: u64, b: &[u8]| io.write_all_at(b, at * lba).map_err(GptError::Io);
    // Backup first, at the new end; then the primary.
    write(io, new_backup_entries, &pad(new_entries.clone()))?;
    let b = backup.encode(disk_last, 1, new_last_usable, new_backup_entries, crc);
    write(io, disk_last, &pad(b))?;
    io.sync().map_err(GptError::Io)?;
    write(io, primary.entries_lba, &pad(new_entries))?;
    let p = primary.encode(1, disk_last, new_last_usable, primary.entries_lba, crc);
    write(io, 1, &pad(p))?;
    fit_protective_mbr(io, disk_last)?;
    io.sync().map_err(GptError::Io)?;
    if primary.alt_lba != disk_last {
        // The old backup table now lies inside the grown partition: clear it, so that no
        // tool finds a stale table there (no partition ever held data in those sectors).
        write(
            io,
            backup.entries_lba,
            &vec![0u8; (entry_sectors * lba) as usize],
        )?;
        write(io, primary.alt_lba, &vec![0u8; lba as usize])?;
    }
    io.sync().map_err(GptError::Io)?;
    Ok(grown)
}

/// The protective MBR's one 0xEE partition covers the disk (at most 2^32-1 sectors).
fn fit_protective_mbr<D: BlockIo>(io: &mut D, disk_last: u64) -> Result<()> {
    let mut mbr = [0u8; 512];
    io.read_exact_at(&mut mbr, 0).map_err(GptError::Io)?;
    if mbr[510..512] != [0x55, 0xaa] || mbr[0x1be + 4] != 0xee {
        return Ok(());
    }
    let sectors = u32::try_from(disk_last).unwrap_or(u32::MAX);
    mbr[0x1be + 12..0x1be + 16].copy_from_slice(&sectors.to_le_bytes());
    io.write_all_at(&mbr, 0).map_err(GptError::Io)
}
