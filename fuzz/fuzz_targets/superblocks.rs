//! dm-integrity and dm-verity superblocks from a hostile disk: parsing never panics, what
//! parses re-encodes to the same value, and the kernel's layout computation never panics or
//! overflows for any parameters.
#![no_main]

use integrity::dm_integrity::{IntegrityParams, Superblock};
use integrity::verity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sb) = Superblock::parse(data) {
        assert_eq!(Superblock::parse(&sb.encode()).expect("re-parse"), sb);
        let _ = (sb.required_sectors(), sb.journal_area_sectors());
    }
    if let Ok(sb) = verity::Superblock::parse(data) {
        assert_eq!(verity::Superblock::parse(&sb.encode()).expect("re-parse"), sb);
        if let Ok(p) = sb.params(0) {
            let _ = (p.hash_area_size(), p.hash_blocks(), p.hash_start_block());
        }
    }
    if data.len() >= 20 {
        let u = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let mut p = IntegrityParams::new(u16::from_le_bytes([data[0], data[1]]));
        p.block_size = 512 << (data[2] % 5);
        p.journal_sectors = (data[3] & 1 == 1).then(|| u(4));
        p.interleave_sectors = (data[3] & 2 == 2).then(|| u(8));
        p.fix_padding = data[3] & 4 == 4;
        p.journal_mac = data[3] & 8 == 8;
        let device = u64::from(u(12)) << (data[3] >> 4);
        if let Ok(sb) = Superblock::new(&p, device, u64::from(u(16) % 65536)) {
            assert!(sb.provided_data_sectors > 0);
            let required = sb.required_sectors().expect("a layout that fits");
            assert!(u64::from(u(16) % 65536) + required <= device);
            assert_eq!(Superblock::parse(&sb.encode()).expect("own superblock"), sb);
        }
    }
});
