//! Fuzzed JSON metadata inside a correctly sealed header: parse, validate, dump, re-encode.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = luks2::Luks2::open(common::device_with_json(data, &[])) {
        common::check_opened(d);
    }
});
