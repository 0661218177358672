//! The CLI's errors and their cryptsetup exit codes, decided in one place.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// cryptsetup's exit codes.
pub(crate) mod code {
    pub(crate) const FAILURE: i32 = 1;
    pub(crate) const PERMISSION: i32 = 2;
    pub(crate) const NO_MEMORY: i32 = 3;
    pub(crate) const WRONG_DEVICE: i32 = 4;
    pub(crate) const BUSY: i32 = 5;
    /// A key provider could not reach its key service, or got no usable answer: worth
    /// trying again (not a cryptsetup code).
    pub(crate) const KEY_UNAVAILABLE: i32 = 6;
    /// A key service refused to release the key (attestation denied, no such secret,
    /// credentials refused, the key command failed) (not a cryptsetup code).
    pub(crate) const KEY_REFUSED: i32 = 7;
}

#[derive(Debug)]
pub(crate) enum CliError {
    /// A library error on a device.
    Luks {
        device: PathBuf,
        source: luks2::Error,
    },
    /// Opening, locking or reading the device (or image) being worked on.
    Device {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    /// Reading or writing another file the user named (key file, backup, JSON).
    File {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    /// A device-mapper or loop-device error.
    Dm {
        name: String,
        source: dmioctl::Error,
    },
    /// dm-integrity or dm-verity metadata on a device.
    Integrity {
        device: PathBuf,
        source: integrity::Error,
    },
    /// A key provider could not produce the passphrase.
    Provider(keyprovider::Error),
    /// The user's arguments do not make sense together.
    Usage(String),
    /// The operation was refused or not confirmed; nothing was changed.
    Refused(String),
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub(crate) fn luks(device: &Path) -> impl FnOnce(luks2::Error) -> CliError + '_ {
        move |source| CliError::Luks {
            device: device.to_owned(),
            source,
        }
    }

    pub(crate) fn device<'a>(
        path: &'a Path,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> CliError + 'a {
        move |source| CliError::Device {
            path: path.to_owned(),
            what,
            source,
        }
    }

    pub(crate) fn file<'a>(
        path: &'a Path,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> CliError + 'a {
        move |source| CliError::File {
            path: path.to_owned(),
            what,
            source,
        }
    }

    pub(crate) fn integrity(device: &Path) -> impl FnOnce(integrity::Error) -> CliError + '_ {
        move |source| CliError::Integrity {
            device: device.to_owned(),
            source,
        }
    }

    pub(crate) fn dm(name: &str) -> impl FnOnce(dmioctl::Error) -> CliError + '_ {
        move |source| CliError::Dm {
            name: name.to_owned(),
            source,
        }
    }

    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Dm { source, .. } => match source {
                dmioctl::Error::Exists(_) | dmioctl::Error::Busy { .. } => code::BUSY,
                dmioctl::Error::NotFound(_) => code::WRONG_DEVICE,
                e => match e.errno() {
                    Some(nix::Error::EBUSY) => code::BUSY,
                    Some(nix::Error::EPERM | nix::Error::EACCES) => code::PERMISSION,
                    Some(nix::Error::ENOMEM) => code::NO_MEMORY,
                    _ => code::FAILURE,
                },
            },
            CliError::Luks { source, .. } => luks_code(source),
            CliError::Integrity { source, .. } => match source {
                integrity::Error::Luks(e) => luks_code(e),
                integrity::Error::Io { source, .. } => io_code(source),
                _ => code::FAILURE,
            },
            CliError::Device { source, .. } => io_code(source),
            CliError::File { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                code::PERMISSION
            }
            CliError::File { .. } => code::FAILURE,
            CliError::Provider(e) => match e.kind() {
                keyprovider::ErrorKind::Unavailable => code::KEY_UNAVAILABLE,
                keyprovider::ErrorKind::Refused => code::KEY_REFUSED,
                _ => code::FAILURE,
            },
            CliError::Usage(_) | CliError::Refused(_) => code::FAILURE,
        }
    }
}

fn luks_code(e: &luks2::Error) -> i32 {
    match e {
        luks2::Error::WrongPassphrase | luks2::Error::WrongVolumeKey => code::PERMISSION,
        luks2::Error::Io { source, .. } => io_code(source),
        _ => code::FAILURE,
    }
}

fn io_code(e: &io::Error) -> i32 {
    match e.kind() {
        io::ErrorKind::PermissionDenied => code::PERMISSION,
        io::ErrorKind::OutOfMemory => code::NO_MEMORY,
        io::ErrorKind::NotFound => code::WRONG_DEVICE,
        io::ErrorKind::ResourceBusy => code::BUSY,
        _ => code::FAILURE,
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Luks { device, source } => write!(f, "{}: {source}", device.display()),
            CliError::Integrity { device, source } => {
                write!(f, "{}: {source}", device.display())
            }
            CliError::Dm { name, source } => write!(f, "{name}: {source}"),
            CliError::Device { path, what, .. } | CliError::File { path, what, .. } => {
                write!(f, "cannot {what} {}", path.display())
            }
            CliError::Provider(e) => write!(f, "{e}"),
            CliError::Usage(m) | CliError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Luks { source, .. } => std::error::Error::source(source),
            CliError::Integrity { source, .. } => std::error::Error::source(source),
            CliError::Dm { source, .. } => std::error::Error::source(source),
            CliError::Device { source, .. } | CliError::File { source, .. } => Some(source),
            CliError::Provider(_) | CliError::Usage(_) | CliError::Refused(_) => None,
        }
    }
}

impl From<keyprovider::Error> for CliError {
    fn from(e: keyprovider::Error) -> Self {
        CliError::Provider(e)
    }
}
