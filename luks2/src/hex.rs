//! Hex text, the one encoder and decoder the workspace uses (digests, salts, UUIDs, dumps).

/// An odd-length or non-hex string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHex;

impl std::fmt::Display for NotHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an even number of hex digits")
    }
}

impl std::error::Error for NotHex {}

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The bytes of a hex string (either case).
///
/// # Errors
/// [`NotHex`] for an odd length or a character that is not a hex digit.
pub fn decode(s: &str) -> Result<Vec<u8>, NotHex> {
    let digit = |c: u8| char::from(c).to_digit(16).ok_or(NotHex);
    if !s.len().is_multiple_of(2) {
        return Err(NotHex);
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok((digit(p[0])? << 4 | digit(p[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(encode(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(decode("00AB7f"), Ok(vec![0x00, 0xab, 0x7f]));
        assert_eq!(decode(""), Ok(vec![]));
        for bad in ["0", "0g", "é0", "+1"] {
            assert_eq!(decode(bad), Err(NotHex), "{bad}");
        }
    }
}
