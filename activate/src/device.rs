//! The devices under a mapping: block devices as they are, image files through an
//! auto-clearing loop device; and opening them the way cryptsetup does (exclusive for
//! writers, busy when mounted or mapped).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::{Error, Result};

/// Opens a device or image under cryptsetup's lock (see [`lock_device`](crate::lock_device)):
/// shared for readers, exclusive for writers; block devices are opened with `O_EXCL` when
/// `exclusive`, so a mounted or mapped device is refused as busy.
///
/// # Errors
/// [`Error::Device`]: `ResourceBusy` when another process holds the lock or the kernel holds
/// the device, the open error otherwise.
pub fn open_device(path: &Path, write: bool, exclusive: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(write);
    let is_block = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device());
    if exclusive && is_block {
        o.custom_flags(nix::fcntl::OFlag::O_EXCL.bits());
    }
    let f = o.open(path).map_err(|e| {
        // A directory opened to write: "not compatible", as below.
        if e.raw_os_error() == Some(nix::libc::EISDIR) {
            return Error::Device {
                path: path.to_owned(),
                what: "use",
                source: io::Error::new(
                    io::ErrorKind::Unsupported,
                    "not a block device or disk image file",
                ),
            };
        }
        let what = if e.raw_os_error() == Some(nix::libc::EBUSY) {
            "open (device is in use)"
        } else {
            "open device"
        };
        Error::device(path, what)(e)
    })?;
    // cryptsetup works on block devices and image files only: a directory or /dev/null is
    // "not compatible", not an empty or unreadable volume.
    let kind = f
        .metadata()
        .map_err(Error::device(path, "open device"))?
        .file_type();
    if !(kind.is_file() || kind.is_block_device()) {
        return Err(Error::Device {
            path: path.to_owned(),
            what: "use",
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                "not a block device or disk image file",
            ),
        });
    }
    // cryptsetup's lock: shared to read, exclusive to write, so the two tools serialize.
    crate::lock::lock_device(path, write)?;
    Ok(f)
}

/// The device a table names: a block device as is, an image file through a loop device that
/// stays attached while this value lives and clears itself once the mapping holds it.
#[derive(Debug)]
pub struct DataDevice {
    major: u32,
    minor: u32,
    size: u64,
    _loop: Option<dmioctl::loopdev::LoopDevice>,
}

impl DataDevice {
    /// The device for `file` (opened from `path`).
    ///
    /// # Errors
    /// [`Error::Device`] when it cannot be examined; [`Error::Dm`] when no loop device can
    /// be attached to an image file.
    pub fn new(path: &Path, file: &mut File, read_only: bool) -> Result<Self> {
        let meta = file.metadata().map_err(Error::device(path, "stat"))?;
        let size = luks2::BlockIo::size(file).map_err(Error::device(path, "read the size of"))?;
        if meta.file_type().is_block_device() {
            let rdev = meta.rdev();
            return Ok(DataDevice {
                major: nix::sys::stat::major(rdev) as u32,
                minor: nix::sys::stat::minor(rdev) as u32,
                size,
                _loop: None,
            });
        }
        let name = path.to_string_lossy();
        let lo = dmioctl::loopdev::attach(path, read_only).map_err(Error::dm(&name))?;
        let (major, minor) = lo.dev().map_err(Error::dm(&name))?;
        Ok(DataDevice {
            major,
            minor,
            size,
            _loop: Some(lo),
        })
    }

    /// `major:minor`, as tables name devices.
    pub fn dev_string(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    #[cfg(test)]
    pub(crate) fn fake(major: u32, minor: u32, size: u64) -> Self {
        DataDevice {
            major,
            minor,
            size,
            _loop: None,
        }
    }
}
