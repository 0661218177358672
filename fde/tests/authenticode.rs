//! Authenticode digests against pesign (Debian's pesign) on the EFI binaries Debian ships
//! (systemd-boot-efi), unsigned and signed by sbsign (sbsigntool) with a key made here: the
//! digest equals pesign's, and the signature itself is left out of it.

use std::path::Path;
use std::process::Command;

use fde::authenticode::{digest, HashAlgo};

const IMAGES: [&str; 2] = [
    "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
];

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
        panic!("{cmd}: install pesign, sbsigntool, openssl (.ci/run does): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pesign(file: &str, alg: &str) -> String {
    let out = run("pesign", &["-h", "-d", alg, "-i", file]);
    out.trim()
        .strip_prefix("hash: ")
        .unwrap_or_else(|| panic!("pesign printed {out}"))
        .to_owned()
}

/// Whole-file digests (an initrd's measurement) equal openssl dgst's, SM3 included.
#[test]
fn file_digests_equal_openssl() {
    let image = IMAGES[0];
    let data = std::fs::read(image).expect("read");
    for (alg, name) in [
        (HashAlgo::Sha1, "-sha1"),
        (HashAlgo::Sha256, "-sha256"),
        (HashAlgo::Sha384, "-sha384"),
        (HashAlgo::Sm3, "-sm3"),
    ] {
        let out = run("openssl", &["dgst", name, "-r", image]);
        let theirs = out.split_whitespace().next().expect("digest");
        assert_eq!(hex(&alg.file_digest(&data)), theirs, "{name}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn digests_equal_pesign_and_ignore_the_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let (key, cert) = (key.to_str().expect("utf8"), cert.to_str().expect("utf8"));
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=cryptpilot test",
        ],
    );
    for image in IMAGES {
        assert!(
            Path::new(image).exists(),
            "{image}: install systemd-boot-efi"
        );
        let signed = dir.path().join("signed.efi");
        let signed = signed.to_str().expect("utf8");
        run(
            "sbsign",
            &["--key", key, "--cert", cert, "--output", signed, image],
        );
        let (plain, with_sig) = (
            std::fs::read(image).expect("read"),
            std::fs::read(signed).expect("read"),
        );
        assert_ne!(plain.len(), with_sig.len(), "sbsign added no signature");
        // sbsign pads the image to 8 bytes before it appends the certificate table: the
        // signed image's digest is the padded unsigned one's.
        let mut padded = plain.clone();
        padded.resize(plain.len().div_ceil(8) * 8, 0);
        for (alg, name) in [(HashAlgo::Sha256, "sha256"), (HashAlgo::Sha1, "sha1")] {
            let ours = hex(&digest(&plain, alg).expect("digest"));
            assert_eq!(ours, pesign(image, name), "{image} {name}");
            let ours_signed = hex(&digest(&with_sig, alg).expect("digest"));
            assert_eq!(pesign(signed, name), ours_signed, "{image} signed, pesign");
            let ours_padded = hex(&digest(&padded, alg).expect("digest"));
            assert_eq!(ours_padded, ours_signed, "{image}");
        }
        let a = digest(&padded, HashAlgo::Sha384).expect("digest");
        assert_eq!(a.len(), 48);
        assert_eq!(digest(&with_sig, HashAlgo::Sha384).expect("digest"), a);
        // SM3 (no independent Authenticode tool has it): a 32-byte digest the signature does
        // not change either.
        let sm3 = digest(&padded, HashAlgo::Sm3).expect("digest");
        assert_eq!(sm3.len(), 32);
        assert_eq!(digest(&with_sig, HashAlgo::Sm3).expect("digest"), sm3);
        // A changed byte inside a section changes the digest.
        let mut changed = padded.clone();
        let at = plain.len() / 2;
        changed[at] ^= 1;
        assert_ne!(digest(&changed, HashAlgo::Sha384).expect("digest"), a);
    }
}
