//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// What can stop a full-disk step.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A configuration file is wrong.
    Config(volumes::ConfigError),
    /// The LVM2 metadata cannot be read or changed.
    Lvm {
        /// The physical volume.
        device: PathBuf,
        /// Why.
        source: lvm::Error,
    },
    /// Mapping or unmapping failed.
    Activate(activate::Error),
    /// The delta or the encrypted rootfs could not be made or opened.
    Volume(volumes::Error),
    /// A configuration this build cannot carry out yet.
    Unsupported(String),
    /// The initrd cannot be built as asked.
    Initrd {
        /// The file or directory at fault.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A disk image cannot be read as needed (container format, no or damaged partition
    /// table, unreadable file system, missing boot files).
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A program the conversion runs (e2fsprogs) failed.
    Tool {
        /// The command line.
        command: String,
        /// What it said.
        why: String,
    },
    /// A file or device operation failed.
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn lvm(device: &std::path::Path) -> impl FnOnce(lvm::Error) -> Self + '_ {
        move |source| Error::Lvm {
            device: device.to_owned(),
            source,
        }
    }

    /// As [`Error::io`], for the system calls `nix` makes (mount, chroot, flock, mknod).
    pub(crate) fn nix<'a>(
        path: &'a std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(nix::Error) -> Self + 'a {
        move |e| Error::io(path, what)(e.into())
    }

    pub(crate) fn io<'a>(
        path: &'a std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| Error::Io {
            path: path.to_owned(),
            what,
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => e.fmt(f),
            Error::Lvm { device, source } => write!(f, "{}: {source}", device.display()),
            Error::Activate(e) => e.fmt(f),
            Error::Volume(e) => e.fmt(f),
            Error::Unsupported(what) => write!(f, "not supported: {what}"),
            Error::Initrd { path, why } => write!(f, "{} {why}", path.display()),
            Error::Image { path, why } => write!(f, "{}: {why}", path.display()),
            Error::Tool { command, why } => write!(f, "{command}: {why}"),
            // The operating system's error follows as the source.
            Error::Io { path, what, .. } => write!(f, "cannot {what} {}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // These print their inner error as their own message: its source comes next.
            Error::Config(e) => std::error::Error::source(e),
            Error::Lvm { source, .. } => std::error::Error::source(source),
            Error::Activate(e) => std::error::Error::source(e),
            Error::Volume(e) => std::error::Error::source(e),
            Error::Unsupported(_)
            | Error::Initrd { .. }
            | Error::Image { .. }
            | Error::Tool { .. } => None,
            Error::Io { source, .. } => Some(source),
        }
    }
}

impl From<volumes::ConfigError> for Error {
    fn from(e: volumes::ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<volumes::Error> for Error {
    fn from(e: volumes::Error) -> Self {
        Error::Volume(e)
    }
}

impl From<activate::Error> for Error {
    fn from(e: activate::Error) -> Self {
        Error::Activate(e)
    }
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
