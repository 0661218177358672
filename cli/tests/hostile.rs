//! Hostile and careless input, second round: every read of user input is bounded, key files
//! never give an empty passphrase by accident, outputs appear only when complete, the volume
//! key is printed only when confirmed. Each case fails cleanly and changes no byte.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// `cryptpilot luks ARGS` under bash with `setup` run first (resource limits, standard input
/// from a file), through `exec` so the limits and ignored signals apply to our binary.
fn ours_under(setup: &str, args: &[&str]) -> Run {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(format!("{setup}; exec \"$0\" luks \"$@\""))
        .arg(env!("CARGO_BIN_EXE_cryptpilot"))
        .args(args)
        .stdin(Stdio::null());
    run_cmd(c)
}

/// The files left in the test directory, to prove no partial or temporary output survives.
fn files(d: &Dir) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn endless_standard_input_is_refused_not_read_into_memory() {
    let d = Dir::new();
    let key = d.key("k", b"right");
    let img = formatted(&d, "v.img", &key);
    let before = contents(&img);
    // 1 GiB of address space: an unbounded read of /dev/zero dies here instead of succeeding.
    let limit = "ulimit -v 1048576; exec < /dev/zero";
    fails_cleanly(
        &ours_under(limit, &["open", "--test-passphrase", &img]),
        1,
        "8388608",
    );
    fails_cleanly(
        &ours_under(limit, &["token", "import", &img, "--token-id", "1"]),
        1,
        "token JSON from standard input is larger than its 4194304-byte maximum",
    );
    fails_cleanly(
        &ours_under(limit, &["add-key", &img, "--key-file", "-"]),
        1,
        "8388608-byte maximum",
    );
    assert_eq!(contents(&img), before);
}

#[test]
fn key_files_never_give_an_empty_passphrase_by_accident() {
    let d = Dir::new();
    let key = d.key("k", b"whole file");
    let empty = d.key("empty", b"");
    // --keyfile-size 0 means the whole file, as in cryptsetup.
    let img = d.image("size0.img", 24);
    ok(ours(
        &[
            &["format", "-q", "--key-file", &key, "--keyfile-size", "0"][..],
            FAST,
            &[&img],
        ]
        .concat(),
    ));
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &key,
        &img,
    ]));
    ok(ours(&[
        "open",
        "--test-passphrase",
        "--key-file",
        &key,
        &img,
    ]));
    let empty_pass = d.key("nothing", b"");
    let r = ours(&["open", "--test-passphrase", "--key-file", &empty_pass, &img]);
    assert_eq!(
        r.code, 2,
        "an empty passphrase is only a wrong one: {}",
        r.stderr
    );

    // An offset past the end is an error, as in cryptsetup; one at the end, or an empty file,
    // would give an empty passphrase, which no new keyslot takes.
    let blank = d.image("blank.img", 24);
    let blank_before = contents(&blank);
    for (extra, needle) in [
        (
            &["--key-file", &key, "--keyfile-offset", "100"][..],
            "keyfile offset 100",
        ),
        (
            &["--key-file", &key, "--keyfile-offset", "10"][..],
            "empty passphrase",
        ),
        (&["--key-file", &empty][..], "empty passphrase"),
    ] {
        fails_cleanly(
            &ours(&[&["format", "-q"][..], extra, FAST, &[&blank]].concat()),
            1,
            needle,
        );
        assert_eq!(contents(&blank), blank_before, "{extra:?}");
    }
    let r = cryptsetup(
        &[
            &["luksFormat", "-q", "--type", "luks2", "--key-file", &key][..],
            &["--keyfile-offset", "100"],
            FAST,
            &[&blank],
        ]
        .concat(),
    );
    assert_eq!(r.code, 1, "cryptsetup refuses the offset too: {}", r.stderr);
    fails_cleanly(
        &ours(&[&["add-key", "--key-file", &key][..], FAST, &[&img, &empty]].concat()),
        1,
        "empty passphrase",
    );
}

#[test]
fn outputs_appear_only_when_complete() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let plain = d.path("plain.img");
    std::fs::write(&plain, vec![0x5au8; 4 << 20]).expect("plain");
    let plain = plain.to_string_lossy().into_owned();
    let out = d.p("out.img");
    let before = files(&d);
    // Writes beyond 1 MiB fail (EFBIG, the signal ignored) as on a full disk.
    let encrypt = [
        &[
            "encrypt-image",
            "--in",
            &plain,
            "--out",
            &out,
            "--key-file",
            &key,
        ][..],
        FAST,
    ]
    .concat();
    let full = "trap '' XFSZ; ulimit -f 1024";
    let r = ours_under(full, &encrypt);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(files(&d), before, "no partial output");

    // A complete image, then a decrypt and a header backup that run out of space.
    ok(ours(&encrypt));
    let before = files(&d);
    let dec = d.p("dec.img");
    let r = ours_under(
        full,
        &[
            "decrypt-image",
            "--in",
            &out,
            "--out",
            &dec,
            "--key-file",
            &key,
        ],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    let backup = d.p("backup");
    let r = ours_under(
        "trap '' XFSZ; ulimit -f 64",
        &["header-backup", &out, "--header-backup-file", &backup],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    let dump = d.p("vk");
    let r = ours_under(
        "trap '' XFSZ; ulimit -f 0",
        &[
            "dump",
            "-q",
            "--dump-volume-key",
            "--volume-key-file",
            &dump,
            "--key-file",
            &key,
            &out,
        ],
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(files(&d), before, "no partial output");
}

#[test]
fn the_volume_key_is_shown_only_when_confirmed() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let img = formatted(&d, "v.img", &key);
    let vk = d.p("vk");
    // Without a terminal to ask on and without --batch-mode, nothing is shown or saved.
    for extra in [&[][..], &["--volume-key-file", &vk][..]] {
        let r = ours(
            &[
                &["dump", "--dump-volume-key", "--key-file", &key][..],
                extra,
                &[&img],
            ]
            .concat(),
        );
        fails_cleanly(&r, 1, "sensitive information");
        assert!(!r.stdout.contains("MK dump"), "{}", r.stdout);
    }
    assert!(!std::path::Path::new(&vk).exists());
    let r = ok(ours(&[
        "dump",
        "-q",
        "--dump-volume-key",
        "--key-file",
        &key,
        &img,
    ]));
    assert!(r.stdout.contains("MK dump"), "{}", r.stdout);
}

/// Two keyslots made by cryptsetup: "a" in 0, "b" in 1.
fn cryptsetup_two_slots(d: &Dir, name: &str) -> (String, String, String) {
    let a = d.key("a", b"a");
    let b = d.key("b", b"b");
    let img = cs_formatted(d, name, 24, &a);
    ok(cryptsetup(
        &[
            &["luksAddKey", "-q", "--key-file", &a][..],
            FAST,
            &[&img, &b],
        ]
        .concat(),
    ));
    (img, a, b)
}

fn test_passphrase(img: &str, key: &str, extra: &[&str]) -> (Run, Run) {
    let args = [&["--test-passphrase", "--key-file", key][..], extra, &[img]].concat();
    let cs = cryptsetup(&[&["open"][..], &args].concat());
    let ours = ours(&[&["open"][..], &args].concat());
    (cs, ours)
}

#[test]
fn damaged_or_unusable_keyslots_answer_as_cryptsetup() {
    let d = Dir::new();
    // Keyslot 1's key does not fit its area: keyslot 0 still opens, "b" is no key (2) in
    // both tools; asked for by number, we name the damage.
    let (img, a, b) = cryptsetup_two_slots(&d, "big-key.img");
    edit_json(&img, &|v| v["keyslots"]["1"]["key_size"] = 128.into());
    for (key, code) in [(&a, 0), (&b, 2)] {
        let (cs, ours) = test_passphrase(&img, key, &[]);
        assert_eq!(
            (cs.code, ours.code),
            (code, code),
            "{}\n{}",
            cs.stderr,
            ours.stderr
        );
    }
    fails_cleanly(
        &ours(&[
            "open",
            "--test-passphrase",
            "--key-file",
            &b,
            "-S",
            "1",
            &img,
        ]),
        1,
        "keyslot 1 cannot be used: invalid LUKS2 metadata at keyslots.1.area.size",
    );
    assert!(ok(ours(&["dump", &img])).stdout.contains("\tUnusable:   "));

    // Keyslot 1's area offset inside a sector: both read from the sector's start.
    let (img, _, b) = cryptsetup_two_slots(&d, "unaligned.img");
    edit_json(&img, &|v| {
        let area = &mut v["keyslots"]["1"]["area"];
        let off: u64 = area["offset"].as_str().expect("str").parse().expect("num");
        area["offset"] = (off + 100).to_string().into();
        area["size"] = "257948".into();
    });
    let (cs, ours_run) = test_passphrase(&img, &b, &[]);
    assert_eq!((cs.code, ours_run.code), (0, 0), "{}", ours_run.stderr);

    // Keyslot 0 with a cipher neither tool can use: "cannot use", exit 1, not "no key".
    let (img, a, _) = cryptsetup_two_slots(&d, "serpent.img");
    edit_json(&img, &|v| {
        v["keyslots"]["0"]["area"]["encryption"] = "serpent-xts-plain64".into();
    });
    let (cs, ours_run) = test_passphrase(&img, &a, &[]);
    assert_eq!((cs.code, ours_run.code), (1, 1), "{}", cs.stderr);
    fails_cleanly(
        &ours_run,
        1,
        "keyslot 0 cannot be used: unsupported cipher 'serpent-xts-plain64'",
    );
}

#[test]
fn hostile_kdf_work_is_refused_with_the_keyslot_and_an_estimate() {
    let d = Dir::new();
    let (img, a, b) = cryptsetup_two_slots(&d, "slow.img");
    let before = contents(&img);
    edit_json(&img, &|v| {
        let kdf = &mut v["keyslots"]["1"]["kdf"];
        *kdf = serde_json::json!({"type":"argon2id","time":65536,"memory":4194304,"cpus":4,"salt":kdf["salt"].clone()});
    });
    let started = std::time::Instant::now();
    fails_cleanly(
        &ours(&["open", "--test-passphrase", "--key-file", &b, &img]),
        1,
        "keyslot 1 cannot be used: keyslots.1.kdf: deriving the key would take about",
    );
    // The other keyslot still opens; the refusal cost no work.
    ok(ours(&["open", "--test-passphrase", "--key-file", &a, &img]));
    assert!(started.elapsed().as_secs() < 30);

    // PBKDF2 at 2^32-1 iterations: minutes even with SHA-NI, over the default limit.
    std::fs::write(&img, &before).expect("restore");
    edit_json(&img, &|v| {
        v["keyslots"]["1"]["kdf"]["iterations"] = u32::MAX.into()
    });
    fails_cleanly(
        &ours(&["open", "--test-passphrase", "--key-file", &b, &img]),
        1,
        "over the limit of 120 s",
    );
    // The limit is the user's: 20 million iterations (a few seconds) pass by default and are
    // refused under --kdf-time-limit 1.
    std::fs::write(&img, &before).expect("restore");
    edit_json(&img, &|v| {
        v["keyslots"]["1"]["kdf"]["iterations"] = 20_000_000.into()
    });
    let limited = ["--kdf-time-limit", "1"];
    fails_cleanly(
        &ours(
            &[
                &["open", "--test-passphrase", "--key-file", &b][..],
                &limited,
                &[&img],
            ]
            .concat(),
        ),
        1,
        "over the limit of 1 s",
    );
    let r = ours(&["open", "--test-passphrase", "--key-file", &b, &img]);
    assert_eq!(
        r.code, 2,
        "tried (the edit broke the keyslot's key): {}",
        r.stderr
    );
}

#[test]
fn devices_that_are_not_devices_exit_as_in_cryptsetup() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let dir = d.p("a-directory");
    std::fs::create_dir(&dir).expect("dir");
    let loop_a = d.p("loop-a");
    std::os::unix::fs::symlink(d.p("loop-b"), &loop_a).expect("link");
    std::os::unix::fs::symlink(&loop_a, d.p("loop-b")).expect("link");
    for dev in [dir.as_str(), "/dev/null", loop_a.as_str()] {
        let cs = cryptsetup(&["isLuks", dev]);
        assert_eq!(cs.code, 4, "{dev}: {}", cs.stderr);
        for args in [
            vec!["is-luks", dev],
            vec!["dump", dev],
            vec!["open", "--test-passphrase", "--key-file", &key, dev],
        ] {
            let r = ours(&args);
            assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        }
    }
    // A volume directory that does not exist is an error, not "0 volumes".
    let r = crypt(&d.path("nonexistent"), &["config", "check"]);
    fails_cleanly(&r, 1, "cannot use the configuration directory");
}

#[test]
fn names_with_control_characters_are_escaped_in_errors() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let evil = d.p("a\nb\x1b[31m.img");
    let r = ours(&["open", "--test-passphrase", "--key-file", &key, &evil]);
    fails_cleanly(&r, 4, "a\\nb\\u{1b}[31m.img");
}

/// cryptsetup cuts a 48-byte label to 47 bytes, here in the middle of "ä": dump prints the
/// byte as it is (as cryptsetup does), and a rewrite keeps it.
#[test]
fn a_label_that_is_not_utf8_is_kept_and_printed_raw() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let img = d.image("label.img", 24);
    let label = format!("{}ä", "x".repeat(46));
    ok(cryptsetup(
        &[
            &["luksFormat", "-q", "--type", "luks2", "--key-file", &key][..],
            &["--label", &label],
            FAST,
            &[&img],
        ]
        .concat(),
    ));
    let raw = |r: &std::process::Output| r.stdout.clone();
    let dump = |bin: &str, verb: &[&str]| {
        Command::new(bin)
            .args(verb)
            .arg(&img)
            .output()
            .expect("run")
    };
    let cs = raw(&dump(&tool_path("cryptsetup"), &["luksDump"]));
    let ours_dump = raw(&dump(env!("CARGO_BIN_EXE_cryptpilot"), &["luks", "dump"]));
    assert_eq!(ours_dump, cs);
    assert!(
        cs.windows(48)
            .any(|w| w[..46] == *"x".repeat(46).as_bytes() && w[46..] == [0xc3, b'\n']),
        "the cut byte is printed raw"
    );
    ok(ours(&["config", "-q", &img, "--subsystem", "s"]));
    let after = raw(&dump(&tool_path("cryptsetup"), &["luksDump"]));
    assert!(
        after
            .windows(48)
            .any(|w| w[..46] == *"x".repeat(46).as_bytes() && w[46..] == [0xc3, b'\n']),
        "a rewrite keeps the label's bytes"
    );
}

/// A LUKS2 volume whose primary header area now holds something else, with the stale
/// secondary copy left behind (as `mkswap`, `mkfs.ext4` or `pvcreate` over the start of a
/// LUKS2 device leave it).
fn overwritten(d: &Dir, name: &str, key: &str, overwrite: &dyn Fn(&str)) -> String {
    let img = cs_formatted(d, name, 24, key);
    let secondary = contents(&img)[16384..32768].to_vec();
    overwrite(&img);
    let mut bytes = contents(&img);
    bytes[16384..32768].copy_from_slice(&secondary);
    std::fs::write(&img, bytes).expect("write");
    img
}

#[test]
fn a_luks_header_overwritten_by_something_else_is_not_luks() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let mkfs = |tool: &'static str, args: &'static [&'static str]| {
        move |img: &str| {
            let st = Command::new(tool)
                .args(args)
                .arg(img)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("mkfs");
            assert!(st.success(), "{tool}");
        }
    };
    let lvm = |img: &str| {
        // An LVM2 physical volume label in sector 1, as pvcreate writes it.
        let mut b = contents(img);
        b[..4096].fill(0);
        b[512..520].copy_from_slice(b"LABELONE");
        b[536..544].copy_from_slice(b"LVM2 001");
        std::fs::write(img, b).expect("write");
    };
    let swap = mkfs("/usr/sbin/mkswap", &["-f"]);
    let ext4 = mkfs("/usr/sbin/mkfs.ext4", &["-q", "-F"]);
    type Overwrite<'a> = &'a dyn Fn(&str);
    let cases: [(&str, Overwrite<'_>, &str); 3] = [
        ("swap", &swap, "swap"),
        ("ext4", &ext4, "ext4"),
        ("lvm", &lvm, "LVM2_member"),
    ];
    for (name, how, sig) in cases {
        let img = overwritten(&d, &format!("{name}.img"), &key, how);
        let before = contents(&img);
        if name != "lvm" {
            // cryptsetup (through blkid) agrees: not LUKS.
            assert_eq!(cryptsetup(&["isLuks", &img]).code, 1, "{name}");
        }
        assert_eq!(ours(&["is-luks", &img]).code, 1, "{name}");
        let needle = format!("now holds a {sig} signature");
        fails_cleanly(&ours(&["dump", &img]), 1, &needle);
        fails_cleanly(
            &ours(&["open", "--test-passphrase", "--key-file", &key, &img]),
            1,
            &needle,
        );
        fails_cleanly(&ours(&["repair", "-q", &img]), 1, &needle);
        // Without a terminal the insistence still needs -q.
        fails_cleanly(
            &ours(&["repair", "--overwrite-signature", &img]),
            1,
            "destroys what is there now",
        );
        assert_eq!(contents(&img), before, "{name}: nothing changed");
        ok(ours(&["repair", "--overwrite-signature", "-q", &img]));
        ok(cryptsetup(&["isLuks", &img]));
        if name != "ext4" {
            // mkswap and pvcreate wrote only the first 4 KiB: the keyslots survived.
            ok(cryptsetup(&[
                "open",
                "--test-passphrase",
                "--key-file",
                &key,
                &img,
            ]));
        }
    }
}

#[test]
fn key_files_that_are_pipes_are_read_and_skipped_into_without_seeking() {
    // `--key-file <(...)` is a pipe: cryptsetup reads it, and so must we (it used to fail
    // with "Illegal seek"), honouring --keyfile-offset by reading past the bytes.
    let d = Dir::new();
    let key = d.key("key", b"piped");
    let img = formatted(&d, "p.img", &key);
    let piped = |opts: &str| {
        let mut c = Command::new("bash");
        c.arg("-c")
            .arg(format!(
                "exec \"$0\" luks open --test-passphrase {opts} \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_cryptpilot"))
            .arg(&img)
            .stdin(Stdio::null());
        run_cmd(c)
    };
    let r = piped("--key-file <(printf piped)");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = piped("--keyfile-offset 3 --key-file <(printf xxxpiped)");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = piped("--key-file <(printf wrong)");
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = piped("--keyfile-offset 30 --key-file <(printf short)");
    fails_cleanly(&r, 1, "keyfile offset");
}
