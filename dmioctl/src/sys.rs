//! The kernel ABI of `<linux/dm-ioctl.h>`, `<linux/loop.h>` and the key-management system
//! calls (`add_key`, `request_key`, `keyctl`) that dm-crypt's keyring keys need, and the only
//! `unsafe` code in this crate: each call is wrapped once, here, in a safe function.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// `DM_NAME_LEN`.
pub(crate) const DM_NAME_LEN: usize = 128;
/// `DM_UUID_LEN`.
pub(crate) const DM_UUID_LEN: usize = 129;
/// `DM_MAX_TYPE_NAME`.
pub(crate) const DM_MAX_TYPE_NAME: usize = 16;
/// The interface version we speak (4.x; the kernel accepts any 4.y with y <= its own).
pub(crate) const DM_VERSION: [u32; 3] = [4, 0, 0];

/// `struct dm_ioctl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DmIoctl {
    pub(crate) version: [u32; 3],
    pub(crate) data_size: u32,
    pub(crate) data_start: u32,
    pub(crate) target_count: u32,
    pub(crate) open_count: i32,
    pub(crate) flags: u32,
    pub(crate) event_nr: u32,
    pub(crate) padding: u32,
    pub(crate) dev: u64,
    pub(crate) name: [u8; DM_NAME_LEN],
    pub(crate) uuid: [u8; DM_UUID_LEN],
    pub(crate) data: [u8; 7],
}

/// `struct dm_target_spec`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DmTargetSpec {
    pub(crate) sector_start: u64,
    pub(crate) length: u64,
    pub(crate) status: i32,
    pub(crate) next: u32,
    pub(crate) target_type: [u8; DM_MAX_TYPE_NAME],
}

/// `struct loop_info64`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LoopInfo64 {
    pub(crate) lo_device: u64,
    pub(crate) lo_inode: u64,
    pub(crate) lo_rdevice: u64,
    pub(crate) lo_offset: u64,
    pub(crate) lo_sizelimit: u64,
    pub(crate) lo_number: u32,
    pub(crate) lo_encrypt_type: u32,
    pub(crate) lo_encrypt_key_size: u32,
    pub(crate) lo_flags: u32,
    pub(crate) lo_file_name: [u8; 64],
    pub(crate) lo_crypt_name: [u8; 64],
    pub(crate) lo_encrypt_key: [u8; 32],
    pub(crate) lo_init: [u64; 2],
}

const _: () = assert!(std::mem::size_of::<DmIoctl>() == 312);
const _: () = assert!(std::mem::size_of::<DmTargetSpec>() == 40);
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::align_of::<DmIoctl>() == 8);

/// dm flags.
pub(crate) mod flags {
    pub(crate) const READONLY: u32 = 1 << 0;
    pub(crate) const SUSPEND: u32 = 1 << 1;
    pub(crate) const STATUS_TABLE: u32 = 1 << 4;
    pub(crate) const ACTIVE_PRESENT: u32 = 1 << 5;
    pub(crate) const BUFFER_FULL: u32 = 1 << 8;
    pub(crate) const SECURE_DATA: u32 = 1 << 15;
    pub(crate) const DATA_OUT: u32 = 1 << 16;
    pub(crate) const DEFERRED_REMOVE: u32 = 1 << 17;
}

/// loop flags.
pub(crate) const LO_FLAGS_READ_ONLY: u32 = 1;
pub(crate) const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// The dm commands (`DM_*_CMD`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cmd {
    Version = 0,
    ListDevices = 2,
    DevCreate = 3,
    DevRemove = 4,
    DevSuspend = 6,
    DevStatus = 7,
    TableLoad = 9,
    TableClear = 10,
    TableDeps = 11,
    TableStatus = 12,
    ListVersions = 13,
    TargetMsg = 14,
}

mod raw {
    use super::{DmIoctl, LoopInfo64};
    nix::ioctl_readwrite!(dm_version, 0xfd, 0, DmIoctl);
    nix::ioctl_readwrite!(dm_list_devices, 0xfd, 2, DmIoctl);
    nix::ioctl_readwrite!(dm_dev_create, 0xfd, 3, DmIoctl);
    nix::ioctl_readwrite!(dm_dev_remove, 0xfd, 4, DmIoctl);
    nix::ioctl_readwrite!(dm_dev_suspend, 0xfd, 6, DmIoctl);
    nix::ioctl_readwrite!(dm_dev_status, 0xfd, 7, DmIoctl);
    nix::ioctl_readwrite!(dm_table_load, 0xfd, 9, DmIoctl);
    nix::ioctl_readwrite!(dm_table_clear, 0xfd, 10, DmIoctl);
    nix::ioctl_readwrite!(dm_table_deps, 0xfd, 11, DmIoctl);
    nix::ioctl_readwrite!(dm_table_status, 0xfd, 12, DmIoctl);
    nix::ioctl_readwrite!(dm_list_versions, 0xfd, 13, DmIoctl);
    nix::ioctl_readwrite!(dm_target_msg, 0xfd, 14, DmIoctl);
    nix::ioctl_none_bad!(loop_ctl_get_free, 0x4C82);
    nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);
    nix::ioctl_none_bad!(loop_clr_fd, 0x4C01);
    nix::ioctl_write_ptr_bad!(loop_set_status64, 0x4C04, LoopInfo64);
    nix::ioctl_write_ptr_bad!(blkpg, 0x1269, super::BlkpgIoctlArg);
    nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);
}

/// `struct blkpg_partition` (linux/blkpg.h): bytes, not sectors.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BlkpgPartition {
    pub(crate) start: i64,
    pub(crate) length: i64,
    pub(crate) pno: i32,
    pub(crate) devname: [u8; 64],
    pub(crate) volname: [u8; 64],
}

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BlkpgIoctlArg {
    op: i32,
    flags: i32,
    datalen: i32,
    data: *mut BlkpgPartition,
}

/// `BLKPG_RESIZE_PARTITION`.
const BLKPG_RESIZE_PARTITION: i32 = 3;

/// `BLKPG` with `BLKPG_RESIZE_PARTITION`: the kernel's view of partition `p.pno` of `disk`
/// takes the new length (its start must stay).
pub(crate) fn blkpg_resize(disk: BorrowedFd<'_>, p: &mut BlkpgPartition) -> nix::Result<()> {
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as i32,
        data: p,
    };
    // SAFETY: `arg` points at a valid `blkpg_partition` of the stated length that outlives
    // the call; the kernel only reads both.
    unsafe { raw::blkpg(disk.as_raw_fd(), &arg) }.map(|_| ())
}

/// `EXT4_IOC_RESIZE_FS`: grows the ext4 file system mounted where `dir` is open to `blocks`.
pub(crate) fn ext4_resize_fs(dir: BorrowedFd<'_>, blocks: u64) -> nix::Result<()> {
    // SAFETY: the argument points at a `u64` that the kernel only reads during the call.
    unsafe { raw::ext4_resize_fs(dir.as_raw_fd(), &blocks) }.map(|_| ())
}

/// Issues dm command `cmd` on the control node with `buf`, which starts with a `DmIoctl`
/// whose `data_size` is the length of `buf` in bytes.
pub(crate) fn dm_ioctl(control: BorrowedFd<'_>, cmd: Cmd, buf: &mut [u64]) -> nix::Result<()> {
    let len = std::mem::size_of_val(buf);
    assert!(
        len >= std::mem::size_of::<DmIoctl>(),
        "buffer smaller than struct dm_ioctl"
    );
    let header: &DmIoctl = bytemuck::from_bytes(
        &bytemuck::cast_slice::<u64, u8>(buf)[..std::mem::size_of::<DmIoctl>()],
    );
    assert_eq!(
        header.data_size as usize, len,
        "data_size must be the buffer's length: the kernel trusts it"
    );
    let ptr = buf.as_mut_ptr().cast::<DmIoctl>();
    // SAFETY: `buf` is 8-byte aligned (a `[u64]`), at least as long as `DmIoctl` (asserted),
    // and exclusively borrowed for the call; its `data_size` equals its length (asserted), and
    // bounds every byte the kernel reads or writes past the struct.
    unsafe {
        let fd = control.as_raw_fd();
        match cmd {
            Cmd::Version => raw::dm_version(fd, ptr),
            Cmd::ListDevices => raw::dm_list_devices(fd, ptr),
            Cmd::DevCreate => raw::dm_dev_create(fd, ptr),
            Cmd::DevRemove => raw::dm_dev_remove(fd, ptr),
            Cmd::DevSuspend => raw::dm_dev_suspend(fd, ptr),
            Cmd::DevStatus => raw::dm_dev_status(fd, ptr),
            Cmd::TableLoad => raw::dm_table_load(fd, ptr),
            Cmd::TableClear => raw::dm_table_clear(fd, ptr),
            Cmd::TableDeps => raw::dm_table_deps(fd, ptr),
            Cmd::TableStatus => raw::dm_table_status(fd, ptr),
            Cmd::ListVersions => raw::dm_list_versions(fd, ptr),
            Cmd::TargetMsg => raw::dm_target_msg(fd, ptr),
        }
    }
    .map(|_| ())
}

/// `LOOP_CTL_GET_FREE`: the number of a free loop device (allocating one if needed).
pub(crate) fn loop_ctl_get_free(control: BorrowedFd<'_>) -> nix::Result<u32> {
    // SAFETY: this ioctl takes no argument and returns an integer.
    let n = unsafe { raw::loop_ctl_get_free(control.as_raw_fd()) }?;
    Ok(n as u32)
}

/// `LOOP_SET_FD`: binds `backing` to the loop device.
pub(crate) fn loop_set_fd(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: the argument is a file descriptor passed by value; both stay open for the call.
    unsafe { raw::loop_set_fd(dev.as_raw_fd(), backing.as_raw_fd()) }.map(|_| ())
}

/// `LOOP_CLR_FD`: unbinds the loop device.
pub(crate) fn loop_clr_fd(dev: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: this ioctl takes no argument.
    unsafe { raw::loop_clr_fd(dev.as_raw_fd()) }.map(|_| ())
}

/// `LOOP_SET_STATUS64`.
pub(crate) fn loop_set_status64(dev: BorrowedFd<'_>, info: &LoopInfo64) -> nix::Result<()> {
    // SAFETY: `info` is a valid, initialised `loop_info64` that the kernel only reads.
    unsafe { raw::loop_set_status64(dev.as_raw_fd(), info) }.map(|_| ())
}

/// `KEY_SPEC_THREAD_KEYRING`: the calling thread's keyring, where cryptsetup puts volume keys.
pub(crate) const KEY_SPEC_THREAD_KEYRING: i32 = -1;
/// `KEYCTL_REVOKE`.
const KEYCTL_REVOKE: libc::c_long = 3;
/// `KEYCTL_UNLINK`.
const KEYCTL_UNLINK: libc::c_long = 9;

/// `add_key(type, description, payload, keyring)`: the new key's serial number.
pub(crate) fn add_key(
    key_type: &CStr,
    description: &CStr,
    payload: &[u8],
    keyring: i32,
) -> nix::Result<i32> {
    // SAFETY: both strings are NUL-terminated (`CStr`), the payload pointer and length come
    // from one live slice that the kernel only reads (it copies the payload), and every
    // argument has the width the system call takes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            key_type.as_ptr(),
            description.as_ptr(),
            payload.as_ptr(),
            payload.len(),
            keyring,
        )
    };
    nix::errno::Errno::result(r).map(|serial| serial as i32)
}

/// `request_key(type, description, NULL, 0)`: the serial of a key the calling thread can
/// find (used to probe whether the kernel has key management at all).
pub(crate) fn request_key(key_type: &CStr, description: &CStr) -> nix::Result<i32> {
    // SAFETY: both strings are NUL-terminated; the callout is a null pointer, which the kernel
    // takes as "no callout"; nothing is written to our memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_request_key,
            key_type.as_ptr(),
            description.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    nix::errno::Errno::result(r).map(|serial| serial as i32)
}

/// `KEYCTL_READ`.
const KEYCTL_READ: libc::c_long = 11;

/// `keyctl(KEYCTL_READ, key, buf, len)`: the payload's whole length; the first `buf.len()`
/// bytes of it are copied into `buf` (none when `buf` is empty).
pub(crate) fn keyctl_read(key: i32, buf: &mut [u8]) -> nix::Result<usize> {
    let ptr = match buf.is_empty() {
        true => std::ptr::null_mut(),
        false => buf.as_mut_ptr(),
    };
    // SAFETY: the kernel writes at most `buf.len()` bytes to `ptr`, which points into one
    // live, exclusively borrowed slice of that length (or is null with length 0).
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_READ, key, ptr, buf.len()) };
    nix::errno::Errno::result(r).map(|n| n as usize)
}

/// `keyctl(KEYCTL_REVOKE, key)` then `keyctl(KEYCTL_UNLINK, key, keyring)`: the key can no
/// longer be read and leaves the keyring.
pub(crate) fn revoke_and_unlink(key: i32, keyring: i32) -> nix::Result<()> {
    // SAFETY: both calls take integers only and touch no memory of ours.
    let revoked = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_REVOKE, key) };
    // SAFETY: as above.
    let unlinked = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_UNLINK, key, keyring) };
    nix::errno::Errno::result(revoked)?;
    nix::errno::Errno::result(unlinked).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets of `struct dm_ioctl` fields as the C compiler lays them out.
    #[test]
    fn dm_ioctl_layout() {
        assert_eq!(std::mem::offset_of!(DmIoctl, data_size), 12);
        assert_eq!(std::mem::offset_of!(DmIoctl, flags), 28);
        assert_eq!(std::mem::offset_of!(DmIoctl, dev), 40);
        assert_eq!(std::mem::offset_of!(DmIoctl, name), 48);
        assert_eq!(std::mem::offset_of!(DmIoctl, uuid), 176);
        assert_eq!(std::mem::offset_of!(DmIoctl, data), 305);
        assert_eq!(std::mem::offset_of!(DmTargetSpec, target_type), 24);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_file_name), 56);
        // linux/blkpg.h on x86_64: long long start, length; int pno; char devname[64],
        // volname[64]; and the argument's three ints before the data pointer.
        assert_eq!(std::mem::offset_of!(BlkpgPartition, pno), 16);
        assert_eq!(std::mem::offset_of!(BlkpgPartition, volname), 84);
        assert_eq!(std::mem::size_of::<BlkpgPartition>(), 152);
        assert_eq!(std::mem::offset_of!(BlkpgIoctlArg, data), 16);
        assert_eq!(std::mem::size_of::<BlkpgIoctlArg>(), 24);
    }

    /// The request numbers `_IOWR(0xfd, n, struct dm_ioctl)` the kernel expects.
    #[test]
    fn request_numbers() {
        let iowr = |nr: u64| (3u64 << 30) | (312u64 << 16) | (0xfd << 8) | nr;
        assert_eq!(iowr(0), 0xc138fd00);
        assert_eq!(
            nix::request_code_readwrite!(0xfd, 9, std::mem::size_of::<DmIoctl>()) as u64,
            iowr(9)
        );
    }
}
