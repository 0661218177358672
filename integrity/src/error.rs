//! The crate's one error type.

use std::fmt;

/// Errors of verity (and integrity) metadata handling.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed.
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A parameter is out of range.
    Invalid {
        /// Which parameter.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A LUKS2 volume's dm-integrity superblock does not match its segment.
    BadSuperblock(String),
    /// The dm-integrity superblock is missing, malformed or unsupported.
    IntegritySuperblock(crate::dm_integrity::SuperblockFault),
    /// The verity superblock is missing, malformed or unsupported.
    VeritySuperblock(crate::verity::SuperblockFault),
    /// A block does not match its hash.
    Corrupt {
        /// `data` or `hash`.
        area: &'static str,
        /// Block number within that area.
        block: u64,
        /// Its byte position on its device (the data device, or the hash device with the
        /// superblock and any hash offset), as veritysetup reports it.
        offset: u64,
    },
    /// Bytes of a hash block that no hash uses (padding, or the block's unused end) are not
    /// zero, as veritysetup requires.
    SpareNotZero {
        /// Byte position of the first such byte range on the hash device.
        offset: u64,
    },
    /// A device ends before what the tree's parameters need (the data device: after the
    /// blocks it holds were checked).
    ShortDevice {
        /// `data device` or `hash device`.
        what: &'static str,
        /// Its size in bytes (of whole data blocks, for the data device).
        size: u64,
        /// The bytes the parameters need.
        need: u64,
    },
    /// The root hash does not match.
    WrongRootHash,
    /// The LUKS2 layer failed.
    Luks(luks2::Error),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, .. } => f.write_str(context),
            Error::Invalid { what, reason } => write!(f, "invalid {what}: {reason}"),
            Error::BadSuperblock(r) => write!(f, "bad superblock: {r}"),
            Error::VeritySuperblock(r) => write!(f, "bad superblock: {r}"),
            Error::IntegritySuperblock(r) => write!(f, "bad superblock: {r}"),
            Error::Corrupt { area, block, .. } => {
                write!(f, "{area} block {block} does not match its hash")
            }
            Error::SpareNotZero { offset } => write!(
                f,
                "the unused area of a hash block at byte {offset} of the hash device is not zero"
            ),
            Error::ShortDevice { what, size, need } => write!(
                f,
                "the {what} holds {size} bytes, fewer than the {need} the tree covers"
            ),
            Error::WrongRootHash => f.write_str("the hash tree does not match the root hash"),
            Error::Luks(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Luks(e) => e.source(),
            _ => None,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
