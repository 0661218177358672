//! Recognises what a device already holds, so nothing is formatted over data by accident.

use crate::io::BlockIo;

/// Bytes read from the start of the device: enough for btrfs's superblock at 64 KiB.
const PROBE_LEN: u64 = 0x10000 + 0x48;

/// Names the first known signature found on the device: `LUKS1`, `LUKS2`, `LVM2_member`,
/// `ext4` (any of ext2/3/4), `xfs`, `btrfs`, `vfat`, `swap`, `gpt`, `mbr`; `None` if none is
/// found.
///
/// # Errors
/// I/O errors other than the device being too small to hold a signature.
pub fn signature<D: BlockIo>(io: &mut D) -> std::io::Result<Option<&'static str>> {
    let head = read_head(io)?;
    if let Some(luks) = luks_signature(&head) {
        return Ok(Some(luks));
    }
    Ok(foreign_signature(&head))
}

fn luks_signature(head: &[u8]) -> Option<&'static str> {
    (head.get(..6) == Some(b"LUKS\xba\xbe")).then(|| match head.get(6..8) {
        Some([0, 1]) => "LUKS1",
        _ => "LUKS2",
    })
}

/// A signature of something other than LUKS at the start of the device, which means the
/// primary LUKS2 header area now belongs to it.
///
/// # Errors
/// I/O errors other than the device being too small to hold a signature.
pub fn foreign<D: BlockIo>(io: &mut D) -> std::io::Result<Option<&'static str>> {
    Ok(foreign_signature(&read_head(io)?))
}

/// The first [`PROBE_LEN`] bytes of the device (all of a smaller one).
fn read_head<D: BlockIo>(io: &mut D) -> std::io::Result<Vec<u8>> {
    let size = io.size()?;
    let mut head = vec![0u8; PROBE_LEN.min(size) as usize];
    io.read_exact_at(&mut head, 0)?;
    Ok(head)
}

fn foreign_signature(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    // An LVM2 physical volume label sits in one of the first four sectors.
    if (0..4).any(|s| at(s * 512, b"LABELONE") && at(s * 512 + 24, b"LVM2 001")) {
        return Some("LVM2_member");
    }
    if at(0x10040, b"_BHRfS_M") {
        return Some("btrfs");
    }
    foreign_in_first_8k(head)
}

fn foreign_in_first_8k(head: &[u8]) -> Option<&'static str> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, b"XFSB") {
        return Some("xfs");
    }
    if at(1080, &[0x53, 0xef]) {
        return Some("ext4");
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Some("swap");
    }
    if at(512, b"EFI PART") {
        return Some("gpt");
    }
    let boot_sig = at(510, &[0x55, 0xaa]);
    if boot_sig && (at(54, b"FAT") || at(82, b"FAT32")) {
        return Some("vfat");
    }
    if boot_sig {
        return Some("mbr");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryDevice;

    #[test]
    fn finds_signatures() {
        let cases: [(usize, &[u8], &str); 7] = [
            (1080, &[0x53, 0xef], "ext4"),
            (0, b"XFSB", "xfs"),
            (4086, b"SWAPSPACE2", "swap"),
            (512, b"EFI PART", "gpt"),
            (0x10040, b"_BHRfS_M", "btrfs"),
            (512, b"LABELONE", "LVM2_member"),
            (512 + 24, b"LVM2 001", "LVM2_member"),
        ];
        for (off, magic, name) in cases {
            let mut d = MemoryDevice::new(1 << 17);
            if name == "LVM2_member" {
                // Both parts of the label are needed.
                d.as_mut_slice()[512..520].copy_from_slice(b"LABELONE");
                d.as_mut_slice()[536..544].copy_from_slice(b"LVM2 001");
            }
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
