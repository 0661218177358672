//! Device-mapper through its raw ioctls, with no libdevmapper, dmsetup or udev needed.
//!
//! [`DmControl`] opens `/dev/mapper/control` and issues the commands by their ioctl names
//! (`dev_create`, `table_load`, `dev_resume`, `dev_remove`, `table_status`, ...). Tables are
//! built from typed targets ([`target::crypt::Crypt`], [`target::linear::Linear`]) whose
//! parameters round-trip through the kernel's own text. [`loopdev::attach`] binds image files
//! to loop devices.
//!
//! # Security
//! Crypt tables contain the volume key: buffers that carry a table are wiped on drop, tables
//! are loaded with `DM_SECURE_DATA` so the kernel wipes its copy, and `Debug` prints no
//! parameters.
//!
//! All `unsafe` code is in the private `sys` module, one small block per ioctl or system call.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod blockdev;
mod control;
mod error;
pub mod keyring;
pub mod loopdev;
mod name;
pub mod node;
// The kernel ABI: the crate's only unsafe code, each block with its SAFETY argument.
#[allow(unsafe_code)]
mod sys;
mod table;
pub mod target;

pub use control::{DeviceInfo, DmControl, TableKind};
pub use error::{Error, Result};
pub use name::{check_uuid, DmName};
pub use table::Target;
