//! Choosing KDF costs for new keyslots: cryptsetup's defaults and its benchmark-to-target
//! calibration.

use std::time::{Duration, Instant};

use crate::hash::HashAlg;
use crate::kdf::{Argon2Variant, Kdf};
use crate::util::random_bytes;
use crate::{Error, Result};

/// Which KDF a new keyslot uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbkdfKind {
    /// PBKDF2-HMAC.
    Pbkdf2,
    /// Argon2i.
    Argon2i,
    /// Argon2id (cryptsetup's default for LUKS2).
    Argon2id,
}

impl PbkdfKind {
    /// Parses `pbkdf2`, `argon2i` or `argon2id`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for any other name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pbkdf2" => Ok(PbkdfKind::Pbkdf2),
            "argon2i" => Ok(PbkdfKind::Argon2i),
            "argon2id" => Ok(PbkdfKind::Argon2id),
            _ => Err(Error::unsupported("pbkdf", s)),
        }
    }
}

/// Cost settings for a new keyslot, as cryptsetup's `--pbkdf*` and `--iter-time` options.
#[derive(Clone, Debug)]
pub struct PbkdfParams {
    /// The KDF.
    pub kind: PbkdfKind,
    /// PBKDF2's hash.
    pub hash: HashAlg,
    /// Target unlock time when calibrating.
    pub iter_time: Duration,
    /// Argon2 memory (the maximum when calibrating), KiB.
    pub memory_kib: u32,
    /// Argon2 lanes.
    pub parallel: u32,
    /// Fixed iterations (PBKDF2) or time cost (Argon2); skips calibration.
    pub force_iterations: Option<u32>,
}

/// cryptsetup's default Argon2 memory ceiling: 1 GiB.
pub(crate) const DEFAULT_MEMORY_KIB: u32 = 1 << 20;
/// cryptsetup's minimum Argon2 time cost when calibrating.
pub(crate) const MIN_ARGON2_TIME: u32 = 4;
/// cryptsetup's minimum PBKDF2 iteration count.
pub(crate) const MIN_PBKDF2_ITERATIONS: u32 = 1000;

impl Default for PbkdfParams {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        Self {
            kind: PbkdfKind::Argon2id,
            hash: HashAlg::Sha256,
            iter_time: Duration::from_millis(2000),
            memory_kib: DEFAULT_MEMORY_KIB.min(half_of_ram_kib()),
            parallel: cpus.clamp(1, crate::kdf::KdfLimits::MAX_CPUS),
            force_iterations: None,
        }
    }
}

/// Half of the physical memory in KiB, read from `/proc/meminfo` (1 GiB if unknown).
fn half_of_ram_kib() -> u32 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(DEFAULT_MEMORY_KIB, |kib| {
            u32::try_from(kib / 2).unwrap_or(u32::MAX)
        })
}

/// PBKDF2 iterations per second for `hash` deriving a 32-byte key, measured for about 50 ms.
pub fn pbkdf2_rate(hash: HashAlg) -> f64 {
    let mut iterations = 1000u32;
    let mut out = [0u8; 32];
    loop {
        let t = Instant::now();
        hash.pbkdf2(b"benchmark passphrase", &[0u8; 32], iterations, &mut out);
        let e = t.elapsed();
        if e >= Duration::from_millis(50) || iterations >= 1 << 30 {
            return f64::from(iterations) / e.as_secs_f64().max(1e-9);
        }
        iterations = iterations.saturating_mul(2);
    }
}

/// PBKDF2 iterations per second for `hash` deriving a `key_len`-byte key: one chain of
/// iterations runs per hash-sized block of output, so a 64-byte key with SHA-256 halves
/// the rate (and a 32-byte key with SHA-1 already takes two blocks), as cryptsetup
/// benchmarks with the real key length.
pub fn pbkdf2_rate_for_key(hash: HashAlg, key_len: usize) -> f64 {
    pbkdf2_rate(hash) * key_rate_factor(hash, key_len)
}

/// [`pbkdf2_rate`]'s measurement (a 32-byte key) scaled to a `key_len`-byte key: the ratio
/// of hash blocks the two take.
fn key_rate_factor(hash: HashAlg, key_len: usize) -> f64 {
    let blocks = |n: usize| n.div_ceil(hash.output_len()).max(1) as f64;
    blocks(32) / blocks(key_len)
}

/// Time one Argon2 derivation of a 32-byte key takes with these costs.
///
/// # Errors
/// [`Error::Metadata`] if Argon2 rejects the costs.
pub fn argon2_time(
    variant: Argon2Variant,
    time: u32,
    memory_kib: u32,
    cpus: u32,
) -> Result<Duration> {
    let kdf = Kdf::Argon2 {
        variant,
        time,
        memory_kib,
        cpus,
        salt: vec![0u8; 32],
    };
    let t = Instant::now();
    kdf.derive(b"benchmark passphrase", 32)?;
    Ok(t.elapsed())
}

impl PbkdfParams {
    /// Fixed, cheap costs for tests and throw-away volumes (never for real keys).
    pub fn insecure_fast() -> Self {
        Self {
            kind: PbkdfKind::Pbkdf2,
            force_iterations: Some(1000),
            ..Self::default()
        }
    }

    /// Resolves to a concrete [`Kdf`] with a fresh 32-byte salt, calibrating the cost to
    /// `iter_time` unless it is forced.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for impossible costs, [`Error::Random`] for the salt.
    pub fn resolve(&self) -> Result<Kdf> {
        self.resolve_for_key(32)
    }

    /// [`PbkdfParams::resolve`] for a derived key of `key_len` bytes: a calibrated PBKDF2
    /// count is [`pbkdf2_rate_for_key`] times the target time.
    ///
    /// # Errors
    /// As [`PbkdfParams::resolve`].
    pub fn resolve_for_key(&self, key_len: usize) -> Result<Kdf> {
        let salt = random_bytes(32)?;
        let target = self.iter_time.as_secs_f64().max(0.001);
        Ok(match self.kind {
            PbkdfKind::Pbkdf2 => {
                let iterations = match self.force_iterations {
                    Some(n) if n < MIN_PBKDF2_ITERATIONS => {
                        return Err(Error::invalid(
                            "pbkdf2 iterations",
                            format!("{n} is below {MIN_PBKDF2_ITERATIONS}"),
                        ))
                    }
                    Some(n) => n,
                    None => ((pbkdf2_rate_for_key(self.hash, key_len) * target) as u32)
                        .max(MIN_PBKDF2_ITERATIONS),
                };
                Kdf::Pbkdf2 {
                    hash: self.hash,
                    iterations,
                    salt,
                }
            }
            PbkdfKind::Argon2i | PbkdfKind::Argon2id => {
                let variant = if self.kind == PbkdfKind::Argon2i {
                    Argon2Variant::Argon2i
                } else {
                    Argon2Variant::Argon2id
                };
                let cpus = self.parallel.clamp(1, crate::kdf::KdfLimits::MAX_CPUS);
                if self.memory_kib < 8 * cpus
                    || self.memory_kib > crate::kdf::KdfLimits::MAX_MEMORY_KIB
                {
                    return Err(Error::invalid(
                        "pbkdf memory",
                        format!(
                            "{} KiB is outside {}..={} KiB",
                            self.memory_kib,
                            8 * cpus,
                            crate::kdf::KdfLimits::MAX_MEMORY_KIB
                        ),
                    ));
                }
                let (time, memory_kib) = match self.force_iterations {
                    Some(0) => return Err(Error::invalid("argon2 time cost", "must be positive")),
                    Some(t) => (t, self.memory_kib),
                    None => calibrate_argon2(variant, self.memory_kib, cpus, target)?,
                };
                Kdf::Argon2 {
                    variant,
                    time,
                    memory_kib,
                    cpus,
                    salt,
                }
            }
        })
    }
}

/// Finds (time, memory) that take about `target` seconds: full memory with as many passes as
/// fit (at least [`MIN_ARGON2_TIME`]), or less memory at the minimum passes on slow machines.
///
/// The cost model is `memory * (a + b * passes)`: `a` is the per-KiB cost of allocating and
/// first touching memory, `b` the per-KiB cost of one pass. Two probes at the same memory
/// and different passes separate them; a single probe would count page faults as passes
/// and undershoot.
fn calibrate_argon2(
    variant: Argon2Variant,
    max_kib: u32,
    cpus: u32,
    target: f64,
) -> Result<(u32, u32)> {
    let probe_kib = max_kib.min(64 * 1024);
    let t1 = argon2_time(variant, 1, probe_kib, cpus)?.as_secs_f64();
    let t3 = argon2_time(variant, 3, probe_kib, cpus)?.as_secs_f64();
    let m = f64::from(probe_kib);
    let b = ((t3 - t1) / (2.0 * m)).max(1e-12);
    let a = ((t1 - b * m) / m).max(0.0);
    let passes_at_max = (target / f64::from(max_kib) - a) / b;
    if passes_at_max >= f64::from(MIN_ARGON2_TIME) {
        Ok((passes_at_max.min(f64::from(u16::MAX)) as u32, max_kib))
    } else {
        let kib = target / (a + b * f64::from(MIN_ARGON2_TIME));
        Ok((
            MIN_ARGON2_TIME,
            (kib as u32).clamp(32.max(8 * cpus), max_kib),
        ))
    }
}

/// Iterations for a new volume-key digest: cryptsetup's 125 ms of PBKDF2, at least 1000.
pub(crate) fn digest_iterations(hash: HashAlg) -> u32 {
    ((pbkdf2_rate(hash) * 0.125) as u32).max(MIN_PBKDF2_ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PBKDF2 chain per hash block of output: the rate measured for 32 bytes scales by
    /// the blocks each key size takes (SHA-1's 32 bytes are already two blocks).
    #[test]
    fn key_size_scales_the_rate_by_hash_blocks() {
        let cases = [
            (HashAlg::Sha1, 32, 1.0),
            (HashAlg::Sha1, 64, 0.5),
            (HashAlg::Sha1, 16, 2.0),
            (HashAlg::Ripemd160, 40, 1.0),
            (HashAlg::Sha256, 32, 1.0),
            (HashAlg::Sha256, 64, 0.5),
            (HashAlg::Sha512, 64, 1.0),
            (HashAlg::Sha512, 128, 0.5),
        ];
        for (hash, len, want) in cases {
            assert_eq!(key_rate_factor(hash, len), want, "{hash:?} {len}");
        }
    }
}
