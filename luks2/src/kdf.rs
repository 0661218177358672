//! Password-based key derivation: PBKDF2 and Argon2i/Argon2id, with caps on attacker-set costs.
//!
//! # Security
//! A header's KDF parameters come from the disk, which an attacker may control. Every cost
//! is checked against [`KdfLimits`] before any work or allocation is done: an Argon2 memory
//! cost of 4 TiB is refused with an error naming the field, not attempted.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::hash::HashAlg;
use crate::{Error, Result};

/// Ceilings for key-derivation costs read from a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimits {
    /// Largest Argon2 memory cost, in KiB.
    pub max_memory_kib: u32,
    /// Largest Argon2 time cost.
    pub max_time: u32,
    /// Largest Argon2 parallelism.
    pub max_cpus: u32,
    /// Largest PBKDF2 iteration count, for keyslot KDFs and volume-key digests alike.
    pub max_iterations: u32,
}

impl KdfLimits {
    /// cryptsetup's maximum Argon2 memory cost: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// cryptsetup's maximum Argon2 parallelism.
    pub const MAX_CPUS: u32 = 4;
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self {
            max_memory_kib: Self::MAX_MEMORY_KIB,
            max_time: 1 << 16,
            max_cpus: Self::MAX_CPUS,
            max_iterations: u32::MAX,
        }
    }
}

/// An Argon2 variant usable as a LUKS2 PBKDF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Variant {
    /// Data-independent addressing.
    Argon2i,
    /// Hybrid addressing; cryptsetup's default.
    Argon2id,
}

impl Argon2Variant {
    /// The metadata name.
    pub fn name(self) -> &'static str {
        match self {
            Argon2Variant::Argon2i => "argon2i",
            Argon2Variant::Argon2id => "argon2id",
        }
    }
}

/// A validated KDF with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-HMAC.
    Pbkdf2 {
        /// PRF hash.
        hash: HashAlg,
        /// Iteration count.
        iterations: u32,
        /// Salt.
        salt: Vec<u8>,
    },
    /// Argon2 version 1.3.
    Argon2 {
        /// Variant.
        variant: Argon2Variant,
        /// Time cost (passes).
        time: u32,
        /// Memory cost in KiB.
        memory_kib: u32,
        /// Lanes (threads).
        cpus: u32,
        /// Salt.
        salt: Vec<u8>,
    },
}

impl Kdf {
    /// Checks the parameters against `limits` and the algorithms' own rules.
    ///
    /// # Errors
    /// [`Error::Limit`] naming the field when a cost is above its cap, or
    /// [`Error::Metadata`] when a parameter is out of the algorithm's range.
    pub fn check(&self, field: &str, limits: &KdfLimits) -> Result<()> {
        match self {
            Kdf::Pbkdf2 { iterations, .. } => {
                if *iterations == 0 {
                    return Err(Error::metadata(
                        format!("{field}.iterations"),
                        "must be positive",
                    ));
                }
                if *iterations > limits.max_iterations {
                    return Err(Error::limit(
                        format!("{field}.iterations"),
                        (*iterations).into(),
                        limits.max_iterations.into(),
                    ));
                }
            }
            Kdf::Argon2 {
                time,
                memory_kib,
                cpus,
                salt,
                ..
            } => {
                let cap = |name: &str, v: u32, max: u32| {
                    if v > max {
                        Err(Error::limit(
                            format!("{field}.{name}"),
                            v.into(),
                            max.into(),
                        ))
                    } else {
                        Ok(())
                    }
                };
                cap("memory", *memory_kib, limits.max_memory_kib)?;
                cap("time", *time, limits.max_time)?;
                cap("cpus", *cpus, limits.max_cpus)?;
                if *time == 0 || *cpus == 0 {
                    return Err(Error::metadata(field, "time and cpus must be positive"));
                }
                if *memory_kib < 8 * *cpus {
                    return Err(Error::metadata(
                        format!("{field}.memory"),
                        "must be at least 8 KiB per cpu",
                    ));
                }
                if salt.len() < 8 {
                    return Err(Error::metadata(
                        format!("{field}.salt"),
                        "shorter than 8 bytes",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Derives `out_len` bytes from `password`.
    ///
    /// # Errors
    /// [`Error::Metadata`] if Argon2 rejects the parameters. Call [`Kdf::check`] first:
    /// this function does not apply caps.
    pub fn derive(&self, password: &[u8], out_len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; out_len]);
        match self {
            Kdf::Pbkdf2 {
                hash,
                iterations,
                salt,
            } => hash.pbkdf2(password, salt, *iterations, &mut out),
            Kdf::Argon2 {
                variant,
                time,
                memory_kib,
                cpus,
                salt,
            } => {
                let algorithm = match variant {
                    Argon2Variant::Argon2i => Algorithm::Argon2i,
                    Argon2Variant::Argon2id => Algorithm::Argon2id,
                };
                let bad = |e: argon2::Error| Error::metadata("kdf", e.to_string());
                let params = Params::new(*memory_kib, *time, *cpus, Some(out_len)).map_err(bad)?;
                Argon2::new(algorithm, Version::V0x13, params)
                    .hash_password_into(password, salt, &mut out)
                    .map_err(bad)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_enforced_before_work() {
        let kdf = Kdf::Argon2 {
            variant: Argon2Variant::Argon2id,
            time: 4,
            memory_kib: u32::MAX,
            cpus: 4,
            salt: vec![0; 32],
        };
        let err = kdf
            .check("keyslots.0.kdf", &KdfLimits::default())
            .unwrap_err();
        assert!(
            matches!(&err, Error::Limit { field, .. } if field == "keyslots.0.kdf.memory"),
            "{err}"
        );
    }
}
