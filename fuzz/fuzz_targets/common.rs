//! Shared by the fuzz targets: wrapping fuzzed JSON into a correctly sealed LUKS2 header, so
//! the fuzzer explores the metadata parser and validator instead of the checksum.
#![allow(dead_code)]

use luks2::{KdfLimits, Luks2, MemoryDevice};
use sha2::{Digest, Sha256};

pub const HDR: usize = 16384;
/// Where the keyslots area starts for a 16 KiB header.
pub const AREA: usize = 2 * HDR;

/// Costs small enough that a fuzzed keyslot unlocks in about a millisecond.
pub fn tight_limits() -> KdfLimits {
    KdfLimits {
        max_memory_kib: 256,
        max_cpus: 1,
        max_duration: std::time::Duration::from_millis(1),
    }
}

fn seal(area: &mut [u8], magic: &[u8; 6], offset: u64) {
    area[..6].copy_from_slice(magic);
    area[6..8].copy_from_slice(&2u16.to_be_bytes());
    area[8..16].copy_from_slice(&(HDR as u64).to_be_bytes());
    area[16..24].copy_from_slice(&1u64.to_be_bytes());
    area[72..78].copy_from_slice(b"sha256");
    area[168..204].copy_from_slice(b"01234567-89ab-4def-8123-456789abcdef");
    area[256..264].copy_from_slice(&offset.to_be_bytes());
    area[448..512].fill(0);
    let sum = Sha256::digest(&*area);
    area[448..480].copy_from_slice(&sum);
}

/// A device whose two header copies carry `json` (cut to fit) with valid checksums, followed
/// by `keyslots` bytes at the start of the keyslots area.
pub fn device_with_json(json: &[u8], keyslots: &[u8]) -> MemoryDevice {
    let json = &json[..json.len().min(HDR - 4096 - 1)];
    let mut dev = vec![0u8; AREA + keyslots.len().max(4096)];
    for (copy, magic) in [(0usize, b"LUKS\xba\xbe"), (1, b"SKUL\xba\xbe")] {
        let off = copy * HDR;
        let area = &mut dev[off..off + HDR];
        area[4096..4096 + json.len()].copy_from_slice(json);
        seal(area, magic, off as u64);
    }
    dev[AREA..AREA + keyslots.len()].copy_from_slice(keyslots);
    MemoryDevice::from_vec(dev)
}

/// Invariants of any header that opens: the metadata re-parses to itself, the dump text is
/// produced, a conversion to LUKS1 (if it is accepted) gives a LUKS1 header that re-parses,
/// and a repair (if one is due) leaves a header that opens to the same metadata.
pub fn check_opened(mut d: Luks2<MemoryDevice>) {
    let meta = d.header().metadata_json();
    assert!(d.header().metadata_round_trips(), "metadata does not round-trip");
    let _ = luks2::dump_text(d.header());
    let _ = d.header().activation();
    let _ = d.header().keyring_tokens();
    // The conversion to LUKS1 checks everything before writing: what it accepts opens as a
    // LUKS1 header that re-parses to itself.
    let bytes = d.io_mut().as_slice().to_vec();
    if let Ok(l1) = Luks2::open(MemoryDevice::from_vec(bytes)).and_then(|c| c.convert_to_luks1()) {
        let h = l1.header().clone();
        assert_eq!(
            luks2::Luks1Header::parse(&h.to_bytes()).expect("a converted header re-parses"),
            h
        );
    }
    if d.repair().is_ok() {
        let d2 = Luks2::open(d.into_inner()).expect("repaired header opens");
        assert_eq!(d2.header().metadata_json(), meta);
    }
}
