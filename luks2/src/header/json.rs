//! The JSON metadata (spec section 3) as typed structures.
//!
//! Known fields are typed; every object also keeps the fields it does not know in `extra`,
//! and tokens are kept whole, so a rewrite preserves what other tools stored.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// An object name in `keyslots`, `tokens`, `segments` or `digests`: a decimal number
/// written without leading zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ObjId(pub(crate) u32);

impl fmt::Display for ObjId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical {
        s.parse().ok()
    } else {
        None
    }
}

impl Serialize for ObjId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ObjId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ObjId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object name that is a decimal number without leading zeros")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ObjId, E> {
                parse_decimal(s)
                    .and_then(|n| u32::try_from(n).ok())
                    .map(ObjId)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(s), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// A 64-bit unsigned number stored as a decimal string (`string-uint64` in the spec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct U64Str(pub(crate) u64);

impl Serialize for U64Str {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U64Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string holding a 64-bit unsigned decimal number")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<U64Str, E> {
                // cryptsetup writes no leading zeros but accepts them; so do we.
                if !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()) {
                    if let Ok(n) = s.parse() {
                        return Ok(U64Str(n));
                    }
                }
                Err(E::invalid_value(de::Unexpected::Str(s), &self))
            }
        }
        d.deserialize_str(V)
    }
}

/// Binary data stored as standard Base64.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", B64.encode(&self.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s.as_bytes())
            .map(Bytes)
            .map_err(|_| de::Error::custom("invalid base64"))
    }
}

/// A segment's size: a byte count or `dynamic` (up to the end of the device).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentSize {
    /// Up to the end of the device.
    Dynamic,
    /// A fixed number of bytes.
    Bytes(u64),
}

impl Serialize for SegmentSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SegmentSize::Dynamic => s.serialize_str("dynamic"),
            SegmentSize::Bytes(n) => s.collect_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for SegmentSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "dynamic" {
            return Ok(SegmentSize::Dynamic);
        }
        let n = U64Str::deserialize(de::value::StrDeserializer::<D::Error>::new(&s))?;
        Ok(SegmentSize::Bytes(n.0))
    }
}

/// An optional member that, when present, must hold a value: cryptsetup's type checks refuse
/// `"flags": null` where serde would take it as absent.
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

/// Fields an object carries that this implementation does not interpret.
pub(crate) type Extra = Map<String, Value>;

/// The whole metadata document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Metadata {
    /// Keyslots by number.
    pub(crate) keyslots: BTreeMap<ObjId, KeyslotJson>,
    /// Tokens by number, kept as raw JSON objects.
    pub(crate) tokens: BTreeMap<ObjId, Map<String, Value>>,
    /// Data segments by number.
    pub(crate) segments: BTreeMap<ObjId, SegmentJson>,
    /// Digests by number.
    pub(crate) digests: BTreeMap<ObjId, DigestJson>,
    /// Global configuration.
    pub(crate) config: ConfigJson,
    /// Unknown top-level members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// A keyslot object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyslotJson {
    /// Keyslot type (`luks2`, `reencrypt`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Size of the stored key in bytes.
    pub(crate) key_size: u32,
    /// Anti-forensic splitter.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) af: Option<AfJson>,
    /// Binary area.
    pub(crate) area: AreaJson,
    /// Key derivation.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) kdf: Option<KdfJson>,
    /// 0 ignore, 1 normal (the default), 2 high.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) priority: Option<u32>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// An `af` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AfJson {
    /// AF type (`luks1`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Number of stripes.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) stripes: Option<u32>,
    /// Diffusion hash.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) hash: Option<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// An `area` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AreaJson {
    /// Area type (`raw`, or a reencryption type).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Offset from the device start in bytes.
    pub(crate) offset: U64Str,
    /// Size in bytes.
    pub(crate) size: U64Str,
    /// Encryption of the area (`raw` only).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) encryption: Option<String>,
    /// Key size of the area encryption (`raw` only).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) key_size: Option<u32>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// A `kdf` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct KdfJson {
    /// `pbkdf2`, `argon2i` or `argon2id`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// PBKDF2 hash.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) hash: Option<String>,
    /// PBKDF2 iterations.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) iterations: Option<u32>,
    /// Argon2 time cost.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) time: Option<u32>,
    /// Argon2 memory cost in KiB.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) memory: Option<u32>,
    /// Argon2 lanes.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) cpus: Option<u32>,
    /// Salt.
    pub(crate) salt: Bytes,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// A segment object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SegmentJson {
    /// `crypt` or `linear`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Offset of the data in bytes.
    pub(crate) offset: U64Str,
    /// Size of the data.
    pub(crate) size: SegmentSize,
    /// IV offset in sectors.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) iv_tweak: Option<U64Str>,
    /// Cipher in dm-crypt notation.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) encryption: Option<String>,
    /// Encryption sector size.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) sector_size: Option<u32>,
    /// Integrity protection (dm-integrity), kept as raw JSON.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) integrity: Option<Map<String, Value>>,
    /// Segment flags.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) flags: Option<Vec<String>>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// A digest object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DigestJson {
    /// Digest type (`pbkdf2`).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Keyslots whose key this digest verifies.
    pub(crate) keyslots: Vec<ObjId>,
    /// Segments encrypted with that key.
    pub(crate) segments: Vec<ObjId>,
    /// PBKDF2 hash.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) hash: Option<String>,
    /// PBKDF2 iterations.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) iterations: Option<u32>,
    /// Salt.
    pub(crate) salt: Bytes,
    /// Digest value.
    pub(crate) digest: Bytes,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// The `config` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ConfigJson {
    /// JSON area size.
    pub(crate) json_size: U64Str,
    /// Keyslots area size.
    pub(crate) keyslots_size: U64Str,
    /// Persistent activation flags.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) flags: Option<Vec<String>>,
    /// Requirements (`{"mandatory": [...]}` as cryptsetup writes them).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) requirements: Option<RequirementsJson>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

/// The `requirements` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct RequirementsJson {
    /// Features that must be understood to activate or change the volume.
    #[serde(default)]
    pub(crate) mandatory: Vec<String>,
    /// Unknown members.
    #[serde(flatten)]
    pub(crate) extra: Extra,
}

impl Metadata {
    /// Parses the JSON text of a header.
    ///
    /// # Errors
    /// [`crate::Error::Metadata`] naming the path of the first malformed field.
    pub(crate) fn from_json(text: &[u8]) -> crate::Result<Self> {
        let de = &mut serde_json::Deserializer::from_slice(text);
        let m: Metadata = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            crate::Error::metadata(
                if path == "." { "json".to_owned() } else { path },
                e.into_inner().to_string(),
            )
        })?;
        // Only whitespace may follow the object.
        de.end()
            .map_err(|e| crate::Error::metadata("json", e.to_string()))?;
        Ok(m)
    }

    /// Compact JSON, as written to disk.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        // Serialising plain data structures to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The mandatory requirements listed in `config`.
    pub(crate) fn requirements(&self) -> &[String] {
        self.config
            .requirements
            .as_ref()
            .map_or(&[], |r| r.mandatory.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_must_be_canonical() {
        for bad in ["\"01\"", "\"-1\"", "\"\"", "\"1a\"", "\"4294967296\""] {
            assert!(serde_json::from_str::<ObjId>(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::from_str::<ObjId>("\"31\"").expect("id"),
            ObjId(31)
        );
    }

    #[test]
    fn u64_strings() {
        assert_eq!(
            serde_json::from_str::<U64Str>("\"18446744073709551615\"")
                .expect("max")
                .0,
            u64::MAX
        );
        for bad in ["\"18446744073709551616\"", "\"-1\"", "\" 1\"", "1", "\"\""] {
            assert!(serde_json::from_str::<U64Str>(bad).is_err(), "{bad}");
        }
    }
}
