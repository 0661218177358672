//! Volume files: any text parses to a volume or to one error line naming the file; what
//! parses satisfies the checks the commands rely on.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/etc/cryptpilot/volumes/fuzz.toml");
    match volumes::parse_volume(file, text) {
        Ok(v) => {
            assert!(!v.name.as_str().is_empty() && !v.name.as_str().contains('/'));
            assert!(v.dev.is_absolute());
        }
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("/etc/cryptpilot/volumes/fuzz.toml"));
            assert!(!line.contains('\n'), "{line}");
            if let Some(l) = e.line {
                assert!(l >= 1 && l <= text.lines().count().max(1) + 1, "line {l}");
            }
        }
    }
});
