//! cryptsetup's device locks, so that it and we exclude each other: a shared `flock` while a
//! header is read, an exclusive one while it is changed. On a block device the lock is taken
//! on `/run/cryptsetup/L_<major>:<minor>` (a file cryptsetup also creates there); on an image
//! file, on the file itself.
//!
//! Locks are held by the process until it exits (or [`release_locks`]), as a command holds
//! its device for its whole run; taking a lock the process already holds is a no-op, and a
//! shared lock is upgraded in place when an exclusive one is asked for.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// cryptsetup's lock directory.
const LOCK_DIR: &str = "/run/cryptsetup";
/// How long a command waits for another process to release a device before it is busy.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The locks this process holds: the lock file and whether the lock is exclusive.
static HELD: Mutex<Option<HashMap<PathBuf, (File, bool)>>> = Mutex::new(None);
/// Set by [`disable_locks`].
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Takes no more locks in this process (cryptsetup's `--disable-locks`: for a read-only
/// `/run`, or a caller that serialises access itself).
pub fn disable_locks() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// Takes cryptsetup's lock on the device or image at `path`: shared for reading, exclusive
/// (`exclusive`) for changing its header. Waits up to 5 s for another holder.
///
/// # Errors
/// [`Error::Device`] with `ResourceBusy` when another process keeps the lock; open errors.
pub fn lock_device(path: &Path, exclusive: bool) -> Result<()> {
    if DISABLED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let meta = std::fs::metadata(path).map_err(Error::device(path, "open device"))?;
    let lock_path = if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let dir = Path::new(LOCK_DIR);
        if !dir.is_dir() {
            // Without the directory (and the right to create it) cryptsetup locks nothing
            // either; the device itself is then only protected by O_EXCL.
            if std::fs::DirBuilder::new().mode(0o700).create(dir).is_err() {
                return Ok(());
            }
        }
        dir.join(format!("L_{major}:{minor}"))
    } else if meta.is_file() {
        std::fs::canonicalize(path).map_err(Error::device(path, "open device"))?
    } else {
        return Ok(());
    };
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    let held = held.get_or_insert_with(HashMap::new);
    if let Some((f, was_exclusive)) = held.get_mut(&lock_path) {
        if exclusive && !*was_exclusive {
            wait_for(f, true, path)?;
            *was_exclusive = true;
        }
        return Ok(());
    }
    // cryptsetup unlinks a lock file it releases last; a lock taken on a file that was
    // unlinked meanwhile excludes no one, so it is taken again on the new one.
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let f = OpenOptions::new()
            .read(true)
            .write(!meta.is_file())
            .create(!meta.is_file())
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(Error::device(path, "lock"))?;
        wait_for(&f, exclusive, path)?;
        let same = match (f.metadata(), std::fs::metadata(&lock_path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if same || Instant::now() > deadline {
            held.insert(lock_path, (f, exclusive));
            return Ok(());
        }
    }
}

/// Releases every lock this process holds.
pub fn release_locks() {
    if let Ok(mut held) = HELD.lock() {
        *held = None;
    }
}

fn wait_for(f: &File, exclusive: bool, path: &Path) -> Result<()> {
    let start = Instant::now();
    loop {
        let r = if exclusive {
            f.try_lock()
        } else {
            f.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Device {
                    path: path.to_owned(),
                    what: "lock",
                    source: io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        "in use by another process",
                    ),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::device(path, "lock")(e)),
        }
    }
}
