//! The 4096-byte binary header (spec section 2.1) and its checksum.

use crate::error::Copy;
use crate::hash::HashAlg;
use crate::{Error, Result};

/// Size of the binary header sector.
pub const BINARY_SIZE: usize = 4096;
/// Primary header magic.
pub(crate) const MAGIC_1ST: [u8; 6] = *b"LUKS\xba\xbe";
/// Secondary header magic.
pub(crate) const MAGIC_2ND: [u8; 6] = *b"SKUL\xba\xbe";
/// The allowed header sizes (binary header plus JSON area); spec table 1.
pub const HDR_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];

const LABEL_LEN: usize = 48;
const CSUM_ALG_LEN: usize = 32;
pub(crate) const SALT_LEN: usize = 64;
const UUID_LEN: usize = 40;
const CSUM_OFFSET: usize = 448;
const CSUM_LEN: usize = 64;

/// The fields of one binary header copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BinaryHeader {
    pub(crate) hdr_size: u64,
    pub(crate) seqid: u64,
    /// Raw bytes: a label need not be UTF-8, and a rewrite keeps it byte for byte.
    pub(crate) label: Vec<u8>,
    pub(crate) csum_alg: HashAlg,
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) uuid: String,
    pub(crate) subsystem: Vec<u8>,
    pub(crate) hdr_offset: u64,
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// A NUL-terminated string field; the terminator must lie inside the field.
/// The bytes of a NUL-terminated field.
fn c_bytes<'a>(b: &'a [u8], name: &str) -> std::result::Result<&'a [u8], String> {
    let end = b
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| format!("{name} is not NUL-terminated"))?;
    Ok(&b[..end])
}

fn c_string(b: &[u8], name: &str) -> std::result::Result<String, String> {
    Ok(String::from_utf8_lossy(c_bytes(b, name)?).into_owned())
}

fn put_c_string(dst: &mut [u8], s: &[u8]) {
    dst[..s.len()].copy_from_slice(s);
}

/// Checks that `s` fits a C string field of `len` bytes (room for the terminator).
pub(crate) fn check_field(name: &'static str, s: &str, len: usize) -> Result<()> {
    if s.len() >= len {
        return Err(Error::invalid(
            name,
            format!("longer than {} bytes", len - 1),
        ));
    }
    if s.bytes().any(|c| c == 0) {
        return Err(Error::invalid(name, "contains a NUL byte"));
    }
    Ok(())
}

/// Longest label or subsystem, in bytes.
pub const LABEL_MAX: usize = LABEL_LEN - 1;

impl BinaryHeader {
    /// Parses the binary header found at `offset` as copy `copy`; the checksum is checked
    /// separately by [`verify_checksum`] once the JSON area is read.
    pub(crate) fn parse(buf: &[u8], copy: Copy, offset: u64) -> Result<Self> {
        let bad = |reason: String| Error::BadBinaryHeader { copy, reason };
        let magic = match copy {
            Copy::Primary => MAGIC_1ST,
            Copy::Secondary => MAGIC_2ND,
        };
        if buf[..6] != magic {
            return Err(bad("bad magic".into()));
        }
        let version = u16::from_be_bytes([buf[6], buf[7]]);
        if version != 2 {
            return Err(bad(format!("version {version} is not 2")));
        }
        let hdr_size = be64(buf, 8);
        if !HDR_SIZES.contains(&hdr_size) {
            return Err(bad(format!(
                "header size {hdr_size} is not an allowed size"
            )));
        }
        let hdr_offset = be64(buf, 256);
        if hdr_offset != offset {
            return Err(bad(format!(
                "header offset field {hdr_offset} does not match its position {offset}"
            )));
        }
        if copy == Copy::Secondary && hdr_offset != hdr_size {
            return Err(bad("secondary header not right after the primary".into()));
        }
        let csum_name = c_string(&buf[72..72 + CSUM_ALG_LEN], "checksum algorithm").map_err(bad)?;
        let csum_alg = HashAlg::parse(&csum_name)
            .map_err(|_| bad(format!("unsupported checksum algorithm '{csum_name}'")))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&buf[104..104 + SALT_LEN]);
        Ok(Self {
            hdr_size,
            seqid: be64(buf, 16),
            label: c_bytes(&buf[24..24 + LABEL_LEN], "label")
                .map_err(bad)?
                .to_vec(),
            csum_alg,
            salt,
            uuid: c_string(&buf[168..168 + UUID_LEN], "uuid").map_err(bad)?,
            subsystem: c_bytes(&buf[208..208 + LABEL_LEN], "subsystem")
                .map_err(bad)?
                .to_vec(),
            hdr_offset,
        })
    }

    /// Encodes the binary header for `copy` with a zero checksum field.
    pub(crate) fn encode(&self, copy: Copy) -> [u8; BINARY_SIZE] {
        let mut b = [0u8; BINARY_SIZE];
        b[..6].copy_from_slice(match copy {
            Copy::Primary => &MAGIC_1ST,
            Copy::Secondary => &MAGIC_2ND,
        });
        b[6..8].copy_from_slice(&2u16.to_be_bytes());
        b[8..16].copy_from_slice(&self.hdr_size.to_be_bytes());
        b[16..24].copy_from_slice(&self.seqid.to_be_bytes());
        put_c_string(&mut b[24..24 + LABEL_LEN], &self.label);
        put_c_string(
            &mut b[72..72 + CSUM_ALG_LEN],
            self.csum_alg.name().as_bytes(),
        );
        b[104..104 + SALT_LEN].copy_from_slice(&self.salt);
        put_c_string(&mut b[168..168 + UUID_LEN], self.uuid.as_bytes());
        put_c_string(&mut b[208..208 + LABEL_LEN], &self.subsystem);
        b[256..264].copy_from_slice(&self.hdr_offset.to_be_bytes());
        b
    }
}

/// Checksum of a whole header area (binary header and JSON area) with the checksum field
/// taken as zero, padded with zeros to the 64-byte field.
pub(crate) fn checksum(alg: HashAlg, area: &[u8]) -> [u8; CSUM_LEN] {
    let zero = [0u8; CSUM_LEN];
    let d = alg.digest(&[&area[..CSUM_OFFSET], &zero, &area[CSUM_OFFSET + CSUM_LEN..]]);
    let mut out = [0u8; CSUM_LEN];
    out[..d.len()].copy_from_slice(&d);
    out
}

/// Verifies the checksum stored in the raw on-disk `area`.
pub(crate) fn verify_checksum(alg: HashAlg, area: &[u8]) -> bool {
    crate::util::ct_eq(
        &checksum(alg, area),
        &area[CSUM_OFFSET..CSUM_OFFSET + CSUM_LEN],
    )
}

/// Stores the checksum into `area`.
pub(crate) fn seal(alg: HashAlg, area: &mut [u8]) {
    let c = checksum(alg, area);
    area[CSUM_OFFSET..CSUM_OFFSET + CSUM_LEN].copy_from_slice(&c);
}
