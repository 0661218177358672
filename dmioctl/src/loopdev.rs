//! Loop devices for image files, attached with auto-clear so they vanish with their last user.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::sys::{self, LoopInfo64};
use crate::{Error, Result};

/// An attached loop device. It stays attached while the file is open or the device is in use
/// (e.g. under a dm table); with auto-clear it detaches after that.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
    file: File,
}

impl LoopDevice {
    /// The loop device's path (`/dev/loopN`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (major, minor) of the loop device.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn dev(&self) -> Result<(u32, u32)> {
        let m = self
            .file
            .metadata()
            .map_err(|e| Error::io("cannot stat the loop device", e))?;
        let rdev = m.rdev();
        Ok((
            nix::sys::stat::major(rdev) as u32,
            nix::sys::stat::minor(rdev) as u32,
        ))
    }
}

/// Attaches `backing` to a free loop device with auto-clear.
///
/// # Errors
/// [`Error::Io`] when `/dev/loop-control` or the file cannot be opened, ioctl errors.
pub fn attach(backing: &Path, read_only: bool) -> Result<LoopDevice> {
    let ctl = File::options()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .map_err(|e| Error::io("cannot open /dev/loop-control", e))?;
    let file = File::options()
        .read(true)
        .write(!read_only)
        .open(backing)
        .map_err(|e| Error::io(format!("cannot open {}", backing.display()), e))?;
    // Another process may take the free device between the query and the bind: retry.
    for _ in 0..10 {
        let n = sys::loop_ctl_get_free(ctl.as_fd()).map_err(|errno| Error::Ioctl {
            cmd: "LOOP_CTL_GET_FREE",
            name: None,
            errno,
        })?;
        let path = PathBuf::from(format!("/dev/loop{n}"));
        if !path.exists() {
            let _ = mknod(
                &path,
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o660),
                makedev(7, n.into()),
            );
        }
        let dev = File::options()
            .read(true)
            .write(!read_only)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        match sys::loop_set_fd(dev.as_fd(), file.as_fd()) {
            Ok(()) => {}
            Err(nix::Error::EBUSY) => continue,
            Err(errno) => {
                return Err(Error::Ioctl {
                    cmd: "LOOP_SET_FD",
                    name: Some(path.display().to_string()),
                    errno,
                })
            }
        }
        let mut info: LoopInfo64 = bytemuck::Zeroable::zeroed();
        info.lo_flags = sys::LO_FLAGS_AUTOCLEAR
            | if read_only {
                sys::LO_FLAGS_READ_ONLY
            } else {
                0
            };
        let name = backing.as_os_str().as_encoded_bytes();
        let n = name.len().min(info.lo_file_name.len() - 1);
        info.lo_file_name[..n].copy_from_slice(&name[..n]);
        if let Err(errno) = sys::loop_set_status64(dev.as_fd(), &info) {
            let _ = sys::loop_clr_fd(dev.as_fd());
            return Err(Error::Ioctl {
                cmd: "LOOP_SET_STATUS64",
                name: Some(path.display().to_string()),
                errno,
            });
        }
        return Ok(LoopDevice { path, file: dev });
    }
    Err(Error::invalid(
        "loop device",
        "no free loop device after 10 attempts",
    ))
}
