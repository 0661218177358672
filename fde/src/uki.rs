//! Unified kernel images: systemd's EFI stub with the kernel, the initrd and the command line
//! added as PE sections (`.osrel`, `.cmdline`, `.uname`, `.initrd`, `.linux`), as `ukify` and
//! `dracut --uefi` lay them out. Firmware and shim measure the whole image, so the command
//! line and the initrd (with the root hash) are covered by one Authenticode digest.

use crate::authenticode::{bad, headers, u16_at, u32_at, PeError};

fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Readable initialized data.
const DATA_SECTION: u32 = 0x4000_0040;

/// Appends `sections` (name of at most 8 bytes, contents) to the PE32+ image `stub`: each
/// placed after the last one in memory (section alignment) and in the file (file
/// alignment), the section count and image size updated, the checksum cleared (UEFI does not
/// use it). The stub must be unsigned and have room for the new section headers.
///
/// # Errors
/// [`PeError::Invalid`] for a stub that is not PE32+, is signed, or has no room for the
/// headers; a section name longer than 8 bytes; sizes beyond 4 GiB.
pub fn build(stub: &[u8], sections: &[(&str, &[u8])]) -> Result<Vec<u8>, PeError> {
    // The same header checks as the Authenticode digest (MZ, PE, a table inside the file).
    let h = headers(stub)?;
    let (coff, opt, opt_size, count, table) = (h.opt - 20, h.opt, h.opt_size, h.sections, h.table);
    if u16_at(stub, opt)? != 0x20b {
        return Err(bad("the stub is not PE32+"));
    }
    let (sect_align, file_align) = (
        u32_at(stub, opt + 32)? as u64,
        u32_at(stub, opt + 36)? as u64,
    );
    // The PE specification's limits (file alignment 512 to 64 KiB; section alignment a
    // power of two, here at most 2 MiB): an aligned size then cannot run away.
    if !file_align.is_power_of_two()
        || file_align > 1 << 16
        || !sect_align.is_power_of_two()
        || sect_align > 1 << 21
    {
        return Err(bad("impossible section or file alignment"));
    }
    let size_of_headers = u32_at(stub, opt + 60)?;
    // Data directory 4 (certificate table) must be empty: appending would break a signature.
    if opt_size >= 112 + 5 * 8 && u32_at(stub, opt + 112 + 4 * 8 + 4)? != 0 {
        return Err(bad("the stub is signed; sign the UKI after building it"));
    }
    let table_end = table + 40 * count;
    let mut first_raw = size_of_headers;
    let (mut mem_end, mut file_end) = (0u64, stub.len() as u64);
    for i in 0..count {
        let s = table + 40 * i;
        let (vsize, va) = (u32_at(stub, s + 8)? as u64, u32_at(stub, s + 12)? as u64);
        let (raw_size, raw) = (u32_at(stub, s + 16)?, u32_at(stub, s + 20)?);
        mem_end = mem_end.max(va + vsize.max(raw_size as u64));
        if raw_size > 0 {
            // Every section's bytes lie in the file (the new ones go after all of them).
            if raw.checked_add(raw_size).is_none_or(|e| e > stub.len()) {
                return Err(bad("a section lies outside the file"));
            }
            first_raw = first_raw.min(raw);
            file_end = file_end.max((raw + raw_size) as u64);
        }
    }
    if table_end + 40 * sections.len() > size_of_headers.min(first_raw).min(stub.len()) {
        return Err(bad("no room in the stub's headers for more sections"));
    }
    let mut out = stub.to_vec();
    let mut file_at = align(file_end, file_align);
    if mem_end > u64::from(u32::MAX) {
        return Err(bad("image over 4 GiB"));
    }
    let mut mem_at = align(mem_end, sect_align);
    for (i, (name, data)) in sections.iter().enumerate() {
        if name.len() > 8 {
            return Err(bad("a section name is longer than 8 bytes"));
        }
        let size = u32::try_from(data.len()).map_err(|_| bad("a section over 4 GiB"))?;
        let raw_size = align(u64::from(size), file_align);
        let (va, raw) = (
            u32::try_from(mem_at).map_err(|_| bad("image over 4 GiB"))?,
            u32::try_from(file_at).map_err(|_| bad("image over 4 GiB"))?,
        );
        let h = table_end + 40 * i;
        out[h..h + 40].fill(0);
        out[h..h + name.len()].copy_from_slice(name.as_bytes());
        wr32(&mut out, h + 8, size);
        wr32(&mut out, h + 12, va);
        wr32(&mut out, h + 16, raw_size as u32);
        wr32(&mut out, h + 20, raw);
        wr32(&mut out, h + 36, DATA_SECTION);
        out.resize(file_at as usize, 0);
        out.extend_from_slice(data);
        out.resize((file_at + raw_size) as usize, 0);
        file_at += raw_size;
        mem_at = align(mem_at + u64::from(size), sect_align);
    }
    let new_count = u16::try_from(count + sections.len()).map_err(|_| bad("too many sections"))?;
    out[coff + 2..coff + 4].copy_from_slice(&new_count.to_le_bytes());
    wr32(
        &mut out,
        opt + 56,
        u32::try_from(mem_at).map_err(|_| bad("image over 4 GiB"))?,
    );
    wr32(&mut out, opt + 64, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_stubs_are_errors() {
        assert!(build(b"", &[]).is_err());
        assert!(build(b"MZ\0\0", &[]).is_err());
        let mut pe = vec![0u8; 1024];
        pe[..2].copy_from_slice(b"MZ");
        pe[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        pe[0x40..0x44].copy_from_slice(b"PE\0\0");
        assert!(build(&pe, &[(".linux", b"k")]).is_err(), "not PE32+");
    }

    /// fuzz/regressions/boot_image: a section whose file range lies 2.5 GiB past the end made
    /// the UKI builder allocate that much; it is refused.
    #[test]
    fn a_section_past_the_end_is_refused_not_allocated() {
        let input = include_bytes!(
            "../../fuzz/regressions/boot_image/oom-5929ece8cd3cce8df5463c3c1ffcbd06c32bc192"
        );
        let stub = &input[1..];
        assert!(build(stub, &[(".cmdline", b"ro\0"), (".linux", b"kernel")]).is_err());
    }
}
