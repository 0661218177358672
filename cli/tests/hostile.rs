//! Hostile and careless input, second round: every read of user input is bounded, key files
//! never give an empty passphrase by accident, outputs appear only when complete, the volume
//! key is printed only when confirmed. Each case fails cleanly and changes no byte.

mod common;

use std::process::{Command, Stdio};

use common::*;

const FAST: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

fn formatted(d: &Dir, name: &str, key: &str) -> String {
    let img = d.image(name, 24);
    ok(ours(
        &[&["format", "-q", "--key-file", key][..], FAST, &[&img]].concat(),
    ));
    img
}

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
    let full = "trap '' XFSZ; ulimit -f 1024";
    let r = ours_under(
        full,
        &[
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
        .concat(),
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(files(&d), before, "no partial output");

    // A complete image, then a decrypt and a header backup that run out of space.
    ok(ours(
        &[
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
        .concat(),
    ));
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
