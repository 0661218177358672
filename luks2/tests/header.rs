//! Header behaviour on in-memory devices: both copies, repair, key management, hostile input.

use luks2::{
    format, Copy, Error, FormatOptions, KdfLimits, KeyslotOptions, Luks2, MemoryDevice, PbkdfParams,
};

const SIZE: usize = 20 << 20;

fn fast_opts() -> FormatOptions {
    let mut o = FormatOptions::default();
    o.keyslot.pbkdf = PbkdfParams::insecure_fast();
    o.digest_iterations = Some(1000);
    o
}

fn fast_slot() -> KeyslotOptions {
    KeyslotOptions {
        pbkdf: PbkdfParams::insecure_fast(),
        ..KeyslotOptions::default()
    }
}

fn formatted(pass: &[u8]) -> (MemoryDevice, luks2::VolumeKey) {
    let (dev, key) = format(
        MemoryDevice::new(SIZE),
        &fast_opts(),
        &luks2::Passphrase::from_slice(pass),
    )
    .expect("format");
    (dev.into_inner(), key)
}

fn unlock(
    dev: MemoryDevice,
    pass: &[u8],
) -> (Result<(u32, luks2::VolumeKey), Error>, MemoryDevice) {
    let mut d = Luks2::open(dev).expect("open");
    let r = d.unlock(
        &luks2::Passphrase::from_slice(pass),
        None,
        &KdfLimits::default(),
    );
    (r, d.into_inner())
}

#[test]
fn wrong_passphrase_changes_nothing() {
    let (dev, _) = formatted(b"right");
    let before = dev.as_slice().to_vec();
    let (r, dev) = unlock(dev, b"wrong");
    assert!(matches!(r, Err(Error::WrongPassphrase)));
    assert_eq!(dev.as_slice(), &before[..]);
}

#[test]
fn either_damaged_copy_still_unlocks_and_repairs() {
    for (offset, damaged) in [
        (100usize, Copy::Primary),
        (16384 + 100, Copy::Secondary),
        (4096 + 10, Copy::Primary),
    ] {
        let (mut dev, key) = formatted(b"pw");
        dev.as_mut_slice()[offset] ^= 0xff;
        let mut d = Luks2::open(dev).expect("one copy is enough");
        assert_eq!(d.stale_copy(), Some(damaged));
        let (_, k) = d
            .unlock(
                &luks2::Passphrase::from_slice(b"pw"),
                None,
                &KdfLimits::default(),
            )
            .expect("unlock");
        assert_eq!(k.as_bytes(), key.as_bytes());
        assert_eq!(d.repair().expect("repair"), Some(damaged));
        let d = Luks2::open(d.into_inner()).expect("reopen");
        assert_eq!(d.stale_copy(), None, "repair left both copies valid");
    }
}

#[test]
fn both_copies_damaged_is_a_clear_error() {
    let (mut dev, _) = formatted(b"pw");
    dev.as_mut_slice()[200] ^= 1;
    dev.as_mut_slice()[16384 + 200] ^= 1;
    let err = Luks2::open(dev).unwrap_err();
    assert!(matches!(err, Error::NoValidHeader { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("primary") && msg.contains("secondary") && msg.contains("checksum"),
        "{msg}"
    );
}

#[test]
fn blank_device_is_not_luks() {
    assert!(matches!(
        Luks2::open(MemoryDevice::new(1 << 20)),
        Err(Error::NotLuks2)
    ));
    assert!(matches!(
        Luks2::open(MemoryDevice::new(10)),
        Err(Error::NotLuks2)
    ));
}

#[test]
fn key_management_round_trip() {
    let (dev, key) = formatted(b"one");
    let mut d = Luks2::open(dev).expect("open");
    let slot = d
        .add_keyslot(
            &key,
            &luks2::Passphrase::from_slice(b"two"),
            None,
            &fast_slot(),
        )
        .expect("add");
    assert_eq!(slot, 1);
    assert!(matches!(
        d.add_keyslot(
            &key,
            &luks2::Passphrase::from_slice(b"x"),
            Some(1),
            &fast_slot()
        ),
        Err(Error::KeyslotInUse(1))
    ));
    let other = luks2::VolumeKey::from_slice(&[0u8; 64]);
    assert!(matches!(
        d.add_keyslot(
            &other,
            &luks2::Passphrase::from_slice(b"x"),
            None,
            &fast_slot()
        ),
        Err(Error::WrongVolumeKey)
    ));

    d.change_keyslot(
        0,
        &key,
        &luks2::Passphrase::from_slice(b"uno"),
        &fast_slot(),
    )
    .expect("change");
    let lim = KdfLimits::default();
    assert!(matches!(
        d.unlock(&luks2::Passphrase::from_slice(b"one"), None, &lim),
        Err(Error::WrongPassphrase)
    ));
    assert_eq!(
        d.unlock(&luks2::Passphrase::from_slice(b"uno"), None, &lim)
            .expect("new")
            .0,
        0
    );

    d.kill_keyslot(1).expect("kill");
    assert!(matches!(
        d.unlock(&luks2::Passphrase::from_slice(b"two"), None, &lim),
        Err(Error::WrongPassphrase)
    ));
    assert_eq!(d.header().keyslot_ids(), vec![0]);

    d.set_labels(Some("data"), Some("cryptpilot"))
        .expect("labels");
    let uuid = "01234567-89ab-cdef-0123-456789abcdef";
    d.set_uuid(uuid).expect("uuid");
    let d = Luks2::open(d.into_inner()).expect("reopen");
    assert_eq!(
        (
            &*d.header().label(),
            &*d.header().subsystem(),
            d.header().uuid()
        ),
        ("data", "cryptpilot", uuid)
    );
    assert!(d.header().seqid() >= 5);
}

#[test]
fn persistent_flags_replace_the_stored_ones() {
    use luks2::PersistentFlag;
    let (dev, _) = formatted(b"pw");
    let mut d = Luks2::open(dev).expect("open");
    let flags = |d: &Luks2<_>| d.header().activation().expect("activation").flags;
    assert!(flags(&d).is_empty());
    // Written in cryptsetup's order, whatever the order given.
    d.set_persistent_flags(&[
        PersistentFlag::NoReadWorkqueue,
        PersistentFlag::AllowDiscards,
    ])
    .expect("set");
    let mut d = Luks2::open(d.into_inner()).expect("reopen");
    assert_eq!(flags(&d), ["allow-discards", "no-read-workqueue"]);
    assert!(
        d.header()
            .metadata_json()
            .contains(r#""flags":["allow-discards","no-read-workqueue"]"#),
        "{}",
        d.header().metadata_json()
    );
    d.set_persistent_flags(&[]).expect("clear");
    let d = Luks2::open(d.into_inner()).expect("reopen");
    assert!(flags(&d).is_empty());
}

#[test]
fn tokens_and_unknown_fields_survive_rewrites() {
    let (dev, _) = formatted(b"pw");
    let mut d = Luks2::open(dev).expect("open");
    let token: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"type":"cryptpilot-kbs","keyslots":["0"],"nested":{"z":1,"a":[true,null]},"key_uri":"kbs:///a/b/c"}"#,
    )
    .expect("json");
    assert_eq!(
        d.import_token_json(
            &serde_json::Value::Object(token.clone()).to_string(),
            None,
            false
        )
        .expect("import"),
        0
    );
    assert!(matches!(
        d.import_token_json(
            &serde_json::Value::Object(token.clone()).to_string(),
            Some(0),
            false
        ),
        Err(Error::TokenInUse(0))
    ));
    d.set_labels(Some("again"), None).expect("rewrite");
    let d = Luks2::open(d.into_inner()).expect("reopen");
    assert_eq!(
        d.token_json(0).expect("token"),
        serde_json::Value::Object(token.clone()).to_string()
    );
    let text = d.header().metadata_json();
    assert!(
        text.contains(r#""nested":{"z":1,"a":[true,null]}"#),
        "{text}"
    );

    let bad: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"type":"x","keyslots":["7"]}"#).expect("json");
    let mut d = d;
    let err = d
        .import_token_json(&serde_json::Value::Object(bad).to_string(), None, false)
        .unwrap_err();
    assert!(
        err.to_string().contains("keyslot 7 does not exist"),
        "{err}"
    );
}

/// Rewrites the metadata of both copies with `edit` applied, re-sealing the checksums as a
/// hostile but well-formed header would be.
fn with_edited_json(dev: &mut MemoryDevice, edit: impl Fn(&mut serde_json::Value)) {
    use sha2::Digest as _;
    for off in [0usize, 16384] {
        let area = &mut dev.as_mut_slice()[off..off + 16384];
        let end = area[4096..].iter().position(|&c| c == 0).expect("nul") + 4096;
        let mut v: serde_json::Value = serde_json::from_slice(&area[4096..end]).expect("json");
        edit(&mut v);
        let text = serde_json::to_vec(&v).expect("ser");
        area[4096..].fill(0);
        area[4096..4096 + text.len()].copy_from_slice(&text);
        area[448..512].fill(0);
        let sum = sha2::Sha256::digest(&area[..]);
        area[448..480].copy_from_slice(&sum);
    }
}

#[test]
fn hostile_kdf_costs_are_refused_before_work() {
    let (mut dev, _) = formatted(b"pw");
    with_edited_json(&mut dev, |v| {
        let kdf = &mut v["keyslots"]["0"]["kdf"];
        *kdf = serde_json::json!({"type":"argon2id","time":4,"memory":4000000000u32,"cpus":4,"salt":kdf["salt"].clone()});
    });
    let (r, _) = unlock(dev, b"pw");
    let err = r.unwrap_err();
    assert!(
        matches!(&err, Error::UnusableKeyslot { id: 0, source }
            if matches!(source.as_ref(), Error::Limit { field, .. } if field == "keyslots.0.kdf.memory")),
        "{err}"
    );
}

/// Each cost may be within its cap and the total still days of work: 4 GiB at 65536 passes,
/// or 2^32-1 PBKDF2 iterations in a keyslot or in the digest. Refused at once, naming the
/// keyslot or digest, with the estimate; a raised limit lets them through.
#[test]
fn total_kdf_work_is_capped_before_work() {
    let started = std::time::Instant::now();
    let edits: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| {
                let kdf = &mut v["keyslots"]["0"]["kdf"];
                *kdf = serde_json::json!({"type":"argon2id","time":65536,"memory":4194304,"cpus":4,"salt":kdf["salt"].clone()});
            }),
            "keyslots.0.kdf",
        ),
        (
            Box::new(|v| v["keyslots"]["0"]["kdf"]["iterations"] = u32::MAX.into()),
            "keyslots.0.kdf",
        ),
        (
            Box::new(|v| v["digests"]["0"]["iterations"] = u32::MAX.into()),
            "digests.0",
        ),
    ];
    for (edit, field) in edits {
        let (mut dev, _) = formatted(b"pw");
        with_edited_json(&mut dev, edit);
        let err = unlock(dev, b"pw").0.unwrap_err();
        let Error::UnusableKeyslot { id: 0, source } = &err else {
            panic!("{field}: {err}");
        };
        assert!(
            matches!(source.as_ref(), Error::KdfTooSlow { field: f, .. } if f == field),
            "{source}"
        );
        assert!(source.to_string().contains("on this machine"), "{source}");
    }
    assert!(started.elapsed().as_secs() < 60, "refused before the work");
}

/// Found by review: a keyslot key size near 2^32 overflowed the dump's bit count.
#[test]
fn huge_key_sizes_dump_without_overflow() {
    let (mut dev, _) = formatted(b"pw");
    with_edited_json(&mut dev, |v| {
        v["keyslots"]["0"]["key_size"] = u32::MAX.into();
        v["keyslots"]["0"]["area"]["key_size"] = u32::MAX.into();
    });
    let text = luks2::dump_text(Luks2::open(dev).expect("open").header());
    assert!(text.contains("Key:        34359738360 bits"), "{text}");
}

/// A keyslot whose sizes do not fit its area is unusable, not the header invalid: the other
/// keyslots open, and asking for the damaged one names it. The stripes field is not used (the
/// spec allows only 4000, and cryptsetup reads every keyslot with 4000), and an area offset
/// inside a sector reads from that sector's start, as cryptsetup does.
#[test]
fn a_damaged_keyslot_does_not_disable_the_others() {
    let two = || {
        let (base, key) = formatted(b"a");
        let mut d = Luks2::open(base).expect("open");
        d.add_keyslot(
            &key,
            &luks2::Passphrase::from_slice(b"b"),
            None,
            &fast_slot(),
        )
        .expect("add");
        d.into_inner()
    };
    let lim = KdfLimits::default();
    let open = |dev: &MemoryDevice, p: &[u8], slot| {
        Luks2::open(dev.clone())
            .expect("the header stays valid")
            .unlock(&luks2::Passphrase::from_slice(p), slot, &lim)
            .map(|(s, _)| s)
    };
    let mut big_key = two();
    with_edited_json(&mut big_key, |v| {
        v["keyslots"]["1"]["key_size"] = 128.into()
    });
    assert_eq!(open(&big_key, b"a", None).expect("slot 0"), 0);
    assert!(matches!(
        open(&big_key, b"b", None),
        Err(Error::WrongPassphrase)
    ));
    let err = open(&big_key, b"b", Some(1)).unwrap_err();
    assert!(
        matches!(&err, Error::UnusableKeyslot { id: 1, .. }),
        "{err}"
    );
    let text = luks2::dump_text(Luks2::open(big_key).expect("open").header());
    assert!(
        text.contains("Unusable:   invalid LUKS2 metadata at keyslots.1.area.size"),
        "{text}"
    );

    for stripes in [3999, 8000, 100_000_000] {
        let mut d = two();
        with_edited_json(&mut d, |v| {
            v["keyslots"]["1"]["af"]["stripes"] = stripes.into()
        });
        assert_eq!(open(&d, b"b", None).expect("stripes ignored"), 1);
    }

    let mut unaligned = two();
    with_edited_json(&mut unaligned, |v| {
        let area = &mut v["keyslots"]["1"]["area"];
        let off: u64 = area["offset"].as_str().expect("str").parse().expect("num");
        let size: u64 = area["size"].as_str().expect("str").parse().expect("num");
        area["offset"] = (off + 100).to_string().into();
        area["size"] = (size - 100).to_string().into();
    });
    assert_eq!(
        open(&unaligned, b"b", None).expect("read from the sector"),
        1
    );
}

type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn malformed_metadata_names_the_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["keyslots"]["0"]["area"]["offset"] = "16".into()),
            "keyslots.0.area",
        ),
        (
            Box::new(|v| v["keyslots"]["0"]["area"]["offset"] = 32768.into()),
            "keyslots.0.area.offset",
        ),
        (
            Box::new(|v| v["config"]["json_size"] = "4096".into()),
            "config.json_size",
        ),
        (
            // cryptsetup's limit (128 MiB); found by review, where a keyslots area ending near
            // 2^64 overflowed free-space arithmetic and header backups.
            Box::new(|v| v["config"]["keyslots_size"] = ((128u64 << 20) + 4096).to_string().into()),
            "config.keyslots_size",
        ),
        (
            Box::new(|v| v["digests"]["0"]["keyslots"] = serde_json::json!(["5"])),
            "digests.0.keyslots",
        ),
        (
            Box::new(|v| v["segments"]["0"]["sector_size"] = 1000.into()),
            "segments.0.sector_size",
        ),
        (
            Box::new(|v| {
                v["keyslots"]["0"]["af"]
                    .as_object_mut()
                    .expect("obj")
                    .remove("stripes");
            }),
            "keyslots.0.af.stripes",
        ),
        (
            Box::new(|v| {
                v.as_object_mut().expect("obj").remove("digests");
            }),
            "digests",
        ),
    ];
    for (edit, field) in cases {
        let (mut dev, _) = formatted(b"pw");
        with_edited_json(&mut dev, edit);
        let err = Luks2::open(dev).unwrap_err();
        let Error::NoValidHeader { primary, .. } = &err else {
            panic!("expected both copies rejected, got {err}");
        };
        let shown = primary.to_string();
        assert!(shown.contains(field), "{field}: {shown}");
    }
}

#[test]
fn unknown_requirements_block_changes_but_not_reading() {
    let (mut dev, _) = formatted(b"pw");
    with_edited_json(&mut dev, |v| {
        v["config"]["requirements"] = serde_json::json!({"mandatory": ["future-feature"]});
    });
    let mut d = Luks2::open(dev).expect("readable");
    assert!(
        d.unlock(
            &luks2::Passphrase::from_slice(b"pw"),
            None,
            &KdfLimits::default()
        )
        .is_ok(),
        "reading the key is allowed"
    );
    let before = d.backup().expect("read");
    assert!(matches!(
        d.set_uuid("01234567-89ab-cdef-0123-456789abcdef"),
        Err(Error::UnmetRequirements(r)) if r == ["future-feature"]
    ));
    assert!(matches!(
        d.set_labels(Some("x"), None),
        Err(Error::UnmetRequirements(_))
    ));
    let key = d
        .unlock(
            &luks2::Passphrase::from_slice(b"pw"),
            None,
            &KdfLimits::default(),
        )
        .expect("unlock")
        .1;
    assert!(matches!(
        d.add_keyslot(
            &key,
            &luks2::Passphrase::from_slice(b"x"),
            None,
            &fast_slot()
        ),
        Err(Error::UnmetRequirements(_))
    ));
    assert!(matches!(
        d.kill_keyslot(0),
        Err(Error::UnmetRequirements(_))
    ));
    assert_eq!(d.backup().expect("read"), before, "nothing was written");
}

#[test]
fn backup_and_restore() {
    let (dev, _) = formatted(b"pw");
    let mut d = Luks2::open(dev).expect("open");
    let backup = d.backup().expect("backup");
    assert_eq!(backup.len() as u64, d.header().header_area_size());
    d.kill_keyslot(0).expect("kill");
    // With no keyslot left, no passphrase is even tried (cryptsetup: "No usable keyslot").
    assert!(matches!(
        d.unlock(
            &luks2::Passphrase::from_slice(b"pw"),
            None,
            &luks2::KdfLimits::default()
        ),
        Err(Error::NoUsableKeyslot)
    ));
    let mut dev = d.into_inner();
    luks2::restore_backup(&mut dev, &backup).expect("restore");
    let (r, _) = unlock(dev, b"pw");
    assert!(r.is_ok(), "the restored keyslot opens again");
    assert!(luks2::check_backup(&backup[..1000]).is_err());
}

#[test]
fn every_metadata_size_formats_and_reopens() {
    for md in luks2::header::HDR_SIZES {
        let mut o = fast_opts();
        o.metadata_size = md;
        let (d, key) = format(
            MemoryDevice::new(SIZE),
            &o,
            &luks2::Passphrase::from_slice(b"pw"),
        )
        .expect("format");
        let mut d = Luks2::open(d.into_inner()).expect("open");
        assert_eq!(d.header().metadata_size(), md);
        assert_eq!(
            d.unlock(
                &luks2::Passphrase::from_slice(b"pw"),
                None,
                &KdfLimits::default()
            )
            .expect("unlock")
            .1
            .as_bytes(),
            key.as_bytes()
        );
    }
}

#[test]
fn device_too_small_is_refused_untouched() {
    let mut dev = MemoryDevice::new(1 << 20);
    dev.as_mut_slice().fill(0x5a);
    let err = format(
        &mut dev,
        &fast_opts(),
        &luks2::Passphrase::from_slice(b"pw"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::DeviceTooSmall { .. }), "{err}");
    assert!(
        dev.as_slice().iter().all(|&b| b == 0x5a),
        "no byte was written"
    );
}

#[test]
fn sha1_and_sha512_header_checksums_are_read() {
    use sha2::Digest as _;
    for alg in ["sha1", "sha512"] {
        let (mut dev, key) = formatted(b"pw");
        for off in [0usize, 16384] {
            let area = &mut dev.as_mut_slice()[off..off + 16384];
            area[72..104].fill(0);
            area[72..72 + alg.len()].copy_from_slice(alg.as_bytes());
            area[448..512].fill(0);
            let sum = if alg == "sha1" {
                sha1::Sha1::digest(&area[..]).to_vec()
            } else {
                sha2::Sha512::digest(&area[..]).to_vec()
            };
            area[448..448 + sum.len()].copy_from_slice(&sum);
        }
        let mut d = Luks2::open(dev).expect(alg);
        assert_eq!(d.header().checksum_algorithm(), alg);
        assert_eq!(d.stale_copy(), None);
        let (_, k) = d
            .unlock(
                &luks2::Passphrase::from_slice(b"pw"),
                None,
                &KdfLimits::default(),
            )
            .expect("unlock");
        assert_eq!(k.as_bytes(), key.as_bytes());
        // A rewrite keeps the algorithm and stays readable.
        d.set_labels(Some("x"), None).expect("rewrite");
        let d = Luks2::open(d.into_inner()).expect("reopen");
        assert_eq!(d.header().checksum_algorithm(), alg);
    }
}

/// A device whose writes fail after a budget, optionally tearing the failing write in half.
struct Faulty {
    dev: MemoryDevice,
    budget: usize,
    tear: bool,
    faulted: bool,
}

impl luks2::BlockIo for Faulty {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.dev.read_exact_at(buf, offset)
    }
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        if self.budget == 0 {
            self.faulted = true;
            if self.tear {
                self.dev.write_all_at(&buf[..buf.len() / 2], offset)?;
            }
            return Err(std::io::Error::other("injected fault"));
        }
        self.budget -= 1;
        self.dev.write_all_at(buf, offset)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn size(&mut self) -> std::io::Result<u64> {
        self.dev.size()
    }
}

fn sorted<'a>(v: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Interrupts `op` at every write it makes (failing it, or tearing it in half). After each
/// interruption the passphrases that open the device must be exactly the `old` set or exactly
/// the `new` set: never neither, never a mix. A device that was not LUKS2 before (`old` empty)
/// may also stay unreadable.
fn interrupted_everywhere(
    base: &MemoryDevice,
    op: &dyn Fn(&mut Faulty) -> luks2::Result<()>,
    old: &[&[u8]],
    new: &[&[u8]],
) {
    let lim = KdfLimits::default();
    let mut all: Vec<&[u8]> = old.iter().chain(new).copied().collect();
    all.sort();
    all.dedup();
    for tear in [false, true] {
        for budget in 0.. {
            let mut f = Faulty {
                dev: base.clone(),
                budget,
                tear,
                faulted: false,
            };
            let result = op(&mut f);
            let faulted = f.faulted;
            assert_eq!(result.is_err(), faulted, "budget {budget}: {result:?}");
            let opened: Vec<&[u8]> = match Luks2::open(f.dev) {
                Ok(mut d) => all
                    .iter()
                    .copied()
                    .filter(|p| {
                        d.unlock(&luks2::Passphrase::from_slice(p), None, &lim)
                            .is_ok()
                    })
                    .collect(),
                Err(e) if old.is_empty() => {
                    assert!(
                        faulted,
                        "a completed operation must leave a readable header: {e}"
                    );
                    Vec::new()
                }
                Err(e) => panic!("budget {budget} tear {tear}: unreadable: {e}"),
            };
            assert!(
                opened == sorted(old) || opened == sorted(new),
                "budget {budget} tear {tear}: {opened:?} open, neither the old nor the new key set"
            );
            if !faulted {
                assert_eq!(
                    opened,
                    sorted(new),
                    "a completed operation gives the new key set"
                );
                break;
            }
        }
    }
}

/// Runs `op` on the device opened as LUKS2.
fn on_luks(
    f: &mut Faulty,
    op: impl FnOnce(&mut Luks2<&mut Faulty>) -> luks2::Result<()>,
) -> luks2::Result<()> {
    op(&mut Luks2::open(f)?)
}

#[test]
fn interrupted_changes_leave_old_or_new_state() {
    let (base, key) = formatted(b"a");
    let k = key.clone();
    interrupted_everywhere(
        &base,
        &|f| {
            on_luks(f, |d| {
                d.add_keyslot(&k, &luks2::Passphrase::from_slice(b"b"), None, &fast_slot())
                    .map(|_| ())
            })
        },
        &[b"a"],
        &[b"a", b"b"],
    );
    let k = key.clone();
    interrupted_everywhere(
        &base,
        &|f| {
            on_luks(f, |d| {
                d.change_keyslot(0, &k, &luks2::Passphrase::from_slice(b"c"), &fast_slot())
            })
        },
        &[b"a"],
        &[b"c"],
    );
    interrupted_everywhere(
        &base,
        &|f| on_luks(f, |d| d.set_labels(Some("l"), Some("s"))),
        &[b"a"],
        &[b"a"],
    );
    let tok: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"type":"t","keyslots":["0"]}"#).expect("json");
    interrupted_everywhere(
        &base,
        &|f| {
            on_luks(f, |d| {
                d.import_token_json(
                    &serde_json::Value::Object(tok.clone()).to_string(),
                    None,
                    false,
                )
                .map(|_| ())
            })
        },
        &[b"a"],
        &[b"a"],
    );

    let mut two = Luks2::open(base.clone()).expect("open");
    two.add_keyslot(
        &key,
        &luks2::Passphrase::from_slice(b"b"),
        None,
        &fast_slot(),
    )
    .expect("add");
    let two = two.into_inner();
    interrupted_everywhere(
        &two,
        &|f| on_luks(f, |d| d.kill_keyslot(1)),
        &[b"a", b"b"],
        &[b"a"],
    );
}

#[test]
fn interrupted_format_restore_and_repair() {
    // Format over a blank device: afterwards it is not LUKS2 at all, or opens with the new key.
    interrupted_everywhere(
        &MemoryDevice::new(SIZE),
        &|f| format(f, &fast_opts(), &luks2::Passphrase::from_slice(b"a")).map(|_| ()),
        &[],
        &[b"a"],
    );

    // Format over an existing volume (key "a") with key "n": the old volume opens until the
    // new one does.
    let (base, _) = formatted(b"a");
    interrupted_everywhere(
        &base,
        &|f| format(f, &fast_opts(), &luks2::Passphrase::from_slice(b"n")).map(|_| ()),
        &[b"a"],
        &[b"n"],
    );
    // The same over a volume with a second keyslot, so the old keyslots fill more of the area.
    let (base, key) = formatted(b"a");
    let mut two = Luks2::open(base).expect("open");
    two.add_keyslot(
        &key,
        &luks2::Passphrase::from_slice(b"b"),
        None,
        &fast_slot(),
    )
    .expect("add");
    interrupted_everywhere(
        &two.into_inner(),
        &|f| format(f, &fast_opts(), &luks2::Passphrase::from_slice(b"n")).map(|_| ()),
        &[b"a", b"b"],
        &[b"n"],
    );

    // Restore a backup that has key "a" over a header whose only key is "z".
    let (base, _) = formatted(b"a");
    let backup = Luks2::open(base.clone())
        .expect("open")
        .backup()
        .expect("backup");
    // Same options, so the layouts match and restore is allowed.
    let (current, _) = formatted(b"z");
    interrupted_everywhere(
        &current,
        &|f| luks2::restore_backup(f, &backup).map(|_| ()),
        &[b"z"],
        &[b"a"],
    );

    // Repair of a damaged secondary copy.
    let (mut damaged, _) = formatted(b"a");
    damaged.as_mut_slice()[16384 + 300] ^= 1;
    interrupted_everywhere(
        &damaged,
        &|f| on_luks(f, |d| d.repair().map(|_| ())),
        &[b"a"],
        &[b"a"],
    );
}

#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    Kill(u8),
    Change(u8, u8),
    Label,
}

fn op_strategy() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        (0u8..8).prop_map(Op::Add),
        any::<u8>().prop_map(Op::Kill),
        (any::<u8>(), 0u8..8).prop_map(|(i, p)| Op::Change(i, p)),
        Just(Op::Label),
    ]
}

fn pass(p: u8) -> luks2::Passphrase {
    luks2::Passphrase::new(format!("pass-{p}").into_bytes())
}

/// Applies `op` to the model (the intended state, so an interrupted op can be judged
/// against it) and then to the device. Ops that make no sense for the current state (killing
/// the last key, reusing a passphrase) are skipped.
fn apply(
    d: &mut Luks2<&mut Faulty>,
    key: &luks2::VolumeKey,
    model: &mut Vec<(u32, u8)>,
    op: &Op,
) -> luks2::Result<()> {
    match *op {
        Op::Add(p) if !model.iter().any(|m| m.1 == p) && model.len() < 6 => {
            let slot = (0..)
                .find(|s| !model.iter().any(|m| m.0 == *s))
                .expect("free slot");
            model.push((slot, p));
            assert_eq!(d.add_keyslot(key, &pass(p), None, &fast_slot())?, slot);
        }
        Op::Kill(i) if model.len() > 1 => {
            let (slot, _) = model.remove(usize::from(i) % model.len());
            d.kill_keyslot(slot)?;
        }
        Op::Change(i, p) if !model.iter().any(|m| m.1 == p) => {
            let idx = usize::from(i) % model.len();
            model[idx].1 = p;
            d.change_keyslot(model[idx].0, key, &pass(p), &fast_slot())?;
        }
        Op::Label => d.set_labels(Some("l"), None)?,
        _ => {}
    }
    Ok(())
}

fn opening(dev: MemoryDevice) -> Vec<u8> {
    let mut d = Luks2::open(dev).expect("readable");
    (0u8..8)
        .filter(|p| d.unlock(&pass(*p), None, &KdfLimits::default()).is_ok())
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, .. Default::default() })]

    /// Random sequences of key operations keep the model's key set, and a fault at any write of
    /// the last operation leaves exactly the key set from before or after it.
    #[test]
    fn random_operation_sequences(ops in proptest::collection::vec(op_strategy(), 1..8),
                                  budget in 0usize..6, tear: bool) {
        let (base, key) = formatted(pass(0).as_bytes());
        let mut f = Faulty { dev: base, budget: usize::MAX, tear: false, faulted: false };
        let mut model = vec![(0u32, 0u8)];
        let (last, init) = ops.split_last().expect("non-empty");
        for op in init {
            apply(&mut Luks2::open(&mut f).expect("open"), &key, &mut model, op).expect("op");
        }
        let mut before: Vec<u8> = model.iter().map(|m| m.1).collect();
        before.sort();
        proptest::prop_assert_eq!(opening(f.dev.clone()), before.clone());

        let mut after_model = model.clone();
        f.budget = budget;
        f.tear = tear;
        let r = apply(&mut Luks2::open(&mut f).expect("open"), &key, &mut after_model, last);
        proptest::prop_assert_eq!(r.is_err(), f.faulted);
        let mut after: Vec<u8> = after_model.iter().map(|m| m.1).collect();
        after.sort();
        let got = opening(f.dev.clone());
        proptest::prop_assert!(got == before || got == after, "{:?}: {:?} open, before {:?} after {:?}", last, got, before, after);
        if !f.faulted {
            proptest::prop_assert_eq!(got, after);
        }
    }
}

/// Regression (found by the `token` fuzz target): a number with a long mantissa was parsed to a
/// float one step off, so the token read back differed from the one imported. JSON floats are
/// now parsed exactly (serde_json's `float_roundtrip`), and what is stored reads back equal.
#[test]
fn long_numbers_in_tokens_read_back_unchanged() {
    let (dev, _) = formatted(b"pw");
    let mut d = Luks2::open(dev).expect("open");
    let token: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"type":"Cryptpilot","keyslots":[],"nested":{"a":[2,2,{"b":null}],"na":[1,888888888888888888888888888888888888888888888888888888888888888888888888888888888888882,{"b":null}]}}"#,
    )
    .expect("json");
    let id = d
        .import_token_json(
            &serde_json::Value::Object(token.clone()).to_string(),
            None,
            false,
        )
        .expect("import");
    let d = Luks2::open(d.into_inner()).expect("reopen");
    assert_eq!(
        d.token_json(id).expect("token"),
        serde_json::Value::Object(token.clone()).to_string()
    );
}

#[test]
fn detached_header_lays_out_as_cryptsetup() {
    // cryptsetup 2.6.1 `luksFormat --header H DATA`: a 16 MiB header file whose keyslots area
    // fills it, data from sector 0 of DATA; with `--offset 4096` the header file is 2 MiB.
    for (offset, header_size, keyslots, data_offset) in [
        (None, 16 << 20, 16_744_448, 0),
        (Some(0), 16 << 20, 16_744_448, 0),
        (Some(2 << 20), 2 << 20, 2_064_384, 2 << 20),
    ] {
        let mut o = fast_opts();
        o.data_offset = offset;
        o.detached_data_size = Some(20 << 20);
        assert_eq!(o.planned_header_size().expect("size"), header_size);
        let (dev, key) = format(
            MemoryDevice::new(header_size as usize),
            &o,
            &luks2::Passphrase::from_slice(b"pw"),
        )
        .expect("format");
        let h = dev.header();
        let a = h.activation().expect("activation");
        assert_eq!(
            (h.keyslots_size(), a.offset, a.sector_size),
            (keyslots, data_offset, 4096)
        );
        let (r, _) = unlock(dev.into_inner(), b"pw");
        assert_eq!(r.expect("unlock").1.as_bytes(), key.as_bytes());
    }
    // A header device smaller than its areas is refused before anything is written.
    let mut o = fast_opts();
    o.detached_data_size = Some(20 << 20);
    let e = format(
        MemoryDevice::new(1 << 20),
        &o,
        &luks2::Passphrase::from_slice(b"pw"),
    )
    .expect_err("too small");
    assert!(matches!(e, Error::DeviceTooSmall { .. }), "{e}");
}
