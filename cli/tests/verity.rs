//! The `verity` verbs against the real veritysetup: the same report, the same hash file, trees
//! each accepts from the other, and offline verification that names the bad block.

mod common;

use common::*;

const UUID: &str = "12345678-1234-4234-8234-123456789abc";

fn data_image(d: &Dir, name: &str, mib: usize) -> String {
    let path = d.p(name);
    let bytes: Vec<u8> = (0..mib << 20).map(|i| (i * 7 + i / 4096) as u8).collect();
    std::fs::write(&path, bytes).expect("write data");
    path
}

fn root_of(report: &str) -> String {
    report
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .expect("a Root hash line")
        .trim()
        .to_owned()
}

#[test]
fn format_report_and_hash_file_equal_veritysetups() {
    let d = Dir::new();
    let data = data_image(&d, "data.img", 3);
    let cases: [&[&str]; 3] = [
        &[],
        &[
            "--hash",
            "sha1",
            "--data-block-size",
            "512",
            "--hash-block-size",
            "1024",
        ],
        &["--hash", "sha512", "--salt", "-"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let (theirs, ours) = (d.p(&format!("t{i}.hash")), d.p(&format!("o{i}.hash")));
        let salt: &[&str] = if extra.contains(&"--salt") {
            &[]
        } else {
            &["--salt", "0011aabb"]
        };
        let args = [&["format", &data][..], &["--uuid", UUID], salt, extra].concat();
        let t = ok(veritysetup(&[&args[..2], &[&theirs], &args[2..]].concat()));
        let o = ok(ours_verity(&[&args[..2], &[&ours], &args[2..]].concat()));
        assert_eq!(o.stdout.replace(&ours, &theirs), t.stdout, "case {extra:?}");
        assert_eq!(contents(&ours), contents(&theirs), "case {extra:?}");
        let dump = ok(veritysetup(&["dump", &ours])).stdout;
        assert_eq!(ok(ours_verity(&["dump", &ours])).stdout, dump);
        // Each verifies the other's tree.
        let root = root_of(&o.stdout);
        ok(veritysetup(&["verify", &data, &ours, &root]));
        ok(ours_verity(&["verify", &data, &theirs, &root]));
    }
}

#[test]
fn random_salt_and_root_hash_file() {
    let d = Dir::new();
    let data = data_image(&d, "data.img", 1);
    let (hash, rh) = (d.p("h"), d.p("root"));
    let o = ok(ours_verity(&[
        "format",
        &data,
        &hash,
        "--root-hash-file",
        &rh,
    ]));
    let root = std::fs::read_to_string(&rh).expect("root hash file");
    assert_eq!(root, root_of(&o.stdout));
    ok(veritysetup(&["verify", &data, &hash, &root]));
    ok(ours_verity(&[
        "verify",
        &data,
        &hash,
        "--root-hash-file",
        &rh,
    ]));
    let json = ok(ours_verity(&["format", &data, &d.p("h2"), "--json"])).stdout;
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["data_blocks"], 256);
    assert_eq!(v["root_hash"].as_str().map(str::len), Some(64));
}

#[test]
fn hash_area_after_the_data_in_one_file() {
    let d = Dir::new();
    let data = data_image(&d, "both.img", 2);
    let off = (2u64 << 20).to_string();
    let o = ok(ours_verity(&[
        "format",
        &data,
        &data,
        "--hash-offset",
        &off,
        "--data-blocks",
        "512",
    ]));
    let root = root_of(&o.stdout);
    ok(veritysetup(&[
        "verify",
        "--hash-offset",
        &off,
        &data,
        &data,
        &root,
    ]));
}

#[test]
fn bad_blocks_and_bad_arguments_fail_cleanly() {
    let d = Dir::new();
    let data = data_image(&d, "data.img", 1);
    let hash = d.p("h");
    let root = root_of(&ok(ours_verity(&["format", &data, &hash])).stdout);
    let hash_before = contents(&hash);
    let mut bytes = contents(&data);
    bytes[37 * 4096 + 5] ^= 1;
    let bad = d.p("bad.img");
    std::fs::write(&bad, &bytes).expect("write");
    let zeros = "00".repeat(32);
    let new = d.p("new-hash");
    // A block that fails its hash is exit 2, as veritysetup's.
    fails_cleanly(
        &ours_verity(&["verify", &bad, &hash, &root]),
        2,
        "data block 37 does not match its hash",
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["verify", &data, &hash, &zeros],
            "does not match the root hash",
        ),
        (
            vec!["verify", &data, &hash, "xyz"],
            "Invalid root hash string specified.",
        ),
        (
            vec!["verify", &data, &hash, "abcd"],
            "Invalid root hash string specified.",
        ),
        (vec!["verify", &data, &hash], "no root hash given"),
        (vec!["verify", &data, &data, &root], "no verity signature"),
        (vec!["dump", &data], "no verity signature"),
        (
            vec!["format", &data, &new, "--salt", "0g"],
            "Invalid salt string specified.",
        ),
        (
            vec!["format", &data, &new, "--data-blocks", "9999"],
            "is more than the 256 blocks",
        ),
        (
            vec!["format", &data, &new, "--hash", "md5"],
            "unsupported hash 'md5'",
        ),
        (
            vec!["format", &data, &new, "--data-block-size", "300"],
            "data block size",
        ),
    ];
    for (args, needle) in cases {
        fails_cleanly(&ours_verity(&args), 1, needle);
    }
    assert_eq!(contents(&hash), hash_before);
    assert!(
        !std::path::Path::new(&new).exists(),
        "a refused format created a hash file"
    );
}
