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
    /// Mapping, unmapping, streaming, or the LUKS2/integrity libraries on a device.
    Activate(activate::Error),
    /// Reading or writing another file the user named (key file, backup, JSON).
    File {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    /// A key provider could not produce the passphrase.
    Provider(keyprovider::Error),
    /// A configured volume's lifecycle refused or failed.
    Volume(volumes::Error),
    /// A full-disk step (configuration, volume group) failed.
    Fde(fde::Error),
    /// The user's arguments do not make sense together.
    Usage(String),
    /// The operation was refused or not confirmed; nothing was changed.
    Refused(String),
    /// A refusal worded as cryptsetup words it (a sentence, printed alone under a drop-in
    /// name); nothing was changed.
    Stated(std::borrow::Cow<'static, str>),
    /// The device is in use (mapped), so it must not change (exit 5, as cryptsetup's busy).
    Busy(String),
    /// `--token-only` and no token opened the volume: why, and cryptsetup's exit code (1
    /// without a usable token, 2 when the tokens' keys are missing or wrong).
    Token { message: String, code: i32 },
    /// A failure the drop-in tool reports by its exit code alone (cryptsetup's luksAddKey
    /// with a key file that opens nothing); our own name prints the inner error.
    Quiet(Box<CliError>),
    /// A header backup file that cannot be read (`unreadable`) or holds no usable LUKS
    /// header; nothing was written.
    Backup {
        path: PathBuf,
        reason: String,
        unreadable: bool,
    },
    /// The passphrase typed twice was not the same (cryptsetup: exit 2).
    PassphraseMismatch,
    /// Nothing was read from the terminal: the input ended, `--timeout` passed, or ^C.
    Terminal {
        reading: Reading,
        stop: crate::terminal::Stop,
    },
    /// The passphrase source gave nothing (an empty key file, or no line on standard input).
    NothingToRead(String),
    /// `--type` named another LUKS version than the header's (or no LUKS version at all).
    WrongType { device: PathBuf, ty: String },
    /// The user answered no: cryptsetup's words for it, and its exit code (1, or 2 where
    /// cryptsetup treats it as a permission refused).
    Aborted(&'static str, i32),
    /// There is no device-mapper to map a volume (`activating`: its name, and how many times
    /// cryptsetup would have tried) or to look a mapping up: exit 1, as cryptsetup's open and
    /// status (closing, resizing and suspending exit 4, as an [`activate::Error`]).
    NoDeviceMapper { activating: Option<(String, u8)> },
    /// A path given for a mapping's name is a device node of something else (exit 1 for
    /// status, 4 for the commands that change a mapping, as cryptsetup's).
    NotMapped { path: String, code: i32 },
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// What was being read from the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    Passphrase,
    /// The answer to a question.
    Answer,
}

impl CliError {
    pub(crate) fn luks(device: &Path) -> impl FnOnce(luks2::Error) -> CliError + '_ {
        move |source| CliError::Activate(activate::Error::luks(device)(source))
    }

    pub(crate) fn device<'a>(
        path: &'a Path,
        what: &'static str,
    ) -> impl FnOnce(io::Error) -> CliError + 'a {
        move |source| CliError::Activate(activate::Error::device(path, what)(source))
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
        move |source| CliError::Activate(activate::Error::integrity(device)(source))
    }

    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Activate(e) => activation_code(e),
            CliError::File { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
                code::PERMISSION
            }
            CliError::File { .. } => code::FAILURE,
            CliError::Provider(e) => provider_code(e),
            CliError::Volume(volumes::Error::Provider(e)) => provider_code(e),
            CliError::Volume(volumes::Error::Activate(e)) => activation_code(e),
            CliError::Volume(_) => code::FAILURE,
            CliError::Fde(fde::Error::Activate(e)) => activation_code(e),
            CliError::Fde(fde::Error::Volume(volumes::Error::Provider(e))) => provider_code(e),
            CliError::Fde(fde::Error::Volume(volumes::Error::Activate(e))) => activation_code(e),
            CliError::Fde(_) => code::FAILURE,
            CliError::Usage(_)
            | CliError::Refused(_)
            | CliError::Stated(_)
            | CliError::Backup { .. }
            | CliError::WrongType { .. } => code::FAILURE,
            CliError::Busy(_) => code::BUSY,
            CliError::Quiet(e) => e.exit_code(),
            CliError::Token { code, .. } => *code,
            CliError::Aborted(_, code) => *code,
            CliError::NothingToRead(_)
            | CliError::NoDeviceMapper { .. }
            | CliError::Terminal { .. } => code::FAILURE,
            CliError::NotMapped { code, .. } => *code,
            CliError::PassphraseMismatch => code::PERMISSION,
        }
    }
}

fn provider_code(e: &keyprovider::Error) -> i32 {
    match e.kind() {
        keyprovider::ErrorKind::Unavailable => code::KEY_UNAVAILABLE,
        keyprovider::ErrorKind::Refused => code::KEY_REFUSED,
        _ => code::FAILURE,
    }
}

fn activation_code(e: &activate::Error) -> i32 {
    use activate::Error as E;
    match e {
        E::Dm { source, .. } => dm_code(source),
        E::Luks { source, .. } => luks_code(source),
        E::Integrity { source, .. } => match source {
            integrity::Error::Luks(e) => luks_code(e),
            integrity::Error::Io { source, .. } => io_code(source),
            // veritysetup verify: a block that fails its hash is exit 2.
            integrity::Error::Corrupt { .. } | integrity::Error::SpareNotZero { .. } => {
                code::PERMISSION
            }
            _ => code::FAILURE,
        },
        E::Device { source, .. } => io_code(source),
        _ => code::FAILURE,
    }
}

fn dm_code(e: &activate::DmError) -> i32 {
    use activate::DmError;
    match e {
        DmError::Exists(_) | DmError::Busy { .. } => code::BUSY,
        // cryptsetup: "Cannot initialize device-mapper", exit 4.
        DmError::NotFound(_) | DmError::NoDeviceMapper => code::WRONG_DEVICE,
        e => match e.errno() {
            Some(nix::Error::EBUSY) => code::BUSY,
            Some(nix::Error::EPERM | nix::Error::EACCES) => code::PERMISSION,
            Some(nix::Error::ENOMEM) => code::NO_MEMORY,
            _ => code::FAILURE,
        },
    }
}

fn luks_code(e: &luks2::Error) -> i32 {
    match e {
        luks2::Error::WrongPassphrase | luks2::Error::WrongVolumeKey => code::PERMISSION,
        luks2::Error::Io { source, .. } => io_code(source),
        luks2::Error::UnusableKeyslot { source, .. } => luks_code(source),
        _ => code::FAILURE,
    }
}

fn io_code(e: &io::Error) -> i32 {
    // A symlink loop, or a path through something that is not a directory, names no device.
    if matches!(
        e.raw_os_error(),
        Some(nix::libc::ELOOP | nix::libc::ENOTDIR | nix::libc::ENXIO | nix::libc::ENODEV)
    ) {
        return code::WRONG_DEVICE;
    }
    match e.kind() {
        // Not a block device or an image file: cryptsetup's "not compatible".
        io::ErrorKind::Unsupported => code::WRONG_DEVICE,
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
            CliError::Activate(e) => write!(f, "{e}"),
            CliError::File { path, what, .. } => write!(f, "cannot {what} {}", path.display()),
            CliError::Provider(e) => write!(f, "{e}"),
            CliError::Volume(e) => write!(f, "{e}"),
            CliError::Fde(e) => write!(f, "{e}"),
            CliError::Usage(m) | CliError::Refused(m) | CliError::Busy(m) => f.write_str(m),
            CliError::Stated(m) => f.write_str(m),
            CliError::Quiet(e) => write!(f, "{e}"),
            CliError::Token { message, .. } => f.write_str(message),
            CliError::Backup { path, reason, .. } => write!(f, "{}: {reason}", path.display()),
            CliError::Aborted("", _) => f.write_str("operation aborted; nothing was changed"),
            CliError::Aborted(m, _) => f.write_str(m),
            CliError::PassphraseMismatch => f.write_str("passphrases do not match"),
            CliError::Terminal { reading, stop } => {
                let what = match reading {
                    Reading::Passphrase => "passphrase",
                    Reading::Answer => "answer",
                };
                write!(f, "no {what} was read from the terminal: {stop}")
            }
            CliError::WrongType { device, ty } => match ty.to_ascii_lowercase().as_str() {
                "luks1" | "luks2" => write!(
                    f,
                    "{}: not a {} device (--type {ty} was asked for)",
                    device.display(),
                    ty.to_ascii_uppercase()
                ),
                _ => write!(f, "--type {ty}: not a LUKS type (luks, luks1 or luks2)"),
            },
            CliError::NothingToRead(what) => write!(f, "nothing to read from {what}"),
            CliError::NoDeviceMapper {
                activating: Some((name, _)),
            } => write!(
                f,
                "cannot activate {name}: {}",
                activate::DmError::NoDeviceMapper
            ),
            CliError::NoDeviceMapper { activating: None } => {
                write!(f, "{}", activate::DmError::NoDeviceMapper)
            }
            CliError::NotMapped { path, .. } => {
                write!(f, "{path} is not the device node of a mapping")
            }
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Activate(e) => std::error::Error::source(e),
            CliError::Volume(e) => std::error::Error::source(e),
            CliError::Fde(e) => std::error::Error::source(e),
            CliError::File { source, .. } => Some(source),
            CliError::Quiet(e) => e.source(),
            CliError::Provider(_)
            | CliError::Usage(_)
            | CliError::Refused(_)
            | CliError::Stated(_)
            | CliError::Busy(_)
            | CliError::Backup { .. }
            | CliError::Token { .. }
            | CliError::Aborted(..)
            | CliError::NothingToRead(_)
            | CliError::WrongType { .. }
            | CliError::NoDeviceMapper { .. }
            | CliError::NotMapped { .. }
            | CliError::Terminal { .. }
            | CliError::PassphraseMismatch => None,
        }
    }
}

impl From<activate::Error> for CliError {
    fn from(e: activate::Error) -> Self {
        CliError::Activate(e)
    }
}

impl From<volumes::Error> for CliError {
    fn from(e: volumes::Error) -> Self {
        CliError::Volume(e)
    }
}

impl From<keyprovider::Error> for CliError {
    fn from(e: keyprovider::Error) -> Self {
        CliError::Provider(e)
    }
}

/// The error line for `e` under the program name `prog`: `e` and each of its sources, joined
/// by ": ".
pub(crate) fn chain(prog: &str, e: &CliError) -> String {
    let mut msg = format!("{prog}: {e}");
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// `line` with its control characters escaped (`\n`, `\u{1b}`, ...), so that a device path
/// or a volume name from the user cannot break an error line in two or send a terminal
/// escape sequence.
pub(crate) fn escape_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("cannot open a\nb\x1b[31m: ü"),
            "cannot open a\\nb\\u{1b}[31m: ü"
        );
    }
}
