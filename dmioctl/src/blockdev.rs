//! Block-layer and file-system ioctls a boot needs beside device-mapper: telling the kernel
//! that a partition grew (as `growpart` does through `BLKPG`) and growing a mounted ext4 file
//! system to its device (as `resize2fs` does for a mounted one).

use std::fs::File;
use std::os::fd::AsFd;

use crate::sys;

/// Tells the kernel that partition `number` of `disk` (whose table was already rewritten)
/// now spans `length` bytes from `start` bytes. Works while the partition is in use.
///
/// # Errors
/// The kernel's error: `EINVAL` when the start differs from the kernel's, `EBUSY` when the
/// new partition would overlap another.
pub fn resize_partition(disk: &File, number: u32, start: u64, length: u64) -> std::io::Result<()> {
    let out_of_range = || std::io::Error::from(std::io::ErrorKind::InvalidInput);
    let mut p = sys::BlkpgPartition {
        start: i64::try_from(start).map_err(|_| out_of_range())?,
        length: i64::try_from(length).map_err(|_| out_of_range())?,
        pno: i32::try_from(number).map_err(|_| out_of_range())?,
        devname: [0; 64],
        volname: [0; 64],
    };
    sys::blkpg_resize(disk.as_fd(), &mut p).map_err(std::io::Error::from)
}

/// Grows the ext4 file system mounted on the directory `mount_point` (opened) to `blocks`
/// file-system blocks, online.
///
/// # Errors
/// The kernel's error (`EINVAL` for a shrink, `EOPNOTSUPP` without online resize).
pub fn grow_ext4(mount_point: &File, blocks: u64) -> std::io::Result<()> {
    sys::ext4_resize_fs(mount_point.as_fd(), blocks).map_err(std::io::Error::from)
}
