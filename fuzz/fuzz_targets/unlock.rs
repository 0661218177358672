//! Keyslot unlock with hostile KDF and AF parameters: `[json length: u16 LE][json][keyslots area]`,
//! with a cheap passphrase and tight KDF caps.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (json, area) = data[2..].split_at(n);
    let Ok(mut d) = luks2::Luks2::open(common::device_with_json(json, area)) else {
        return;
    };
    let limits = common::tight_limits();
    for slot in [None, Some(0), Some(1)] {
        let _ = d.unlock(&luks2::Passphrase::from_slice(b"fuzz"), slot, &limits);
    }
});
