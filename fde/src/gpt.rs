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

/// A checked primary table: its header and entry array.
struct Table {
    primary: Header,
    entries: Vec<u8>,
    entry_sectors: u64,
    disk_last: u64,
}

fn read_sectors<D: BlockIo>(io: &mut D, lba: u64, at: u64, len: u64) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len as usize];
    io.read_exact_at(&mut b, at * lba).map_err(GptError::Io)?;
    Ok(b)
}

/// Reads and checks the primary header and its entry array (signature, sizes, CRC-32s, every
/// location on the disk).
fn read_primary<D: BlockIo>(io: &mut D, lba: u64) -> Result<Table> {
    let size = io.size().map_err(GptError::Io)?;
    let disk_last = (size / lba)
        .checked_sub(1)
        .filter(|&l| l >= 2)
        .ok_or_else(|| bad("the disk is too small to hold a partition table"))?;
    let primary = Header::parse(&read_sectors(io, lba, 1, lba)?, 1)?;
    let entries_len = primary.entries_bytes();
    let entry_sectors = entries_len.div_ceil(lba);
    if !on_disk(disk_last, primary.entries_lba, entry_sectors) {
        return Err(bad("the partition entries lie outside the disk"));
    }
    let entries = read_sectors(io, lba, primary.entries_lba, entries_len)?;
    if crc32fast::hash(&entries) != le32(&primary.raw, 88) {
        return Err(bad("partition entries checksum mismatch"));
    }
    Ok(Table {
        primary,
        entries,
        entry_sectors,
        disk_last,
    })
}

/// Every location read or written must lie on the disk (the header's numbers are only as good
/// as its checksum, which anyone can recompute).
fn on_disk(disk_last: u64, at: u64, sectors: u64) -> bool {
    at >= 1 && at.checked_add(sectors).is_some_and(|e| e <= disk_last + 1)
}

/// One used entry of a partition table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as `sgdisk -i N` and the kernel's `/dev/vdaN`.
    pub number: u32,
    /// The partition type GUID, on-disk bytes.
    pub type_guid: [u8; 16],
    /// The partition's own GUID (PARTUUID), on-disk bytes.
    pub unique_guid: [u8; 16],
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
    /// Attribute bits.
    pub attributes: u64,
    /// The partition name (UTF-16 in the entry).
    pub name: String,
}

impl Partition {
    /// Its byte offset on a disk of `lba`-byte sectors.
    pub fn offset(&self, lba: u64) -> u64 {
        self.first_lba * lba
    }

    /// Its length in bytes.
    pub fn len(&self, lba: u64) -> u64 {
        (self.last_lba + 1 - self.first_lba) * lba
    }

    /// Whether it holds no sector (never true for an entry [`partitions`] returns).
    pub fn is_empty(&self) -> bool {
        self.last_lba < self.first_lba
    }

    /// Whether its type is the EFI system partition's.
    pub fn is_esp(&self) -> bool {
        self.type_guid == guid_bytes(ESP_TYPE)
    }
}

/// The EFI system partition type, as `sgdisk` spells it (type code ef00).
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// The BIOS boot partition type (ef02).
pub const BIOS_BOOT_TYPE: &str = "21686148-6449-6E6F-744E-656564454649";
/// The Linux file system type (8300).
pub const LINUX_FS_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// The Linux LVM type (8e00).
pub const LINUX_LVM_TYPE: &str = "E6D6D379-F507-44C2-A23C-238F2A3DF928";

/// A GUID's on-disk bytes from its text form (the first three fields little-endian). The
/// text must be one of this module's constants or another well-formed GUID.
pub fn guid_bytes(text: &str) -> [u8; 16] {
    let hex: Vec<u8> = text
        .bytes()
        .filter(|b| *b != b'-')
        .map(|c| (c as char).to_digit(16).unwrap_or(0) as u8)
        .collect();
    let mut be = [0u8; 16];
    for (i, b) in be.iter_mut().enumerate() {
        *b = hex.get(2 * i).copied().unwrap_or(0) << 4 | hex.get(2 * i + 1).copied().unwrap_or(0);
    }
    let mut out = be;
    out[..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

/// A GUID's text form (upper case, as `sgdisk` prints it) from its on-disk bytes.
pub fn guid_text(b: &[u8; 16]) -> String {
    let mut be = *b;
    be[..4].reverse();
    be[4..6].reverse();
    be[6..8].reverse();
    integrity::verity::format_uuid(&be).to_ascii_uppercase()
}

/// The used entries of the disk's primary partition table, in entry order. `lba` is the
/// logical sector size (512 for image files).
///
/// # Errors
/// [`GptError::Invalid`] for a missing or damaged primary table, or an entry that ends before
/// it starts or lies outside the disk; I/O errors.
pub fn partitions<D: BlockIo>(io: &mut D, lba: u64) -> Result<Vec<Partition>> {
    let t = read_primary(io, lba)?;
    let es = t.primary.entry_size as usize;
    let mut out = Vec::new();
    for i in 0..t.primary.entries as usize {
        let e = &t.entries[i * es..(i + 1) * es];
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let mut type_guid = [0u8; 16];
        type_guid.copy_from_slice(&e[..16]);
        let mut unique_guid = [0u8; 16];
        unique_guid.copy_from_slice(&e[16..32]);
        let (first_lba, last_lba) = (le64(e, 32), le64(e, 40));
        if last_lba < first_lba || last_lba > t.disk_last || first_lba < 1 {
            return Err(bad(format!(
                "partition {} spans sectors {first_lba}..{last_lba}, outside the disk",
                i + 1
            )));
        }
        let units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        out.push(Partition {
            number: i as u32 + 1,
            type_guid,
            unique_guid,
            first_lba,
            last_lba,
            attributes: le64(e, 48),
            name: String::from_utf16_lossy(&units),
        });
    }
    Ok(out)
}

/// The disk GUID of the primary table (on-disk bytes).
///
/// # Errors
/// As [`partitions`].
pub fn disk_guid<D: BlockIo>(io: &mut D, lba: u64) -> Result<[u8; 16]> {
    let t = read_primary(io, lba)?;
    let mut g = [0u8; 16];
    g.copy_from_slice(&t.primary.raw[56..72]);
    Ok(g)
}

fn grow<D: BlockIo>(io: &mut D, lba: u64, only: Option<u32>) -> Result<Grown> {
    let Table {
        primary,
        entries,
        entry_sectors,
        disk_last,
    } = read_primary(io, lba)?;
    if primary.alt_lba > disk_last {
        return Err(bad(format!(
            "the backup header at sector {} lies past the disk's end ({disk_last})",
            primary.alt_lba
        )));
    }
    let entries_len = primary.entries_bytes();
    let backup = Header::parse(
        &read_sectors(io, lba, primary.alt_lba, lba)?,
        primary.alt_lba,
    )?;
    if !on_disk(disk_last, backup.entries_lba, entry_sectors) {
        return Err(bad("the backup partition entries lie outside the disk"));
    }
    if read_sectors(io, lba, backup.entries_lba, entries_len)? != entries {
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

/// A random version-4 GUID, on-disk bytes.
///
/// # Errors
/// When the system's random source fails.
pub fn random_guid() -> std::io::Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(std::io::Error::other)?;
    // Version 4 in the (little-endian) third field, variant 10 in byte 8.
    b[7] = (b[7] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b)
}

/// Writes a new GPT (protective MBR, primary and backup headers with 128 entries of 128
/// bytes) describing `parts` (as [`partitions`] reads them: a converter keeps the entries it
/// read and adds its own) on a disk of `io.size()` bytes, as `sgdisk -o` then `-n` would.
/// Partitions must not overlap and must lie between sector 2048 and the last usable sector.
///
/// # Errors
/// [`GptError::Invalid`] for overlapping or out-of-range partitions, a number above 128, a
/// name longer than 36 units; I/O errors.
pub fn write_table<D: BlockIo>(
    io: &mut D,
    lba: u64,
    disk_guid: [u8; 16],
    parts: &[Partition],
) -> Result<()> {
    const ENTRIES: u64 = 128;
    const ENTRY: u64 = 128;
    let size = io.size().map_err(GptError::Io)?;
    let disk_last = (size / lba)
        .checked_sub(1)
        .ok_or_else(|| bad("empty disk"))?;
    let entry_sectors = (ENTRIES * ENTRY).div_ceil(lba);
    let first_usable = 2 + entry_sectors;
    let last_usable = disk_last
        .checked_sub(1 + entry_sectors)
        .filter(|&l| l > first_usable)
        .ok_or_else(|| bad("the disk is too small for a partition table"))?;
    let mut entries = vec![0u8; (ENTRIES * ENTRY) as usize];
    let mut sorted: Vec<&Partition> = parts.iter().collect();
    sorted.sort_by_key(|p| p.first_lba);
    for w in sorted.windows(2) {
        if w[0].last_lba >= w[1].first_lba {
            return Err(bad(format!(
                "partitions {} and {} overlap",
                w[0].number, w[1].number
            )));
        }
    }
    for p in parts {
        if p.number == 0 || u64::from(p.number) > ENTRIES {
            return Err(bad(format!("partition number {}", p.number)));
        }
        if p.first_lba < first_usable || p.last_lba > last_usable || p.last_lba < p.first_lba {
            return Err(bad(format!(
                "partition {} ({}..{}) lies outside the usable sectors {first_usable}..{last_usable}",
                p.number, p.first_lba, p.last_lba
            )));
        }
        let units: Vec<u16> = p.name.encode_utf16().collect();
        if units.len() > 36 {
            return Err(bad(format!("partition name {:?} is too long", p.name)));
        }
        let e = &mut entries[(p.number as usize - 1) * ENTRY as usize..][..ENTRY as usize];
        if e.iter().any(|&b| b != 0) {
            return Err(bad(format!("partition number {} given twice", p.number)));
        }
        e[..16].copy_from_slice(&p.type_guid);
        e[16..32].copy_from_slice(&p.unique_guid);
        e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
        for (i, u) in units.iter().enumerate() {
            e[56 + 2 * i..58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
    }
    let crc = crc32fast::hash(&entries);
    let header = |my: u64, alt: u64, entries_lba: u64| {
        let mut h = vec![0u8; lba as usize];
        h[..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&(ENTRY as u32).to_le_bytes());
        h[88..92].copy_from_slice(&crc.to_le_bytes());
        let sum = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&sum.to_le_bytes());
        h
    };
    let mut mbr = vec![0u8; lba as usize];
    let pe = &mut mbr[0x1be..0x1ce];
    pe[1..4].copy_from_slice(&[0, 2, 0]);
    pe[4] = 0xee;
    pe[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    pe[8..12].copy_from_slice(&1u32.to_le_bytes());
    pe[12..16].copy_from_slice(&u32::try_from(disk_last).unwrap_or(u32::MAX).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let write = |io: &mut D, at: u64, b: &[u8]| io.write_all_at(b, at * lba).map_err(GptError::Io);
    let backup_entries = last_usable + 1;
    write(io, backup_entries, &entries)?;
    write(io, disk_last, &header(disk_last, 1, backup_entries))?;
    write(io, 2, &entries)?;
    write(io, 1, &header(1, disk_last, 2))?;
    write(io, 0, &mbr)?;
    io.sync().map_err(GptError::Io)
}
