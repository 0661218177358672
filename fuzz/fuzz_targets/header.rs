//! Raw device bytes: binary headers, checksums, both copies, JSON, validation.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = luks2::MemoryDevice::from_vec(data.to_vec());
    if let Ok(d) = luks2::Luks2::open(dev) {
        common::check_opened(d);
    }
});
