//! The binary parts of a physical volume: the label (`LABELONE` in one of the first four
//! sectors) with its PV header, and the metadata area header whose ring buffer holds the
//! metadata text. All integers little-endian; checksums are lvm2's CRC-32.

use luks2::BlockIo;

use crate::{Error, Result};

/// A sector.
pub const SECTOR: u64 = 512;
/// lvm2's CRC seed.
const INITIAL_CRC: u32 = 0xf597_a6cf;
const LABEL_ID: &[u8; 8] = b"LABELONE";
const LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Sectors searched for the label.
const LABEL_SCAN_SECTORS: u64 = 4;
const MDA_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// The metadata area header's size; the ring starts after it.
const MDA_HEADER_SIZE: u64 = 512;
/// Entries read from one disk location list at most (a sector holds fewer).
const MAX_LOCNS: usize = 16;
/// The largest metadata text read: far above what any volume group writes (a few KiB per
/// LV), so that a hostile label cannot make a reader allocate gigabytes.
const MAX_TEXT: u64 = 64 << 20;
/// `RAW_LOCN_IGNORED`: the area is kept but not used (`pvchange --metadataignore y`).
const RAW_LOCN_IGNORED: u32 = 1;

/// lvm2's CRC-32 (reflected, polynomial 0xEDB88320, seeded, no final inversion).
pub(crate) fn crc(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// A byte range on the PV (`size` 0 for a data area means "to the end").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskLocn {
    /// Offset in bytes from the PV's start.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The label and PV header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvLabel {
    /// The sector the label is in.
    pub sector: u64,
    /// The PV's UUID, 32 characters without dashes.
    pub pv_uuid: String,
    /// The device size when the PV was created, in bytes.
    pub device_size: u64,
    /// Data areas (the first one's offset is pe_start).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas.
    pub metadata_areas: Vec<DiskLocn>,
}

/// Reads the label from the first four sectors.
///
/// # Errors
/// [`Error::NotPv`] without a label; [`Error::BadLabel`] for one that fails its checks.
pub fn read_label<D: BlockIo>(io: &mut D) -> Result<PvLabel> {
    let mut buf = [0u8; SECTOR as usize];
    for sector in 0..LABEL_SCAN_SECTORS {
        if io.read_exact_at(&mut buf, sector * SECTOR).is_err() || &buf[..8] != LABEL_ID {
            continue;
        }
        return parse_label(&buf, sector);
    }
    Err(Error::NotPv)
}

fn parse_label(b: &[u8; SECTOR as usize], sector: u64) -> Result<PvLabel> {
    let bad = |r: &str| Error::BadLabel(r.to_owned());
    if le64(b, 8) != sector {
        return Err(bad("its sector number is not the sector it is in"));
    }
    if crc(INITIAL_CRC, &b[20..]) != le32(b, 16) {
        return Err(bad("checksum mismatch"));
    }
    if &b[24..32] != LABEL_TYPE {
        return Err(bad("type is not LVM2 001"));
    }
    let off = le32(b, 20) as usize;
    // The PV header: 32-byte UUID, device size, then two zero-terminated location lists.
    if !(32..=SECTOR as usize - 40 - 32).contains(&off) {
        return Err(bad("PV header offset outside the label sector"));
    }
    let uuid = &b[off..off + 32];
    if !uuid
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || b"!#".contains(c))
    {
        return Err(bad("PV UUID is not 32 id characters"));
    }
    let mut at = off + 40;
    let list = |at: &mut usize| -> Result<Vec<DiskLocn>> {
        let mut v = Vec::new();
        loop {
            if *at + 16 > SECTOR as usize || v.len() > MAX_LOCNS {
                return Err(bad("disk location list runs past the label sector"));
            }
            let l = DiskLocn {
                offset: le64(b, *at),
                size: le64(b, *at + 8),
            };
            *at += 16;
            if l.offset == 0 {
                return Ok(v);
            }
            v.push(l);
        }
    };
    let data_areas = list(&mut at)?;
    let metadata_areas = list(&mut at)?;
    Ok(PvLabel {
        sector,
        pv_uuid: String::from_utf8_lossy(uuid).into_owned(),
        device_size: le64(b, off + 32),
        data_areas,
        metadata_areas,
    })
}

/// Writes a new label in sector 1 for a PV of `device_size` bytes with one data area from
/// `pe_start` bytes and one metadata area at 4096 bytes up to `pe_start` (what `pvcreate`
/// writes by default), and the empty metadata area's header. Returns the label and header.
///
/// # Errors
/// [`Error::BadLabel`] for a `pe_start` that leaves no room for a metadata area; I/O errors.
pub fn write_new_label<D: BlockIo>(
    io: &mut D,
    pv_uuid: &str,
    device_size: u64,
    pe_start: u64,
) -> Result<(PvLabel, MdaHeader)> {
    const MDA_START: u64 = 4096;
    if pe_start < MDA_START + 4 * MDA_HEADER_SIZE || pv_uuid.len() != 32 {
        return Err(Error::BadLabel(format!(
            "no room for a metadata area before {pe_start}"
        )));
    }
    let mda = DiskLocn {
        offset: MDA_START,
        size: pe_start - MDA_START,
    };
    let mut b = [0u8; SECTOR as usize];
    b[..8].copy_from_slice(LABEL_ID);
    b[8..16].copy_from_slice(&1u64.to_le_bytes());
    b[20..24].copy_from_slice(&32u32.to_le_bytes());
    b[24..32].copy_from_slice(LABEL_TYPE);
    b[32..64].copy_from_slice(pv_uuid.as_bytes());
    b[64..72].copy_from_slice(&device_size.to_le_bytes());
    // Data areas, metadata areas, each list ended by a zero entry; then the extension
    // (version 2, flags PV_EXT_USED: the PV is in a VG) with an empty bootloader-area list.
    let mut at = 72;
    for l in [(pe_start, 0), (0, 0), (mda.offset, mda.size), (0, 0)] {
        b[at..at + 8].copy_from_slice(&l.0.to_le_bytes());
        b[at + 8..at + 16].copy_from_slice(&l.1.to_le_bytes());
        at += 16;
    }
    b[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    b[at + 4..at + 8].copy_from_slice(&1u32.to_le_bytes());
    let sum = crc(INITIAL_CRC, &b[20..]);
    b[16..20].copy_from_slice(&sum.to_le_bytes());
    // Sector 0 and the rest of the label area are cleared (no stale label or signature).
    io.write_all_at(&[0u8; 4096], 0)
        .map_err(Error::io("writing the PV label"))?;
    io.write_all_at(&b, SECTOR)
        .map_err(Error::io("writing the PV label"))?;
    let empty = MdaHeader {
        start: mda.offset,
        size: mda.size,
        committed: RawLocn::default(),
    };
    let label = parse_label(&b, 1)?;
    Ok((label, empty))
}

/// Where one copy of the metadata text is, relative to its area's start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawLocn {
    /// Offset from the metadata area's start.
    pub offset: u64,
    /// Bytes of text (lvm2 counts a terminating NUL).
    pub size: u64,
    /// CRC of the text.
    pub checksum: u32,
    /// Flags (bit 1: the area is ignored).
    pub flags: u32,
}

/// A metadata area's header: where it is and where its committed text is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdaHeader {
    /// The area's absolute offset.
    pub start: u64,
    /// The area's size, header included.
    pub size: u64,
    /// The committed text (slot 0); slot 1 (precommitted) is cleared on every write here.
    pub committed: RawLocn,
}

impl MdaHeader {
    /// The largest text the area takes (two copies must always fit, as lvm2 requires).
    pub fn max_text(&self) -> u64 {
        ((self.size - MDA_HEADER_SIZE) / 2)
            .saturating_sub(MDA_HEADER_SIZE)
            .min(MAX_TEXT)
    }

    /// Whether lvm2 was told to ignore the area (it is neither read nor written then).
    pub fn is_ignored(&self) -> bool {
        self.committed.flags & RAW_LOCN_IGNORED != 0
    }
}

/// Reads and checks the metadata area header at `area`.
///
/// # Errors
/// [`Error::BadMetadataArea`] for a wrong checksum, magic, version, start, or a text location
/// outside the area.
pub fn read_mda_header<D: BlockIo>(io: &mut D, area: DiskLocn) -> Result<MdaHeader> {
    let bad = |r: String| Error::BadMetadataArea(r);
    let mut b = [0u8; MDA_HEADER_SIZE as usize];
    io.read_exact_at(&mut b, area.offset)
        .map_err(Error::io("reading a metadata area header"))?;
    if crc(INITIAL_CRC, &b[4..]) != le32(&b, 0) {
        return Err(bad(format!("header checksum mismatch at {}", area.offset)));
    }
    if &b[4..20] != MDA_MAGIC || le32(&b, 20) != 1 {
        return Err(bad(format!("no version 1 header at {}", area.offset)));
    }
    let (start, size) = (le64(&b, 24), le64(&b, 32));
    if start != area.offset || size != area.size || size < 4 * MDA_HEADER_SIZE {
        return Err(bad(format!(
            "header says {start}+{size}, the label says {}+{}",
            area.offset, area.size
        )));
    }
    let h = MdaHeader {
        start,
        size,
        committed: RawLocn {
            offset: le64(&b, 40),
            size: le64(&b, 48),
            checksum: le32(&b, 56),
            flags: le32(&b, 60),
        },
    };
    let c = h.committed;
    if c.size != 0
        && (c.offset < MDA_HEADER_SIZE
            || c.offset >= size
            || c.size > h.max_text() + MDA_HEADER_SIZE)
    {
        return Err(bad(format!(
            "text at {}+{} does not fit the {size}-byte area",
            c.offset, c.size
        )));
    }
    Ok(h)
}

/// The committed metadata text of an area (empty when it holds none yet), checksum checked.
/// A copy that runs past the area's end continues after the header (the ring wraps).
///
/// # Errors
/// [`Error::BadMetadataArea`] for a checksum mismatch; I/O errors.
pub fn read_text<D: BlockIo>(io: &mut D, h: &MdaHeader) -> Result<Vec<u8>> {
    let c = h.committed;
    if c.size == 0 {
        return Ok(Vec::new());
    }
    let mut text = vec![0u8; c.size as usize];
    let first = c.size.min(h.size - c.offset) as usize;
    io.read_exact_at(&mut text[..first], h.start + c.offset)
        .map_err(Error::io("reading metadata text"))?;
    io.read_exact_at(&mut text[first..], h.start + MDA_HEADER_SIZE)
        .map_err(Error::io("reading metadata text"))?;
    if crc(INITIAL_CRC, &text) != c.checksum {
        return Err(Error::BadMetadataArea(
            "metadata text checksum mismatch".into(),
        ));
    }
    Ok(text)
}

/// Writes `text` as the area's new committed metadata, as lvm2 does: into the ring after the
/// current copy (which stays intact), then the header pointing to it. Returns the new header.
///
/// # Errors
/// [`Error::MetadataTooLarge`]; I/O errors.
pub fn write_text<D: BlockIo>(io: &mut D, h: &MdaHeader, text: &[u8]) -> Result<MdaHeader> {
    let len = text.len() as u64;
    if len > h.max_text() {
        return Err(Error::MetadataTooLarge {
            size: len,
            max: h.max_text(),
        });
    }
    let old = h.committed;
    let mut at = MDA_HEADER_SIZE;
    if old.size != 0 {
        let last = if old.offset + old.size > h.size {
            MDA_HEADER_SIZE + (old.offset + old.size - h.size) - 1
        } else {
            old.offset + old.size - 1
        };
        let next = (last + 1).div_ceil(SECTOR) * SECTOR;
        if h.size - last >= SECTOR && next <= h.size - MDA_HEADER_SIZE {
            at = next;
        }
    }
    let first = len.min(h.size - at) as usize;
    let pieces = [(at, &text[..first]), (MDA_HEADER_SIZE, &text[first..])];
    for (off, piece) in pieces {
        if piece.is_empty() {
            continue;
        }
        let mut padded = piece.to_vec();
        padded.resize(piece.len().div_ceil(SECTOR as usize) * SECTOR as usize, 0);
        io.write_all_at(&padded, h.start + off)
            .map_err(Error::io("writing metadata text"))?;
    }
    io.sync().map_err(Error::io("syncing metadata text"))?;
    let new = MdaHeader {
        committed: RawLocn {
            offset: at,
            size: len,
            checksum: crc(INITIAL_CRC, text),
            flags: old.flags,
        },
        ..h.clone()
    };
    let mut b = [0u8; MDA_HEADER_SIZE as usize];
    b[4..20].copy_from_slice(MDA_MAGIC);
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..32].copy_from_slice(&new.start.to_le_bytes());
    b[32..40].copy_from_slice(&new.size.to_le_bytes());
    b[40..48].copy_from_slice(&new.committed.offset.to_le_bytes());
    b[48..56].copy_from_slice(&new.committed.size.to_le_bytes());
    b[56..60].copy_from_slice(&new.committed.checksum.to_le_bytes());
    b[60..64].copy_from_slice(&new.committed.flags.to_le_bytes());
    let sum = crc(INITIAL_CRC, &b[4..]);
    b[..4].copy_from_slice(&sum.to_le_bytes());
    io.write_all_at(&b, new.start)
        .map_err(Error::io("writing a metadata area header"))?;
    io.sync()
        .map_err(Error::io("syncing a metadata area header"))?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_lvm2s() {
        // zlib's CRC-32 with lvm2's seed folded in: crc32(data, seed ^ !0) ^ !0.
        assert_eq!(crc(0xffff_ffff, b"123456789") ^ 0xffff_ffff, 0xcbf4_3926);
        assert_eq!(crc(INITIAL_CRC, b""), INITIAL_CRC);
    }

    fn area(io: &mut luks2::MemoryDevice) -> MdaHeader {
        let h = MdaHeader {
            start: 4096,
            size: 8192,
            committed: RawLocn::default(),
        };
        // An empty area as pvcreate leaves it.
        write_text(io, &h, b"").expect("empty")
    }

    #[test]
    fn the_ring_keeps_the_old_copy_and_wraps() {
        let mut io = luks2::MemoryDevice::new(16384);
        let mut h = area(&mut io);
        let mut seen = Vec::new();
        for i in 0..40u8 {
            let text = vec![b'a' + i % 26; 700 + 97 * usize::from(i % 13)];
            let old = read_text(&mut io, &h).expect("old");
            let new = write_text(&mut io, &h, &text).expect("write");
            // The old copy is intact until the header moved on (it is never overwritten).
            assert_eq!(read_text(&mut io, &h).expect("old again"), old);
            h = read_mda_header(
                &mut io,
                DiskLocn {
                    offset: 4096,
                    size: 8192,
                },
            )
            .expect("header");
            assert_eq!(h, new);
            assert_eq!(read_text(&mut io, &h).expect("new"), text);
            seen.push(h.committed.offset + h.committed.size > h.size);
        }
        assert!(seen.iter().any(|&w| w), "no copy wrapped");
        let big = vec![b'x'; h.max_text() as usize + 1];
        assert!(matches!(
            write_text(&mut io, &h, &big),
            Err(Error::MetadataTooLarge { .. })
        ));
    }
}
