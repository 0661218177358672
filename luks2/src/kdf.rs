//! Password-based key derivation: PBKDF2 and Argon2i/Argon2id, with caps on attacker-set costs.
//!
//! # Security
//! A header's KDF parameters come from the disk, which an attacker may control. Every cost
//! is checked against [`KdfLimits`] before any work or allocation is done: an Argon2 memory
//! cost of 4 TiB is refused with an error naming the field, not attempted, and so is a
//! derivation whose total work (PBKDF2 iterations, or Argon2 memory times passes) would take
//! longer than [`KdfLimits::max_duration`] at the speed measured on this machine.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::hash::HashAlg;
use crate::{Error, Result};

/// Ceilings for key-derivation costs read from a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimits {
    /// Largest Argon2 memory cost, in KiB (allocated at once).
    pub max_memory_kib: u32,
    /// Largest Argon2 parallelism.
    pub max_cpus: u32,
    /// Longest one derivation (a keyslot's KDF or a digest's PBKDF2) may be estimated to take
    /// on this machine; `Duration::MAX` for no limit.
    pub max_duration: Duration,
}

impl KdfLimits {
    /// cryptsetup's maximum Argon2 memory cost: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// cryptsetup's maximum Argon2 parallelism.
    pub const MAX_CPUS: u32 = 4;
    /// The default time cap: 60 times cryptsetup's default unlock time of 2 s. A header
    /// cryptsetup made with its defaults takes at most 8 s here on the machine that made it
    /// (cryptsetup runs Argon2's lanes in parallel, this crate one after the other), so this
    /// leaves room for a machine several times slower and for a raised `--iter-time`.
    pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(120);
}

impl Default for KdfLimits {
    fn default() -> Self {
        Self {
            max_memory_kib: Self::MAX_MEMORY_KIB,
            max_cpus: Self::MAX_CPUS,
            max_duration: Self::DEFAULT_MAX_DURATION,
        }
    }
}

/// Speeds below any machine this runs on: work these rates finish within the cap is accepted
/// without measuring.
const FLOOR_PBKDF2_PER_SEC: f64 = 50_000.0;
const FLOOR_ARGON2_KIB_PER_SEC: f64 = 100_000.0;

/// The measured speed of PBKDF2 with `hash`, in iterations per second (once per process).
fn pbkdf2_per_sec(hash: HashAlg) -> f64 {
    static RATES: [OnceLock<f64>; 5] = [const { OnceLock::new() }; 5];
    let slot = match hash {
        HashAlg::Sha1 => 0,
        HashAlg::Sha256 => 1,
        HashAlg::Sha384 => 2,
        HashAlg::Sha512 => 3,
        HashAlg::Ripemd160 => 4,
    };
    *RATES[slot].get_or_init(|| crate::pbkdf::pbkdf2_rate(hash))
}

/// The measured speed of one Argon2 pass, in KiB per second (once per process).
fn argon2_kib_per_sec() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        const PROBE_KIB: u32 = 16 * 1024;
        crate::pbkdf::argon2_time(Argon2Variant::Argon2id, 1, PROBE_KIB, 1)
            .map_or(FLOOR_ARGON2_KIB_PER_SEC, |t| {
                f64::from(PROBE_KIB) / t.as_secs_f64().max(1e-6)
            })
    })
}

/// Estimated time for `work` units at the floor speed, else at the measured one.
fn estimate(work: f64, floor_rate: f64, cap: Duration, measured: impl FnOnce() -> f64) -> Duration {
    let at_floor = work / floor_rate;
    if at_floor <= cap.as_secs_f64() {
        return Duration::from_secs_f64(at_floor);
    }
    Duration::from_secs_f64((work / measured().max(1.0)).min(1e12))
}

/// "about 95 s", "about 3 h 12 min", "about 41 days".
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("about {} s", s.max(1)),
        120..=7199 => format!("about {} min", s / 60),
        7200..=172_799 => format!("about {} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("about {} days", s / 86_400),
    }
}

/// Checks PBKDF2 work (`iterations` of `hash`) against the time cap.
///
/// # Errors
/// [`Error::KdfTooSlow`] naming `field` when the estimate is above the cap.
pub(crate) fn check_pbkdf2_work(
    field: &str,
    hash: HashAlg,
    iterations: u32,
    limits: &KdfLimits,
) -> Result<()> {
    let cap = limits.max_duration;
    let est = estimate(f64::from(iterations), FLOOR_PBKDF2_PER_SEC, cap, || {
        pbkdf2_per_sec(hash)
    });
    if est > cap {
        return Err(Error::KdfTooSlow {
            field: field.to_owned(),
            estimate: est,
            max: cap,
        });
    }
    Ok(())
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
    /// [`Error::Limit`] naming the field when a cost is above its cap,
    /// [`Error::KdfTooSlow`] when the derivation would take longer than the time cap, or
    /// [`Error::Metadata`] when a parameter is out of the algorithm's range.
    pub fn check(&self, field: &str, limits: &KdfLimits) -> Result<()> {
        match self {
            Kdf::Pbkdf2 {
                hash, iterations, ..
            } => {
                if *iterations == 0 {
                    return Err(Error::metadata(
                        format!("{field}.iterations"),
                        "must be positive",
                    ));
                }
                check_pbkdf2_work(field, *hash, *iterations, limits)?;
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
                // Lanes run one after the other here: the work is memory times passes.
                let work = f64::from(*memory_kib) * f64::from(*time);
                let cap_d = limits.max_duration;
                let est = estimate(work, FLOOR_ARGON2_KIB_PER_SEC, cap_d, argon2_kib_per_sec);
                if est > cap_d {
                    return Err(Error::KdfTooSlow {
                        field: field.to_owned(),
                        estimate: est,
                        max: cap_d,
                    });
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

    /// Total work is capped, not only each field: 4 GiB may be fine and 65536 passes may be
    /// fine, both together are days; so are 2^32-1 PBKDF2 iterations.
    #[test]
    fn total_work_is_capped_by_estimated_time() {
        let limits = KdfLimits::default();
        let argon = |memory_kib, time| Kdf::Argon2 {
            variant: Argon2Variant::Argon2id,
            time,
            memory_kib,
            cpus: 4,
            salt: vec![0; 32],
        };
        let slow = argon(KdfLimits::MAX_MEMORY_KIB, 65_536)
            .check("keyslots.1.kdf", &limits)
            .unwrap_err();
        assert!(
            matches!(&slow, Error::KdfTooSlow { field, estimate, .. }
                if field == "keyslots.1.kdf" && estimate.as_secs() > 3600),
            "{slow}"
        );
        assert!(slow.to_string().contains("days"), "{slow}");
        // cryptsetup's own defaults: 1 GiB, 4 passes.
        argon(1 << 20, 4)
            .check("k", &limits)
            .expect("a default header");
        let pbkdf2 = |iterations| Kdf::Pbkdf2 {
            hash: HashAlg::Sha256,
            iterations,
            salt: vec![0; 32],
        };
        let slow = pbkdf2(u32::MAX).check("digests.0", &limits).unwrap_err();
        assert!(matches!(&slow, Error::KdfTooSlow { .. }), "{slow}");
        pbkdf2(2_000_000)
            .check("k", &limits)
            .expect("two seconds' worth");
        // The cap can be raised (or lifted).
        let unlimited = KdfLimits {
            max_duration: Duration::MAX,
            ..limits
        };
        pbkdf2(u32::MAX)
            .check("k", &unlimited)
            .expect("no time limit");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(300)), "about 1 s");
        assert_eq!(human_duration(Duration::from_secs(95)), "about 95 s");
        assert_eq!(
            human_duration(Duration::from_secs(11_520)),
            "about 3 h 12 min"
        );
        assert_eq!(
            human_duration(Duration::from_secs(41 * 86_400)),
            "about 41 days"
        );
    }
}
