//! Helpers shared by the benchmarks and the OpenSSL cross-check tests: the keys and buffers
//! both sides use.

/// A deterministic key of `len` bytes (the two XTS halves differ, as XTS requires).
pub fn key(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 29 + 11) as u8).collect()
}

/// A deterministic buffer of `len` bytes.
pub fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}
