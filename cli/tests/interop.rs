//! Interoperability with the real cryptsetup (Debian's cryptsetup-bin), in both directions.

mod common;

use common::*;

/// Fast but real KDF settings for cryptsetup.
const CS_FAST_PBKDF2: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];
const CS_FAST_ARGON: &[&str] = &[
    "--pbkdf",
    "argon2id",
    "--pbkdf-force-iterations",
    "4",
    "--pbkdf-memory",
    "32768",
];

fn cs_format(d: &Dir, img: &str, key: &str, extra: &[&str]) {
    let mut args = vec!["luksFormat", "-q", "--type", "luks2", "--key-file", key];
    args.extend_from_slice(extra);
    args.push(img);
    ok(cryptsetup(&args));
    let _ = d;
}

fn our_format(img: &str, key: &str, extra: &[&str]) {
    let mut args = vec!["format", "-q", "--key-file", key];
    args.extend_from_slice(extra);
    args.push(img);
    ok(ours(&args));
}

#[test]
fn cryptsetup_volumes_unlock_with_us() {
    let d = Dir::new();
    let key = d.key("k", b"correct horse battery staple");
    let cases: Vec<Vec<&str>> = vec![
        [CS_FAST_PBKDF2, &["--sector-size", "512"]].concat(),
        [
            CS_FAST_ARGON,
            &[
                "--sector-size",
                "4096",
                "--label",
                "data",
                "--subsystem",
                "cryptpilot",
            ],
        ]
        .concat(),
        [
            &[
                "--pbkdf",
                "argon2i",
                "--pbkdf-force-iterations",
                "4",
                "--pbkdf-memory",
                "32768",
            ][..],
            &["--luks2-metadata-size", "64k"],
        ]
        .concat(),
        [CS_FAST_PBKDF2, &["--hash", "sha512"]].concat(),
        [CS_FAST_PBKDF2, &["--hash", "sha1"]].concat(),
        [
            CS_FAST_PBKDF2,
            &["--cipher", "aes-xts-plain64", "--key-size", "256"],
        ]
        .concat(),
        [
            CS_FAST_PBKDF2,
            &["--cipher", "aes-cbc-essiv:sha256", "--key-size", "256"],
        ]
        .concat(),
        [
            CS_FAST_PBKDF2,
            &["--luks2-keyslots-size", "1m", "--luks2-metadata-size", "4m"],
        ]
        .concat(),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let img = d.image(&format!("cs{i}.img"), 32);
        cs_format(&d, &img, &key, extra);
        let ours_key = our_volume_key(&d, &img, &key);
        assert_eq!(ours_key, cs_volume_key(&d, &img, &key), "case {extra:?}");
        ok(ours(&["dump", &img]));
        let wrong = d.key("wrong", b"nope");
        assert_eq!(
            ours(&["open", "--test-passphrase", "--key-file", &wrong, &img]).code,
            2,
            "case {extra:?}"
        );
    }
}

#[test]
fn every_metadata_size_both_ways() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    for md in [
        "16k", "32k", "64k", "128k", "256k", "512k", "1m", "2m", "4m",
    ] {
        let a = d.image(&format!("cs-{md}.img"), 40);
        cs_format(
            &d,
            &a,
            &key,
            &[CS_FAST_PBKDF2, &["--luks2-metadata-size", md]].concat(),
        );
        assert_eq!(
            our_volume_key(&d, &a, &key),
            cs_volume_key(&d, &a, &key),
            "cryptsetup {md}"
        );

        let b = d.image(&format!("ours-{md}.img"), 40);
        our_format(
            &b,
            &key,
            &[
                "--pbkdf",
                "pbkdf2",
                "--pbkdf-force-iterations",
                "1000",
                "--luks2-metadata-size",
                md,
            ],
        );
        ok(cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &key,
            &b,
        ]));
        assert_eq!(
            our_volume_key(&d, &b, &key),
            cs_volume_key(&d, &b, &key),
            "ours {md}"
        );
        let dump = ok(cryptsetup(&["luksDump", &b])).stdout;
        let bytes = ours_md_bytes(md);
        assert!(
            dump.contains(&format!("Metadata area: \t{bytes} [bytes]")),
            "{dump}"
        );
    }
}

fn ours_md_bytes(md: &str) -> u64 {
    let (n, m) = md.split_at(md.len() - 1);
    n.parse::<u64>().expect("num") << if m == "k" { 10 } else { 20 }
}

#[test]
fn several_keyslots_from_cryptsetup() {
    let d = Dir::new();
    let k0 = d.key("k0", b"zero");
    let k1 = d.key("k1", b"one");
    let k2 = d.key("k2", b"two\nwith newline");
    let img = d.image("multi.img", 32);
    cs_format(&d, &img, &k0, CS_FAST_PBKDF2);
    ok(cryptsetup(
        &[
            &["luksAddKey", "-q", "--key-file", &k0][..],
            CS_FAST_ARGON,
            &[&img, &k1],
        ]
        .concat(),
    ));
    ok(cryptsetup(
        &[
            &["luksAddKey", "-q", "--key-file", &k0, "--key-slot", "7"][..],
            CS_FAST_PBKDF2,
            &[&img, &k2],
        ]
        .concat(),
    ));
    let want = cs_volume_key(&d, &img, &k0);
    for k in [&k0, &k1, &k2] {
        assert_eq!(our_volume_key(&d, &img, k), want);
    }
    ok(ours(&[
        "open",
        "--test-passphrase",
        "--key-slot",
        "7",
        "--key-file",
        &k2,
        &img,
    ]));
    assert_eq!(
        ours(&[
            "open",
            "--test-passphrase",
            "--key-slot",
            "0",
            "--key-file",
            &k2,
            &img
        ])
        .code,
        2
    );
}

#[test]
fn our_volumes_open_in_cryptsetup() {
    let d = Dir::new();
    let key = d.key("k", b"secret passphrase");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--sector-size",
            "512",
        ],
        vec![
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--label",
            "my-data",
        ],
        vec![
            "--pbkdf",
            "argon2i",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32768",
            "--pbkdf-parallel",
            "1",
        ],
        vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--hash",
            "sha512",
            "--key-size",
            "256",
        ],
        vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--cipher",
            "aes-cbc-essiv:sha256",
            "--key-size",
            "256",
        ],
        vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--uuid",
            "12345678-1234-4234-8234-123456789abc",
        ],
        vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--luks2-keyslots-size",
            "2m",
            "--offset",
            "8192",
        ],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let img = d.image(&format!("ours{i}.img"), 32);
        our_format(&img, &key, extra);
        ok(cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &key,
            &img,
        ]));
        let dump = ok(cryptsetup(&["luksDump", &img])).stdout;
        assert_eq!(
            our_volume_key(&d, &img, &key),
            cs_volume_key(&d, &img, &key),
            "case {extra:?}"
        );
        if extra.contains(&"my-data") {
            assert!(dump.contains("Label:         \tmy-data"), "{dump}");
        }
        if extra.contains(&"--uuid") {
            assert!(
                dump.contains("12345678-1234-4234-8234-123456789abc"),
                "{dump}"
            );
        }
        if extra.contains(&"--offset") {
            assert!(dump.contains("offset: 4194304 [bytes]"), "{dump}");
        }
    }
}

#[test]
fn our_key_management_is_seen_by_cryptsetup() {
    let d = Dir::new();
    let k0 = d.key("k0", b"first");
    let k1 = d.key("k1", b"second");
    let k2 = d.key("k2", b"third");
    let img = d.image("km.img", 32);
    let fast = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];
    our_format(&img, &k0, &fast);
    let vk = cs_volume_key(&d, &img, &k0);

    ok(ours(
        &[&["add-key", "--key-file", &k0][..], &fast, &[&img, &k1]].concat(),
    ));
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k1,
        &img,
    ]));
    assert_eq!(cs_volume_key(&d, &img, &k1), vk);

    // change-key: the old passphrase stops working in cryptsetup too.
    ok(ours(
        &[&["change-key", "--key-file", &k1][..], &fast, &[&img, &k2]].concat(),
    ));
    assert_ne!(
        cryptsetup(&["open", "--test-passphrase", "--key-file", &k1, &img]).code,
        0
    );
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k2,
        &img,
    ]));

    // remove-key.
    ok(ours(&["remove-key", "-q", &img, &k2]));
    assert_ne!(
        cryptsetup(&["open", "--test-passphrase", "--key-file", &k2, &img]).code,
        0
    );
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k0,
        &img,
    ]));

    // kill-slot of a slot cryptsetup added.
    ok(cryptsetup(
        &[
            &["luksAddKey", "-q", "--key-file", &k0, "--key-slot", "5"][..],
            CS_FAST_PBKDF2,
            &[&img, &k1],
        ]
        .concat(),
    ));
    ok(ours(&["kill-slot", "--key-file", &k0, &img, "5"]));
    assert_ne!(
        cryptsetup(&["open", "--test-passphrase", "--key-file", &k1, &img]).code,
        0
    );
    let dump = ok(cryptsetup(&["luksDump", &img])).stdout;
    assert!(!dump.contains("  5: luks2"), "{dump}");

    // label, subsystem, uuid.
    ok(ours(&[
        "config",
        "--label",
        "lbl",
        "--subsystem",
        "sub",
        &img,
    ]));
    ok(ours(&[
        "uuid",
        "-q",
        "--uuid",
        "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
        &img,
    ]));
    let dump = ok(cryptsetup(&["luksDump", &img])).stdout;
    assert!(
        dump.contains("Label:         \tlbl") && dump.contains("Subsystem:     \tsub"),
        "{dump}"
    );
    assert_eq!(
        ok(cryptsetup(&["luksUUID", &img])).stdout.trim(),
        "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
    );
    assert_eq!(cs_volume_key(&d, &img, &k0), vk);
}

#[test]
fn tokens_round_trip_with_cryptsetup() {
    let d = Dir::new();
    let k = d.key("k", b"pw");
    let img = d.image("tok.img", 32);
    our_format(
        &img,
        &k,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let token = r#"{"type":"cryptpilot-test","keyslots":["0"],"x":{"b":[1,2],"a":"s"}}"#;
    ok(ours_in(
        &["token", "import", &img, "--token-id", "3"],
        Some(token.as_bytes()),
    ));
    let exported = ok(cryptsetup(&["token", "export", "--token-id", "3", &img])).stdout;
    let a: serde_json::Value = serde_json::from_str(&exported).expect("json");
    assert_eq!(
        a,
        serde_json::from_str::<serde_json::Value>(token).expect("json")
    );

    // cryptsetup imports one; we export it, then remove it.
    let json = d.key(
        "t.json",
        br#"{"type":"other","keyslots":[],"key_description":"k"}"#,
    );
    ok(cryptsetup(&[
        "token",
        "import",
        "--token-id",
        "5",
        "--json-file",
        &json,
        &img,
    ]));
    let ours_out = ok(ours(&["token", "export", "--token-id", "5", &img])).stdout;
    assert!(ours_out.contains(r#""key_description":"k""#), "{ours_out}");
    ok(ours(&["token", "remove", "--token-id", "5", &img]));
    assert_ne!(
        cryptsetup(&["token", "export", "--token-id", "5", &img]).code,
        0
    );
    ok(cryptsetup(&["token", "export", "--token-id", "3", &img]));
}

#[test]
fn header_backup_and_restore_interoperate() {
    let d = Dir::new();
    let k = d.key("k", b"pw");
    let img = d.image("bk.img", 32);
    our_format(
        &img,
        &k,
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
    );
    let ours_backup = d.p("ours.bak");
    ok(ours(&[
        "header-backup",
        &img,
        "--header-backup-file",
        &ours_backup,
    ]));
    assert_ne!(
        ours(&["header-backup", &img, "--header-backup-file", &ours_backup]).code,
        0,
        "never overwrites a backup"
    );

    // Kill the only keyslot, then restore with cryptsetup from our backup.
    ok(ours(&["kill-slot", "-q", &img, "0"]));
    assert_ne!(
        cryptsetup(&["open", "--test-passphrase", "--key-file", &k, &img]).code,
        0
    );
    ok(cryptsetup(&[
        "luksHeaderRestore",
        "-q",
        "--header-backup-file",
        &ours_backup,
        &img,
    ]));
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k,
        &img,
    ]));

    // cryptsetup's backup restored by us.
    let cs_backup = d.p("cs.bak");
    ok(cryptsetup(&[
        "luksHeaderBackup",
        "--header-backup-file",
        &cs_backup,
        &img,
    ]));
    ok(ours(&["kill-slot", "-q", &img, "0"]));
    ok(ours(&[
        "header-restore",
        "-q",
        &img,
        "--header-backup-file",
        &cs_backup,
    ]));
    ok(ours(&["open", "--test-passphrase", "--key-file", &k, &img]));
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k,
        &img,
    ]));
}

#[test]
fn damaged_copies_from_cryptsetup() {
    use std::os::unix::fs::FileExt;
    let d = Dir::new();
    let k = d.key("k", b"pw");
    for (offset, which) in [(0x40u64, "primary"), (0x4000 + 0x40, "secondary")] {
        let img = d.image(&format!("dmg-{which}.img"), 32);
        cs_format(&d, &img, &k, CS_FAST_PBKDF2);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .expect("open");
        f.write_all_at(b"garbage!", offset).expect("corrupt");
        ok(ours(&["open", "--test-passphrase", "--key-file", &k, &img]));
        let out = ok(ours(&["repair", &img])).stdout;
        assert!(out.contains(which), "{out}");
        let out = ok(ours(&["repair", &img])).stdout;
        assert!(out.contains("nothing to repair"), "{out}");
        ok(cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &k,
            &img,
        ]));
    }
    let img = d.image("both.img", 32);
    cs_format(&d, &img, &k, CS_FAST_PBKDF2);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .expect("open");
    f.write_all_at(b"garbage!", 0x40).expect("corrupt");
    f.write_all_at(b"garbage!", 0x4040).expect("corrupt");
    let before = contents(&img);
    let r = ours(&["open", "--test-passphrase", "--key-file", &k, &img]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("no valid LUKS2 header") && r.stderr.lines().count() == 1,
        "{}",
        r.stderr
    );
    assert_eq!(contents(&img), before);
}

#[test]
fn volumes_converted_from_luks1_unlock_with_us() {
    let d = Dir::new();
    let k = d.key("k", b"old volume");
    for hash in ["sha256", "sha1"] {
        let img = d.image(&format!("luks1-{hash}.img"), 32);
        ok(cryptsetup(&[
            "luksFormat",
            "-q",
            "--type",
            "luks1",
            "--pbkdf-force-iterations",
            "1000",
            "--hash",
            hash,
            "--key-file",
            &k,
            &img,
        ]));
        ok(cryptsetup(&["convert", "-q", "--type", "luks2", &img]));
        let json = ok(ours(&["dump", "--json", &img])).stdout;
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        let digest = v["digests"]["0"]["digest"].as_str().expect("digest");
        assert_eq!(
            digest.len(),
            28,
            "a 20-byte LUKS1 digest in base64: {digest}"
        );
        assert_eq!(
            our_volume_key(&d, &img, &k),
            cs_volume_key(&d, &img, &k),
            "{hash}"
        );
        // And a key we add is accepted by cryptsetup.
        let k2 = d.key("k2", b"new key");
        ok(ours(&[
            "add-key",
            "--key-file",
            &k,
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            &img,
            &k2,
        ]));
        ok(cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &k2,
            &img,
        ]));
    }
}

/// cryptsetup reads our integrity-protected headers: the same segment JSON, key size and
/// volume key. (Formatting one with cryptsetup needs the kernel: that direction is in the VM
/// suite, `tests/vm/scenarios/07-integrity.sh`.)
#[test]
fn our_integrity_headers_read_in_cryptsetup() {
    let d = Dir::new();
    let key = d.key("k", b"integrity pass");
    let cases: [(&[&str], &str, u32); 3] = [
        (&["--integrity", "hmac-sha256"], "hmac(sha256)", 768),
        (
            &["--integrity", "hmac-sha512", "--key-size", "256"],
            "hmac(sha512)",
            768,
        ),
        (
            &["--integrity", "aead", "--cipher", "aes-gcm-random"],
            "aead",
            256,
        ),
    ];
    for (i, (extra, kind, bits)) in cases.into_iter().enumerate() {
        let img = d.image(&format!("i{i}.img"), 40);
        let mut args = vec![
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--integrity-no-wipe",
        ];
        args.extend_from_slice(extra);
        our_format(&img, &key, &args);
        let dump = ok(cryptsetup(&["luksDump", &img])).stdout;
        assert!(dump.contains(&format!("\tintegrity: {kind}\n")), "{dump}");
        assert!(dump.contains(&format!("Key:        {bits} bits")), "{dump}");
        let json = ok(cryptsetup(&["luksDump", "--dump-json-metadata", &img])).stdout;
        let want = format!(
            "\"integrity\":{{\"type\":\"{kind}\",\"journal_encryption\":\"none\",\"journal_integrity\":\"none\"}}"
        );
        assert!(json.replace([' ', '\n'], "").contains(&want), "{json}");
        assert_eq!(
            our_volume_key(&d, &img, &key),
            cs_volume_key(&d, &img, &key)
        );
        // The dm-integrity superblock follows at the 16 MiB data offset.
        assert_eq!(&contents(&img)[16 << 20..(16 << 20) + 8], b"integrt\0");
    }
}
