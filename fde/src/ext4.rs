//! The two ext4 changes the boot makes to the root file system, without e2fsprogs: clearing
//! the `read-only` feature the converter sets on the shrunk rootfs (as `tune2fs -O
//! ^read-only`; the write lands in the delta, never on the rootfs LV), and growing the
//! mounted file system over the space the delta adds (as `resize2fs` does online).

use std::fs::File;
use std::path::Path;

use luks2::BlockIo;
use nix::mount::{mount, MsFlags};

use crate::{Error, Result};

/// The superblock's place and size.
const SUPER_OFFSET: u64 = 1024;
const SUPER_LEN: usize = 1024;
const MAGIC: u16 = 0xef53;
/// `s_feature_ro_compat` bits.
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;
const RO_COMPAT_READONLY: u32 = 0x1000;
/// `s_feature_incompat`: 64-bit block numbers.
const INCOMPAT_64BIT: u32 = 0x80;
/// Where `s_checksum` (crc32c of everything before it) sits.
const CHECKSUM_AT: usize = 0x3fc;

/// What the boot reads of an ext4 superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Super {
    /// File-system block size in bytes.
    pub block_size: u64,
    /// Blocks in the file system.
    pub blocks: u64,
    /// The `read-only` feature is set.
    pub read_only: bool,
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Super {
    /// The fields of a superblock's bytes, or `None` when it is not ext2/3/4.
    #[must_use]
    pub fn parse(sb: &[u8; SUPER_LEN]) -> Option<Self> {
        if u16::from_le_bytes([sb[0x38], sb[0x39]]) != MAGIC {
            return None;
        }
        let log = le32(sb, 0x18);
        let block_size = 1024u64.checked_shl(log).filter(|&s| s <= 65536)?;
        let mut blocks = u64::from(le32(sb, 0x04));
        if le32(sb, 0x60) & INCOMPAT_64BIT != 0 {
            blocks |= u64::from(le32(sb, 0x150)) << 32;
        }
        Some(Super {
            block_size,
            blocks,
            read_only: le32(sb, 0x64) & RO_COMPAT_READONLY != 0,
        })
    }
}

fn read_raw(f: &mut File, dev: &Path) -> Result<[u8; SUPER_LEN]> {
    let mut sb = [0u8; SUPER_LEN];
    f.read_exact_at(&mut sb, SUPER_OFFSET)
        .map_err(Error::io(dev, "read the superblock of"))?;
    Ok(sb)
}

/// The superblock of `dev`, or `None` when it holds no ext2/3/4 file system.
///
/// # Errors
/// [`Error::Io`] when the device cannot be read.
pub fn read(dev: &Path) -> Result<Option<Super>> {
    let mut f = File::open(dev).map_err(Error::io(dev, "open"))?;
    Ok(Super::parse(&read_raw(&mut f, dev)?))
}

/// The superblock of the file system `offset` bytes into `f` (an image file named `name`),
/// or `None` when there is none.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub fn read_at(f: &File, offset: u64, name: &Path) -> Result<Option<Super>> {
    use std::os::unix::fs::FileExt;
    let mut sb = [0u8; SUPER_LEN];
    f.read_exact_at(&mut sb, offset + SUPER_OFFSET)
        .map_err(Error::io(name, "read the superblock in"))?;
    Ok(Super::parse(&sb))
}

/// Clears the `read-only` feature of the ext4 on `dev`, keeping the superblock checksum
/// valid. Returns whether it was set.
///
/// # Errors
/// [`Error::Io`] when the device cannot be read or written.
pub fn clear_read_only(dev: &Path) -> Result<bool> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .map_err(Error::io(dev, "open"))?;
    let mut sb = read_raw(&mut f, dev)?;
    if !Super::parse(&sb).is_some_and(|s| s.read_only) {
        return Ok(false);
    }
    let ro = le32(&sb, 0x64) & !RO_COMPAT_READONLY;
    sb[0x64..0x68].copy_from_slice(&ro.to_le_bytes());
    if ro & RO_COMPAT_METADATA_CSUM != 0 {
        let sum = superblock_checksum(&sb);
        sb[CHECKSUM_AT..].copy_from_slice(&sum.to_le_bytes());
    }
    f.write_all_at(&sb, SUPER_OFFSET)
        .map_err(Error::io(dev, "write the superblock of"))?;
    f.sync().map_err(Error::io(dev, "sync"))?;
    Ok(true)
}

/// Grows the ext4 mounted on `mount_point` from `dev` to fill `dev` (a read-only mount is
/// remounted read-write for it, then read-only again). Returns the block counts before and
/// after, or `None` when there was nothing to grow (or no ext4).
///
/// # Errors
/// [`Error::Io`] when the device cannot be read or the kernel refuses the resize.
pub fn grow(mount_point: &Path, dev: &Path) -> Result<Option<(u64, u64)>> {
    let mut f = File::open(dev).map_err(Error::io(dev, "open"))?;
    let Some(s) = Super::parse(&read_raw(&mut f, dev)?) else {
        return Ok(None);
    };
    let size = f.size().map_err(Error::io(dev, "read the size of"))?;
    let want = size / s.block_size;
    if want <= s.blocks {
        return Ok(None);
    }
    // A read-only mount (systemd's initrd mounts the root so) cannot be resized: it is
    // remounted read-write for the resize and read-only again after.
    use nix::sys::statvfs::FsFlags;
    let flags = nix::sys::statvfs::statvfs(mount_point)
        .map_err(Error::nix(mount_point, "examine"))?
        .flags();
    let read_only = flags.contains(FsFlags::ST_RDONLY);
    // A remount replaces the mount's flags: the others are kept as they are.
    let mut keep = MsFlags::empty();
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if flags.contains(f) {
            keep |= m;
        }
    }
    let remount = |flags: MsFlags| {
        let all = MsFlags::MS_REMOUNT | keep | flags;
        mount(None::<&str>, mount_point, None::<&str>, all, None::<&str>)
            .map_err(Error::nix(mount_point, "remount"))
    };
    if read_only {
        remount(MsFlags::empty())?;
    }
    let grown = File::open(mount_point)
        .map_err(Error::io(mount_point, "open"))
        .and_then(|d| {
            dmioctl::blockdev::grow_ext4(&d, want)
                .map_err(Error::io(mount_point, "grow the file system on"))
        });
    if read_only {
        remount(MsFlags::MS_RDONLY)?;
    }
    grown.map(|()| Some((s.blocks, want)))
}

/// [`grow`], reported on `log` as `what`'s file system; a failure is reported, not returned:
/// the file system works without growing (it only has less room).
pub fn grow_logged(mount_point: &Path, dev: &Path, what: &str, log: &mut dyn crate::boot::Log) {
    match grow(mount_point, dev) {
        Ok(Some((from, to))) => log.step(&format!(
            "{what} file system grown from {from} to {to} blocks"
        )),
        Ok(None) => {}
        Err(e) => log.step(&format!("{what} file system not grown: {e}")),
    }
}

/// ext4's `s_checksum`: CRC-32C (Castagnoli) state from `!0` over the bytes before it, with
/// no final inversion (what the kernel's and e2fsprogs' `crc32c_le(~0, ...)` return).
fn superblock_checksum(sb: &[u8; SUPER_LEN]) -> u32 {
    crc32c_le(!0, &sb[..CHECKSUM_AT])
}

/// The CRC-32C register after `data`, from `crc`, without the final inversion.
fn crc32c_le(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli_without_the_final_inversion() {
        // The check value of CRC-32C over "123456789" is 0xe3069283 (after inversion).
        let mut sb = [0u8; SUPER_LEN];
        let crc = crc32c_le(!0, b"123456789");
        assert_eq!(!crc, 0xe306_9283);
        // And the superblock function computes the same over its range.
        sb[0] = 1;
        assert_ne!(
            superblock_checksum(&sb),
            superblock_checksum(&[0u8; SUPER_LEN])
        );
    }

    #[test]
    fn only_ext_superblocks_parse() {
        let mut sb = [0u8; SUPER_LEN];
        assert_eq!(Super::parse(&sb), None);
        sb[0x38..0x3a].copy_from_slice(&MAGIC.to_le_bytes());
        sb[0x18] = 2; // 4096-byte blocks
        sb[0x04..0x08].copy_from_slice(&1000u32.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        let s = Super::parse(&sb).unwrap();
        assert_eq!((s.block_size, s.blocks, s.read_only), (4096, 1000, false));
        sb[0x60] = INCOMPAT_64BIT as u8;
        sb[0x65] = (RO_COMPAT_READONLY >> 8) as u8;
        let s = Super::parse(&sb).unwrap();
        assert_eq!((s.blocks, s.read_only), ((1 << 32) + 1000, true));
        sb[0x18] = 40;
        assert_eq!(Super::parse(&sb), None, "absurd block size");
    }
}
