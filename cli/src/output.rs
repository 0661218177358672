//! Output files that appear only when complete: written under a temporary name beside the
//! target and renamed into place on success, removed on failure, so an interrupted or failed
//! command (a full disk, a wrong key, a kill) never leaves a partial file that looks valid.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{CliError, CliResult};

/// An output file being written.
#[derive(Debug)]
pub(crate) struct Output {
    file: File,
    target: PathBuf,
    /// The temporary name, until [`Output::commit`]; `None` when writing to a device directly.
    temp: Option<PathBuf>,
    replace: bool,
}

impl Output {
    /// Starts a file that will become `target` with permissions `mode`. With `replace`, an
    /// existing `target` is replaced on commit; without, the commit fails if it exists. A block
    /// or character device as target is written in place (it cannot be renamed over).
    ///
    /// # Errors
    /// [`CliError::File`] when the temporary file cannot be created.
    pub(crate) fn create(target: &Path, mode: u32, replace: bool) -> CliResult<Self> {
        let is_device = std::fs::metadata(target)
            .is_ok_and(|m| m.file_type().is_block_device() || m.file_type().is_char_device());
        if is_device {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(target)
                .map_err(CliError::file(target, "open"))?;
            return Ok(Self {
                file,
                target: target.to_owned(),
                temp: None,
                replace,
            });
        }
        if !replace && std::fs::symlink_metadata(target).is_ok() {
            return Err(CliError::file(target, "create")(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
        let temp = temp_name(target);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .map_err(CliError::file(target, "create"))?;
        Ok(Self {
            file,
            target: target.to_owned(),
            temp: Some(temp),
            replace,
        })
    }

    /// The file to write to.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Syncs the file and gives it its name.
    ///
    /// # Errors
    /// [`CliError::File`] when syncing or renaming fails (the temporary file is removed), or,
    /// without `replace`, when the target appeared meanwhile.
    pub(crate) fn commit(mut self) -> CliResult {
        let target = self.target.clone();
        self.file
            .sync_all()
            .map_err(CliError::file(&target, "write"))?;
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        let placed = if self.replace {
            std::fs::rename(&temp, &target)
        } else {
            // A hard link fails if the target exists, where a rename would replace it.
            std::fs::hard_link(&temp, &target).and_then(|()| std::fs::remove_file(&temp))
        };
        placed.map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            CliError::file(&target, "create")(e)
        })
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// `.NAME.cryptpilot-PID` in the target's directory (the same file system, so the rename is
/// atomic).
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.cryptpilot-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("cryptpilot-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).expect("dir");
        d
    }

    #[test]
    fn appears_only_when_committed() {
        let d = dir();
        let target = d.join("out");
        let mut o = Output::create(&target, 0o600, false).expect("create");
        o.file().write_all(b"data").expect("write");
        assert!(!target.exists());
        drop(o);
        assert_eq!(
            std::fs::read_dir(&d).expect("list").count(),
            0,
            "nothing left"
        );

        let mut o = Output::create(&target, 0o600, false).expect("create");
        o.file().write_all(b"data").expect("write");
        o.commit().expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"data");
        assert_eq!(std::fs::read_dir(&d).expect("list").count(), 1);

        // Without replace, an existing target stays as it was.
        assert!(Output::create(&target, 0o600, false).is_err());
        let mut o = Output::create(&target, 0o600, true).expect("create");
        o.file().write_all(b"new").expect("write");
        o.commit().expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"new");
        std::fs::remove_dir_all(&d).expect("clean");
    }
}
