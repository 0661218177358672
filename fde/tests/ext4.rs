//! Clearing ext4's read-only feature, checked by the real e2fsprogs on image files: after
//! `tune2fs -O read-only`, ours clears it, `e2fsck -fn` finds nothing wrong (the superblock
//! checksum is right, with and without metadata_csum) and `dumpe2fs` no longer lists it.

use std::path::Path;
use std::process::Command;

fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(name)
        .args(args)
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin")
        .output()
        .unwrap_or_else(|e| panic!("{name}: install Debian's e2fsprogs (.ci/run does): {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn features(img: &str) -> String {
    let (ok, text) = tool("dumpe2fs", &["-h", img]);
    assert!(ok, "{text}");
    text.lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap_or_default()
        .to_owned()
}

fn image(dir: &Path, name: &str, mkfs_features: &str) -> String {
    let img = dir.join(name).to_string_lossy().into_owned();
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(32 << 20))
        .expect("test setup");
    let (ok, text) = tool(
        "mkfs.ext4",
        &["-q", "-F", "-b", "4096", "-O", mkfs_features, &img],
    );
    assert!(ok, "{text}");
    img
}

#[test]
fn the_read_only_feature_is_cleared_as_tune2fs_would() {
    let dir = tempfile::tempdir().expect("test setup");
    for (name, feats) in [
        ("csum.img", "metadata_csum"),
        ("nocsum.img", "^metadata_csum"),
    ] {
        let img = image(dir.path(), name, feats);
        let before = std::fs::read(&img).expect("test setup");
        // Nothing to do on a file system without the feature: not a byte changes.
        assert!(!fde::ext4::clear_read_only(Path::new(&img)).expect("test setup"));
        assert_eq!(std::fs::read(&img).expect("test setup"), before);

        let (ok, text) = tool("tune2fs", &["-O", "read-only", &img]);
        assert!(ok, "{text}");
        assert!(features(&img).contains("read-only"), "{}", features(&img));
        let s = fde::ext4::read(Path::new(&img))
            .expect("test setup")
            .expect("test setup");
        assert!(s.read_only);
        assert_eq!((s.block_size, s.blocks), (4096, 8192));

        assert!(fde::ext4::clear_read_only(Path::new(&img)).expect("test setup"));
        assert!(
            !features(&img).contains("read-only"),
            "{name}: {}",
            features(&img)
        );
        assert_eq!(
            features(&img).contains("metadata_csum"),
            !feats.starts_with('^'),
            "{name}"
        );
        let (ok, text) = tool("e2fsck", &["-fn", &img]);
        assert!(ok, "{name}: e2fsck after ours: {text}");
    }
    // Not ext4: nothing read as a superblock, nothing written.
    let other = dir.path().join("zeros.img");
    std::fs::write(&other, vec![0u8; 8192]).expect("test setup");
    assert_eq!(fde::ext4::read(&other).expect("test setup"), None);
    assert!(!fde::ext4::clear_read_only(&other).expect("test setup"));
}
