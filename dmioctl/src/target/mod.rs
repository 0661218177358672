//! Typed parameters of the targets we build; each round-trips through the kernel's text.

pub mod crypt;
pub mod integrity;
pub mod linear;
pub mod verity;
