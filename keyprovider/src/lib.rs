//! Key providers: where a cryptpilot volume's passphrase comes from.
//!
//! One small trait, [`KeyProvider`], and one type behind it per provider, made from the
//! volume file's `[encrypt.*]` table ([`ProviderConfig`]) by [`for_config`]:
//! - `otp`: 64 fresh random bytes on every open (the volume is formatted anew each time);
//! - `exec`: a command's standard output, byte for byte;
//! - `kbs`: a resource of Trustee's key broker, released after remote attestation
//!   ([`attester`] makes the evidence: Intel TDX, or Trustee's `sample` TEE);
//! - `kms`: a secret of an Alibaba Cloud KMS instance, fetched with the client-key signature.
//!
//! Failures are one [`Error`] whose [`ErrorKind`] tells a caller whether to fix the
//! configuration, try again later, or ask whoever runs the key service.
//!
//! ```
//! use keyprovider::{for_config, KeyProvider, ProviderConfig};
//!
//! let otp = for_config(&ProviderConfig::Otp);
//! let pass = otp.passphrase()?;
//! assert_eq!(pass.len(), 64);
//! assert!(otp.is_temporary());
//! # Ok::<(), keyprovider::Error>(())
//! ```
//!
//! # Security
//! Passphrases are returned as [`luks2::Passphrase`] (wiped on drop, never printed); buffers
//! that hold a secret on the way (a command's output, an HTTP response) have a fixed capacity
//! and are wiped. The `kbs` secret is encrypted to an ephemeral key that never leaves the
//! process; HTTPS authenticates brokers and KMS instances against the configured CA.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attester;
mod config;
mod error;
mod exec;
mod http;
mod kbs;
mod kms;
mod otp;
#[cfg(test)]
mod testserver;

pub use config::{
    ChoiceError, EncryptTable, ExecConfig, InvalidValue, KbsConfig, KmsConfig, OtpConfig,
    ProviderConfig, ResourceUri, ServiceUrl,
};
pub use error::{Error, ErrorKind, Result};
pub use exec::Exec;
pub use kbs::Kbs;
pub use kms::Kms;
pub use otp::Otp;

use luks2::Passphrase;

/// A source of one volume's passphrase.
pub trait KeyProvider {
    /// The passphrase for the volume's keyslot.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the configuration cannot work, [`ErrorKind::Unavailable`]
    /// when the service cannot be reached or answers badly, [`ErrorKind::Refused`] when it
    /// refuses.
    fn passphrase(&self) -> Result<Passphrase>;

    /// Whether every open gets a fresh key (the volume is formatted anew each time).
    fn is_temporary(&self) -> bool {
        false
    }

    /// What can be checked without fetching anything (for `config check`): the command
    /// exists, certificates parse, the client key opens with its password.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] naming what cannot work.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Entry points for the fuzz targets (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a raw HTTP response as the providers do: its status and body length, or `None`
    /// for a malformed one.
    pub fn http_response(raw: &[u8]) -> Option<(u16, usize)> {
        crate::http::parse_response(raw).map(|r| (r.status, r.body.len()))
    }
}

/// The provider a volume is configured with.
pub fn for_config(config: &ProviderConfig) -> Box<dyn KeyProvider + '_> {
    match config {
        ProviderConfig::Otp => Box::new(Otp),
        ProviderConfig::Exec(e) => Box::new(Exec(e)),
        ProviderConfig::Kbs(c) => Box::new(Kbs::new(c)),
        ProviderConfig::Kms(c) => Box::new(Kms::new(c)),
    }
}
