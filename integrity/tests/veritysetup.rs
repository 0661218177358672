//! Hash trees equal to `veritysetup format`'s, byte for byte, for every block size and hash.

use std::path::Path;
use std::process::Command;

use integrity::verity::{self, Superblock, VerityParams};
use integrity::Error;
use luks2::{HashAlg, MemoryDevice};

const UUID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn veritysetup(args: &[&str]) -> String {
    let bin = ["/usr/sbin/veritysetup", "/sbin/veritysetup"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("veritysetup not found: install Debian's cryptsetup-bin (.ci/run does)");
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("run veritysetup");
    assert!(
        out.status.success(),
        "veritysetup {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn root_hash(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .expect("Root hash line")
        .trim()
        .to_owned()
}

fn hex(b: &[u8]) -> String {
    luks2::hex::encode(b)
}

fn uuid_bytes() -> [u8; 16] {
    let h: String = UUID.chars().filter(|c| *c != '-').collect();
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex");
    }
    u
}

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A scratch directory with the paths of a data and a hash file in it (as text, for
/// veritysetup's command line).
struct Files {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    hash: std::path::PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let (data, hash) = (dir.path().join("data"), dir.path().join("hash"));
        Self {
            _dir: dir,
            data,
            hash,
        }
    }

    fn names(&self) -> (String, String) {
        let text = |p: &Path| p.to_str().expect("utf8").to_owned();
        (text(&self.data), text(&self.hash))
    }
}

#[test]
fn trees_equal_veritysetups() {
    let files = Files::new();
    let (data_path, hash_path) = (files.data.clone(), files.hash.clone());
    let (dp, hp) = files.names();
    let (dp, hp) = (dp.as_str(), hp.as_str());
    let mut cases = 0;
    for hash in ["sha1", "sha256", "sha512"] {
        for (dbs, hbs) in [
            (4096u32, 4096u32),
            (512, 512),
            (4096, 512),
            (512, 4096),
            (1024, 2048),
        ] {
            // One block (no tree: its hash is the root hash); an odd number, so that no
            // level is full; both formats (0 packs SHA-1 digests unpadded).
            for (salt, blocks, format) in [Some("00112233445566778899"), None, Some("-")]
                .into_iter()
                .flat_map(|s| [(s, 1u64), (s, 1031)])
                .flat_map(|(s, b)| [(s, b, 1u32), (s, b, 0)])
            {
                let bytes = data(blocks as usize * dbs as usize);
                std::fs::write(&data_path, &bytes).expect("data");
                let _ = std::fs::remove_file(&hash_path);
                let (d, h, f) = (dbs.to_string(), hbs.to_string(), format.to_string());
                let mut args = vec![
                    "format",
                    dp,
                    hp,
                    "--hash",
                    hash,
                    "--data-block-size",
                    &d,
                    "--hash-block-size",
                    &h,
                    "--format",
                    &f,
                    "--uuid",
                    UUID,
                ];
                let salt_arg;
                if let Some(s) = salt {
                    salt_arg = format!("--salt={s}");
                    args.push(&salt_arg);
                }
                let theirs_root = root_hash(&veritysetup(&args));
                let theirs = std::fs::read(&hash_path).expect("hash file");
                let sb = Superblock::parse(&theirs).expect("their superblock");

                let mut p =
                    VerityParams::new(blocks, HashAlg::parse(hash).expect("hash"), sb.salt.clone());
                p.data_block_size = dbs;
                p.hash_block_size = hbs;
                p.hash_type = format;
                p.uuid = uuid_bytes();
                let mut ours = MemoryDevice::new(theirs.len());
                let root =
                    verity::format(&mut MemoryDevice::from_vec(bytes.clone()), &mut ours, &p)
                        .expect("format");
                let what = format!(
                    "{hash} data {dbs} hash {hbs} salt {salt:?} blocks {blocks} format {format}"
                );
                assert_eq!(sb.hash_type, format, "{what}");
                assert_eq!(hex(&root), theirs_root, "{what}");
                assert_eq!(ours.as_slice(), &theirs[..], "{what}: hash files differ");
                assert_eq!(p.hash_area_size(), theirs.len() as u64, "{what}");
                verity::verify(&mut MemoryDevice::from_vec(bytes), &mut ours, &p, &root)
                    .expect("verify");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 180);
}

#[test]
fn hash_area_after_the_data_in_the_same_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("image");
    let p_str = path.to_str().expect("utf8");
    let blocks = 2000u64;
    let mut bytes = data(blocks as usize * 4096);
    bytes.resize(bytes.len() + (1 << 20), 0);
    std::fs::write(&path, &bytes).expect("image");
    let offset = (blocks * 4096).to_string();
    let theirs_root = root_hash(&veritysetup(&[
        "format",
        p_str,
        p_str,
        "--data-blocks",
        "2000",
        "--hash-offset",
        &offset,
        "--salt",
        "ab",
        "--uuid",
        UUID,
    ]));
    let theirs = std::fs::read(&path).expect("image");

    let mut p = VerityParams::new(blocks, HashAlg::Sha256, vec![0xab]);
    p.uuid = uuid_bytes();
    p.hash_offset = blocks * 4096;
    let mut ours = MemoryDevice::from_vec(bytes);
    let mut data_dev = MemoryDevice::from_vec(ours.as_slice().to_vec());
    let root = verity::format(&mut data_dev, &mut ours, &p).expect("format");
    assert_eq!(hex(&root), theirs_root);
    assert_eq!(ours.as_slice(), &theirs[..]);
}

#[test]
fn verify_names_the_first_bad_block() {
    let blocks = 700u64;
    let bytes = data(blocks as usize * 4096);
    let p = VerityParams::new(blocks, HashAlg::Sha256, vec![9; 32]);
    let mut hash = MemoryDevice::new(p.hash_area_size() as usize);
    let root =
        verity::format(&mut MemoryDevice::from_vec(bytes.clone()), &mut hash, &p).expect("format");

    let mut bad = bytes.clone();
    bad[345 * 4096 + 17] ^= 1;
    bad[600 * 4096] ^= 1;
    let err = verity::verify(
        &mut MemoryDevice::from_vec(bad),
        &mut hash.clone(),
        &p,
        &root,
    )
    .expect_err("corrupt");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                area: "data",
                block: 345,
                offset: 1_413_120
            }
        ),
        "{err}"
    );

    // Bottom up, as veritysetup: a flipped byte in level 0 (after the superblock block and
    // the one top block) names the data block whose hash it spoils (block 1 of level 0,
    // entry 28: data block 128 + 28), at its position on the data device.
    let mut bad_hash = hash.clone();
    bad_hash.as_mut_slice()[3 * 4096 + 28 * 32] ^= 1;
    let err = verity::verify(
        &mut MemoryDevice::from_vec(bytes.clone()),
        &mut bad_hash,
        &p,
        &root,
    )
    .expect_err("corrupt");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                area: "data",
                block: 156,
                offset: 638_976
            }
        ),
        "{err}"
    );
    // A flipped byte in the top block (entry 3) names level-0 block 3 by its position on
    // the hash device: veritysetup's "Verification failed at position 20480."
    let mut bad_top = hash.clone();
    bad_top.as_mut_slice()[4096 + 3 * 32 + 7] ^= 1;
    let err = verity::verify(
        &mut MemoryDevice::from_vec(bytes.clone()),
        &mut bad_top,
        &p,
        &root,
    )
    .expect_err("corrupt");
    assert!(
        matches!(
            err,
            Error::Corrupt {
                area: "hash",
                block: 4,
                offset: 20_480
            }
        ),
        "{err}"
    );

    let err = verity::verify(
        &mut MemoryDevice::from_vec(bytes),
        &mut hash,
        &p,
        &[0u8; 32],
    )
    .expect_err("root");
    assert!(matches!(err, Error::WrongRootHash), "{err}");
}

/// veritysetup verify's verdict on files: exit code and its last error line.
fn veritysetup_verify(data: &str, hash: &str, root: &str) -> (i32, String) {
    let bin = ["/usr/sbin/veritysetup", "/sbin/veritysetup"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("veritysetup");
    let out = Command::new(bin)
        .args(["verify", data, hash, root])
        .output()
        .expect("run veritysetup");
    let err = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        err.lines().next().unwrap_or("").to_owned(),
    )
}

#[test]
fn every_flipped_tree_byte_gets_veritysetups_verdict() {
    // SHA-1 in 1024-byte hash blocks leaves unused bytes in both formats: 12 after each
    // 20-byte digest in format 1, 384 at each block's end in format 0; every 11th byte of the
    // tree is flipped in turn, and the verdict (position, spare area or root hash) must be
    // veritysetup's.
    let files = Files::new();
    let (data_path, hash_path) = (files.data.clone(), files.hash.clone());
    let (dp, hp) = files.names();
    let (dp, hp) = (dp.as_str(), hp.as_str());
    let blocks = 300u64;
    let bytes = data(blocks as usize * 1024);
    std::fs::write(&data_path, &bytes).expect("data");
    let mut flips = 0;
    for format in [1u32, 0] {
        let _ = std::fs::remove_file(&hash_path);
        let f = format.to_string();
        let root = root_hash(&veritysetup(&[
            "format",
            dp,
            hp,
            "--hash",
            "sha1",
            "--data-block-size",
            "1024",
            "--hash-block-size",
            "1024",
            "--format",
            &f,
            "--uuid",
            UUID,
            "--salt",
            "00",
        ]));
        let good = std::fs::read(&hash_path).expect("hash");
        let sb = Superblock::parse(&good).expect("superblock");
        let p = sb.params(0).expect("params");
        let root_bytes = verity::parse_hex(&root).expect("hex");
        for at in (1024..good.len()).step_by(11) {
            let mut bad = good.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&hash_path, &bad).expect("hash");
            let (code, line) = veritysetup_verify(dp, hp, &root);
            let ours = verity::verify(
                &mut MemoryDevice::from_vec(bytes.clone()),
                &mut MemoryDevice::from_vec(bad),
                &p,
                &root_bytes,
            );
            let said = match &ours {
                Err(Error::Corrupt { offset, .. }) => {
                    (2, format!("Verification failed at position {offset}."))
                }
                Err(Error::SpareNotZero { offset }) => {
                    (2, format!("Spare area is not zeroed at position {offset}."))
                }
                Err(Error::WrongRootHash) => (1, "Verification of root hash failed.".into()),
                other => panic!("format {format}, byte {at}: {other:?}"),
            };
            assert_eq!(said, (code, line), "format {format}, byte {at} flipped");
            flips += 1;
        }
    }
    assert!(flips > 1500, "{flips} flips");
}

#[test]
fn trees_over_several_chunks_equal_veritysetups() {
    // Level 0 is computed and checked 16 MiB of data at a time: 9000 blocks of 4096 bytes
    // span three chunks, the last one partial.
    let files = Files::new();
    let (data_path, hash_path) = (files.data.clone(), files.hash.clone());
    let (dp, hp) = files.names();
    let (dp, hp) = (dp.as_str(), hp.as_str());
    let blocks = 9000usize;
    let bytes = data(blocks * 4096);
    std::fs::write(&data_path, &bytes).expect("data");
    for (hash, format) in [("sha256", "1"), ("sha1", "0")] {
        let _ = std::fs::remove_file(&hash_path);
        let root = root_hash(&veritysetup(&[
            "format", dp, hp, "--hash", hash, "--format", format, "--uuid", UUID, "--salt", "00",
        ]));
        let theirs = std::fs::read(&hash_path).expect("hash");
        let p = Superblock::parse(&theirs)
            .expect("superblock")
            .params(0)
            .expect("params");
        let mut ours = MemoryDevice::new(theirs.len());
        let data_dev = || MemoryDevice::from_vec(bytes.clone());
        let ours_root = verity::format(&mut data_dev(), &mut ours, &p).expect("format");
        assert_eq!(hex(&ours_root), root, "{hash} format {format}");
        assert_eq!(ours.as_slice(), &theirs[..], "{hash} format {format}");
        verity::verify(&mut data_dev(), &mut ours, &p, &ours_root).expect("verify");
        // A bad block in the third chunk is named, as veritysetup names it.
        let mut bad = bytes.clone();
        bad[8500 * 4096 + 1] ^= 1;
        let err = verity::verify(&mut MemoryDevice::from_vec(bad), &mut ours, &p, &ours_root)
            .expect_err("corrupt");
        assert!(
            matches!(err, Error::Corrupt { area: "data", block: 8500, offset } if offset == 8500 * 4096),
            "{err}"
        );
    }
}
