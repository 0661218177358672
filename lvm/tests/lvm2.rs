//! Against the real lvm2 tools (Debian's lvm2, on loop devices; no device-mapper needed): a VG
//! that vgcreate/lvcreate made reads here with the same LVs, UUIDs and extents; the LV we
//! create and extend, and the PV growth we record, pass vgck and read back in lvs/pvs; lvm2
//! keeps working on the metadata we wrote.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use lvm::PhysicalVolume;

/// A loop device over an image file, detached on drop.
struct Loop {
    dev: String,
    img: PathBuf,
    _dir: tempfile::TempDir,
}

impl Loop {
    fn new(mib: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("pv.img");
        File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .expect("image");
        let dev = run("losetup", &["-f", "--show", img.to_str().expect("utf8")]);
        Self {
            dev: dev.trim().to_owned(),
            img,
            _dir: dir,
        }
    }

    fn grow(&self, mib: u64) {
        OpenOptions::new()
            .write(true)
            .open(&self.img)
            .and_then(|f| f.set_len(mib << 20))
            .expect("grow");
        run("losetup", &["-c", &self.dev]);
    }

    /// An lvm2 command limited to this loop device, so that other volume groups on the
    /// machine (and parallel tests) do not interfere, and without metadata backups in /etc.
    fn lvm(&self, tool: &str, args: &[&str]) -> String {
        let mut all = vec![
            "--devices",
            self.dev.as_str(),
            "--config",
            "backup { backup = 0 archive = 0 }",
        ];
        all.extend_from_slice(args);
        run(tool, &all)
    }

    fn open(&self) -> PhysicalVolume<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.img)
            .expect("open image");
        PhysicalVolume::open(f).expect("our reader opens lvm2's PV")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} not found: install Debian's lvm2 (.ci/run does)"))
}

#[track_caller]
fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name))
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lvs` rows for the VG: (name, size in sectors, uuid without dashes).
fn lvs(l: &Loop, vg: &str) -> Vec<(String, u64, String)> {
    let out = l.lvm(
        "lvs",
        &[
            "--noheadings",
            "--nosuffix",
            "--units",
            "s",
            "--separator",
            ",",
            "-o",
            "lv_name,lv_size,lv_uuid",
            vg,
        ],
    );
    let mut rows: Vec<_> = out
        .lines()
        .map(|r| {
            let f: Vec<&str> = r.trim().split(',').collect();
            (
                f[0].to_owned(),
                f[1].parse().expect("size"),
                f[2].replace('-', ""),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn ours(vg: &lvm::VolumeGroup) -> Vec<(String, u64, String)> {
    let mut rows: Vec<_> = vg
        .lvs
        .iter()
        .map(|lv| {
            (
                lv.name.clone(),
                lv.extents() * vg.extent_size,
                lv.uuid.clone(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn lvm2s_volume_group_reads_and_our_changes_pass_vgck() {
    let l = Loop::new(64);
    let vg_name = format!("cptest{}", std::process::id());
    l.lvm("pvcreate", &["-q", &l.dev]);
    l.lvm("vgcreate", &["-q", &vg_name, &l.dev]);
    for (lv, size) in [("rootfs", "8M"), ("rootfs_hash", "4M")] {
        l.lvm(
            "lvcreate",
            &[
                "-q",
                "--driverloaded",
                "n",
                "-an",
                "-Zn",
                "-n",
                lv,
                "-L",
                size,
                &vg_name,
            ],
        );
    }
    let mut pv = l.open();
    let mut vg = pv.read_vg().expect("read lvm2's metadata");
    assert_eq!(vg.name, vg_name);
    assert_eq!(ours(&vg), lvs(&l, &vg_name));
    let vg_uuid = l.lvm("vgs", &["--noheadings", "-o", "vg_uuid", &vg_name]);
    assert_eq!(vg.uuid, vg_uuid.trim().replace('-', ""));
    // lvm2's table for rootfs: 8 MiB from pe_start, 4 MiB extents.
    let root = vg.lv("rootfs").expect("rootfs").clone();
    assert_eq!(
        vg.linear_table(&root).expect("table"),
        vec![(0, 16384, "pv0".to_owned(), 2048)]
    );
    assert_eq!(vg.dm_name(&root), format!("{vg_name}-rootfs"));
    assert_eq!(vg.dm_uuid(&root), format!("LVM-{}{}", vg.uuid, root.uuid));
    let seqno = vg.seqno;

    // The boot creates the delta from all free extents.
    vg.create_lv("delta", None, 1_700_000_000)
        .expect("create delta");
    pv.write_vg(&mut vg, 1_700_000_000).expect("write");
    l.lvm("vgck", &[&vg_name]);
    let reread = l.open().read_vg().expect("reread");
    assert_eq!(reread.seqno, seqno + 1);
    assert_eq!(ours(&reread), lvs(&l, &vg_name));
    assert_eq!(
        lvs(&l, &vg_name)
            .iter()
            .find(|r| r.0 == "delta")
            .map(|r| r.1),
        Some((15 - 3) * 8192),
        "delta takes the 12 free 4 MiB extents"
    );
    // lvm2 keeps working on our metadata: it adds an LV after ours.
    l.lvm(
        "lvreduce",
        &[
            "-q",
            "-f",
            "--driverloaded",
            "n",
            "-l",
            "-1",
            &format!("{vg_name}/delta"),
        ],
    );
    l.lvm(
        "lvcreate",
        &[
            "-q",
            "--driverloaded",
            "n",
            "-an",
            "-Zn",
            "-n",
            "extra",
            "-l",
            "1",
            &vg_name,
        ],
    );
    l.lvm("vgck", &[&vg_name]);
    let mut pv = l.open();
    let mut vg = pv.read_vg().expect("read after lvm2 wrote again");
    assert_eq!(ours(&vg), lvs(&l, &vg_name));

    // The disk grows: record the PV's new size and give delta everything free.
    l.grow(128);
    let pe_count = pv.resize(&mut vg, 128 << 11).expect("resize pv");
    assert_eq!(pe_count, (128 * 2048 - 2048) / 8192);
    vg.lv("delta").expect("delta");
    vg.extend_lv("delta", None).expect("extend");
    assert_eq!(vg.free_extents(), 0);
    pv.write_vg(&mut vg, 1_700_000_100).expect("write");
    l.lvm("vgck", &[&vg_name]);
    assert_eq!(ours(&vg), lvs(&l, &vg_name));
    let pvs = l.lvm(
        "pvs",
        &[
            "--noheadings",
            "-o",
            "pv_pe_count,pv_pe_alloc_count",
            &l.dev,
        ],
    );
    let counts: Vec<u64> = pvs
        .split_whitespace()
        .map(|n| n.parse().expect("count"))
        .collect();
    assert_eq!(counts, vec![pe_count, pe_count]);
    // delta now has two segments (the extents after "extra" are a second run).
    let delta = vg.lv("delta").expect("delta");
    assert_eq!(delta.segments.len(), 2);
    let table = vg.linear_table(delta).expect("table");
    assert_eq!(table[1].0, table[0].1, "segments follow each other");
}

#[test]
fn both_metadata_areas_get_our_write() {
    let l = Loop::new(32);
    let vg_name = format!("cpmda{}", std::process::id());
    l.lvm("pvcreate", &["-q", "--pvmetadatacopies", "2", &l.dev]);
    l.lvm("vgcreate", &["-q", "-s", "1m", &vg_name, &l.dev]);
    let mut pv = l.open();
    assert_eq!(pv.label().metadata_areas.len(), 2);
    let mut vg = pv.read_vg().expect("read");
    vg.create_lv("data", Some(5), 1_700_000_000)
        .expect("create");
    pv.write_vg(&mut vg, 1_700_000_000).expect("write");
    l.lvm("vgck", &[&vg_name]);
    assert_eq!(lvs(&l, &vg_name), ours(&vg));
    // Each area's committed text is the same new version.
    let mut pv = l.open();
    let areas = pv.label().metadata_areas.clone();
    let texts: Vec<Vec<u8>> = areas
        .iter()
        .map(|&a| {
            let h = lvm::disk::read_mda_header(pv.io_mut(), a).expect("header");
            lvm::disk::read_text(pv.io_mut(), &h).expect("text")
        })
        .collect();
    assert_eq!(texts[0], texts[1]);
    // Growing a PV with a second metadata area at its end is refused (lvm2 moves that area).
    let mut vg2 = vg.clone();
    assert!(matches!(
        pv.resize(&mut vg2, 64 << 11),
        Err(lvm::Error::Unsupported(_))
    ));
    // A flipped byte in one copy's text is caught by its checksum; the other copy serves, as
    // with lvm2; with both copies damaged, reading fails.
    let flip = |pv: &mut PhysicalVolume<File>, area| {
        let h = lvm::disk::read_mda_header(pv.io_mut(), area).expect("header");
        let at = h.start + h.committed.offset + 10;
        let mut b = [0u8; 1];
        luks2::BlockIo::read_exact_at(pv.io_mut(), &mut b, at).expect("read");
        b[0] ^= 1;
        luks2::BlockIo::write_all_at(pv.io_mut(), &b, at).expect("write");
    };
    flip(&mut pv, areas[0]);
    assert_eq!(pv.read_vg().expect("the other copy").seqno, vg.seqno);
    flip(&mut pv, areas[1]);
    assert!(matches!(pv.read_vg(), Err(lvm::Error::BadMetadataArea(_))));
}

/// A PV and VG made from nothing (as conversion writes them, no pvcreate/vgcreate): lvm2's
/// pvs, vgs (auto-activation off, as `vgcreate --setautoactivation n`), lvs and vgck accept
/// them, with our LVs at our extents.
#[test]
fn a_group_we_create_passes_vgck() {
    let l = Loop::new(64);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&l.img)
        .expect("open image");
    let (mut pv, mut vg) =
        PhysicalVolume::create(f, "cpnew", 8192, "/dev/vda4", 1_700_000_000).expect("create");
    vg.create_lv("rootfs", Some(5), 1_700_000_000)
        .expect("rootfs");
    vg.create_lv("rootfs_hash", Some(1), 1_700_000_000)
        .expect("hash");
    pv.write_vg(&mut vg, 1_700_000_000).expect("write");
    l.lvm("vgck", &["cpnew"]);
    let pvs = l.lvm(
        "pvs",
        &[
            "--noheadings",
            "--units",
            "s",
            "--nosuffix",
            "-o",
            "pv_uuid,pe_start,pv_pe_count",
        ],
    );
    let f: Vec<&str> = pvs.split_whitespace().collect();
    assert_eq!(f[0].replace('-', ""), pv.label().pv_uuid);
    assert_eq!(f[1], "2048");
    assert_eq!(f[2], "15", "(64 MiB - 1 MiB) / 4 MiB extents");
    let auto = l.lvm("vgs", &["--noheadings", "-o", "autoactivation", "cpnew"]);
    assert_eq!(auto.trim(), "", "auto-activation is off: {auto:?}");
    assert_eq!(lvs(&l, "cpnew"), ours(&vg));
    // And our reader reads it back from disk.
    let back = l.open().read_vg().expect("read back");
    assert_eq!(ours(&back), ours(&vg));
    assert_eq!(back.seqno, 2);
}
