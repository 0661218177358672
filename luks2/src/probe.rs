//! Recognises what a device already holds, so nothing is formatted over data by accident.

use crate::io::BlockIo;

/// Names the first known signature found on the device: `LUKS1`, `LUKS2`, `ext4` (any of
/// ext2/3/4), `xfs`, `vfat`, `swap`, `gpt`, `mbr`; `None` if none is found.
///
/// # Errors
/// I/O errors other than the device being too small to hold a signature.
pub fn signature<D: BlockIo>(io: &mut D) -> std::io::Result<Option<&'static str>> {
    let size = io.size()?;
    let mut head = vec![0u8; 8192.min(size as usize)];
    io.read_exact_at(&mut head, 0)?;
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, b"LUKS\xba\xbe") {
        return Ok(Some(match head.get(6..8) {
            Some([0, 1]) => "LUKS1",
            _ => "LUKS2",
        }));
    }
    if at(0, b"XFSB") {
        return Ok(Some("xfs"));
    }
    if at(1080, &[0x53, 0xef]) {
        return Ok(Some("ext4"));
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Ok(Some("swap"));
    }
    if at(512, b"EFI PART") {
        return Ok(Some("gpt"));
    }
    let boot_sig = at(510, &[0x55, 0xaa]);
    if boot_sig && (at(54, b"FAT") || at(82, b"FAT32")) {
        return Ok(Some("vfat"));
    }
    if boot_sig {
        return Ok(Some("mbr"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryDevice;

    #[test]
    fn finds_signatures() {
        let cases: [(usize, &[u8], &str); 4] = [
            (1080, &[0x53, 0xef], "ext4"),
            (0, b"XFSB", "xfs"),
            (4086, b"SWAPSPACE2", "swap"),
            (512, b"EFI PART", "gpt"),
        ];
        for (off, magic, name) in cases {
            let mut d = MemoryDevice::new(1 << 16);
            d.as_mut_slice()[off..off + magic.len()].copy_from_slice(magic);
            assert_eq!(signature(&mut d).expect("io"), Some(name));
        }
        assert_eq!(
            signature(&mut MemoryDevice::new(1 << 16)).expect("io"),
            None
        );
        assert_eq!(signature(&mut MemoryDevice::new(100)).expect("io"), None);
    }
}
