//! The device-mapper control node and its commands, named after the ioctls.

use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use crate::name::{check_uuid, DmName};
use crate::sys::{self, flags, Cmd, DmIoctl, DmTargetSpec};
use crate::table::Target;
use crate::{Error, Result};

const HDR: usize = std::mem::size_of::<DmIoctl>();
const SPEC: usize = std::mem::size_of::<DmTargetSpec>();
/// First buffer size; doubled while the kernel reports it too small.
const INITIAL_BUF: usize = 16 << 10;
/// Largest buffer we grow to.
const MAX_BUF: usize = 16 << 20;

/// What the kernel reports about a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Name.
    pub name: String,
    /// UUID (empty if none).
    pub uuid: String,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Number of openers.
    pub open_count: i32,
    /// Number of targets in the live table.
    pub target_count: u32,
    /// Whether a live table is present.
    pub active: bool,
    /// Whether the device is suspended.
    pub suspended: bool,
    /// Whether the device is read-only.
    pub read_only: bool,
    /// Whether the device goes away when its last opener closes it (a deferred removal).
    pub deferred_remove: bool,
}

/// An ioctl buffer: a `struct dm_ioctl` followed by the payload. Wiped when dropped, since
/// table loads carry keys.
struct Buffer(Vec<u64>);

impl Drop for Buffer {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Buffer {
    fn new(len: usize) -> Self {
        let mut b = Buffer(vec![0u64; len.div_ceil(8)]);
        let size = b.0.len() * 8;
        let h = b.header_mut();
        h.version = sys::DM_VERSION;
        h.data_size = size as u32;
        h.data_start = HDR as u32;
        b
    }

    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }

    fn header(&self) -> &DmIoctl {
        bytemuck::from_bytes(&self.bytes()[..HDR])
    }

    fn header_mut(&mut self) -> &mut DmIoctl {
        bytemuck::from_bytes_mut(&mut self.bytes_mut()[..HDR])
    }

    /// The payload the kernel returned: from `data_start` to `data_size`.
    fn payload(&self) -> &[u8] {
        let h = self.header();
        let end = (h.data_size as usize).min(self.bytes().len());
        let start = (h.data_start as usize).min(end);
        &self.bytes()[start..end]
    }
}

fn put_cstr(dst: &mut [u8], s: &str) {
    dst.fill(0);
    dst[..s.len()].copy_from_slice(s.as_bytes());
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn info(h: &DmIoctl) -> DeviceInfo {
    let dev = h.dev as nix::libc::dev_t;
    DeviceInfo {
        name: cstr(&h.name),
        uuid: cstr(&h.uuid),
        major: nix::sys::stat::major(dev) as u32,
        minor: nix::sys::stat::minor(dev) as u32,
        open_count: h.open_count,
        target_count: h.target_count,
        active: h.flags & flags::ACTIVE_PRESENT != 0,
        suspended: h.flags & flags::SUSPEND != 0,
        read_only: h.flags & flags::READONLY != 0,
        deferred_remove: h.flags & flags::DEFERRED_REMOVE != 0,
    }
}

fn cmd_name(c: Cmd) -> &'static str {
    match c {
        Cmd::Version => "DM_VERSION",
        Cmd::ListDevices => "DM_LIST_DEVICES",
        Cmd::DevCreate => "DM_DEV_CREATE",
        Cmd::DevRemove => "DM_DEV_REMOVE",
        Cmd::DevSuspend => "DM_DEV_SUSPEND",
        Cmd::DevStatus => "DM_DEV_STATUS",
        Cmd::TableLoad => "DM_TABLE_LOAD",
        Cmd::TableClear => "DM_TABLE_CLEAR",
        Cmd::TableDeps => "DM_TABLE_DEPS",
        Cmd::TableStatus => "DM_TABLE_STATUS",
        Cmd::ListVersions => "DM_LIST_VERSIONS",
        Cmd::TargetMsg => "DM_TARGET_MSG",
    }
}

/// Which table a [`DmControl::table_status`] query returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// The live table's parameters (`dmsetup table`); crypt keys appear in it.
    Table,
    /// The targets' status lines (`dmsetup status`).
    Status,
}

/// An open `/dev/mapper/control`.
#[derive(Debug)]
pub struct DmControl {
    file: File,
}

impl DmControl {
    /// The usual path of the control node.
    pub const PATH: &'static str = "/dev/mapper/control";

    /// Opens the control node and checks the kernel speaks interface version 4.
    ///
    /// # Errors
    /// [`Error::NoDeviceMapper`] if it does not exist or has no driver behind it,
    /// [`Error::Invalid`] for another interface version, [`Error::Io`] otherwise.
    pub fn open() -> Result<Self> {
        let file = match File::options().read(true).write(true).open(Self::PATH) {
            Ok(file) => file,
            // A node without the driver behind it answers ENODEV or ENXIO.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || matches!(e.raw_os_error(), Some(nix::libc::ENODEV | nix::libc::ENXIO)) =>
            {
                return Err(Error::NoDeviceMapper)
            }
            Err(e) => return Err(Error::io(format!("cannot open {}", Self::PATH), e)),
        };
        let dm = Self { file };
        let v = dm.version()?;
        if v[0] != sys::DM_VERSION[0] {
            return Err(Error::invalid(
                "device-mapper interface",
                format!("kernel speaks {}.{}.{}, we speak 4.x", v[0], v[1], v[2]),
            ));
        }
        Ok(dm)
    }

    /// Runs one command, growing the buffer while the kernel says it is full.
    fn call(
        &self,
        cmd: Cmd,
        name: Option<&DmName>,
        mut build: impl FnMut(&mut Buffer),
        min: usize,
    ) -> Result<Buffer> {
        let mut len = min.max(INITIAL_BUF);
        loop {
            let mut buf = Buffer::new(len);
            if let Some(n) = name {
                put_cstr(&mut buf.header_mut().name, n.as_str());
            }
            build(&mut buf);
            sys::dm_ioctl(self.file.as_fd(), cmd, &mut buf.0).map_err(|errno| {
                match (cmd, errno) {
                    (Cmd::DevCreate, nix::Error::EBUSY) => {
                        Error::Exists(name.map(|n| n.to_string()).unwrap_or_default())
                    }
                    (_, nix::Error::ENXIO) if name.is_some() => {
                        Error::NotFound(name.map(|n| n.to_string()).unwrap_or_default())
                    }
                    _ => Error::Ioctl {
                        cmd: cmd_name(cmd),
                        name: name.map(|n| n.to_string()),
                        errno,
                    },
                }
            })?;
            if buf.header().flags & flags::BUFFER_FULL == 0 {
                return Ok(buf);
            }
            if len >= MAX_BUF {
                return Err(Error::invalid(
                    "reply",
                    format!("{} needs more than {MAX_BUF} bytes", cmd_name(cmd)),
                ));
            }
            len *= 2;
        }
    }

    /// `DM_VERSION`: the kernel's interface version.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn version(&self) -> Result<[u32; 3]> {
        Ok(self.call(Cmd::Version, None, |_| {}, 0)?.header().version)
    }

    /// `DM_DEV_CREATE`: a new device with no table.
    ///
    /// # Errors
    /// [`Error::Exists`], [`Error::Invalid`] for a bad uuid, ioctl errors.
    pub fn dev_create(
        &self,
        name: &DmName,
        uuid: Option<&str>,
        read_only: bool,
    ) -> Result<DeviceInfo> {
        if let Some(u) = uuid {
            check_uuid(u)?;
        }
        let buf = self.call(
            Cmd::DevCreate,
            Some(name),
            |b| {
                let h = b.header_mut();
                if let Some(u) = uuid {
                    put_cstr(&mut h.uuid, u);
                }
                if read_only {
                    h.flags |= flags::READONLY;
                }
            },
            0,
        )?;
        Ok(info(buf.header()))
    }

    /// `DM_TABLE_LOAD`: loads `targets` as the inactive table. Tables that carry keys must be
    /// loaded with `secure`, which makes the kernel wipe its copy of the buffer.
    ///
    /// # Errors
    /// Ioctl errors (`EINVAL` when the kernel rejects a target's parameters).
    pub fn table_load(
        &self,
        name: &DmName,
        targets: &[Target],
        read_only: bool,
        secure: bool,
    ) -> Result<()> {
        let mut payload_len = 0;
        for t in targets {
            payload_len += SPEC + (t.params().len() + 1).next_multiple_of(8);
        }
        self.call(
            Cmd::TableLoad,
            Some(name),
            |b| {
                let h = b.header_mut();
                h.target_count = targets.len() as u32;
                if read_only {
                    h.flags |= flags::READONLY;
                }
                if secure {
                    h.flags |= flags::SECURE_DATA;
                }
                let mut off = HDR;
                let bytes = b.bytes_mut();
                for t in targets {
                    let params = t.params().as_bytes();
                    let step = SPEC + (params.len() + 1).next_multiple_of(8);
                    let mut spec = DmTargetSpec {
                        sector_start: t.start,
                        length: t.length,
                        status: 0,
                        next: step as u32,
                        target_type: [0; sys::DM_MAX_TYPE_NAME],
                    };
                    put_cstr(&mut spec.target_type, &t.kind);
                    bytes[off..off + SPEC].copy_from_slice(bytemuck::bytes_of(&spec));
                    bytes[off + SPEC..off + SPEC + params.len()].copy_from_slice(params);
                    off += step;
                }
            },
            HDR + payload_len,
        )?;
        Ok(())
    }

    /// `DM_TABLE_CLEAR`: drops a loaded (inactive) table; the live one stays.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn table_clear(&self, name: &DmName) -> Result<()> {
        self.call(Cmd::TableClear, Some(name), |_| {}, 0)?;
        Ok(())
    }

    /// `DM_DEV_SUSPEND` without the suspend flag: makes the loaded table live.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn dev_resume(&self, name: &DmName) -> Result<DeviceInfo> {
        Ok(info(
            self.call(Cmd::DevSuspend, Some(name), |_| {}, 0)?.header(),
        ))
    }

    /// `DM_DEV_SUSPEND`: suspends I/O.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn dev_suspend(&self, name: &DmName) -> Result<()> {
        self.call(
            Cmd::DevSuspend,
            Some(name),
            |b| b.header_mut().flags |= flags::SUSPEND,
            0,
        )?;
        Ok(())
    }

    /// `DM_DEV_STATUS`.
    ///
    /// # Errors
    /// [`Error::NotFound`], ioctl errors.
    pub fn dev_status(&self, name: &DmName) -> Result<DeviceInfo> {
        Ok(info(
            self.call(Cmd::DevStatus, Some(name), |_| {}, 0)?.header(),
        ))
    }

    /// `DM_DEV_REMOVE`, retried for `wait` while the device is briefly busy (udev probes,
    /// a closing file system).
    ///
    /// # Errors
    /// [`Error::Busy`] with the open count when it stays busy; [`Error::NotFound`].
    pub fn dev_remove(&self, name: &DmName, wait: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match self.call(Cmd::DevRemove, Some(name), |_| {}, 0) {
                Ok(_) => return Ok(()),
                Err(Error::Ioctl {
                    errno: nix::Error::EBUSY,
                    ..
                }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(Error::Ioctl {
                    errno: nix::Error::EBUSY,
                    ..
                }) => {
                    let open_count = self.dev_status(name).map(|i| i.open_count).unwrap_or(-1);
                    return Err(Error::Busy {
                        name: name.to_string(),
                        open_count,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `DM_DEV_REMOVE` deferred: the device goes now if no one has it open, else when its
    /// last opener closes it (the kernel then reports [`DeviceInfo::deferred_remove`]).
    ///
    /// # Errors
    /// [`Error::NotFound`]; another ioctl failure.
    pub fn dev_remove_deferred(&self, name: &DmName) -> Result<()> {
        self.call(
            Cmd::DevRemove,
            Some(name),
            |b| b.header_mut().flags |= flags::DEFERRED_REMOVE,
            0,
        )
        .map(drop)
    }

    /// Cancels a deferred removal of `name` (the `@cancel_deferred_remove` message).
    ///
    /// # Errors
    /// The ioctl's failure (`ENXIO` when no removal is deferred).
    pub fn cancel_deferred_remove(&self, name: &DmName) -> Result<()> {
        self.target_msg(name, 0, "@cancel_deferred_remove")
            .map(drop)
    }

    /// `DM_TABLE_STATUS`: the live table (or the targets' status lines).
    ///
    /// # Errors
    /// [`Error::NotFound`], ioctl errors.
    pub fn table_status(&self, name: &DmName, kind: TableKind) -> Result<Vec<Target>> {
        let buf = self.call(
            Cmd::TableStatus,
            Some(name),
            |b| {
                if kind == TableKind::Table {
                    // A table may hold a key: the kernel wipes its copy of the reply.
                    b.header_mut().flags |= flags::STATUS_TABLE | flags::SECURE_DATA;
                }
            },
            0,
        )?;
        let count = buf.header().target_count as usize;
        let data = buf.payload();
        let mut out = Vec::with_capacity(count);
        let mut off = 0usize;
        for _ in 0..count {
            let spec_bytes = data
                .get(off..off + SPEC)
                .ok_or_else(|| Error::invalid("reply", "target spec past the end of the buffer"))?;
            let spec: DmTargetSpec = bytemuck::pod_read_unaligned(spec_bytes);
            let params = &data[off + SPEC..];
            let end = params.iter().position(|&c| c == 0).unwrap_or(params.len());
            out.push(Target::new(
                spec.sector_start,
                spec.length,
                &cstr(&spec.target_type),
                Zeroizing::new(String::from_utf8_lossy(&params[..end]).into_owned()),
            ));
            // For status replies `next` counts from the first spec.
            if spec.next as usize <= off && out.len() < count {
                return Err(Error::invalid("reply", "target specs do not advance"));
            }
            off = spec.next as usize;
        }
        Ok(out)
    }

    /// `DM_LIST_DEVICES`: names and device numbers of all mapped devices.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn list_devices(&self) -> Result<Vec<(String, u32, u32)>> {
        let buf = self.call(Cmd::ListDevices, None, |_| {}, 0)?;
        let data = buf.payload();
        let mut out = Vec::new();
        let mut off = 0usize;
        while let Some(rec) = data.get(off..off + 12) {
            let dev = u64::from_ne_bytes(rec[..8].try_into().unwrap_or_default());
            let next = u32::from_ne_bytes(rec[8..12].try_into().unwrap_or_default()) as usize;
            if dev == 0 {
                break;
            }
            let d = dev as nix::libc::dev_t;
            out.push((
                cstr(&data[off + 12..]),
                nix::sys::stat::major(d) as u32,
                nix::sys::stat::minor(d) as u32,
            ));
            if next == 0 {
                break;
            }
            off += next;
        }
        Ok(out)
    }

    /// `DM_LIST_VERSIONS`: the loaded target types and their versions.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn target_versions(&self) -> Result<Vec<(String, [u32; 3])>> {
        let buf = self.call(Cmd::ListVersions, None, |_| {}, 0)?;
        let data = buf.payload();
        let mut out = Vec::new();
        let mut off = 0usize;
        while let Some(rec) = data.get(off..off + 16) {
            let word =
                |i: usize| u32::from_ne_bytes(rec[i * 4..i * 4 + 4].try_into().unwrap_or_default());
            let next = word(0) as usize;
            out.push((cstr(&data[off + 16..]), [word(1), word(2), word(3)]));
            if next == 0 {
                break;
            }
            off += next;
        }
        Ok(out)
    }

    /// `DM_TABLE_DEPS`: the devices the live table uses, as (major, minor).
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn table_deps(&self, name: &DmName) -> Result<Vec<(u32, u32)>> {
        let buf = self.call(Cmd::TableDeps, Some(name), |_| {}, 0)?;
        let data = buf.payload();
        let count = data
            .get(..4)
            .map_or(0, |c| u32::from_ne_bytes(c.try_into().unwrap_or_default()))
            as usize;
        Ok((0..count)
            .filter_map(|i| data.get(8 + i * 8..16 + i * 8))
            .map(|d| {
                let d = u64::from_ne_bytes(d.try_into().unwrap_or_default()) as nix::libc::dev_t;
                (
                    nix::sys::stat::major(d) as u32,
                    nix::sys::stat::minor(d) as u32,
                )
            })
            .collect())
    }

    /// `DM_TARGET_MSG`: sends `message` to the target at `sector`; returns any reply text.
    /// The message may hold a key (dm-crypt's `key set`): it is sent with `DM_SECURE_DATA`,
    /// so the kernel wipes its copy, and the buffer here is wiped when dropped.
    ///
    /// # Errors
    /// Ioctl errors.
    pub fn target_msg(&self, name: &DmName, sector: u64, message: &str) -> Result<String> {
        let buf = self.call(
            Cmd::TargetMsg,
            Some(name),
            |b| {
                b.header_mut().flags |= flags::SECURE_DATA;
                let bytes = b.bytes_mut();
                bytes[HDR..HDR + 8].copy_from_slice(&sector.to_ne_bytes());
                bytes[HDR + 8..HDR + 8 + message.len()].copy_from_slice(message.as_bytes());
            },
            HDR + 8 + message.len() + 1,
        )?;
        Ok(if buf.header().flags & flags::DATA_OUT != 0 {
            cstr(buf.payload())
        } else {
            String::new()
        })
    }
}
