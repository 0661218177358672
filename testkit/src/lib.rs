//! Test fixtures shared by the workspace's tests (never a dependency of a shipped crate).
//!
//! [`trustee::Broker`] runs the real Trustee key broker from `../shared/tools/trustee/` on a
//! free loopback port in a temporary directory, over HTTP or HTTPS (with a CA and leaf made
//! for the test), and stops it when dropped, a failing test included.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(clippy::unwrap_used)]

pub mod trustee;
