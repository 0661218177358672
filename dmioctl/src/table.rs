//! Table lines: `START LENGTH TYPE PARAMS`, in 512-byte sectors.

use std::fmt;

use zeroize::Zeroizing;

/// One target of a table. Its parameters may hold a key (crypt), so they are wiped on drop
/// and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// First sector this target maps.
    pub start: u64,
    /// Number of sectors.
    pub length: u64,
    /// Target type (`crypt`, `linear`, `integrity`, `verity`).
    pub kind: String,
    params: Zeroizing<String>,
}

impl Target {
    /// A target with raw parameters.
    pub fn new(start: u64, length: u64, kind: &str, params: Zeroizing<String>) -> Self {
        Self {
            start,
            length,
            kind: kind.to_owned(),
            params,
        }
    }

    /// The parameter string (may contain key material for crypt targets).
    pub fn params(&self) -> &str {
        &self.params
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Target({} {} {} [{} bytes of parameters])",
            self.start,
            self.length,
            self.kind,
            self.params.len()
        )
    }
}
