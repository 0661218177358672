//! dm table parameter parsers: anything that parses must print back to text that parses to
//! the same value.
#![no_main]

use dmioctl::target::{crypt::Crypt, integrity::Integrity, linear::Linear, verity::Verity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Crypt::parse(s) {
        assert_eq!(Crypt::parse(&c.params()).expect("crypt re-parse"), c);
    }
    if let Ok(v) = s.parse::<Integrity>() {
        assert_eq!(
            v.to_string()
                .parse::<Integrity>()
                .expect("integrity re-parse"),
            v
        );
    }
    if let Ok(v) = s.parse::<Verity>() {
        assert_eq!(v.to_string().parse::<Verity>().expect("verity re-parse"), v);
    }
    if let Ok(v) = s.parse::<Linear>() {
        assert_eq!(v.to_string().parse::<Linear>().expect("linear re-parse"), v);
    }
});
