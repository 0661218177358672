//! LUKS1 tests on synthetic devices laid out as cryptsetup lays them out.

use super::*;
use crate::io::MemoryDevice;

const KEY: [u8; 32] = [0x5a; 32];

/// A 2 MiB LUKS1 device as cryptsetup lays one out for a 256-bit aes-xts key (keyslots
/// at sectors 8, 264, ..., data at sector 4096), with no keyslot enabled yet.
fn device() -> Vec<u8> {
    let mut h = Luks1Header {
        cipher_name: [0; 32],
        cipher_mode: [0; 32],
        hash_spec: [0; 32],
        payload_offset: 4096,
        key_bytes: 32,
        mk_digest: [0; DIGEST_SIZE],
        mk_digest_salt: [7; SALT_SIZE],
        mk_digest_iterations: 1000,
        uuid: [0; 40],
        keyslots: [Luks1Keyslot {
            state: KEY_DISABLED,
            iterations: 0,
            salt: [0; SALT_SIZE],
            offset: 0,
            stripes: AF_STRIPES,
        }; 8],
    };
    h.cipher_name[..3].copy_from_slice(b"aes");
    h.cipher_mode[..11].copy_from_slice(b"xts-plain64");
    h.hash_spec[..6].copy_from_slice(b"sha256");
    h.uuid[..36].copy_from_slice(b"0c5f1f2e-5a57-4b0e-9d49-2d0b7c1e9a11");
    for (i, k) in h.keyslots.iter_mut().enumerate() {
        k.offset = 8 + 256 * i as u32;
    }
    HashAlg::Sha256.pbkdf2(&KEY, &h.mk_digest_salt, 1000, &mut h.mk_digest);
    let mut dev = vec![0u8; 2 << 20];
    dev[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
    dev
}

fn fast() -> PbkdfParams {
    PbkdfParams::insecure_fast()
}

fn pass(p: &[u8]) -> Passphrase {
    Passphrase::from_slice(p)
}

#[test]
fn keyslots_round_trip_and_convert_to_luks2_with_the_same_key() {
    let key = VolumeKey::from_slice(&KEY);
    let mut d = Luks1::open(MemoryDevice::from_vec(device())).expect("open");
    assert_eq!(
        d.add_keyslot(&key, &pass(b"one"), None, &fast())
            .expect("add"),
        0
    );
    assert_eq!(
        d.add_keyslot(&key, &pass(b"two"), None, &fast())
            .expect("add"),
        1
    );
    assert!(matches!(
        d.add_keyslot(&key, &pass(b"x"), Some(1), &fast()),
        Err(Error::KeyslotInUse(1))
    ));
    let wrong = VolumeKey::from_slice(&[1; 32]);
    assert!(matches!(
        d.add_keyslot(&wrong, &pass(b"x"), None, &fast()),
        Err(Error::WrongVolumeKey)
    ));
    let limits = KdfLimits::default();
    let (slot, got) = d.unlock(&pass(b"two"), None, &limits).expect("unlock");
    assert_eq!((slot, got.as_bytes()), (1, &KEY[..]));
    assert!(matches!(
        d.unlock(&pass(b"nope"), None, &limits),
        Err(Error::WrongPassphrase)
    ));
    // change-key moves to the first free slot and wipes the old one.
    assert_eq!(
        d.change_keyslot(0, &key, &pass(b"three"), &fast(), false)
            .expect("change"),
        2
    );
    assert_eq!(d.header().keyslot_ids(), vec![1, 2]);
    assert!(d.unlock(&pass(b"one"), None, &limits).is_err());
    d.kill_keyslot(1).expect("kill");
    let k1 = d.header().keyslots[1];
    assert_eq!(
        (k1.is_enabled(), k1.iterations, k1.salt),
        (false, 0, [0; 32])
    );
    assert!(matches!(d.kill_keyslot(1), Err(Error::KeyslotNotFound(1))));
    // What was written re-reads identically.
    let bytes = d.into_inner().into_vec();
    let mut d = Luks1::open(MemoryDevice::from_vec(bytes.clone())).expect("reopen");
    let mut l2 = Luks1::open(MemoryDevice::from_vec(bytes))
        .expect("reopen")
        .convert_to_luks2()
        .expect("convert");
    let (slot, got) = l2
        .unlock(&pass(b"three"), None, &limits)
        .expect("luks2 unlock");
    assert_eq!((slot, got.as_bytes()), (2, &KEY[..]));
    let a = l2.header().activation().expect("activation");
    assert_eq!(
        (a.offset, a.sector_size, a.cipher.as_str()),
        (2 << 20, 512, "aes-xts-plain64")
    );
    assert_eq!(l2.header().uuid(), "0c5f1f2e-5a57-4b0e-9d49-2d0b7c1e9a11");
    // Argon2 does not exist in LUKS1.
    let mut argon = fast();
    argon.kind = PbkdfKind::Argon2id;
    assert!(d.add_keyslot(&key, &pass(b"a"), None, &argon).is_err());
    // With no keyslot left, no passphrase is even tried (cryptsetup: "No usable keyslot").
    d.kill_keyslot(2).expect("kill");
    assert!(matches!(
        d.unlock(&pass(b"three"), None, &limits),
        Err(Error::NoUsableKeyslot)
    ));
}

#[test]
fn a_uuid_that_is_not_text_is_refused_by_the_conversion_before_any_write() {
    // Found by fuzzing (fuzz/regressions/luks1/uuid-not-utf8): bytes that are not UTF-8
    // grew when made text and overran LUKS2's 40-byte UUID field.
    let mut dev = device();
    dev[168 + 30..168 + 33].copy_from_slice(&[0xff; 3]);
    let mut mem = MemoryDevice::from_vec(dev.clone());
    let d = Luks1::open(&mut mem).expect("LUKS1 takes any bytes");
    let e = d.convert_to_luks2().expect_err("not text");
    assert!(e.to_string().contains("UUID"), "{e}");
    assert_eq!(mem.as_slice(), &dev[..], "a refused conversion wrote");
    let mut full = device();
    full[168..208].fill(b'a');
    let d = Luks1::open(MemoryDevice::from_vec(full)).expect("opens");
    assert!(
        d.convert_to_luks2().is_err(),
        "a 40-byte UUID has no room for its NUL"
    );
    let input = include_bytes!("../../../fuzz/regressions/luks1/uuid-not-utf8");
    let mut dev = input.to_vec();
    dev.resize(2 << 20, 0);
    if let Ok(d) = Luks1::open(MemoryDevice::from_vec(dev)) {
        let _ = d.convert_to_luks2();
    }
}

#[test]
fn luksmeta_after_the_keyslots_is_not_converted_over() {
    let mut dev = device();
    // The keyslots end at sector 1800 + 250 = 2050: luksmeta starts at the next 4 KiB.
    dev[1_052_672..1_052_680].copy_from_slice(b"LUKSMETA");
    let mut mem = MemoryDevice::from_vec(dev.clone());
    let e = Luks1::open(&mut mem)
        .expect("open")
        .convert_to_luks2()
        .expect_err("luksmeta");
    assert!(e.to_string().contains("LUKSMETA"), "{e}");
    assert_eq!(mem.as_slice(), &dev[..]);
}

#[test]
fn headers_breaking_cryptsetups_rules_are_refused() {
    type Edit<'a> = (&'a str, &'a dyn Fn(&mut [u8]));
    let edits: [Edit<'_>; 7] = [
        ("version 2", &|b| b[7] = 2),
        ("key bytes 0", &|b| {
            b[108..112].copy_from_slice(&0u32.to_be_bytes())
        }),
        ("key bytes 513", &|b| {
            b[108..112].copy_from_slice(&513u32.to_be_bytes())
        }),
        ("stripes 3999", &|b| {
            b[208 + 44..208 + 48].copy_from_slice(&3999u32.to_be_bytes())
        }),
        ("material in the header", &|b| {
            b[208 + 40..208 + 44].copy_from_slice(&1u32.to_be_bytes())
        }),
        ("material in the data", &|b| {
            b[208 + 7 * 48 + 40..208 + 7 * 48 + 44].copy_from_slice(&4000u32.to_be_bytes())
        }),
        ("overlap", &|b| {
            b[208 + 48 + 40..208 + 48 + 44].copy_from_slice(&100u32.to_be_bytes())
        }),
    ];
    for (what, edit) in edits {
        let mut dev = device();
        edit(&mut dev);
        assert!(
            Luks1::open(MemoryDevice::from_vec(dev)).is_err(),
            "{what} accepted"
        );
    }
    let mut short = device();
    short.truncate(1 << 20);
    assert!(matches!(
        Luks1::open(MemoryDevice::from_vec(short)),
        Err(Error::DeviceTooSmall { .. })
    ));
    // Hostile iterations are refused before any work.
    let mut dev = device();
    dev[164..168].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut d = Luks1::open(MemoryDevice::from_vec(dev)).expect("opens");
    let limits = KdfLimits {
        max_duration: std::time::Duration::from_secs(1),
        ..KdfLimits::default()
    };
    assert!(matches!(
        d.unlock(&pass(b"x"), None, &limits),
        Err(Error::KdfTooSlow { .. })
    ));
}

#[test]
fn luks1_to_luks2_and_back_gives_back_the_same_bytes() {
    let key = VolumeKey::from_slice(&KEY);
    let mut d = Luks1::open(MemoryDevice::from_vec(device())).expect("open");
    d.add_keyslot(&key, &pass(b"one"), Some(1), &fast())
        .expect("add");
    d.add_keyslot(&key, &pass(b"two"), Some(6), &fast())
        .expect("add");
    let before = d.into_inner().into_vec();
    let l2 = Luks1::open(MemoryDevice::from_vec(before.clone()))
        .expect("open")
        .convert_to_luks2()
        .expect("to luks2");
    let mut back = l2.convert_to_luks1().expect("to luks1");
    let limits = KdfLimits::default();
    let (slot, got) = back.unlock(&pass(b"two"), None, &limits).expect("unlock");
    assert_eq!((slot, got.as_bytes()), (6, &KEY[..]));
    // The disabled keyslots get their areas back in order, and the moves undo each other.
    assert!(back.into_inner().into_vec() == before);
}

/// A 16 MiB LUKS2 volume with 512-byte sectors and a fast PBKDF2 keyslot 0 ("one"), as
/// `change` changes the options.
fn luks2_volume(change: impl FnOnce(&mut crate::FormatOptions)) -> crate::Luks2<MemoryDevice> {
    let mut opts = crate::FormatOptions {
        sector_size: Some(512),
        keyslots_size: Some(2 << 20),
        data_offset: Some(4 << 20),
        ..Default::default()
    };
    opts.keyslot.pbkdf = fast();
    change(&mut opts);
    crate::format(
        MemoryDevice::from_vec(vec![0; 16 << 20]),
        &opts,
        &pass(b"one"),
    )
    .expect("format")
    .0
}

#[test]
fn luks2_to_luks1_keeps_keys_and_data_offset() {
    let mut l2 = luks2_volume(|_| {});
    let (_, key) = l2
        .unlock(&pass(b"one"), None, &KdfLimits::default())
        .expect("unlock");
    let opts = crate::KeyslotOptions {
        pbkdf: fast(),
        ..Default::default()
    };
    l2.add_keyslot(&key, &pass(b"three"), Some(3), &opts)
        .expect("add");
    let uuid = l2.header().uuid().to_owned();
    let mut l1 = l2.convert_to_luks1().expect("convert");
    let h = l1.header().clone();
    assert_eq!(
        (h.cipher().as_str(), h.key_bytes, h.payload_offset),
        ("aes-xts-plain64", 64, 8192)
    );
    assert_eq!(h.uuid(), uuid);
    assert_eq!(h.keyslot_ids(), vec![0, 3]);
    // Active areas keep their place (28 KiB lower); the free ones follow in order.
    let offsets: Vec<u32> = h.keyslots.iter().map(|k| k.offset).collect();
    assert_eq!(offsets, vec![8, 1016, 1520, 512, 2024, 2528, 3032, 3536]);
    let limits = KdfLimits::default();
    let (slot, got) = l1.unlock(&pass(b"three"), None, &limits).expect("unlock");
    assert_eq!((slot, got.as_bytes()), (3, key.as_bytes()));
}

#[test]
fn luks2_that_luks1_cannot_hold_is_refused_before_any_write() {
    use crate::error::Luks1Incompatibility as W;
    type Expect = fn(&W) -> bool;
    let argon = |o: &mut crate::FormatOptions| {
        o.keyslot.pbkdf.kind = PbkdfKind::Argon2id;
        o.keyslot.pbkdf.memory_kib = 32;
        o.keyslot.pbkdf.parallel = 1;
    };
    let mut token = luks2_volume(|_| {});
    token
        .import_token_json(r#"{"type":"x","keyslots":[]}"#, None, false)
        .expect("token");
    let cases: Vec<(crate::Luks2<MemoryDevice>, Expect)> = vec![
        (luks2_volume(|o| o.sector_size = Some(4096)), |w| {
            *w == W::SectorSize(4096)
        }),
        (luks2_volume(argon), |w| {
            matches!(w, W::Keyslot { id: 0, .. })
        }),
        (luks2_volume(|o| o.keyslot_id = 9), |w| {
            *w == W::SlotOverMax(9)
        }),
        (
            luks2_volume(|o| o.keyslot.cipher = Some(("aes-cbc-essiv:sha256".into(), 32))),
            |w| matches!(w, W::Keyslot { id: 0, .. }),
        ),
        (luks2_volume(|o| o.keyslots_size = Some(1 << 20)), |w| {
            matches!(w, W::Layout(_))
        }),
        (token, |w| *w == W::Tokens(1)),
    ];
    for (d, expected) in cases {
        let mut mem = d.into_inner();
        let before = mem.as_slice().to_vec();
        match crate::Luks2::open(&mut mem)
            .expect("open")
            .convert_to_luks1()
        {
            Err(Error::NotLuks1Compatible(w)) => assert!(expected(&w), "{w:?}"),
            other => panic!("{other:?}"),
        }
        assert!(mem.as_slice() == before.as_slice());
    }
}
