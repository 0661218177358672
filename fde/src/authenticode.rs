//! The Authenticode digest of a PE/COFF image (shim, GRUB, a kernel with an EFI stub, a
//! unified kernel image): what UEFI firmware and shim measure into the TPM event log for an
//! image they load, and so the reference value an attestation service compares. The
//! signature does not change it: the checksum field, the certificate-table entry and the
//! certificate table itself are left out, as the Authenticode specification says.
//!
//! The image is untrusted input: every offset and size is checked against the file.
//! [`HashAlgo::file_digest`] is the plain digest of a whole file (an initrd is measured so).

use sha2::Digest;

/// The hash algorithms reference values are given in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgo {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384 (the default of reference values).
    Sha384,
    /// SM3 (GB/T 32905), for TEEs that measure with it.
    Sm3,
}

impl HashAlgo {
    /// The digest of `data` as a whole.
    #[must_use]
    pub fn file_digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgo::Sha1 => sha1::Sha1::digest(data).to_vec(),
            HashAlgo::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgo::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgo::Sm3 => sm3::Sm3::digest(data).to_vec(),
        }
    }

    /// The name reference values carry (`SHA-384`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            HashAlgo::Sha1 => "SHA-1",
            HashAlgo::Sha256 => "SHA-256",
            HashAlgo::Sha384 => "SHA-384",
            HashAlgo::Sm3 => "SM3",
        }
    }
}

/// Why an image has no Authenticode digest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeError {
    /// Not a PE image, or one whose headers point outside the file.
    Invalid(&'static str),
}

impl std::fmt::Display for PeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeError::Invalid(why) => write!(f, "not a valid PE image: {why}"),
        }
    }
}

impl std::error::Error for PeError {}

pub(crate) fn bad(why: &'static str) -> PeError {
    PeError::Invalid(why)
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Result<usize, PeError> {
    b.get(at..at + 2)
        .map(|x| usize::from(u16::from_le_bytes([x[0], x[1]])))
        .ok_or(bad("truncated header"))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Result<usize, PeError> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
        .ok_or(bad("truncated header"))
}

/// The byte ranges of `pe` that Authenticode hashes, in order.
fn hashed_ranges(pe: &[u8]) -> Result<Vec<std::ops::Range<usize>>, PeError> {
    let h = headers(pe)?;
    let (opt, opt_size, sections) = (h.opt, h.opt_size, h.sections);
    // The certificate table is data directory 4; directories start at 96 (PE32) or 112 (PE32+).
    let dirs = match u16_at(pe, opt)? {
        0x10b => opt + 96,
        0x20b => opt + 112,
        _ => return Err(bad("unknown optional header magic")),
    };
    let checksum = opt + 64;
    let cert_entry = dirs + 4 * 8;
    if cert_entry + 8 > opt + opt_size || u32_at(pe, dirs - 4)? < 5 {
        return Err(bad("no certificate table directory"));
    }
    let headers = u32_at(pe, opt + 60)?;
    let section_table = h.table;
    if headers > pe.len() || headers < cert_entry + 8 {
        return Err(bad("headers larger than the file"));
    }
    let mut ranges = vec![
        0..checksum,
        checksum + 4..cert_entry,
        cert_entry + 8..headers,
    ];
    let mut raw: Vec<(usize, usize)> = (0..sections)
        .map(|i| {
            let s = section_table + 40 * i;
            Ok((u32_at(pe, s + 20)?, u32_at(pe, s + 16)?))
        })
        .collect::<Result<_, PeError>>()?;
    raw.retain(|&(_, size)| size > 0);
    raw.sort_unstable();
    let mut hashed = headers;
    for (at, size) in raw {
        let end = at
            .checked_add(size)
            .filter(|&e| e <= pe.len())
            .ok_or(bad("a section lies outside the file"))?;
        ranges.push(at..end);
        hashed = hashed.checked_add(size).ok_or(bad("section sizes"))?;
    }
    // Data after the sections, up to the certificate table (which signing appends).
    let cert_size = u32_at(pe, cert_entry + 4)?;
    let end = pe
        .len()
        .checked_sub(cert_size)
        .ok_or(bad("certificate table larger than the file"))?;
    if end > hashed {
        ranges.push(hashed..end);
    }
    Ok(ranges)
}

/// The bytes of the section named `name` (`.linux`, `.initrd`, `.cmdline` of a unified kernel
/// image), or `None` when the image has no such section. The length is the section's virtual
/// size when that is smaller than its raw size (the file pads sections to its alignment).
///
/// # Errors
/// [`PeError::Invalid`] when `pe` is not a PE image or the section lies outside it.
pub fn section<'a>(pe: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, PeError> {
    let h = headers(pe)?;
    let (table, count) = (h.table, h.sections);
    for i in 0..count {
        let s = table + 40 * i;
        let raw_name = &pe[s..s + 8];
        let len = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
        if &raw_name[..len] != name.as_bytes() {
            continue;
        }
        let (virt, raw, at) = (u32_at(pe, s + 8)?, u32_at(pe, s + 16)?, u32_at(pe, s + 20)?);
        let size = if virt != 0 { virt.min(raw) } else { raw };
        return at
            .checked_add(size)
            .and_then(|end| pe.get(at..end))
            .map(Some)
            .ok_or(bad("a section lies outside the file"));
    }
    Ok(None)
}

/// The COFF header fields the readers (and the UKI builder) need, every one inside the file.
pub(crate) struct Headers {
    /// The optional header's offset (the COFF header is the 20 bytes before it).
    pub(crate) opt: usize,
    /// Its size.
    pub(crate) opt_size: usize,
    /// Section table entries.
    pub(crate) sections: usize,
    /// The section table's offset.
    pub(crate) table: usize,
}

pub(crate) fn headers(pe: &[u8]) -> Result<Headers, PeError> {
    if pe.get(..2) != Some(b"MZ".as_slice()) {
        return Err(bad("no MZ header"));
    }
    let nt = u32_at(pe, 0x3c)?;
    if pe.get(nt..nt.checked_add(4).ok_or(bad("header offset"))?) != Some(b"PE\0\0".as_slice()) {
        return Err(bad("no PE signature"));
    }
    let coff = nt + 4;
    let sections = u16_at(pe, coff + 2)?;
    let opt_size = u16_at(pe, coff + 16)?;
    let opt = coff + 20;
    let table = opt + opt_size;
    if table + 40 * sections > pe.len() {
        return Err(bad("the section table lies outside the file"));
    }
    Ok(Headers {
        opt,
        opt_size,
        sections,
        table,
    })
}

/// The Authenticode digest of the PE image `pe` with `alg`.
///
/// # Errors
/// [`PeError::Invalid`] when `pe` is not a PE image or its headers point outside it.
pub fn digest(pe: &[u8], alg: HashAlgo) -> Result<Vec<u8>, PeError> {
    let ranges = hashed_ranges(pe)?;
    fn run<D: Digest>(pe: &[u8], ranges: &[std::ops::Range<usize>]) -> Vec<u8> {
        let mut h = D::new();
        for r in ranges {
            h.update(&pe[r.clone()]);
        }
        h.finalize().to_vec()
    }
    Ok(match alg {
        HashAlgo::Sha1 => run::<sha1::Sha1>(pe, &ranges),
        HashAlgo::Sha256 => run::<sha2::Sha256>(pe, &ranges),
        HashAlgo::Sha384 => run::<sha2::Sha384>(pe, &ranges),
        HashAlgo::Sm3 => run::<sm3::Sm3>(pe, &ranges),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_headers_are_errors_not_panics() {
        assert!(digest(b"", HashAlgo::Sha256).is_err());
        assert!(digest(b"MZ", HashAlgo::Sha256).is_err());
        let mut pe = vec![0u8; 512];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(digest(&pe, HashAlgo::Sha256).is_err());
        pe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        pe[0x58..0x5a].copy_from_slice(&0x20bu16.to_le_bytes());
        assert!(
            digest(&pe, HashAlgo::Sha256).is_err(),
            "no optional header size"
        );
    }
}
