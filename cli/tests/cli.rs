//! Bad input at the command line: one clear line, cryptsetup's exit code, no byte changed.

mod common;

use common::*;

#[test]
fn table_of_bad_inputs() {
    let d = Dir::new();
    let key = d.key("k", b"right");
    let wrong = d.key("w", b"wrong");
    let img = formatted(&d, "v.img", &key);
    let before = contents(&img);
    let missing = d.p("does-not-exist.img");
    let plain = d.image("plain.img", 24);
    std::fs::write(&plain, vec![0x42u8; 24 << 20]).expect("data");
    let truncated = d.p("truncated.img");
    std::fs::write(&truncated, &before[..6000]).expect("truncated");
    let tiny = d.image("tiny.img", 1);
    let long_label = "x".repeat(48);

    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["open", "--test-passphrase", "--key-file", &wrong, &img],
            2,
            "no key available",
        ),
        (
            vec!["open", "--test-passphrase", "--key-file", &key, &missing],
            4,
            "No such file",
        ),
        (
            vec![
                "open",
                "--test-passphrase",
                "--key-file",
                "/nonexistent/key",
                &img,
            ],
            1,
            "cannot open key file",
        ),
        (
            vec!["open", "--test-passphrase", "--key-file", &key, &plain],
            1,
            "not a LUKS2 device",
        ),
        (
            vec!["open", "--test-passphrase", "--key-file", &key, &truncated],
            1,
            "no valid LUKS2 header",
        ),
        (
            vec![
                "open",
                "--test-passphrase",
                "--key-file",
                &key,
                "--key-slot",
                "9",
                &img,
            ],
            1,
            "keyslot 9 is not active",
        ),
        // cryptsetup's exit code when open finds no device-mapper.
        (
            vec!["open", "--key-file", &key, &img, "name"],
            1,
            "device-mapper",
        ),
        (
            vec!["add-key", "--key-file", &wrong, &img, &key],
            2,
            "no key available",
        ),
        (
            vec!["remove-key", "-q", &img, &wrong],
            2,
            "no key available",
        ),
        (
            vec!["change-key", "--key-file", &wrong, &img, &key],
            2,
            "no key available",
        ),
        (
            vec!["kill-slot", "--key-file", &wrong, &img, "0"],
            2,
            "no key available",
        ),
        (
            vec!["kill-slot", "-q", &img, "3"],
            1,
            "keyslot 3 is not active",
        ),
        (
            vec!["config", "--label", &long_label, &img],
            1,
            "longer than 47 bytes",
        ),
        (
            vec!["uuid", "-q", "--uuid", "not-a-uuid", &img],
            1,
            "not a UUID",
        ),
        (
            vec!["format", "--key-file", &key, &img, &key],
            1,
            "not both",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--cipher",
                "serpent-xts-plain64",
                &img,
            ],
            1,
            "unsupported cipher 'serpent-xts-plain64'",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--luks2-metadata-size",
                "20000",
                &img,
            ],
            1,
            "metadata size",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--pbkdf",
                "scrypt",
                &img,
            ],
            1,
            "unsupported pbkdf 'scrypt'",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--integrity",
                "crc32c",
                &img,
            ],
            1,
            "unsupported integrity 'crc32c'",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--integrity",
                "aead",
                &img,
            ],
            1,
            "unsupported cipher with integrity 'aes-xts-plain64'",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--integrity-no-wipe",
                &img,
            ],
            1,
            "--integrity",
        ),
        (
            vec![
                "format",
                "-q",
                "--key-file",
                &key,
                "--offset",
                "36028797018963968",
                &img,
            ],
            1,
            "--offset 36028797018963968 sectors is too large",
        ),
        (vec!["token", "export", &img], 1, "Use --token-id parameter"),
        (
            vec![
                "open",
                "--test-passphrase",
                "--volume-key-file",
                "nofile",
                &img,
            ],
            1,
            "cannot read the volume key file nofile: No such file",
        ),
        (
            vec!["token", "remove", "--token-id", "4", &img],
            1,
            "token 4 does not exist",
        ),
    ];
    for (args, code, needle) in cases {
        let r = ours(&args);
        fails_cleanly(&r, code, needle);
        assert_eq!(contents(&img), before, "{args:?} changed the volume");
    }
    // Formatting a too-small device or one with data is refused without writing.
    let tiny_before = contents(&tiny);
    fails_cleanly(
        &ours(&[&["format", "-q", "--key-file", &key][..], FAST, &[&tiny]].concat()),
        1,
        "too small",
    );
    assert_eq!(contents(&tiny), tiny_before);
    // So is one with room for the LUKS2 header but not for the dm-integrity layout.
    let small = d.image("small.img", 17);
    let small_before = contents(&small);
    let integrity = ["--integrity", "hmac-sha256", "--integrity-no-wipe"];
    fails_cleanly(
        &ours(
            &[
                &["format", "-q", "--key-file", &key][..],
                FAST,
                &integrity,
                &[&small],
            ]
            .concat(),
        ),
        1,
        "no room for data",
    );
    assert_eq!(contents(&small), small_before);
    // Without device-mapper the tag wipe cannot run: refused before anything is written.
    if !std::path::Path::new("/dev/mapper/control").exists() {
        fails_cleanly(
            &ours(
                &[
                    &[
                        "format",
                        "-q",
                        "--key-file",
                        &key,
                        "--integrity",
                        "hmac-sha256",
                    ][..],
                    FAST,
                    &[&small],
                ]
                .concat(),
            ),
            1,
            "--integrity-no-wipe",
        );
        assert_eq!(contents(&small), small_before);
    }
}

#[test]
fn format_refuses_signatures_unless_confirmed() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    // An ext4 superblock magic, and an existing LUKS2 header.
    let ext4 = d.image("ext4.img", 24);
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&ext4)
            .expect("open");
        f.write_all_at(&[0x53, 0xef], 1080).expect("magic");
    }
    let luks = formatted(&d, "luks.img", &key);
    for (img, sig) in [(&ext4, "ext4"), (&luks, "LUKS2")] {
        let before = contents(img);
        let r = ours(&[&["format", "--key-file", &key][..], FAST, &[img.as_str()]].concat());
        fails_cleanly(&r, 1, &format!("contains a {sig} signature"));
        assert_eq!(&contents(img), &before);
        ok(ours(
            &[
                &["format", "-q", "--key-file", &key][..],
                FAST,
                &[img.as_str()],
            ]
            .concat(),
        ));
        ok(cryptsetup(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &key,
            img,
        ]));
    }
}

#[test]
fn passphrases_from_standard_input() {
    let d = Dir::new();
    let img = d.image("stdin.img", 24);
    ok(ours_in(
        &[&["format", "-q"][..], FAST, &[&img]].concat(),
        Some(b"from stdin\n"),
    ));
    // The newline ends the passphrase, as in cryptsetup.
    let key = d.key("k", b"from stdin");
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &key,
        &img,
    ]));
    ok(ours_in(
        &["open", "--test-passphrase", &img],
        Some(b"from stdin\n"),
    ));
    // add-key reads the existing passphrase, then the new one, a line each.
    ok(ours_in(
        &[&["add-key"][..], FAST, &[&img]].concat(),
        Some(b"from stdin\nsecond one\n"),
    ));
    let k2 = d.key("k2", b"second one");
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &k2,
        &img,
    ]));
    fails_cleanly(
        &ours_in(&["open", "--test-passphrase", &img], Some(b"")),
        1,
        "nothing to read from standard input",
    );
}

#[test]
fn a_locked_device_is_busy() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let img = formatted(&d, "busy.img", &key);
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&img)
        .expect("open");
    holder.lock().expect("lock");
    let before = contents(&img);
    fails_cleanly(&ours(&["config", "--label", "x", &img]), 5, "in use");
    assert_eq!(contents(&img), before);
    // cryptsetup --disable-locks takes no lock: the real tool and ours go ahead.
    let unlocked = |label: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
        c.args([
            "cryptsetup",
            "--disable-locks",
            "config",
            "--label",
            label,
            &img,
        ]);
        run_cmd(c)
    };
    ok(unlocked("y"));
    let label = || ok(cryptsetup(&["--disable-locks", "luksDump", &img])).stdout;
    assert!(label().contains("Label:         \ty\n"), "{}", label());
    ok(cryptsetup(&[
        "--disable-locks",
        "config",
        "--label",
        "z",
        &img,
    ]));
    assert!(label().contains("Label:         \tz\n"), "{}", label());
    holder.unlock().expect("unlock");
    ok(ours(&["config", "--label", "x", &img]));
}

#[test]
fn dump_is_like_cryptsetup_and_json_is_the_metadata() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let img = formatted(&d, "dump.img", &key);
    let ours_dump = ok(ours(&["dump", &img])).stdout;
    let cs_dump = ok(cryptsetup(&["luksDump", &img])).stdout;
    assert_eq!(
        ours_dump, cs_dump,
        "our luksDump text equals cryptsetup's for the same header"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(ours(&["dump", "--json", &img])).stdout).expect("json");
    assert_eq!(json["segments"]["0"]["encryption"], "aes-xts-plain64");
    assert_eq!(ok(ours(&["is-luks", &img])).code, 0);
    let plain = d.image("plain.img", 1);
    assert_eq!(ours(&["is-luks", &plain]).code, 1);
    assert!(ok(ours(&["uuid", &img])).stdout.trim().len() == 36);
}

#[test]
fn a_repeated_flag_takes_the_last_value_as_in_cryptsetup() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let img = d.image("rep.img", 24);
    ok(ours(&[
        "format",
        "-q",
        "--pbkdf",
        "argon2id",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        &key,
        &img,
    ]));
    assert!(ok(ours(&["dump", &img]))
        .stdout
        .contains("PBKDF:      pbkdf2"));
}

/// dist/cryptpilot.service passes `systemd-analyze verify` (with ExecStart pointed at the
/// binary under test, as the packaged path does not exist here).
#[test]
fn systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dist/cryptpilot.service"
    ))
    .expect("dist/cryptpilot.service");
    assert!(unit.contains(
        "ExecStart=/usr/bin/cryptpilot-crypt boot-service --stage system-volumes-auto-open"
    ));
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        eprintln!("systemd-analyze not installed: unit not verified");
        return;
    };
    let d = Dir::new();
    let local = unit.replace(
        "/usr/bin/cryptpilot-crypt",
        &format!("{} crypt", env!("CARGO_BIN_EXE_cryptpilot")),
    );
    let path = d.path("cryptpilot.service");
    std::fs::write(&path, local).expect("write unit");
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(!stderr.contains("cryptpilot"), "warnings: {stderr}");
}
