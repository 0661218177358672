//! The crate's one error type: what failed, on which device or mapping, and why.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A failure to map, unmap, wipe or stream a volume.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The LUKS2 library refused or failed on a device.
    Luks {
        /// The device or image.
        device: PathBuf,
        /// Why.
        source: luks2::Error,
    },
    /// Opening, locking, reading or writing a device or image.
    Device {
        /// The device or image.
        path: PathBuf,
        /// What was being done (`open`, `read`, `lock`, ...).
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A device-mapper or loop-device operation.
    Dm {
        /// The mapping (or image) it concerned.
        name: String,
        /// Why.
        source: dmioctl::Error,
    },
    /// dm-integrity or dm-verity metadata.
    Integrity {
        /// The device.
        device: PathBuf,
        /// Why.
        source: integrity::Error,
    },
    /// What was asked cannot be mapped or streamed (no room for data, a range past the
    /// data segment, conflicting options).
    Invalid {
        /// What is wrong, naming the value.
        reason: String,
    },
    /// Discards asked for a volume with integrity protection (`--allow-discards`, or its
    /// persistent flag): dm-integrity's tags would not match discarded sectors.
    DiscardsOverIntegrity,
    /// A refresh whose volume is not the live mapping's (another cipher, key, offset or
    /// device under the same name); nothing was changed.
    Mismatch {
        /// The mapping (or its integrity layer).
        name: String,
    },
    /// A suspend or resume the mapping's state does not allow.
    Suspend {
        /// The mapping.
        name: String,
        /// Why.
        refusal: SuspendRefusal,
    },
}

/// Why a mapping cannot be suspended or resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuspendRefusal {
    /// Not a LUKS mapping: nothing could give its key back.
    NotLuks,
    /// Not one crypt target.
    NotCrypt,
    /// Suspended already.
    AlreadySuspended,
    /// Not suspended.
    NotSuspended,
    /// The header given is another volume's (its UUID is not in the mapping's).
    ForeignHeader,
    /// The key given does not fit the table (its size, or keyring description).
    ForeignKey,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// `map_err` adapter for a luks2 error on `device`.
    pub fn luks(device: &Path) -> impl FnOnce(luks2::Error) -> Error + '_ {
        move |source| Error::Luks {
            device: device.to_owned(),
            source,
        }
    }

    /// `map_err` adapter for an I/O error doing `what` on `path`.
    pub fn device<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Device {
            path: path.to_owned(),
            what,
            source,
        }
    }

    /// `map_err` adapter for a device-mapper error on `name`.
    pub fn dm(name: &str) -> impl FnOnce(dmioctl::Error) -> Error + '_ {
        move |source| Error::Dm {
            name: name.to_owned(),
            source,
        }
    }

    /// `map_err` adapter for an integrity/verity error on `device`.
    pub fn integrity(device: &Path) -> impl FnOnce(integrity::Error) -> Error + '_ {
        move |source| Error::Integrity {
            device: device.to_owned(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Luks { device, source } => write!(f, "{}: {source}", device.display()),
            Error::Integrity { device, source } => write!(f, "{}: {source}", device.display()),
            Error::Dm { name, source } => write!(f, "{name}: {source}"),
            Error::Device { path, what, .. } => write!(f, "cannot {what} {}", path.display()),
            Error::Invalid { reason } => f.write_str(reason),
            Error::Mismatch { name } => write!(
                f,
                "{name}: the live mapping is not this volume's (its cipher, key, offsets or device differ); nothing was changed"
            ),
            Error::DiscardsOverIntegrity => f.write_str(
                "discards (--allow-discards) cannot pass a volume with integrity protection: its tags would not match the discarded sectors",
            ),
            Error::Suspend { name, refusal } => match refusal {
                SuspendRefusal::NotLuks => {
                    write!(
                        f,
                        "{name}: this operation is supported only for LUKS devices"
                    )
                }
                SuspendRefusal::NotCrypt => write!(f, "{name} is not a single crypt mapping"),
                SuspendRefusal::AlreadySuspended => write!(f, "{name} is already suspended"),
                SuspendRefusal::NotSuspended => write!(f, "{name} is not suspended"),
                SuspendRefusal::ForeignHeader => {
                    write!(f, "{name}: the header given is another volume's")
                }
                SuspendRefusal::ForeignKey => write!(f, "{name}: the key given is not its key"),
            },
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The library errors' own text is already in the message: chain what is below.
            Error::Luks { source, .. } => std::error::Error::source(source),
            Error::Integrity { source, .. } => std::error::Error::source(source),
            Error::Dm { source, .. } => std::error::Error::source(source),
            Error::Device { source, .. } => Some(source),
            Error::Invalid { .. }
            | Error::DiscardsOverIntegrity
            | Error::Mismatch { .. }
            | Error::Suspend { .. } => None,
        }
    }
}
