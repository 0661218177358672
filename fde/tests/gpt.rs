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

/// A table we write from nothing equals, field for field as `sgdisk -i` prints them, the one
/// sgdisk makes with the same partitions; `sgdisk -v` finds no problem; our reader reads it.
#[test]
fn a_new_table_is_what_sgdisk_writes() {
    use fde::gpt::{guid_bytes, guid_text};
    let d = tempfile::tempdir().expect("dir");
    let theirs = d.path().join("theirs.img");
    let ours = d.path().join("ours.img");
    let (theirs, ours) = (theirs.to_str().expect("utf8"), ours.to_str().expect("utf8"));
    set_len(theirs, 64);
    set_len(ours, 64);
    sgdisk(&[
        "-n",
        "1:2048:+8M",
        "-t",
        "1:ef00",
        "-c",
        "1:EFI System",
        "-n",
        "2:0:+16M",
        "-t",
        "2:8300",
        "-c",
        "2:boot",
        "-n",
        "3:0:0",
        "-t",
        "3:8e00",
        "-c",
        "3:primary",
        theirs,
    ]);
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(theirs)
        .expect("open");
    let parts = fde::gpt::partitions(&mut f, 512).expect("read sgdisk's table");
    let disk_guid = {
        let mut h = [0u8; 512];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut h, 512).expect("header");
        let mut g = [0u8; 16];
        g.copy_from_slice(&h[56..72]);
        g
    };
    let new = parts.clone();
    let mut o = OpenOptions::new()
        .read(true)
        .write(true)
        .open(ours)
        .expect("open");
    fde::gpt::write_table(&mut o, 512, disk_guid, &new).expect("write");
    let v = sgdisk(&["-v", ours]);
    assert!(v.contains("No problems found"), "{v}");
    for n in 1..=3 {
        assert_eq!(
            sgdisk(&["-i", &n.to_string(), ours]),
            sgdisk(&["-i", &n.to_string(), theirs])
        );
    }
    assert_eq!(
        sgdisk(&["-p", ours]),
        sgdisk(&["-p", theirs]).replace(theirs, ours)
    );
    assert_eq!(guid_text(&parts[0].type_guid), fde::gpt::ESP_TYPE);
    assert_eq!(guid_bytes(fde::gpt::LINUX_LVM_TYPE), parts[2].type_guid);
    // Overlaps and out-of-range partitions are refused before anything is written.
    let mut bad = new.clone();
    bad[1].first_lba = bad[0].last_lba;
    assert!(fde::gpt::write_table(&mut o, 512, disk_guid, &bad).is_err());
    bad = new.clone();
    bad[2].last_lba += 1_000_000;
    assert!(fde::gpt::write_table(&mut o, 512, disk_guid, &bad).is_err());
}
