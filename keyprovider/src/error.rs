//! The crate's one error type. Every failure names its provider and falls in one of three
//! categories that callers act on differently ([`ErrorKind`]): fix the configuration, try
//! again later, or ask whoever runs the key service.

use std::fmt;

/// What a caller can do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider's configuration cannot work (a URL, certificate, client key, key URI, a
    /// command that does not exist): fix the file.
    Config,
    /// The key service could not be reached or gave no usable answer (network, TLS, a
    /// malformed or truncated reply, a temporary failure it reported, no attestation
    /// evidence on this machine): worth trying again later.
    Unavailable,
    /// The key service answered and refused: the secret does not exist, attestation was
    /// denied by its policy, the credentials are not accepted, the command failed.
    Refused,
}

/// A key provider's failure: its category, the provider, and the reason (a service's own
/// reason is kept, on one line).
#[derive(Debug)]
#[non_exhaustive]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// `otp`, `exec`, `kbs` or `kms`.
    pub provider: &'static str,
    /// The reason, naming the field, request or service answer involved.
    pub reason: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, provider: &'static str, reason: impl fmt::Display) -> Self {
        Error {
            kind,
            provider,
            reason: one_line(&reason.to_string()),
        }
    }

    /// The error's category.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Collapses white space (a service's reason may span lines).
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key provider: {}", self.provider, self.reason)
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthands for one provider's errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Errors(pub(crate) &'static str);

impl Errors {
    pub(crate) fn config(self, reason: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Config, self.0, reason)
    }

    pub(crate) fn unavailable(self, reason: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Unavailable, self.0, reason)
    }

    pub(crate) fn refused(self, reason: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Refused, self.0, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_names_the_provider() {
        let e = Errors("kbs").refused("HTTP 401:\n  policy\tdenied");
        assert_eq!(e.to_string(), "kbs key provider: HTTP 401: policy denied");
        assert_eq!(e.kind(), ErrorKind::Refused);
    }
}
