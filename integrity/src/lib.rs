//! Integrity metadata for the kernel's tamper-detection targets.
//!
//! [`verity`]: dm-verity hash trees and superblocks exactly as `veritysetup format` lays them
//! out (format 1, salted SHA-1/SHA-256/SHA-512, data and hash blocks of 512 to 4096 bytes, the
//! hash area in its own file or after the data), offline verification that names the first
//! bad block.
//!
//! ```
//! use integrity::verity::{self, VerityParams};
//! use luks2::MemoryDevice;
//!
//! let mut data = MemoryDevice::from_vec(vec![7u8; 64 * 4096]);
//! let params = VerityParams::new(64, luks2::HashAlg::Sha256, vec![1, 2, 3]);
//! let mut hash = MemoryDevice::new(params.hash_area_size() as usize);
//! let root = verity::format(&mut data, &mut hash, &params)?;
//! verity::verify(&mut data, &mut hash, &params, &root)?;
//! # Ok::<(), integrity::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod dm_integrity;
mod error;
pub mod luks;
pub mod verity;

pub use error::{Error, Result};
