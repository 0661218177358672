//! `cryptpilot benchmark` and cryptsetup's `benchmark` action: key derivation and sector
//! encryption measured in memory. Under cryptsetup's name the lines are cryptsetup 2.6's,
//! with `N/A` for the ciphers this implementation does not have (serpent, twofish); under
//! ours the table adds a row on all cores and the AES data path, or `--json`.

use std::io::Write;
use std::time::Duration;

use luks2::{HashAlg, Kdf, PbkdfKind, PbkdfParams};
use serde_json::json;

use crate::args::BenchmarkArgs;
use crate::error::{CliError, CliResult};
use crate::luks::write_out;

/// cryptsetup's default table: cipher, mode, key bits.
const TABLE: [(&str, &str, u32); 12] = [
    ("aes", "cbc", 128),
    ("serpent", "cbc", 128),
    ("twofish", "cbc", 128),
    ("aes", "cbc", 256),
    ("serpent", "cbc", 256),
    ("twofish", "cbc", 256),
    ("aes", "xts", 256),
    ("serpent", "xts", 256),
    ("twofish", "xts", 256),
    ("aes", "xts", 512),
    ("serpent", "xts", 512),
    ("twofish", "xts", 512),
];

/// cryptsetup's PBKDF2 hashes, in its order (whirlpool is not implemented here: `N/A`).
const PBKDF2_HASHES: [&str; 5] = ["sha1", "sha256", "sha512", "ripemd160", "whirlpool"];

/// One key derivation line.
enum KdfLine {
    /// Iterations per second, `None` when the hash is not available.
    Pbkdf2 { hash: String, rate: Option<u64> },
    /// The costs calibrated to the requested time, `None` when they cannot be met.
    Argon2 {
        name: &'static str,
        costs: Option<(u32, u32, u32)>,
    },
}

/// One cipher measurement: MiB/s each way on `threads` threads, `None` when not available.
struct CipherRow {
    name: String,
    key_bits: u32,
    threads: usize,
    speed: Option<(f64, f64)>,
}

/// What the command line asks to measure.
enum Plan {
    /// Key derivation only (`--pbkdf` or `--hash`): one line.
    Kdf(KdfChoice),
    /// One cipher (`--cipher`).
    Cipher(String),
    /// Every KDF and cryptsetup's cipher table.
    All,
}

enum KdfChoice {
    /// PBKDF2 with this hash (`None`: none was given, cryptsetup's "(null)").
    Pbkdf2(Option<String>),
    Argon2(PbkdfKind),
}

fn plan(a: &BenchmarkArgs) -> CliResult<Plan> {
    let kind = a
        .pbkdf
        .as_deref()
        .map(|k| {
            PbkdfKind::parse(&k.to_ascii_lowercase()).map_err(|_| {
                CliError::Usage(
                    "Password-based key derivation function (PBKDF) can be only pbkdf2 or \
                     argon2i/argon2id."
                        .into(),
                )
            })
        })
        .transpose()?;
    Ok(match (kind, &a.hash, &a.cipher) {
        (Some(PbkdfKind::Pbkdf2), hash, _) | (None, hash @ Some(_), _) => {
            Plan::Kdf(KdfChoice::Pbkdf2(hash.clone()))
        }
        (Some(k), _, _) => Plan::Kdf(KdfChoice::Argon2(k)),
        (None, None, Some(c)) => Plan::Cipher(c.clone()),
        (None, None, None) => Plan::All,
    })
}

/// PBKDF2's rate for `hash` (a name) and a `key_len`-byte key.
fn pbkdf2_line(hash: Option<&str>, key_len: usize) -> KdfLine {
    let rate = hash
        .and_then(|h| HashAlg::parse(h).ok())
        .map(|h| luks2::pbkdf2_rate_for_key(h, key_len).round() as u64);
    KdfLine::Pbkdf2 {
        hash: hash.unwrap_or("(null)").to_owned(),
        rate,
    }
}

/// `--iter-time` in milliseconds; cryptsetup's 0 is its default, 2000.
fn iter_time_ms(a: &BenchmarkArgs) -> u32 {
    match a.iter_time {
        0 => 2000,
        t => t,
    }
}

/// Argon2's costs calibrated to `--iter-time` under the memory ceiling, as a new keyslot's.
fn argon2_line(kind: PbkdfKind, a: &BenchmarkArgs) -> KdfLine {
    let name = match kind {
        PbkdfKind::Argon2i => "argon2i",
        _ => "argon2id",
    };
    let params = PbkdfParams {
        kind,
        iter_time: Duration::from_millis(u64::from(iter_time_ms(a))),
        memory_kib: a.pbkdf_memory,
        parallel: a.pbkdf_parallel,
        force_iterations: None,
        ..PbkdfParams::default()
    };
    let costs = match (a.pbkdf_parallel, params.resolve()) {
        (
            1..,
            Ok(Kdf::Argon2 {
                time,
                memory_kib,
                cpus,
                ..
            }),
        ) => Some((time, memory_kib, cpus)),
        _ => None,
    };
    KdfLine::Argon2 { name, costs }
}

/// MiB/s of `cipher` (a full specification) each way, on `threads` threads.
fn speed(a: &BenchmarkArgs, cipher: &str, key_bits: u32, threads: usize) -> Option<(f64, f64)> {
    // NaN is not clamped: it takes the default.
    let seconds = if a.seconds.is_nan() { 0.5 } else { a.seconds };
    let duration = Duration::from_secs_f64(seconds.clamp(0.01, 60.0));
    let key_len = usize::try_from(key_bits / 8).ok()?;
    let (enc, dec) =
        luks2::sector::throughput(cipher, key_len, a.sector_size, threads, duration).ok()?;
    let mib = |b: f64| b / f64::from(1 << 20);
    Some((mib(enc), mib(dec)))
}

/// The table's rows (all of cryptsetup's, or `--cipher`'s), each on one thread and, for
/// ours, on every core.
fn cipher_rows(
    a: &BenchmarkArgs,
    only: Option<(&str, &str, u32)>,
    all_cores: bool,
) -> Vec<CipherRow> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1];
    if all_cores && cpus > 1 {
        threads.push(cpus);
    }
    let list: Vec<(&str, &str, u32)> = match only {
        Some(one) => vec![one],
        None => TABLE.to_vec(),
    };
    let mut rows = Vec::new();
    for (cipher, mode, key_bits) in list {
        // A mode without an IV is measured with plain64's.
        let spec = match mode.contains('-') {
            true => format!("{cipher}-{mode}"),
            false => format!("{cipher}-{mode}-plain64"),
        };
        let name = format!("{cipher}-{}", mode.split('-').next().unwrap_or(mode));
        for &t in &threads {
            let speed = speed(a, &spec, key_bits, t);
            // Ours leaves out what it cannot measure; cryptsetup prints N/A rows.
            if speed.is_none() && all_cores {
                continue;
            }
            rows.push(CipherRow {
                name: name.clone(),
                key_bits,
                threads: t,
                speed,
            });
        }
    }
    rows
}

/// cryptsetup's cipher and mode of `--cipher` (`aes-xts-plain64`: `aes`, `xts-plain64`; a
/// name alone is `cbc-plain`, as cryptsetup reads it).
fn split_cipher(c: &str) -> (&str, &str) {
    c.split_once('-').unwrap_or((c, "cbc-plain"))
}

fn kdf_text(line: &KdfLine, key_bits: u32, iter_time: u32) -> String {
    match line {
        KdfLine::Pbkdf2 {
            hash,
            rate: Some(r),
        } => format!("PBKDF2-{hash:<9} {r:>7} iterations per second for {key_bits}-bit key\n"),
        KdfLine::Pbkdf2 { hash, rate: None } => format!("PBKDF2-{hash:<9}     N/A\n"),
        KdfLine::Argon2 {
            name,
            costs: Some((t, m, p)),
        } => format!(
            "{name:<10} {t:>4} iterations, {m:>5} memory, {p} parallel threads (CPUs) for \
             {key_bits}-bit key (requested {iter_time} ms time)\n"
        ),
        KdfLine::Argon2 { name, costs: None } => format!("{name:<10} N/A\n"),
    }
}

fn kdf_json(line: &KdfLine, key_bits: u32) -> serde_json::Value {
    match line {
        KdfLine::Pbkdf2 { hash, rate } => {
            json!({"kind": "kdf", "kdf": "pbkdf2", "hash": hash, "key_bits": key_bits, "iterations_per_s": rate})
        }
        KdfLine::Argon2 { name, costs } => json!({
            "kind": "kdf", "kdf": name, "key_bits": key_bits,
            "time_cost": costs.map(|c| c.0), "memory_kib": costs.map(|c| c.1), "parallel": costs.map(|c| c.2),
        }),
    }
}

/// Runs the benchmark `a` asks for. Exit 1 when the one thing asked for is not available
/// (and, as cryptsetup, when its table's last cipher is not).
pub(crate) fn run(a: &BenchmarkArgs, out: &mut dyn Write) -> CliResult<i32> {
    // 0 is the default, as cryptsetup reads it.
    let key_bits = a.key_size.filter(|&k| k > 0).unwrap_or(256);
    if !key_bits.is_multiple_of(8) {
        return Err(CliError::Usage(
            "Key size must be a multiple of 8 bits".into(),
        ));
    }
    let key_len = (key_bits / 8) as usize;
    let cryptsetup = crate::luks::as_cryptsetup();
    let iter_time = iter_time_ms(a);
    let plan = plan(a)?;
    let mut text = String::from("# Tests are approximate using memory only (no storage IO).\n");
    let mut json_rows = Vec::new();
    let mut kdf_lines = Vec::new();
    match &plan {
        Plan::Kdf(KdfChoice::Pbkdf2(h)) => kdf_lines.push(pbkdf2_line(h.as_deref(), key_len)),
        Plan::Kdf(KdfChoice::Argon2(k)) => kdf_lines.push(argon2_line(*k, a)),
        Plan::Cipher(_) => {}
        Plan::All => {
            for h in PBKDF2_HASHES {
                kdf_lines.push(pbkdf2_line(Some(h), key_len));
            }
            kdf_lines.push(argon2_line(PbkdfKind::Argon2i, a));
            kdf_lines.push(argon2_line(PbkdfKind::Argon2id, a));
        }
    }
    for line in &kdf_lines {
        text += &kdf_text(line, key_bits, iter_time);
        json_rows.push(kdf_json(line, key_bits));
    }
    let mut code = 0;
    if let Plan::Kdf(_) = plan {
        if kdf_lines.iter().any(|l| {
            matches!(
                l,
                KdfLine::Pbkdf2 { rate: None, .. } | KdfLine::Argon2 { costs: None, .. }
            )
        }) {
            code = 1;
        }
    }
    let rows = match &plan {
        Plan::Kdf(_) => Vec::new(),
        Plan::Cipher(c) => {
            let (cipher, mode) = split_cipher(c);
            cipher_rows(a, Some((cipher, mode, key_bits)), !cryptsetup)
        }
        Plan::All => cipher_rows(a, None, !cryptsetup),
    };
    if let Plan::Cipher(c) = &plan {
        if rows.iter().all(|r| r.speed.is_none()) {
            if !a.json {
                write_out(out, &text)?;
            }
            eprintln!("Cipher {c} (with {key_bits} bits key) is not available.");
            return Ok(1);
        }
    }
    if !rows.is_empty() {
        text += &table_header(&plan, cryptsetup);
    }
    for r in &rows {
        text += &row_text(r, &plan, cryptsetup);
        json_rows.push(json!({
            "kind": "cipher", "cipher": r.name, "key_bits": r.key_bits, "threads": r.threads,
            "sector_size": a.sector_size,
            "encrypt_mib_s": r.speed.map(|s| round1(s.0)), "decrypt_mib_s": r.speed.map(|s| round1(s.1)),
        }));
    }
    // cryptsetup's exit code after its table is its last row's: 1 when that cipher is not
    // available (twofish-xts here, as on a kernel without twofish).
    if cryptsetup && matches!(plan, Plan::All) && rows.last().is_some_and(|r| r.speed.is_none()) {
        code = 1;
    }
    if !cryptsetup && !rows.is_empty() {
        text += &format!(
            "# aes-xts data path: {}\n",
            luks2::sector::xts_implementation()
        );
    }
    if a.json {
        write_out(out, &format!("{}\n", serde_json::Value::Array(json_rows)))?;
    } else {
        write_out(out, &text)?;
    }
    Ok(code)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The width cryptsetup gives `--cipher`'s name column: cipher-mode, at least 11.
fn single_width(c: &str) -> usize {
    let (cipher, mode) = split_cipher(c);
    let mode = mode.split('-').next().unwrap_or(mode);
    (cipher.len() + mode.len() + 1).max(11)
}

fn table_header(plan: &Plan, cryptsetup: bool) -> String {
    let threads = if cryptsetup { "" } else { " Threads |" };
    match plan {
        Plan::Cipher(c) => format!(
            "#{:w$} Algorithm |       Key |{threads}      Encryption |      Decryption\n",
            "",
            w = single_width(c) - 11
        ),
        _ => format!("#     Algorithm |       Key |{threads}      Encryption |      Decryption\n"),
    }
}

fn row_text(r: &CipherRow, plan: &Plan, cryptsetup: bool) -> String {
    let width = match plan {
        Plan::Cipher(c) => single_width(c),
        _ => 15,
    };
    let threads = if cryptsetup {
        String::new()
    } else {
        format!(" {:>9}", r.threads)
    };
    match r.speed {
        Some((enc, dec)) => format!(
            "{:>width$}  {:>9}b{threads}  {enc:>10.1} MiB/s  {dec:>10.1} MiB/s\n",
            r.name, r.key_bits
        ),
        None => format!(
            "{:>width$}  {:>9}b{threads} {:>17} {:>17}\n",
            r.name, r.key_bits, "N/A", "N/A"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, key_bits: u32, speed: Option<(f64, f64)>) -> CipherRow {
        CipherRow {
            name: name.into(),
            key_bits,
            threads: 1,
            speed,
        }
    }

    /// Lines as cryptsetup 2.6.1 prints them (its format strings, widths included).
    #[test]
    fn lines_are_cryptsetups() {
        let p = KdfLine::Pbkdf2 {
            hash: "sha256".into(),
            rate: Some(4510004),
        };
        assert_eq!(
            kdf_text(&p, 256, 2000),
            "PBKDF2-sha256    4510004 iterations per second for 256-bit key\n"
        );
        let p = KdfLine::Pbkdf2 {
            hash: "ripemd160".into(),
            rate: Some(936228),
        };
        assert_eq!(
            kdf_text(&p, 256, 2000),
            "PBKDF2-ripemd160  936228 iterations per second for 256-bit key\n"
        );
        let p = KdfLine::Pbkdf2 {
            hash: "whirlpool".into(),
            rate: None,
        };
        assert_eq!(kdf_text(&p, 256, 2000), "PBKDF2-whirlpool     N/A\n");
        let p = KdfLine::Argon2 {
            name: "argon2id",
            costs: Some((4, 1003081, 4)),
        };
        assert_eq!(
            kdf_text(&p, 256, 2000),
            "argon2id      4 iterations, 1003081 memory, 4 parallel threads (CPUs) for 256-bit key (requested 2000 ms time)\n"
        );
        let p = KdfLine::Argon2 {
            name: "argon2id",
            costs: None,
        };
        assert_eq!(kdf_text(&p, 256, 2000), "argon2id   N/A\n");
        assert_eq!(
            table_header(&Plan::All, true),
            "#     Algorithm |       Key |      Encryption |      Decryption\n"
        );
        assert_eq!(
            row_text(
                &row("aes-cbc", 128, Some((1330.6, 4184.0))),
                &Plan::All,
                true
            ),
            "        aes-cbc        128b      1330.6 MiB/s      4184.0 MiB/s\n"
        );
        assert_eq!(
            row_text(&row("serpent-xts", 512, None), &Plan::All, true),
            "    serpent-xts        512b               N/A               N/A\n"
        );
        let one = Plan::Cipher("aes-xts-plain64".into());
        assert_eq!(
            table_header(&one, true),
            "# Algorithm |       Key |      Encryption |      Decryption\n"
        );
        assert_eq!(
            row_text(&row("aes-xts", 512, Some((3059.5, 3123.9))), &one, true),
            "    aes-xts        512b      3059.5 MiB/s      3123.9 MiB/s\n"
        );
    }

    #[test]
    fn options_choose_what_is_measured() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let mut v = vec!["cryptpilot", "benchmark"];
            v.extend(args);
            match crate::args::Cli::parse_from(v).command {
                crate::args::Command::Benchmark(a) => plan(&a),
                _ => unreachable!(),
            }
        };
        assert!(matches!(parse(&[]), Ok(Plan::All)));
        assert!(matches!(
            parse(&["--hash", "sha1", "--cipher", "aes-xts-plain64"]),
            Ok(Plan::Kdf(KdfChoice::Pbkdf2(Some(_))))
        ));
        assert!(matches!(
            parse(&["--pbkdf", "PBKDF2"]),
            Ok(Plan::Kdf(KdfChoice::Pbkdf2(None)))
        ));
        assert!(matches!(
            parse(&["--pbkdf", "argon2i", "--hash", "sha1"]),
            Ok(Plan::Kdf(KdfChoice::Argon2(PbkdfKind::Argon2i)))
        ));
        assert!(matches!(
            parse(&["--cipher", "aes-cbc-essiv:sha256"]),
            Ok(Plan::Cipher(_))
        ));
        assert!(parse(&["--pbkdf", "scrypt"]).is_err());
    }
}
