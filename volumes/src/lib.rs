//! cryptpilot's data volumes: the volume files (`<config-dir>/volumes/*.toml`) and what is
//! done with them.
//!
//! [`parse_volume`] and [`load_all`] turn files into validated [`Volume`]s: a device-mapper
//! name, an absolute device path, and exactly one key provider whose URLs and key URIs are
//! typed ([`keyprovider::ProviderConfig`]); every error names the file and, where known, the
//! line and field. [`lifecycle`] initialises, opens and closes them, with keys from their
//! providers and mappings through the `activate` library.
//!
//! ```
//! use std::path::Path;
//!
//! let text = "volume = \"data0\"\ndev = \"/dev/vdb\"\n[encrypt.otp]\n";
//! let v = volumes::parse_volume(Path::new("/etc/cryptpilot/volumes/data0.toml"), text)?;
//! assert_eq!((v.name.as_str(), v.provider.name()), ("data0", "otp"));
//! # Ok::<(), volumes::ConfigError>(())
//! ```
//!
//! # Security
//! A volume file may hold a KMS client key and its password: files are read into zeroizing
//! buffers of fixed size, and the provider configuration prints no secret in `Debug`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
pub mod lifecycle;

pub use config::{load_all, parse_volume, ConfigError, MakeFs, Volume, MAX_FILE};
pub use error::{Error, Result};
