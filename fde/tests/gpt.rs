//! Growing the last GPT partition, checked by the real sgdisk (Debian's gdisk) on image files:
//! the table verifies, the partition ends where `sgdisk -e` puts the last usable sector, and
//! every other field of every partition is unchanged.

use std::fs::OpenOptions;
use std::process::Command;

fn sgdisk(args: &[&str]) -> String {
    let out = Command::new("sgdisk")
        .args(args)
        .output()
        .expect("sgdisk: install Debian's gdisk (.ci/run does)");
    assert!(
        out.status.success(),
        "sgdisk {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn grow(img: &str) -> fde::gpt::Grown {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open");
    fde::gpt::grow_last_partition(&mut f, 512).expect("grow")
}

fn set_len(img: &str, mib: u64) {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(img)
        .and_then(|f| f.set_len(mib << 20))
        .expect("size");
}

/// `sgdisk -i N` without the size lines.
fn info(img: &str, n: u32) -> Vec<String> {
    sgdisk(&["-i", &n.to_string(), img])
        .lines()
        .filter(|l| !l.starts_with("Last sector") && !l.starts_with("Partition size"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_last_partition_grows_as_sgdisk_would_put_it() {
    let d = tempfile::tempdir().expect("dir");
    let img = d.path().join("disk.img");
    let img = img.to_str().expect("utf8");
    set_len(img, 64);
    sgdisk(&[
        "-n",
        "1:2048:+16M",
        "-t",
        "1:ef00",
        "-c",
        "1:EFI",
        "-n",
        "2:0:0",
        "-t",
        "2:8e00",
        "-c",
        "2:primary",
        img,
    ]);
    let before = (info(img, 1), info(img, 2));
    // Nothing to do on a disk that did not grow: no byte changes.
    let bytes = std::fs::read(img).expect("read");
    let g = grow(img);
    assert_eq!(g.old_last, g.new_last);
    assert_eq!(std::fs::read(img).expect("read"), bytes);

    set_len(img, 128);
    let g = grow(img);
    assert_eq!(g.number, 2);
    let v = sgdisk(&["-v", img]);
    assert!(v.contains("No problems found"), "{v}");
    // sgdisk's own answer on a copy: move the backup to the end, read the last usable sector.
    let copy = d.path().join("copy.img");
    std::fs::copy(img, &copy).expect("copy");
    let p = sgdisk(&["-e", "-p", copy.to_str().expect("utf8")]);
    let last_usable: u64 = p
        .lines()
        .find_map(|l| l.split("last usable sector is ").nth(1))
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("{p}"));
    assert_eq!(g.new_last, last_usable);
    let i2 = sgdisk(&["-i", "2", img]);
    assert!(i2.contains(&format!("Last sector: {last_usable} ")), "{i2}");
    assert_eq!((info(img, 1), info(img, 2)), before);
    // The old backup header is gone from inside the partition.
    let bytes = std::fs::read(img).expect("read");
    let old_backup = (64u64 << 20) as usize - 512;
    assert!(bytes[old_backup..old_backup + 8].iter().all(|&b| b == 0));
    // A damaged entry array is refused before any write.
    let mut bad = bytes.clone();
    bad[1024 + 200] ^= 1;
    std::fs::write(img, &bad).expect("write");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("open");
    set_len(img, 192);
    let e = fde::gpt::grow_last_partition(&mut f, 512).expect_err("damaged");
    assert!(e.to_string().contains("checksum"), "{e}");
    let mut after = std::fs::read(img).expect("read");
    after.truncate(bad.len());
    assert_eq!(after, bad);
}
