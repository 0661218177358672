//! The crate's one error type.

use std::fmt;

/// What can go wrong reading or changing LVM2 metadata.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the device failed.
    Io {
        /// What was being done.
        context: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No LVM2 label in the first four sectors: not a physical volume.
    NotPv,
    /// The label or PV header is damaged.
    BadLabel(String),
    /// A metadata area header or its text location is damaged.
    BadMetadataArea(String),
    /// The metadata text does not parse.
    Syntax {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The metadata parses but breaks a rule (a missing or out-of-range field).
    Metadata {
        /// Dotted path of the field (`cryptpilot.logical_volumes.rootfs.segment1.stripes`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Something this implementation does not handle (a segment type other than linear,
    /// several PVs where one is needed).
    Unsupported(String),
    /// A logical volume that is not there.
    NoSuchLv(String),
    /// A logical volume name already taken.
    LvExists(String),
    /// Not enough free extents.
    NoSpace {
        /// Extents asked for.
        needed: u64,
        /// Extents free.
        free: u64,
    },
    /// The new metadata text does not fit the metadata area.
    MetadataTooLarge {
        /// Bytes of text.
        size: u64,
        /// The most the area holds.
        max: u64,
    },
    /// The random generator failed.
    Random,
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Error::Io { context, source }
    }

    pub(crate) fn metadata(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Metadata {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::NotPv => f.write_str("not an LVM2 physical volume (no LABELONE label)"),
            Error::BadLabel(r) => write!(f, "damaged LVM2 label: {r}"),
            Error::BadMetadataArea(r) => write!(f, "damaged LVM2 metadata area: {r}"),
            Error::Syntax { line, reason } => {
                write!(f, "LVM2 metadata text, line {line}: {reason}")
            }
            Error::Metadata { field, reason } => write!(f, "LVM2 metadata {field}: {reason}"),
            Error::Unsupported(what) => write!(f, "unsupported LVM2 layout: {what}"),
            Error::NoSuchLv(n) => write!(f, "no logical volume {n}"),
            Error::LvExists(n) => write!(f, "logical volume {n} already exists"),
            Error::NoSpace { needed, free } => {
                write!(f, "{needed} extents needed, {free} free")
            }
            Error::MetadataTooLarge { size, max } => write!(
                f,
                "{size} bytes of metadata text do not fit the metadata area (at most {max})"
            ),
            Error::Random => f.write_str("the random generator failed"),
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

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
