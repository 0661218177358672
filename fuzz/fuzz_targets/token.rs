//! Token import: fuzzed JSON objects into a valid header; whatever is accepted must survive a
//! rewrite and read back unchanged.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use luks2::{format, FormatOptions, Luks2, MemoryDevice, PbkdfParams};

fn base() -> &'static MemoryDevice {
    static BASE: OnceLock<MemoryDevice> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut o = FormatOptions::default();
        o.keyslot.pbkdf = PbkdfParams::insecure_fast();
        o.digest_iterations = Some(1000);
        o.keyslots_size = Some(1 << 20);
        o.data_offset = Some(2 << 20);
        format(MemoryDevice::new(3 << 20), &o, &luks2::Passphrase::from_slice(b"fuzz"))
            .expect("format")
            .0
            .into_inner()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut d = Luks2::open(base().clone()).expect("base");
    if let Ok(id) = d.import_token_json(text, None, false) {
        let d = Luks2::open(d.into_inner()).expect("reopen after import");
        let back: serde_json::Value = serde_json::from_str(&d.token_json(id).expect("token"))
            .expect("exported JSON");
        let sent: serde_json::Value = serde_json::from_str(text).expect("imported JSON");
        assert_eq!(back, sent);
    }
});
