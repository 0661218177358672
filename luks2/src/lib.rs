//! Native LUKS2: header parsing and writing, keyslots, KDFs and sector crypto, with no C
//! crypto library.
//!
//! Bytes on disk become a validated, immutable [`Header`]; a passphrase unlocks a keyslot
//! into a zeroizing [`VolumeKey`]; [`Luks2`] changes keyslots, tokens and labels with writes
//! that survive an interruption at any point.
//!
//! ```
//! use luks2::{format, FormatOptions, KdfLimits, Luks2, MemoryDevice, PbkdfParams};
//!
//! let mut opts = FormatOptions::default();
//! opts.keyslot.pbkdf = PbkdfParams::insecure_fast(); // calibrated Argon2id by default
//! opts.digest_iterations = Some(1000);
//! let (dev, key) = format(MemoryDevice::new(32 << 20), &opts, &luks2::Passphrase::from_slice(b"correct horse"))?;
//!
//! let mut dev = Luks2::open(dev.into_inner())?;
//! let (slot, unlocked) = dev.unlock(&luks2::Passphrase::from_slice(b"correct horse"), None, &KdfLimits::default())?;
//! assert_eq!((slot, unlocked.as_bytes()), (0, key.as_bytes()));
//! assert!(dev.unlock(&luks2::Passphrase::from_slice(b"wrong"), None, &KdfLimits::default()).is_err());
//! # Ok::<(), luks2::Error>(())
//! ```
//!
//! # Security
//! KDF costs, stripes, object counts and sizes read from a header are capped before any work
//! is spent (see [`KdfLimits`]). Keys live in types that wipe themselves and print nothing.
// Only `xts_simd` (the AES instruction kernels) may use `unsafe`; it says why it is sound.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod backup;
mod device;
mod digest;
mod dump;
mod error;
mod format;
mod hash;
pub mod header;
pub mod hex;
mod image;
mod io;
mod kdf;
pub mod keyslot;
pub mod luks1;
mod pbkdf;
pub mod plain;
pub mod probe;
mod secret;
pub mod sector;
mod segment;
mod token;
pub mod units;
mod util;
#[cfg(target_arch = "x86_64")]
mod xts_simd;

pub use backup::{check_backup, restore_backup};
pub use device::{KeyslotOptions, Luks2};
pub use digest::KeyDigest;
pub use dump::{dump_bytes, dump_text, dump_volume_key_stored_text, dump_volume_key_text};
pub use error::{Copy, Error, Luks1Incompatibility, Result};
pub use format::{format, FormatOptions, DEFAULT_DATA_OFFSET};
pub use hash::HashAlg;
pub use header::PersistentFlag;
pub use header::{Activation, CopyStatus, Header, KeyslotParams, MAX_OBJECTS};
pub use image::SegmentCipher;
pub use io::{BlockIo, MemoryDevice};
pub use kdf::{Argon2Variant, Kdf, KdfLimits};
pub use luks1::{Luks1, Luks1Header};
pub use pbkdf::{argon2_time, pbkdf2_rate, pbkdf2_rate_for_key, PbkdfKind, PbkdfParams};
pub use secret::{Passphrase, SecretBuf, SecretBufFull, VolumeKey};
pub use segment::SegmentIntegrity;
pub use token::{KeyringToken, KEYRING_TOKEN};
pub use units::{Bytes, Sectors, SECTOR_SIZE};
pub use util::ct_eq;
