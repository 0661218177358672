//! HTTP responses from a key service: any bytes parse to a response or to `None`, never a
//! panic, and a body is never longer than what was received.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((status, body)) = keyprovider::fuzzing::http_response(data) {
        assert!(body <= data.len());
        assert!((100..=599).contains(&status), "status {status}");
    }
});
