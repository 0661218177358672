//! What can go wrong doing something with a volume.

use std::fmt;

/// A failure to initialise, open or close a volume.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Its key provider could not produce the passphrase.
    Provider(keyprovider::Error),
    /// Formatting, unlocking or mapping it failed.
    Activate(activate::Error),
    /// Its state does not allow the step (not initialised, already initialised, an
    /// interrupted init, an erase not confirmed); nothing was changed.
    Refused {
        /// The volume.
        volume: String,
        /// Why, and what to do.
        reason: String,
    },
    /// A file-system tool failed or could not run.
    Tool {
        /// The volume.
        volume: String,
        /// The tool, its status and its standard error, on one line.
        reason: String,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Provider(e) => write!(f, "{e}"),
            Error::Activate(e) => write!(f, "{e}"),
            Error::Refused { volume, reason } | Error::Tool { volume, reason } => {
                write!(f, "{volume}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Activate(e) => std::error::Error::source(e),
            _ => None,
        }
    }
}

impl From<keyprovider::Error> for Error {
    fn from(e: keyprovider::Error) -> Self {
        Error::Provider(e)
    }
}

impl From<activate::Error> for Error {
    fn from(e: activate::Error) -> Self {
        Error::Activate(e)
    }
}
