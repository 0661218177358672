//! LUKS1 devices: the 592-byte header's checks, the dump, unlock with hostile iterations and
//! offsets, and the in-place conversion to LUKS2 (whose result must open and round-trip).
//! The input is the device's first bytes; the rest of a 2 MiB device is zeros.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dev = data.to_vec();
    dev.resize(dev.len().max(2 << 20), 0);
    let Ok(mut d) = luks2::Luks1::open(luks2::MemoryDevice::from_vec(dev)) else {
        return;
    };
    let h = d.header().clone();
    assert_eq!(
        luks2::Luks1Header::parse(&h.to_bytes()).expect("a parsed header re-parses"),
        h
    );
    let _ = h.dump_text("fuzz");
    let _ = h.activation();
    let _ = d.unlock(
        &luks2::Passphrase::from_slice(b"fuzz"),
        None,
        &common::tight_limits(),
    );
    if let Ok(converted) = d.convert_to_luks2() {
        common::check_opened(converted);
    }
});
