//! cryptsetup's LUKS2 metadata validation, rule by rule, against the real cryptsetup on the
//! same bytes: each case edits a header cryptsetup made (re-sealing the checksums, as a
//! hostile but well-formed header would be) and both tools must refuse it, or both accept it.
//! The rules themselves are listed in `luks2/src/header/validate.rs`.

mod common;

use common::*;

type Case = (&'static str, Box<dyn Fn(&str)>);

fn json(edit: impl Fn(&mut serde_json::Value) + 'static) -> Box<dyn Fn(&str)> {
    Box::new(move |img| edit_json(img, &edit))
}

fn refused_cases() -> Vec<Case> {
    vec![
        (
            "the JSON area starts with '{'",
            Box::new(|img| {
                edit_area(img, &|a| {
                    let end = a.iter().position(|&c| c == 0).expect("nul");
                    a.copy_within(0..end, 1);
                    a[0] = b' ';
                })
            }),
        ),
        (
            "only whitespace follows the JSON object",
            Box::new(|img| {
                edit_area(img, &|a| {
                    let end = a.iter().position(|&c| c == 0).expect("nul");
                    a[end] = b'x';
                })
            }),
        ),
        (
            "no byte after the terminating NUL",
            Box::new(|img| edit_area(img, &|a| a[8000] = b'x')),
        ),
        (
            "crypt segment encryption non-empty",
            json(|v| v["segments"]["0"]["encryption"] = "".into()),
        ),
        (
            "keyslot type non-empty",
            json(|v| v["keyslots"]["0"]["type"] = "".into()),
        ),
        (
            "af hash non-empty",
            json(|v| v["keyslots"]["0"]["af"]["hash"] = "".into()),
        ),
        (
            "digest type non-empty",
            json(|v| v["digests"]["0"]["type"] = "".into()),
        ),
        (
            "token type non-empty",
            json(|v| v["tokens"]["0"] = serde_json::json!({"type": "", "keyslots": []})),
        ),
        (
            "at least one segment",
            json(|v| v["segments"] = serde_json::json!({})),
        ),
        (
            "segments numbered without gaps",
            json(|v| {
                let s = v["segments"]["0"].take();
                v["segments"] = serde_json::json!({ "1": s });
                v["digests"]["0"]["segments"] = serde_json::json!(["1"]);
            }),
        ),
        (
            "segment size positive",
            json(|v| v["segments"]["0"]["size"] = "0".into()),
        ),
        (
            "segment size a multiple of 512",
            json(|v| v["segments"]["0"]["size"] = "1000".into()),
        ),
        (
            "segment integrity object complete",
            json(|v| v["segments"]["0"]["integrity"] = serde_json::json!({"type": "hmac(sha256)"})),
        ),
        (
            "every crypt segment has a digest",
            json(|v| v["digests"]["0"]["segments"] = serde_json::json!([])),
        ),
        (
            "keyslot area size positive",
            json(|v| v["keyslots"]["0"]["area"]["size"] = "0".into()),
        ),
        (
            "pbkdf2 kdf has iterations",
            json(|v| {
                v["keyslots"]["0"]["kdf"]
                    .as_object_mut()
                    .expect("kdf")
                    .remove("iterations");
            }),
        ),
        (
            "argon2 kdf has memory",
            json(|v| {
                let salt = v["keyslots"]["0"]["kdf"]["salt"].clone();
                v["keyslots"]["0"]["kdf"] =
                    serde_json::json!({"type": "argon2id", "time": 4, "cpus": 1, "salt": salt});
            }),
        ),
        (
            "optional members are not null",
            json(|v| v["config"]["flags"] = serde_json::Value::Null),
        ),
        (
            "at most one online-reencrypt requirement",
            json(|v| {
                v["config"]["requirements"] =
                    serde_json::json!({"mandatory": ["online-reencrypt-v2", "online-reencrypt-v3"]})
            }),
        ),
        (
            "an online-reencrypt requirement has its reencrypt keyslot",
            json(|v| {
                v["config"]["requirements"] =
                    serde_json::json!({"mandatory": ["online-reencrypt-v2"]})
            }),
        ),
        (
            "keyslots area at most 128 MiB",
            json(|v| v["config"]["keyslots_size"] = ((128u64 << 20) + 4096).to_string().into()),
        ),
        (
            "the device holds the header and keyslots areas",
            Box::new(|img| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(img)
                    .and_then(|f| f.set_len(1 << 20))
                    .expect("truncate");
            }),
        ),
    ]
}

/// Headers cryptsetup accepts that an earlier version of ours refused.
fn accepted_cases() -> Vec<Case> {
    vec![
        (
            "whitespace between the JSON object and its NUL",
            Box::new(|img| {
                edit_area(img, &|a| {
                    let end = a.iter().position(|&c| c == 0).expect("nul");
                    a[end] = b' ';
                })
            }),
        ),
        (
            "af stripes other than 4000 (read as 4000)",
            json(|v| v["keyslots"]["0"]["af"]["stripes"] = 3999.into()),
        ),
        (
            "a keyslot whose key does not fit its area is only unusable",
            json(|v| v["keyslots"]["0"]["key_size"] = 128.into()),
        ),
        (
            "a keyslot area offset inside a sector",
            json(|v| {
                let area = &mut v["keyslots"]["0"]["area"];
                let off: u64 = area["offset"].as_str().expect("s").parse().expect("n");
                area["offset"] = (off + 100).to_string().into();
                area["size"] = "257948".into();
            }),
        ),
    ]
}

#[test]
fn cryptsetups_validation_rules_hold_here() {
    let d = Dir::new();
    let key = d.key("k", b"pw");
    let fresh = |name: &str| cs_formatted(&d, name, 20, &key);
    for (i, (rule, edit)) in refused_cases().into_iter().enumerate() {
        let img = fresh(&format!("refused-{i}.img"));
        edit(&img);
        let before = contents(&img);
        let cs = cryptsetup(&["luksDump", &img]);
        assert_ne!(cs.code, 0, "cryptsetup accepts a header breaking '{rule}'");
        for args in [
            vec!["dump", &img],
            vec!["open", "--test-passphrase", "--key-file", &key, &img],
        ] {
            let r = ours(&args);
            assert_eq!(r.code, 1, "{rule}: {args:?}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1, "{rule}: {}", r.stderr);
        }
        assert_eq!(ours(&["is-luks", &img]).code, 1, "{rule}");
        assert_eq!(contents(&img), before, "{rule}: nothing changed");
    }
    for (i, (rule, edit)) in accepted_cases().into_iter().enumerate() {
        let img = fresh(&format!("accepted-{i}.img"));
        edit(&img);
        let cs = cryptsetup(&["luksDump", &img]);
        assert_eq!(cs.code, 0, "cryptsetup refuses '{rule}': {}", cs.stderr);
        let r = ours(&["dump", &img]);
        assert_eq!(r.code, 0, "{rule}: {}", r.stderr);
        assert_eq!(ours(&["is-luks", &img]).code, 0, "{rule}");
    }
}
