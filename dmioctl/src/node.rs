//! Device nodes under `/dev/mapper`, for systems with and without udev.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::{Error, Result};

/// `/dev/mapper/NAME`.
pub fn mapper_path(name: &str) -> PathBuf {
    Path::new("/dev/mapper").join(name)
}

/// Whether udev is running (it then creates and removes the nodes).
pub fn udev_running() -> bool {
    Path::new("/run/udev/control").exists()
}

/// Whether `path` is (or, as udev makes it, links to) the block device `MAJOR:MINOR`.
fn is_node_of(path: &Path, major: u32, minor: u32) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    std::fs::metadata(path).is_ok_and(|m| {
        m.file_type().is_block_device() && m.rdev() == makedev(major.into(), minor.into())
    })
}

/// Makes sure `/dev/mapper/NAME` is the node of the device: with udev, waits up to two
/// seconds for it (udev's link); without udev (initrds, minimal systems), creates it. There,
/// a node left behind by an earlier mapping of the same name (tools that remove mappings
/// without udev often leave their nodes) names another device: it is replaced, never
/// trusted. With udev, a path udev has not made right in time is left to udev.
///
/// # Errors
/// [`Error::Io`] if the node cannot be created.
pub fn ensure_node(name: &str, major: u32, minor: u32) -> Result<PathBuf> {
    let path = mapper_path(name);
    let udev = udev_running();
    if udev {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if is_node_of(&path, major, minor) {
                return Ok(path);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if is_node_of(&path, major, minor) {
        return Ok(path);
    }
    let exists = std::fs::symlink_metadata(&path).is_ok();
    if exists && udev {
        return Ok(path);
    }
    if exists {
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("cannot replace the stale {}", path.display()), e))?;
    }
    std::fs::create_dir_all("/dev/mapper")
        .map_err(|e| Error::io("cannot create /dev/mapper", e))?;
    mknod(
        &path,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(major.into(), minor.into()),
    )
    .map_err(|e| Error::io(format!("cannot create {}", path.display()), e.into()))?;
    Ok(path)
}

/// Removes `/dev/mapper/NAME` when no udev is there to do it.
pub fn remove_node(name: &str) {
    if !udev_running() {
        let _ = std::fs::remove_file(mapper_path(name));
    }
}
