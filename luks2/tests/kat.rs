//! Known-answer tests from `tests/data/kat/*.txt`.

use luks2::{Argon2Variant, HashAlg, Kdf};

fn hex(s: &str) -> Vec<u8> {
    luks2::hex::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn param(params: &str, name: &str) -> u32 {
    params
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("missing {name} in {params}"))
        .parse()
        .expect("number")
}

#[test]
fn kdf_vectors() {
    let text = include_str!("data/kat/kdf.txt");
    let mut count = 0;
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [alg, params, password, salt, want] = f[..] else {
            panic!("malformed line: {line}");
        };
        let salt = salt.as_bytes().to_vec();
        let kdf = match alg {
            "pbkdf2-sha1" | "pbkdf2-sha256" => Kdf::Pbkdf2 {
                hash: HashAlg::parse(&alg[7..]).expect("hash"),
                iterations: param(params, "iterations"),
                salt,
            },
            "argon2i" | "argon2id" => Kdf::Argon2 {
                variant: if alg == "argon2i" {
                    Argon2Variant::Argon2i
                } else {
                    Argon2Variant::Argon2id
                },
                time: param(params, "time"),
                memory_kib: param(params, "memory"),
                cpus: param(params, "cpus"),
                salt,
            },
            other => panic!("unknown algorithm {other}"),
        };
        let want = hex(want);
        let got = kdf.derive(password.as_bytes(), want.len()).expect("derive");
        assert_eq!(*got, want, "{line}");
        count += 1;
    }
    assert_eq!(count, 10, "every vector in the file ran");
}
