//! The few protocol-buffer messages of the KMS instance API (`dkms-gcs`), encoded and decoded
//! by hand: field numbers from the published `api.proto`.
//!
//! ```text
//! GetSecretValueRequest  { string SecretName = 1; string VersionStage = 2;
//!                          string VersionId = 3; bool FetchExtendedConfig = 4; }
//! GetSecretValueResponse { string SecretName = 1; string SecretType = 2;
//!                          string SecretData = 3; string SecretDataType = 4; ...
//!                          string RequestId = 8; ... }
//! Error                  { int32 StatusCode = 1; string ErrorCode = 2;
//!                          string ErrorMessage = 3; string RequestId = 4; }
//! ```

use std::fmt;

/// A message that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed protocol-buffer message")
    }
}

/// One field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed(u64),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited field (proto3: an empty one is left out).
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, value: &[u8]) {
    if value.is_empty() {
        return;
    }
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// A bounds-checked reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(Malformed)?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], Malformed> {
        let n = usize::try_from(n).map_err(|_| Malformed)?;
        if n > self.buf.len() {
            return Err(Malformed);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn fixed(&mut self, n: u64) -> Result<u64, Malformed> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// Every field of `msg` in order, or [`Malformed`] if any is cut short or uses a group.
///
/// # Errors
/// [`Malformed`] for truncated input, over-long varints, field number 0 or wire types 3, 4,
/// 6 and 7.
pub(crate) fn fields(msg: &[u8]) -> Result<Vec<(u32, Value<'_>)>, Malformed> {
    let mut r = Reader { buf: msg };
    let mut out = Vec::new();
    while !r.buf.is_empty() {
        let key = r.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        if number == 0 {
            return Err(Malformed);
        }
        let value = match key & 7 {
            0 => Value::Varint(r.varint()?),
            1 => Value::Fixed(r.fixed(8)?),
            2 => {
                let len = r.varint()?;
                Value::Bytes(r.take(len)?)
            }
            5 => Value::Fixed(r.fixed(4)?),
            _ => return Err(Malformed),
        };
        out.push((number, value));
    }
    Ok(out)
}

/// The last length-delimited field `number` (proto3: the last one wins), or empty.
///
/// # Errors
/// [`Malformed`] as [`fields`], or when the field has another wire type.
pub(crate) fn bytes_field(msg: &[u8], number: u32) -> Result<&[u8], Malformed> {
    let mut found: &[u8] = &[];
    for (n, v) in fields(msg)? {
        match (n == number, v) {
            (true, Value::Bytes(b)) => found = b,
            (true, _) => return Err(Malformed),
            _ => {}
        }
    }
    Ok(found)
}

/// A string field as text (lossy: only shown in messages).
pub(crate) fn text_field(msg: &[u8], number: u32) -> String {
    bytes_field(msg, number)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes decode or are refused without panicking; what encodes decodes back.
        #[test]
        fn hostile_messages_do_not_panic(raw in proptest::collection::vec(any::<u8>(), 0..256),
                                         number in 1u32..100_000, value in proptest::collection::vec(any::<u8>(), 1..300)) {
            let _ = fields(&raw);
            let _ = bytes_field(&raw, 3);
            let mut m = Vec::new();
            put_bytes(&mut m, number, &value);
            prop_assert_eq!(bytes_field(&m, number), Ok(&value[..]));
        }
    }

    #[test]
    fn encodes_like_protoc() {
        // GetSecretValueRequest{SecretName: "abc", VersionStage: ""}
        let mut m = Vec::new();
        put_bytes(&mut m, 1, b"abc");
        put_bytes(&mut m, 2, b"");
        assert_eq!(m, [0x0a, 3, b'a', b'b', b'c']);
        let long = vec![b'x'; 300];
        let mut m = Vec::new();
        put_bytes(&mut m, 13, &long);
        assert_eq!(&m[..3], &[0x6a, 0xac, 0x02]);
    }

    #[test]
    fn decodes_and_skips_unknown_fields() {
        let mut m = vec![0x08, 0x96, 0x01]; // field 1 varint 150
        m.extend_from_slice(&[0x11, 1, 0, 0, 0, 0, 0, 0, 0]); // field 2 fixed64
        m.extend_from_slice(&[0x1d, 1, 2, 3, 4]); // field 3 fixed32
        put_bytes(&mut m, 3 + 1, b"first");
        put_bytes(&mut m, 4, b"last");
        assert_eq!(fields(&m).map(|f| f[0]), Ok((1, Value::Varint(150))));
        assert_eq!(bytes_field(&m, 4), Ok(&b"last"[..]));
        assert_eq!(bytes_field(&m, 9), Ok(&b""[..]));
        assert_eq!(bytes_field(&m, 1), Err(Malformed));
        assert_eq!(text_field(&m, 4), "last");
    }

    #[test]
    fn rejects_hostile_input() {
        for bad in [
            &[0x0a, 5, b'a'][..],                      // cut short
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f][..], // length past the end
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
            &[0x0b][..],       // start group
            &[0x00, 0x01][..], // field 0
            &[0x11, 1, 2][..], // fixed64 cut short
        ] {
            assert_eq!(fields(bad), Err(Malformed), "{bad:?}");
        }
    }
}
