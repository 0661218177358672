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
        format(MemoryDevice::new(3 << 20), &o, b"fuzz")
            .expect("format")
            .0
            .into_inner()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(token)) = serde_json::from_slice(data) else {
        return;
    };
    let mut d = Luks2::open(base().clone()).expect("base");
    if let Ok(id) = d.import_token(token.clone(), None, false) {
        let d = Luks2::open(d.into_inner()).expect("reopen after import");
        assert_eq!(d.token(id).expect("token"), &token);
    }
});
