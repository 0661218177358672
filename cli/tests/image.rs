//! Offline images and the benchmark, without root: encrypt-image output is a LUKS2 image
//! cryptsetup reads, decrypt-image restores the input with holes for zero sectors, read and
//! write address whole sectors, bad ranges fail cleanly.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;

fn plain(d: &Dir, mib: usize) -> String {
    let p = d.p("plain.img");
    let mut bytes = vec![0u8; mib << 20];
    // Data in the middle; zeros (and a hole, below) elsewhere.
    for (i, b) in bytes[(1 << 20)..(3 << 20)].iter_mut().enumerate() {
        *b = (i * 31 + i / 4096) as u8;
    }
    std::fs::write(&p, &bytes).expect("plain");
    p
}

/// `encrypt-image -q --key-file KEY --in SRC --out OUT` with `extra` options and fast
/// keyslot parameters; it must succeed.
fn encrypt_image(key: &str, src: &str, out: &str, extra: &[&str]) {
    let base = [
        "encrypt-image",
        "-q",
        "--key-file",
        key,
        "--in",
        src,
        "--out",
        out,
    ];
    ok(ours(&[&base[..], extra, FAST].concat()));
}

#[test]
fn encrypt_then_decrypt_round_trips_with_holes() {
    let d = Dir::new();
    let key = d.key("k", b"image pass");
    let src = plain(&d, 6);
    for ss in ["4096", "512"] {
        let (enc, dec) = (d.p(&format!("enc{ss}")), d.p(&format!("dec{ss}")));
        encrypt_image(&key, &src, &enc, &["--sector-size", ss]);
        let dump = ok(cryptsetup(&["luksDump", &enc])).stdout;
        assert!(dump.contains(&format!("sector: {ss} [bytes]")), "{dump}");
        assert_eq!(
            our_volume_key(&d, &enc, &key),
            cs_volume_key(&d, &enc, &key)
        );
        ok(ours(&[
            "decrypt-image",
            "-q",
            "--key-file",
            &key,
            "--in",
            &enc,
            "--out",
            &dec,
        ]));
        assert!(contents(&dec) == contents(&src), "decrypt-image {ss}");
        // Zero sectors became holes: far fewer blocks than the 6 MiB length.
        let blocks = std::fs::metadata(&dec).expect("meta").blocks() * 512;
        assert!(blocks < 3 << 20, "{blocks} bytes allocated");
        // read/write address the data segment.
        let got = d.p(&format!("read{ss}"));
        ok(ours(&[
            "read",
            "--key-file",
            &key,
            "--offset",
            "1m",
            "--length",
            "8k",
            "--out",
            &got,
            &enc,
        ]));
        assert!(
            contents(&got) == contents(&src)[1 << 20..(1 << 20) + 8192],
            "read {ss}"
        );
    }
}

#[test]
fn sparse_holes_stay_holes() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let src = d.p("sparse.img");
    let f = std::fs::File::create(&src).expect("create");
    f.set_len(64 << 20).expect("len");
    let (enc, dense) = (d.p("enc"), d.p("dense"));
    encrypt_image(&key, &src, &enc, &["--sparse"]);
    encrypt_image(&key, &src, &dense, &[]);
    let alloc = |p: &str| std::fs::metadata(p).expect("meta").blocks() * 512;
    assert!(
        alloc(&enc) < 20 << 20,
        "sparse output allocated {}",
        alloc(&enc)
    );
    assert!(
        alloc(&dense) >= 64 << 20,
        "dense output allocated {}",
        alloc(&dense)
    );
    let dec = d.p("dec");
    ok(ours(&[
        "decrypt-image",
        "-q",
        "--sparse",
        "--key-file",
        &key,
        "--in",
        &enc,
        "--out",
        &dec,
    ]));
    assert!(contents(&dec).iter().all(|&b| b == 0));
}

#[test]
fn bad_ranges_and_keys_fail_cleanly() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let wrong = d.key("w", b"nope");
    let src = plain(&d, 4);
    let enc = d.p("enc");
    encrypt_image(&key, &src, &enc, &[]);
    let before = contents(&enc);
    let chunk = d.key("chunk", &[1u8; 100]);
    let (o, o2, missing) = (d.p("o"), d.p("o2"), d.p("missing"));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["read", "--key-file", &key, "--offset", "8m", &enc],
            1,
            "past the",
        ),
        (
            vec![
                "read",
                "--key-file",
                &key,
                "--offset",
                "100",
                "--length",
                "4096",
                &enc,
            ],
            1,
            "not whole",
        ),
        (
            vec!["write", "--key-file", &key, "--in", &chunk, &enc],
            1,
            "not whole",
        ),
        (
            vec![
                "write",
                "--key-file",
                &key,
                "--offset",
                "4m",
                "--in",
                &src,
                &enc,
            ],
            1,
            "past the",
        ),
        (
            vec!["read", "--key-file", &wrong, &enc],
            2,
            "no key available",
        ),
        (
            vec![
                "decrypt-image",
                "--key-file",
                &wrong,
                "--in",
                &enc,
                "--out",
                &o,
            ],
            2,
            "no key available",
        ),
        (
            vec![
                "encrypt-image",
                "--key-file",
                &key,
                "--in",
                &missing,
                "--out",
                &o2,
            ],
            1,
            "cannot open",
        ),
    ];
    for (args, code, needle) in cases {
        fails_cleanly(&ours(&args), code, needle);
        assert_eq!(contents(&enc), before, "{args:?} changed the image");
    }
}

#[test]
fn benchmark_json_has_every_row() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cryptpilot"))
        .args([
            "benchmark",
            "--json",
            "--pbkdf-memory",
            "8192",
            "--iter-time",
            "50",
            "--seconds",
            "0.02",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = v.as_array().expect("array");
    let kdfs: Vec<&str> = rows.iter().filter_map(|r| r["kdf"].as_str()).collect();
    assert_eq!(
        kdfs,
        ["pbkdf2", "pbkdf2", "pbkdf2", "pbkdf2", "pbkdf2", "argon2i", "argon2id"]
    );
    // Whirlpool is not implemented: its rate is null; the others are measured.
    let rates: Vec<Option<u64>> = rows[..5]
        .iter()
        .map(|r| r["iterations_per_s"].as_u64())
        .collect();
    // Measured: a positive rate (how fast is the benchmarks' business, not a test's: a busy
    // machine may run this one slowly).
    assert!(rates[..4].iter().all(|r| r.is_some_and(|n| n > 0)));
    assert_eq!(rows[4]["hash"], "whirlpool");
    assert_eq!(rates[4], None);
    assert!(rows[5..7]
        .iter()
        .all(|r| r["memory_kib"].as_u64() <= Some(8192) && r["time_cost"].as_u64() >= Some(4)));
    // aes-cbc 128/256 and aes-xts 256/512, at least on one thread.
    let ciphers = rows
        .iter()
        .filter(|r| r["kind"] == "cipher" && r["threads"] == 1)
        .count();
    assert_eq!(ciphers, 4);
    assert!(rows
        .iter()
        .filter(|r| r["kind"] == "cipher")
        .all(|r| r["encrypt_mib_s"].as_f64().is_some_and(|x| x >= 0.0)));
}
