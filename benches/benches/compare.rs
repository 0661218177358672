//! Side by side, in one run: our AES-XTS against OpenSSL's (one thread, 4 KiB and 512 B
//! sectors), our AES-CBC against OpenSSL's (both directions), our thread scaling, our
//! Argon2 unlock of a cryptsetup header against `cryptsetup open --test-passphrase` on the
//! same header, and our offline encryption of a 1 GiB image against a `dd` copy of it (the
//! I/O floor).
//!
//! `bash scripts/bench.sh` runs it (it installs the OpenSSL headers and builds the binary).
//! Environment: `CRYPTPILOT_BIN` (default `../target/release/cryptpilot`),
//! `BENCH_ARGON_KIB` (Argon2 memory of the unlock header, default 1048576),
//! `BENCH_IMAGE_MIB` (default 1024).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use luks2::sector::{CipherSpec, SectorCipher};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

const BUF: usize = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn xts(c: &mut Criterion) {
    let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
    for sector in [4096usize, 512] {
        let mut g = c.benchmark_group(format!("xts-{sector}"));
        g.throughput(Throughput::Bytes(BUF as u64));
        for key_len in [64usize, 32] {
            let key = cryptpilot_benches::key(key_len);
            let ours = SectorCipher::new(&spec, &key).expect("key");
            let mut buf = cryptpilot_benches::data(BUF);
            let bits = key_len * 8;
            g.bench_function(
                BenchmarkId::new(format!("cryptpilot-{}", ours.implementation()), bits),
                |b| b.iter(|| ours.encrypt(0, sector, &mut buf).expect("encrypt")),
            );
            let cipher = if key_len == 32 {
                Cipher::aes_128_xts()
            } else {
                Cipher::aes_256_xts()
            };
            let mut ctx = CipherCtx::new().expect("ctx");
            ctx.encrypt_init(Some(cipher), Some(&key), Some(&[0u8; 16]))
                .expect("init");
            let input = cryptpilot_benches::data(BUF);
            let mut out = vec![0u8; BUF + 16];
            g.bench_function(BenchmarkId::new("openssl", bits), |b| {
                b.iter(|| {
                    for (i, s) in input.chunks(sector).enumerate() {
                        let mut iv = [0u8; 16];
                        iv[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        // Only the IV changes per sector, as in `openssl speed -evp`.
                        ctx.encrypt_init(None, None, Some(&iv)).expect("iv");
                        ctx.cipher_update(s, Some(&mut out[i * sector..]))
                            .expect("update");
                    }
                })
            });
        }
        g.finish();
    }
}

/// AES-CBC (LUKS1 and legacy `aes-cbc-essiv` volumes), 4 KiB sectors, one thread: both
/// directions against OpenSSL's. Encryption is one serial chain per sector for both.
fn cbc(c: &mut Criterion) {
    let spec = CipherSpec::parse("aes-cbc-plain64").expect("spec");
    let sector = 4096;
    for encrypt in [true, false] {
        let mut g = c.benchmark_group(if encrypt {
            "cbc-encrypt-4096"
        } else {
            "cbc-decrypt-4096"
        });
        g.throughput(Throughput::Bytes(BUF as u64));
        for key_len in [32usize, 16] {
            let key = cryptpilot_benches::key(key_len);
            let ours = SectorCipher::new(&spec, &key).expect("key");
            let mut buf = cryptpilot_benches::data(BUF);
            let bits = key_len * 8;
            g.bench_function(BenchmarkId::new("cryptpilot", bits), |b| {
                b.iter(|| ours.crypt(0, 1, sector, &mut buf, encrypt).expect("cbc"))
            });
            let cipher = if key_len == 16 {
                Cipher::aes_128_cbc()
            } else {
                Cipher::aes_256_cbc()
            };
            let mut ctx = CipherCtx::new().expect("ctx");
            if encrypt {
                ctx.encrypt_init(Some(cipher), Some(&key), Some(&[0u8; 16]))
            } else {
                ctx.decrypt_init(Some(cipher), Some(&key), Some(&[0u8; 16]))
            }
            .expect("init");
            ctx.set_padding(false);
            let input = cryptpilot_benches::data(BUF);
            let mut out = vec![0u8; BUF + 16];
            g.bench_function(BenchmarkId::new("openssl", bits), |b| {
                b.iter(|| {
                    for (i, s) in input.chunks(sector).enumerate() {
                        let mut iv = [0u8; 16];
                        iv[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        if encrypt {
                            ctx.encrypt_init(None, None, Some(&iv)).expect("iv");
                        } else {
                            ctx.decrypt_init(None, None, Some(&iv)).expect("iv");
                        }
                        ctx.cipher_update(s, Some(&mut out[i * sector..]))
                            .expect("update");
                    }
                })
            });
        }
        g.finish();
    }
}

fn scaling(c: &mut Criterion) {
    let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
    let ours = SectorCipher::new(&spec, &cryptpilot_benches::key(64)).expect("key");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // In cache: each thread owns 1 MiB (CPU scaling); streaming: 64 MiB split over threads.
    let mut g = c.benchmark_group("xts-threads-in-cache");
    for threads in [1, cpus] {
        g.throughput(Throughput::Bytes((BUF * threads) as u64));
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            let mut bufs: Vec<Vec<u8>> = (0..threads)
                .map(|_| cryptpilot_benches::data(BUF))
                .collect();
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                std::thread::scope(|s| {
                    for buf in bufs.iter_mut() {
                        let ours = &ours;
                        s.spawn(move || {
                            for _ in 0..iters {
                                ours.encrypt(0, 4096, buf).expect("encrypt");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("xts-threads-streaming");
    let mut big = cryptpilot_benches::data(64 << 20);
    g.throughput(Throughput::Bytes(big.len() as u64));
    for threads in [1, cpus] {
        g.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter(|| {
                ours.run_parallel(0, 4096, &mut big, true, threads)
                    .expect("encrypt")
            })
        });
    }
    g.finish();
}

fn cryptsetup() -> Option<PathBuf> {
    ["/usr/sbin/cryptsetup", "/sbin/cryptsetup"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn unlock(c: &mut Criterion) {
    let Some(cs) = cryptsetup() else {
        eprintln!("unlock: cryptsetup not installed, skipped");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("argon.img");
    let key = dir.path().join("key");
    std::fs::write(&key, b"benchmark passphrase").expect("key");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(20 << 20))
        .expect("image");
    let kib = env_u64("BENCH_ARGON_KIB", 1 << 20).to_string();
    run(Command::new(&cs)
        .args(["luksFormat", "-q", "--type", "luks2", "--pbkdf", "argon2id"])
        .args([
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            &kib,
            "--pbkdf-parallel",
            "2",
        ])
        .arg("--key-file")
        .arg(&key)
        .arg(&img));
    let mut g = c.benchmark_group(format!("unlock-argon2id-{kib}k-t4-p2"));
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("cryptpilot", |b| {
        b.iter(|| {
            let f = std::fs::File::open(&img).expect("open");
            let mut dev = luks2::Luks2::open(f).expect("luks2");
            dev.unlock(
                &luks2::Passphrase::from_slice(b"benchmark passphrase"),
                None,
                &luks2::KdfLimits::default(),
            )
            .expect("unlock")
        })
    });
    g.bench_function("cryptsetup", |b| {
        b.iter(|| {
            run(Command::new(&cs)
                .args(["open", "--test-passphrase", "--key-file"])
                .arg(&key)
                .arg(&img))
        })
    });
    g.finish();
}

fn image(c: &mut Criterion) {
    let bin = std::env::var_os("CRYPTPILOT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/cryptpilot")
        });
    if !bin.exists() {
        eprintln!(
            "image: {} not built, skipped (cargo build --release -p cryptpilot)",
            bin.display()
        );
        return;
    }
    let mib = env_u64("BENCH_IMAGE_MIB", 1024);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let plain = dir.path().join("plain.img");
    let out = dir.path().join("out.img");
    let key = dir.path().join("key");
    std::fs::write(&key, b"pw").expect("key");
    std::fs::write(&plain, cryptpilot_benches::data((mib as usize) << 20)).expect("plain");
    let mut g = c.benchmark_group(format!("image-{mib}MiB"));
    g.sample_size(10).throughput(Throughput::Bytes(mib << 20));
    g.bench_function("dd-copy", |b| {
        b.iter(|| {
            run(Command::new("dd")
                .arg(format!("if={}", plain.display()))
                .arg(format!("of={}", out.display()))
                .args(["bs=16M", "conv=fsync", "status=none"]))
        })
    });
    g.bench_function("cryptpilot-encrypt-image", |b| {
        b.iter(|| {
            run(Command::new(&bin)
                .args(["luks", "encrypt-image", "-q", "--pbkdf", "pbkdf2"])
                .args(["--pbkdf-force-iterations", "1000", "--key-file"])
                .arg(&key)
                .arg("--in")
                .arg(&plain)
                .arg("--out")
                .arg(&out))
        })
    });
    g.finish();
}

/// `veritysetup format` of BENCH_VERITY_MIB (256) MiB of incompressible data, by our binary
/// and by veritysetup, into a new hash file each time (SHA-256, 4096-byte blocks).
fn verity(c: &mut Criterion) {
    let bin = std::env::var_os("CRYPTPILOT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/cryptpilot")
        });
    let real = ["/usr/sbin/veritysetup", "/sbin/veritysetup"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(real) = real.filter(|_| bin.exists()) else {
        eprintln!("verity: veritysetup or a release cryptpilot missing, skipped");
        return;
    };
    let mib = env_u64("BENCH_VERITY_MIB", 256);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data.img");
    let hash = dir.path().join("hash.img");
    std::fs::write(&data, cryptpilot_benches::data((mib as usize) << 20)).expect("data");
    let mut g = c.benchmark_group(format!("verity-format-{mib}MiB"));
    g.sample_size(10).throughput(Throughput::Bytes(mib << 20));
    for (name, program, verb) in [
        ("cryptpilot", &bin, &["verity", "format"][..]),
        ("veritysetup", &real, &["format"][..]),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let _ = std::fs::remove_file(&hash);
                run(Command::new(program)
                    .args(verb)
                    .arg(&data)
                    .arg(&hash)
                    .args(["--salt", "00"]))
            })
        });
    }
    g.finish();
}

/// `cryptpilot fde convert` of the Debian image tests/fde/debian-image.sh builds (2 GiB, root
/// partition 1.87 GiB) against `cp --sparse=always` of the same image (issue 15's yardstick:
/// at most twice the copy), plain and with a LUKS2 rootfs (its keyslot calibrated, and at
/// fixed costs).
fn convert(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let img = std::env::var_os("BENCH_DEBIAN_IMAGE")
        .map_or_else(|| root.join("target/fixtures/debian.img"), PathBuf::from);
    let init = root.join("target/x86_64-unknown-linux-gnu/release/cryptpilot");
    let bin = std::env::var_os("CRYPTPILOT_BIN")
        .map_or_else(|| root.join("target/release/cryptpilot"), PathBuf::from);
    if !img.exists() || !init.exists() || !bin.exists() {
        eprintln!(
            "convert: {} or the static binary missing, skipped (scripts/bench.sh builds them)",
            img.display()
        );
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).expect("conf");
    let plain_conf = conf.join("plain");
    let luks_conf = conf.join("luks");
    for (d, t) in [
        (&plain_conf, "[rootfs]\n[delta.encrypt.otp]\n"),
        (
            &luks_conf,
            "[rootfs]\n[rootfs.encrypt.exec]\ncommand = \"/bin/key\"\n[delta.encrypt.otp]\n",
        ),
    ] {
        std::fs::create_dir(d).expect("conf");
        std::fs::write(d.join("fde.toml"), t).expect("fde.toml");
    }
    let key = dir.path().join("key");
    std::fs::write(&key, b"rootfs-pass").expect("key");
    let out = dir.path().join("out.img");
    let size = std::fs::metadata(&img).expect("image").len();
    let mut g = c.benchmark_group("fde-convert-debian-2GiB");
    g.sample_size(10).throughput(Throughput::Bytes(size));
    g.bench_function("cp-sparse", |b| {
        b.iter(|| {
            run(Command::new("cp")
                .arg("--sparse=always")
                .arg(&img)
                .arg(&out))
        })
    });
    // The conversion ends with its output on disk (e2fsprogs flush as they close, and so
    // does the converter before it renames): the copy, then `sync FILE` (fsync).
    g.bench_function("cp-sparse-then-fsync", |b| {
        b.iter(|| {
            run(Command::new("cp")
                .arg("--sparse=always")
                .arg(&img)
                .arg(&out));
            run(Command::new("sync").arg(&out))
        })
    });
    for (name, conf, key_args) in [
        (
            "cryptpilot-convert-plain",
            &plain_conf,
            vec!["--rootfs-no-encryption".to_owned()],
        ),
        (
            "cryptpilot-convert-luks2",
            &luks_conf,
            vec![
                "--rootfs-passphrase-file".to_owned(),
                key.display().to_string(),
            ],
        ),
        // The keyslot's Argon2id at fixed costs: the conversion's own work, without the 2 s
        // calibration a default keyslot spends by design.
        (
            "cryptpilot-convert-luks2-fixed-kdf",
            &luks_conf,
            vec![
                "--rootfs-passphrase-file".to_owned(),
                key.display().to_string(),
                "--pbkdf-memory=65536".to_owned(),
                "--pbkdf-force-iterations=4".to_owned(),
            ],
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                run(Command::new(&bin)
                    .args(["fde", "convert", "--force", "--init"])
                    .arg(&init)
                    .arg("--in")
                    .arg(&img)
                    .arg("--out")
                    .arg(&out)
                    .arg("-c")
                    .arg(conf)
                    .args(&key_args))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, xts, cbc, scaling, unlock, image, verity, convert);
criterion_main!(benches);
