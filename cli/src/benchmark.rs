//! `cryptpilot benchmark`: cryptsetup's benchmark table (or JSON) from the library's probes.

use std::io::Write;
use std::time::Duration;

use luks2::{Argon2Variant, HashAlg};
use serde_json::json;

use crate::error::{CliError, CliResult};
use crate::luks::write_out;

pub(crate) struct Costs {
    pub(crate) memory_kib: u32,
    pub(crate) time: u32,
    pub(crate) parallel: Option<u32>,
    pub(crate) sector_size: usize,
    pub(crate) seconds: f64,
}

fn err(e: luks2::Error) -> CliError {
    CliError::Usage(format!("benchmark: {e}"))
}

pub(crate) fn run(json: bool, c: &Costs, out: &mut dyn Write) -> CliResult<i32> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = c.parallel.unwrap_or(cpus.min(4) as u32);
    let mut rows = Vec::new();
    let mut text = String::from("# Tests are approximate using memory only (no storage IO).\n");
    for hash in [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512] {
        let rate = luks2::pbkdf2_rate(hash).round();
        text += &format!(
            "PBKDF2-{:<9} {rate:>9} iterations per second for 256-bit key\n",
            hash.name()
        );
        rows.push(json!({"kind": "kdf", "kdf": "pbkdf2", "hash": hash.name(), "iterations_per_s": rate as u64}));
    }
    for (name, variant) in [
        ("argon2i", Argon2Variant::Argon2i),
        ("argon2id", Argon2Variant::Argon2id),
    ] {
        let t = luks2::argon2_time(variant, c.time, c.memory_kib, parallel).map_err(err)?;
        let ms = (t.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        text += &format!(
            "{name:<9} {} iterations, {} memory, {parallel} parallel threads (CPUs) for 256-bit key: {ms} ms\n",
            c.time, c.memory_kib
        );
        rows.push(json!({"kind": "kdf", "kdf": name, "time_cost": c.time, "memory_kib": c.memory_kib, "parallel": parallel, "ms": ms}));
    }
    text += "#     Algorithm |       Key | Threads |      Encryption |      Decryption\n";
    let duration = Duration::from_secs_f64(c.seconds.clamp(0.01, 60.0));
    let mut implementation = "";
    for key_bits in [256usize, 512] {
        let mut thread_counts = vec![1];
        if cpus > 1 {
            thread_counts.push(cpus);
        }
        for threads in thread_counts {
            let (enc, dec) = luks2::sector::throughput(
                "aes-xts-plain64",
                key_bits / 8,
                c.sector_size,
                threads,
                duration,
            )
            .map_err(err)?;
            let mib = |b: f64| (b / f64::from(1 << 20) * 10.0).round() / 10.0;
            text += &format!(
                "{:>15} {:>10}b {threads:>9} {:>12.1} MiB/s {:>12.1} MiB/s\n",
                "aes-xts",
                key_bits,
                mib(enc),
                mib(dec)
            );
            rows.push(json!({"kind": "cipher", "cipher": "aes-xts", "key_bits": key_bits, "threads": threads, "sector_size": c.sector_size, "encrypt_mib_s": mib(enc), "decrypt_mib_s": mib(dec)}));
        }
        implementation = luks2::sector::xts_implementation();
    }
    text += &format!("# aes-xts data path: {implementation}\n");
    if json {
        return write_out(out, &format!("{}\n", serde_json::Value::Array(rows)));
    }
    write_out(out, &text)
}
