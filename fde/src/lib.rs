//! cryptpilot's full-disk protection (FDE): a read-only root file system checked by dm-verity
//! against a root hash carried in the measured initrd, every write going to an encrypted
//! "delta" volume whose key a key provider releases after attestation.
//!
//! This crate holds the parts the boot stages are built from: [`config`] reads the three files
//! the initrd carries under `/etc/cryptpilot` (`fde.toml`, `global.toml`, `metadata.toml`);
//! [`vg`] brings up the `cryptpilot` volume group natively (no lvm2); [`boot`] holds the two
//! boot stages; [`initrd`] writes a minimal initrd whose `/init` ([`init`]) runs them;
//! [`authenticode`] digests the PE images a measured boot loads (reference values).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod authenticode;
pub mod boot;
pub mod config;
pub mod convert;
mod error;
pub mod ext4;
pub mod gpt;
pub mod image;
pub mod init;
pub mod initrd;
pub mod overlay;
pub mod reference;
pub mod uki;
pub mod vg;

pub use config::{
    load, BootConfig, DeltaBackend, DeltaConfig, DeltaLocation, FdeConfig, GlobalConfig, Loaded,
    Metadata, RootfsConfig,
};
pub use error::{Error, Result};
