//! Typed parameters of the targets we build.

pub mod crypt;
pub mod linear;
