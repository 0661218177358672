//! Detached headers (`--header FILE`) against the real cryptsetup: each tool reads the other's,
//! the data device holds only data, and a failed format leaves nothing behind.

mod common;

use common::{contents, cryptsetup, cs_volume_key, fails_cleanly, ok, ours, ours_in, Dir, FAST};

/// A data image with a recognisable pattern, so that "untouched" can be checked.
fn data_image(d: &Dir, name: &str) -> String {
    let p = d.p(name);
    let bytes: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&p, bytes).expect("data image");
    p
}

#[test]
fn our_detached_header_is_cryptsetups_and_leaves_the_data_alone() {
    let d = Dir::new();
    let key = d.key("key", b"detached pw");
    let data = data_image(&d, "data.img");
    let before = contents(&data);
    let hdr = d.p("hdr.img");
    ok(ours(
        &[
            &["format", "-q", "--key-file", &key, "--header", &hdr][..],
            FAST,
            &[&data],
        ]
        .concat(),
    ));
    assert_eq!(contents(&data), before, "format wrote to the data device");
    let meta = std::fs::metadata(&hdr).expect("header file");
    assert_eq!(meta.len(), 16 << 20, "cryptsetup's 16 MiB header file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    // cryptsetup reads it: data from sector 0 of the data device, the passphrase opens.
    let dump = ok(cryptsetup(&["luksDump", &hdr])).stdout;
    assert!(dump.contains("\toffset: 0 [bytes]"), "{dump}");
    assert!(dump.contains("Keyslots area: \t16744448 [bytes]"), "{dump}");
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--header",
        &hdr,
        "--key-file",
        &key,
        &data,
    ]));
    // Our data verbs put the data at the start of the data device.
    let w = ours_in(
        &["write", "--header", &hdr, "--key-file", &key, &data],
        Some(&[0x5a; 4096]),
    );
    ok(w);
    let after = contents(&data);
    assert_ne!(after[..4096], before[..4096], "the first sector is data");
    assert_eq!(after[4096..], before[4096..]);
    let r = ok(ours(&[
        "read",
        "--header",
        &hdr,
        "--key-file",
        &key,
        "--length",
        "4096",
        &data,
    ]));
    assert_eq!(r.stdout.as_bytes(), &[0x5a; 4096][..]);
    // Without the header, the data device is not LUKS to either tool.
    assert_eq!(cryptsetup(&["isLuks", &data]).code, 1);
    assert_eq!(ours(&["is-luks", &data]).code, 1);
    assert_eq!(ours(&["is-luks", "--header", &hdr, &data]).code, 0);
}

#[test]
fn cryptsetups_detached_header_works_with_every_header_verb() {
    let d = Dir::new();
    let key = d.key("key", b"cs pw");
    let new = d.key("new", b"second pw");
    let data = data_image(&d, "data.img");
    let before = contents(&data);
    let hdr = d.p("hdr.img");
    // With --offset the areas end at the offset and the header file is that long.
    ok(cryptsetup(
        &[
            &["luksFormat", "-q", "--type", "luks2", "--key-file", &key][..],
            FAST,
            &["--header", &hdr, "--offset", "4096", &data],
        ]
        .concat(),
    ));
    assert_eq!(std::fs::metadata(&hdr).expect("hdr").len(), 2 << 20);
    let h = ["--header", hdr.as_str()];
    let dump = ok(ours(&[&["dump"][..], &h, &[&data]].concat())).stdout;
    assert_eq!(dump, ok(cryptsetup(&["luksDump", &hdr])).stdout);
    ok(ours(
        &[
            &["open", "--test-passphrase", "--key-file", &key][..],
            &h,
            &[&data],
        ]
        .concat(),
    ));
    ok(ours(
        &[
            &["add-key", "--key-file", &key][..],
            FAST,
            &h,
            &[&data, &new],
        ]
        .concat(),
    ));
    ok(cryptsetup(&[
        "open",
        "--test-passphrase",
        "--header",
        &hdr,
        "--key-file",
        &new,
        &data,
    ]));
    ok(ours(
        &[&["config", "--label", "detached"][..], &h, &[&data]].concat(),
    ));
    assert!(ok(cryptsetup(&["luksDump", &hdr]))
        .stdout
        .lines()
        .any(|l| l.starts_with("Label:") && l.ends_with("\tdetached")));
    let uuid = ok(ours(&[&["uuid"][..], &h, &[&data]].concat())).stdout;
    assert_eq!(uuid, ok(cryptsetup(&["luksUUID", &hdr])).stdout);
    ok(ours(
        &[&["remove-key", "-q"][..], &h, &[&data, &new]].concat(),
    ));
    assert_eq!(
        cryptsetup(&[
            "open",
            "--test-passphrase",
            "--header",
            &hdr,
            "--key-file",
            &new,
            &data
        ])
        .code,
        2
    );
    // The volume key is the same to both tools; the data device was never written.
    let vk = cs_volume_key(&d, &hdr, &key);
    let ours_vk = d.p("vk");
    ok(ours(
        &[
            &[
                "dump",
                "-q",
                "--dump-volume-key",
                "--volume-key-file",
                &ours_vk,
            ][..],
            &["--key-file", &key],
            &h,
            &[&data],
        ]
        .concat(),
    ));
    assert_eq!(contents(&ours_vk), vk);
    assert_eq!(contents(&data), before);
}

#[test]
fn a_failed_detached_format_leaves_no_header_file_and_an_existing_one_needs_confirming() {
    let d = Dir::new();
    let key = d.key("key", b"pw");
    let data = data_image(&d, "data.img");
    let hdr = d.p("hdr.img");
    // An offset inside the header areas is refused; the header file it created is gone.
    let r = ours(
        &[
            &[
                "format",
                "-q",
                "--key-file",
                &key,
                "--header",
                &hdr,
                "--offset",
                "8",
            ][..],
            FAST,
            &[&data],
        ]
        .concat(),
    );
    fails_cleanly(&r, 1, "data offset");
    assert!(
        !std::path::Path::new(&hdr).exists(),
        "header file left behind"
    );
    // A missing data device: no header file either.
    let r = ours(
        &[
            &["format", "-q", "--key-file", &key, "--header", &hdr][..],
            FAST,
            &[&d.p("missing.img")],
        ]
        .concat(),
    );
    fails_cleanly(&r, 4, "missing.img");
    assert!(!std::path::Path::new(&hdr).exists());
    // A header file that already holds a volume is only replaced when confirmed.
    ok(ours(
        &[
            &["format", "-q", "--key-file", &key, "--header", &hdr][..],
            FAST,
            &[&data],
        ]
        .concat(),
    ));
    let old = contents(&hdr);
    let r = ours(
        &[
            &["format", "--key-file", &key, "--header", &hdr][..],
            FAST,
            &[&data],
        ]
        .concat(),
    );
    fails_cleanly(&r, 1, "Not confirmed");
    assert_eq!(contents(&hdr), old);
}
