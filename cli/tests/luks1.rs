//! LUKS1 volumes made by the real cryptsetup (sha1/sha256/sha512, xts and cbc-essiv, 1 to 8
//! keyslots): our dump is cryptsetup's, every passphrase opens with the same volume key, our
//! keyslot changes are what cryptsetup sees, and our conversion to LUKS2 equals cryptsetup's.

mod common;

use common::{
    contents, cryptsetup, cs_volume_key, fails_cleanly, ok, our_volume_key, ours, Dir, FAST,
};

/// A cryptsetup LUKS1 volume with `slots` keyslots (passphrases `pass-0`, `pass-1`, ...).
struct Volume {
    img: String,
    keys: Vec<String>,
}

fn luks1(d: &Dir, name: &str, hash: &str, cipher: &str, bits: &str, slots: usize) -> Volume {
    let img = d.image(name, 8);
    let keys: Vec<String> = (0..slots)
        .map(|i| d.key(&format!("{name}-k{i}"), format!("pass-{i}").as_bytes()))
        .collect();
    ok(cryptsetup(&[
        "luksFormat",
        "-q",
        "--type",
        "luks1",
        "--hash",
        hash,
        "--cipher",
        cipher,
        "--key-size",
        bits,
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        &keys[0],
        &img,
    ]));
    for k in &keys[1..] {
        ok(cryptsetup(&[
            "luksAddKey",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            &keys[0],
            &img,
            k,
        ]));
    }
    Volume { img, keys }
}

fn copy(d: &Dir, v: &Volume, name: &str) -> String {
    let p = d.p(name);
    std::fs::copy(&v.img, &p).expect("copy");
    p
}

fn opens(tool_is_ours: bool, img: &str, key: &str) -> i32 {
    let args = ["--test-passphrase", "--key-file", key, img];
    if tool_is_ours {
        ours(&[&["open"][..], &args].concat()).code
    } else {
        cryptsetup(&[&["open"][..], &args].concat()).code
    }
}

const MATRIX: &[(&str, &str, &str, usize)] = &[
    ("sha1", "aes-xts-plain64", "256", 1),
    ("sha256", "aes-xts-plain64", "512", 2),
    ("sha512", "aes-cbc-essiv:sha256", "256", 8),
    ("sha256", "aes-cbc-essiv:sha256", "128", 3),
];

#[test]
fn cryptsetup_luks1_volumes_dump_and_open_the_same() {
    let d = Dir::new();
    for (i, &(hash, cipher, bits, slots)) in MATRIX.iter().enumerate() {
        let what = format!("{hash} {cipher} {bits} x{slots}");
        let v = luks1(&d, &format!("m{i}.img"), hash, cipher, bits, slots);
        assert_eq!(
            ok(ours(&["dump", &v.img])).stdout,
            ok(cryptsetup(&["luksDump", &v.img])).stdout,
            "{what}"
        );
        assert_eq!(ours(&["is-luks", &v.img]).code, 0, "{what}");
        let uuid = ok(cryptsetup(&["luksUUID", &v.img])).stdout;
        assert_eq!(ok(ours(&["uuid", &v.img])).stdout, uuid, "{what}");
        for (slot, k) in v.keys.iter().enumerate() {
            let r = ours(&[
                "open",
                "--test-passphrase",
                "-S",
                &slot.to_string(),
                "--key-file",
                k,
                &v.img,
            ]);
            assert_eq!(r.code, 0, "{what} slot {slot}: {}", r.stderr);
        }
        let wrong = d.key("wrong", b"not it");
        assert_eq!(opens(true, &v.img, &wrong), 2, "{what}");
        assert_eq!(
            our_volume_key(&d, &v.img, &v.keys[0]),
            cs_volume_key(&d, &v.img, &v.keys[0]),
            "{what}"
        );
        // The volume key dump text is cryptsetup's.
        let dump = |tool_ours: bool| {
            let args = ["-q", "--dump-volume-key", "--key-file", &v.keys[0], &v.img];
            if tool_ours {
                ok(ours(&[&["dump"][..], &args].concat())).stdout
            } else {
                ok(cryptsetup(&[&["luksDump"][..], &args].concat())).stdout
            }
        };
        assert_eq!(dump(true), dump(false), "{what}");
    }
}

#[test]
fn our_keyslot_changes_on_luks1_are_what_cryptsetup_sees() {
    let d = Dir::new();
    let v = luks1(&d, "k.img", "sha256", "aes-xts-plain64", "512", 2);
    let new = d.key("new", b"a new passphrase");
    let third = d.key("third", b"third passphrase");
    // add-key takes the first free slot, as cryptsetup's luksAddKey.
    let (a, b) = (copy(&d, &v, "a.img"), copy(&d, &v, "b.img"));
    ok(ours(
        &[
            &["add-key", "--key-file", &v.keys[0]][..],
            FAST,
            &[&a, &new],
        ]
        .concat(),
    ));
    ok(cryptsetup(&[
        "luksAddKey",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        &v.keys[0],
        &b,
        &new,
    ]));
    let slots = |img: &str| -> Vec<String> {
        ok(cryptsetup(&["luksDump", img]))
            .stdout
            .lines()
            .filter(|l| l.starts_with("Key Slot"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(slots(&a), slots(&b));
    assert_eq!(opens(false, &a, &new), 0);
    // remove-key wipes the slot: identical headers to cryptsetup's removal (salt and
    // iterations cleared), material overwritten, the passphrase no longer opens.
    let before = contents(&a);
    ok(ours(&["remove-key", "-q", &a, &v.keys[0]]));
    ok(cryptsetup(&["luksRemoveKey", "-q", &b, &v.keys[0]]));
    assert_eq!(opens(false, &a, &v.keys[0]), 2);
    assert_eq!(
        contents(&a)[208..256],
        contents(&b)[208..256],
        "slot 0 record"
    );
    assert_ne!(
        contents(&a)[4096..8192],
        before[4096..8192],
        "slot 0 not wiped"
    );
    assert_eq!(opens(false, &a, &v.keys[1]), 0);
    // change-key moves the key to the first free slot, as cryptsetup does.
    ok(ours(
        &[
            &["change-key", "--key-file", &v.keys[1]][..],
            FAST,
            &[&a, &third],
        ]
        .concat(),
    ));
    ok(cryptsetup(&[
        "luksChangeKey",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        &v.keys[1],
        &b,
        &third,
    ]));
    assert_eq!(slots(&a), slots(&b));
    assert_eq!(opens(false, &a, &third), 0);
    assert_eq!(opens(false, &a, &v.keys[1]), 2);
    // kill-slot in batch mode.
    ok(ours(&["kill-slot", "-q", &a, "2"]));
    ok(cryptsetup(&["luksKillSlot", "-q", &b, "2"]));
    assert_eq!(slots(&a), slots(&b));
    // argon2 does not exist in LUKS1: refused, nothing changed.
    let now = contents(&a);
    let r = ours(&[
        "add-key",
        "--pbkdf",
        "argon2id",
        "--key-file",
        &third,
        &a,
        &new,
    ]);
    fails_cleanly(&r, 1, "LUKS1");
    assert_eq!(contents(&a), now);
    // A LUKS2-only verb names the conversion.
    let r = ours(&["config", "--label", "x", &a]);
    fails_cleanly(&r, 1, "convert");
}

#[test]
fn conversion_to_luks2_equals_cryptsetups() {
    let d = Dir::new();
    for (i, &(hash, cipher, bits, slots)) in MATRIX.iter().enumerate() {
        let what = format!("{hash} {cipher} {bits} x{slots}");
        let v = luks1(&d, &format!("c{i}.img"), hash, cipher, bits, slots);
        let vk = cs_volume_key(&d, &v.img, &v.keys[0]);
        let (a, b) = (copy(&d, &v, "a.img"), copy(&d, &v, "b.img"));
        ok(ours(&["convert", "-q", "--type", "luks2", &a]));
        ok(cryptsetup(&["convert", "-q", "--type", "luks2", &b]));
        assert_eq!(
            ok(cryptsetup(&["luksDump", &a])).stdout,
            ok(cryptsetup(&["luksDump", &b])).stdout,
            "{what}"
        );
        assert_eq!(
            contents(&a)[32768..],
            contents(&b)[32768..],
            "{what}: areas"
        );
        for k in &v.keys {
            assert_eq!(opens(false, &a, k), 0, "{what}");
            assert_eq!(opens(true, &b, k), 0, "{what}");
        }
        assert_eq!(cs_volume_key(&d, &a, &v.keys[0]), vk, "{what}");
        // Converting again: already LUKS2.
        fails_cleanly(
            &ours(&["convert", "-q", "--type", "luks2", &a]),
            1,
            "already LUKS2",
        );
    }
    // No room to move the keyslots before the data: refused before any byte changes, as
    // cryptsetup refuses it.
    let img = d.image("tight.img", 8);
    let key = d.key("tight-key", b"pw");
    ok(cryptsetup(&[
        "luksFormat",
        "-q",
        "--type",
        "luks1",
        "--pbkdf-force-iterations",
        "1000",
        "--offset",
        "4040",
        "--key-file",
        &key,
        &img,
    ]));
    let before = contents(&img);
    fails_cleanly(
        &ours(&["convert", "-q", "--type", "luks2", &img]),
        1,
        "past the data",
    );
    assert_eq!(contents(&img), before);
    assert_ne!(
        cryptsetup(&["convert", "-q", "--type", "luks2", &img]).code,
        0
    );
    // A LUKS1 volume is already LUKS1.
    fails_cleanly(
        &ours(&["convert", "-q", "--type", "luks1", &img]),
        1,
        "already LUKS1",
    );
    assert_eq!(contents(&img), before);
}

#[test]
fn luks1_header_backups_are_cryptsetups_and_restore_both_ways() {
    let d = Dir::new();
    let v = luks1(&d, "b.img", "sha256", "aes-xts-plain64", "256", 2);
    let (ours_bk, cs_bk) = (d.p("ours.bk"), d.p("cs.bk"));
    ok(ours(&[
        "header-backup",
        &v.img,
        "--header-backup-file",
        &ours_bk,
    ]));
    ok(cryptsetup(&[
        "luksHeaderBackup",
        &v.img,
        "--header-backup-file",
        &cs_bk,
    ]));
    assert_eq!(contents(&ours_bk), contents(&cs_bk), "backup bytes");
    // A destroyed header comes back from either tool's backup through the other tool.
    let a = copy(&d, &v, "a.img");
    let mut bytes = contents(&a);
    bytes[..4096].fill(0);
    std::fs::write(&a, &bytes).expect("damage");
    assert_eq!(
        opens(false, &a, &v.keys[0]),
        1,
        "a damaged volume still opens"
    );
    ok(ours(&[
        "header-restore",
        "-q",
        &a,
        "--header-backup-file",
        &cs_bk,
    ]));
    assert_eq!(opens(false, &a, &v.keys[1]), 0);
    std::fs::write(&a, &bytes).expect("damage");
    ok(cryptsetup(&[
        "luksHeaderRestore",
        "-q",
        &a,
        "--header-backup-file",
        &ours_bk,
    ]));
    assert_eq!(opens(true, &a, &v.keys[0]), 0);
    // change-key with a named slot rewrites that slot in place, as cryptsetup does.
    let new = d.key("new", b"changed in place");
    ok(ours(
        &[
            &["change-key", "-S", "1", "--key-file", &v.keys[1]][..],
            FAST,
            &[&a, &new],
        ]
        .concat(),
    ));
    let r = cryptsetup(&[
        "open",
        "--test-passphrase",
        "-S",
        "1",
        "--key-file",
        &new,
        &a,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
