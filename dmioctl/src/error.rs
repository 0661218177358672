//! The crate's one error type.

use std::fmt;

/// Device-mapper and loop-device errors.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `/dev/mapper/control` is missing: the kernel has no device-mapper (or `dm-mod` is not loaded).
    NoDeviceMapper,
    /// An ioctl failed.
    Ioctl {
        /// The command, e.g. `DM_TABLE_LOAD`.
        cmd: &'static str,
        /// The device name it was about, if any.
        name: Option<String>,
        /// The kernel's answer.
        errno: nix::Error,
    },
    /// A device with this name already exists.
    Exists(String),
    /// No device with this name exists.
    NotFound(String),
    /// The device stayed busy while we retried its removal.
    Busy {
        /// Device name.
        name: String,
        /// How many openers keep it busy.
        open_count: i32,
    },
    /// A name, uuid or table parameter is not acceptable.
    Invalid {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A file-system operation (device node, backing file) failed.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            Error::Ioctl { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error().map(nix::Error::from_raw),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoDeviceMapper => f.write_str(
                "device-mapper is not available (/dev/mapper/control is missing; is dm-mod loaded?)",
            ),
            Error::Ioctl { cmd, name: Some(n), errno } => write!(f, "{cmd} on {n} failed: {}", errno.desc()),
            Error::Ioctl { cmd, name: None, errno } => write!(f, "{cmd} failed: {}", errno.desc()),
            Error::Exists(n) => write!(f, "device {n} already exists"),
            Error::NotFound(n) => write!(f, "device {n} does not exist"),
            Error::Busy { name, open_count } => {
                write!(f, "device {name} is still in use ({open_count} open)")
            }
            Error::Invalid { what, reason } => write!(f, "invalid {what}: {reason}"),
            Error::Io { context, .. } => f.write_str(context),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
