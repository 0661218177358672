//! The crate's one error type.

use std::fmt;
use std::io;

/// Which copy of the LUKS2 header an error or state refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Copy {
    /// The primary header at offset 0.
    Primary,
    /// The secondary header right after the primary header's JSON area.
    Secondary,
}

impl fmt::Display for Copy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Copy::Primary => "primary",
            Copy::Secondary => "secondary",
        })
    }
}

/// Everything that can go wrong while reading, unlocking or changing a LUKS2 header.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the device failed.
    Io {
        /// What was being done.
        context: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// Neither header copy carries the LUKS2 magic: this is not a LUKS2 device.
    NotLuks2,
    /// The device holds a LUKS1 header, where LUKS2 is needed.
    IsLuks1,
    /// The primary header area holds another signature: the device is no longer LUKS2,
    /// though a stale secondary header copy remains.
    Overwritten {
        /// What the primary area holds (`LVM2_member`, `ext4`, `swap`, ...).
        signature: &'static str,
    },
    /// One binary header copy is damaged (bad magic, version, size, offset or checksum).
    BadBinaryHeader {
        /// Which copy.
        copy: Copy,
        /// What is wrong with it.
        reason: String,
    },
    /// No valid header copy was found; both reasons are given.
    NoValidHeader {
        /// Why the primary copy was rejected.
        primary: Box<Error>,
        /// Why the secondary copy was rejected.
        secondary: Box<Error>,
    },
    /// The JSON metadata is malformed or breaks a LUKS2 rule.
    Metadata {
        /// Dotted path of the offending field, for example `keyslots.0.area.offset`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An algorithm or object type this implementation does not support.
    Unsupported {
        /// What kind of thing (cipher, hash, kdf, keyslot type, ...).
        what: &'static str,
        /// The value found.
        value: String,
    },
    /// A value is above a safety cap; refused before any work was spent on it.
    Limit {
        /// The field that is too large.
        field: String,
        /// Its value.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// A key derivation would take longer than the cap at this machine's measured speed.
    KdfTooSlow {
        /// The keyslot's or digest's KDF (`keyslots.1.kdf`, `digests.0`).
        field: String,
        /// The estimate.
        estimate: std::time::Duration,
        /// The cap.
        max: std::time::Duration,
    },
    /// No keyslot accepted the passphrase.
    WrongPassphrase,
    /// A keyslot could not be tried; the source says why.
    UnusableKeyslot {
        /// The keyslot.
        id: u32,
        /// Why it cannot be used.
        source: Box<Error>,
    },
    /// The keyslot does not exist.
    KeyslotNotFound(u32),
    /// The keyslot number is already in use.
    KeyslotInUse(u32),
    /// All keyslot numbers are in use.
    NoFreeKeyslot,
    /// No keyslot is left to try a passphrase on (all were wiped, as by `erase`).
    NoUsableKeyslot,
    /// The keyslots area has no free gap large enough.
    NoKeyslotSpace {
        /// Bytes needed.
        needed: u64,
    },
    /// The token does not exist.
    TokenNotFound(u32),
    /// The token number is already in use.
    TokenInUse(u32),
    /// The serialised metadata does not fit the JSON area.
    MetadataTooLarge {
        /// Serialised size, including the terminating zero.
        size: u64,
        /// JSON area size.
        max: u64,
    },
    /// The header lists mandatory requirements this implementation does not know.
    UnmetRequirements(Vec<String>),
    /// The given volume key does not match any digest.
    WrongVolumeKey,
    /// An argument given by the caller is invalid.
    InvalidArgument {
        /// Which argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The device is too small for the requested layout.
    DeviceTooSmall {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        size: u64,
    },
    /// The operating system's random generator failed.
    Random,
    /// The LUKS2 header cannot become LUKS1 (`convert --type luks1`); nothing was written.
    NotLuks1Compatible(Luks1Incompatibility),
}

/// Why a LUKS2 header cannot be converted to LUKS1.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Luks1Incompatibility {
    /// The data is encrypted in sectors other than 512 bytes.
    SectorSize(u32),
    /// Not exactly one volume key digest, or not a PBKDF2 one.
    Digests,
    /// Tokens, which LUKS1 has no place for.
    Tokens(usize),
    /// A keyslot assigned to no digest.
    InvalidKeyslot(u32),
    /// An active keyslot above 7.
    SlotOverMax(u32),
    /// A keyslot LUKS1 cannot express.
    Keyslot {
        /// The keyslot.
        id: u32,
        /// Why.
        reason: String,
    },
    /// The layout: segments, integrity, the data offset, room for eight keyslot areas.
    Layout(String),
}

impl Luks1Incompatibility {
    /// cryptsetup's words after "Cannot convert to LUKS1 format - ", where it has any
    /// (it refuses a layout without a message).
    pub fn cryptsetup_reason(&self) -> Option<String> {
        Some(match self {
            Self::SectorSize(_) => "default segment encryption sector size is not 512 bytes".into(),
            Self::Digests => "key slot digests are not LUKS1 compatible".into(),
            Self::Tokens(n) => format!("LUKS2 header contains {n} token(s)"),
            Self::InvalidKeyslot(id) => format!("keyslot {id} is in invalid state"),
            Self::SlotOverMax(id) => format!("slot {id} (over maximum slots) is still active"),
            Self::Keyslot { id, .. } => format!("keyslot {id} is not LUKS1 compatible"),
            Self::Layout(_) => return None,
        })
    }
}

impl fmt::Display for Luks1Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SectorSize(n) => write!(f, "the data uses {n}-byte sectors; LUKS1 has 512"),
            Self::Digests => f.write_str(
                "LUKS1 holds exactly one PBKDF2 digest of the volume key; this header has others",
            ),
            Self::Tokens(n) => write!(
                f,
                "the header holds {n} token(s), which LUKS1 cannot keep (remove them first)"
            ),
            Self::InvalidKeyslot(id) => write!(f, "keyslot {id} belongs to no volume key digest"),
            Self::SlotOverMax(id) => {
                write!(
                    f,
                    "keyslot {id} is active and LUKS1 has keyslots 0 to 7 only"
                )
            }
            Self::Keyslot { id, reason } => {
                write!(f, "keyslot {id} is not LUKS1 compatible: {reason}")
            }
            Self::Layout(r) => f.write_str(r),
        }
    }
}

impl Error {
    pub(crate) fn io(context: &'static str, source: io::Error) -> Self {
        Error::Io { context, source }
    }

    pub(crate) fn metadata(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Metadata {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(what: &'static str, value: impl Into<String>) -> Self {
        Error::Unsupported {
            what,
            value: value.into(),
        }
    }

    pub(crate) fn limit(field: impl Into<String>, value: u64, max: u64) -> Self {
        Error::Limit {
            field: field.into(),
            value,
            max,
        }
    }

    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, .. } => f.write_str(context),
            Error::NotLuks2 => f.write_str("not a LUKS2 device (no LUKS2 header magic found)"),
            Error::IsLuks1 => f.write_str(
                "a LUKS1 device: this needs LUKS2 (`luks convert --type luks2` converts it in place)",
            ),
            Error::Overwritten { signature } => write!(
                f,
                "not a LUKS2 device: the primary header area now holds a {signature} signature \
                 (a stale LUKS2 header copy remains; repair would overwrite what is there)"
            ),
            Error::BadBinaryHeader { copy, reason } => {
                write!(f, "{copy} LUKS2 header is invalid: {reason}")
            }
            Error::NoValidHeader { primary, secondary } => write!(
                f,
                "no valid LUKS2 header: primary: {primary}; secondary: {secondary}"
            ),
            Error::Metadata { field, reason } => {
                write!(f, "invalid LUKS2 metadata at {field}: {reason}")
            }
            Error::Unsupported { what, value } => write!(f, "unsupported {what} '{value}'"),
            Error::Limit { field, value, max } => {
                write!(f, "{field} = {value} exceeds the limit of {max}")
            }
            Error::KdfTooSlow {
                field,
                estimate,
                max,
            } => write!(
                f,
                "{field}: deriving the key would take {} on this machine, over the limit of {} s",
                crate::kdf::human_duration(*estimate),
                max.as_secs()
            ),
            Error::WrongPassphrase => f.write_str("no key available with this passphrase"),
            Error::NoUsableKeyslot => f.write_str("no usable keyslot is available (none is left)"),
            Error::UnusableKeyslot { id, .. } => write!(f, "keyslot {id} cannot be used"),
            Error::KeyslotNotFound(n) => write!(f, "keyslot {n} is not active"),
            Error::KeyslotInUse(n) => write!(f, "keyslot {n} is already in use"),
            Error::NoFreeKeyslot => f.write_str("all keyslots are in use"),
            Error::NoKeyslotSpace { needed } => {
                write!(
                    f,
                    "no free space for a {needed}-byte keyslot in the keyslots area"
                )
            }
            Error::TokenNotFound(n) => write!(f, "token {n} does not exist"),
            Error::TokenInUse(n) => write!(f, "token {n} is already in use"),
            Error::MetadataTooLarge { size, max } => write!(
                f,
                "metadata of {size} bytes does not fit the {max}-byte JSON area"
            ),
            Error::UnmetRequirements(r) => write!(
                f,
                "the header requires unsupported features: {}",
                r.join(", ")
            ),
            Error::WrongVolumeKey => f.write_str("volume key does not match the header's digest"),
            Error::InvalidArgument { name, reason } => write!(f, "invalid {name}: {reason}"),
            Error::DeviceTooSmall { needed, size } => write!(
                f,
                "device of {size} bytes is too small, {needed} bytes needed"
            ),
            Error::Random => f.write_str("the system random number generator failed"),
            Error::NotLuks1Compatible(why) => write!(f, "cannot convert to LUKS1: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::UnusableKeyslot { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
