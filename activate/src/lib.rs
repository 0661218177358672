//! Activation: LUKS2 and dm-verity volumes mapped through device-mapper exactly as
//! cryptsetup 2.6 and veritysetup map them, and LUKS2 images encrypted and decrypted offline.
//!
//! A header and a volume key become a typed [`Plan`] of dm tables (crypt, crypt over
//! integrity, verity), built without the kernel, then carried out by a [`Mapper`] that
//! undoes what it made on any failure. [`Mapper::status`] reads a mapping back;
//! [`wipe_integrity`] initialises the tags of a new authenticated volume; [`image`] streams
//! data through the userspace segment cipher.
//!
//! ```no_run
//! use std::path::Path;
//! use activate::{open_device, DmName, Mapper, Options};
//! use luks2::{KdfLimits, Luks2};
//!
//! let device = Path::new("/dev/vdb");
//! let mut file = open_device(device, true, false)?;
//! let mut luks = Luks2::open(&mut file).map_err(activate::Error::luks(device))?;
//! let (_, key) = luks.unlock(&luks2::Passphrase::from_slice(b"passphrase"), None, &KdfLimits::default())
//!     .map_err(activate::Error::luks(device))?;
//! let header = luks.header().clone();
//! drop(luks);
//! let name = DmName::new("data").map_err(activate::Error::dm("data"))?;
//! let mapper = Mapper::open()?;
//! mapper.open_luks2(device, &mut file, &header, &key, &name, &Options::default())?;
//! mapper.close(&name)?;
//! # Ok::<(), activate::Error>(())
//! ```
//!
//! # Security
//! Crypt tables hold the volume key: they are built in buffers sized up front and wiped,
//! loaded with `DM_SECURE_DATA`, and never printed (`Debug` of a [`Plan`] redacts the key).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod device;
mod error;
pub mod image;
mod lock;
mod mapper;
mod plan;
mod resize;
mod status;
mod suspend;
mod token;
mod wipe;

pub use device::{open_device, DataDevice};
pub use dmioctl::node::mapper_path;
pub use dmioctl::target::integrity::IntegrityMode;
pub use dmioctl::{DmName, Error as DmError};
pub use error::{Error, Result, SuspendRefusal};
pub use lock::{disable_locks, lock_device, release_locks};
pub use mapper::Mapper;
pub use plan::{
    IntegrityOptions, KeyringKey, Layer, Luks2Volume, OnCorruption, Options, PlainParams, Plan,
    Table, VerityOptions,
};
pub use status::{Active, IntegrityMapping, IntegrityStatus, Status, VerityStatus};
pub use token::{unlock_by_keyring_token, TokenUnlock};
pub use wipe::{format_with_integrity, wipe_integrity, wipe_standalone_integrity, ProgressFn};
