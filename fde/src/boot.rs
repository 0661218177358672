//! The boot stage before the root file system is mounted (`initrd-fde-before-sysroot`): bring
//! up the `cryptpilot` volume group, open the root file system (LUKS2 when configured) under
//! dm-verity with the root hash the initrd carries, make or open the encrypted delta, and
//! layer the writes over the read-only root so that `/dev/mapper/rootfs` is the device to
//! mount. Every step logs one line; any failure stops the stage (fail closed).

use std::path::{Path, PathBuf};

use activate::{DmName, Mapper, OnCorruption, VerityOptions};
use keyprovider::for_config;

use crate::config::{DeltaBackend, DeltaLocation, Loaded};
use crate::{Error, Result};

/// The volume group the full-disk layout uses.
pub const VG: &str = "cryptpilot";
/// dm-snapshot chunk size in sectors (the existing tool's 8 KiB).
const SNAPSHOT_CHUNK: u64 = 16;
/// The persistent dm-snapshot header's magic, little-endian at the start of the COW device.
const SNAPSHOT_MAGIC: [u8; 4] = 0x7041_6e53u32.to_le_bytes();

/// Where the stage reports: one line per step, details when verbose.
pub trait Log {
    /// A step.
    fn step(&mut self, line: &str);
    /// A detail of a step, shown when `global.toml` asks for `[boot] verbose`.
    fn detail(&mut self, _line: &str) {}
}

/// What the stage is given.
#[derive(Debug)]
pub struct Stage<'a> {
    /// The initrd's configuration.
    pub config: &'a Loaded,
    /// The physical volume holding the group (the disk's last partition).
    pub pv: PathBuf,
}

/// An LV of the layout by its device-mapper name (`cryptpilot-<lv>`: the fixed names hold
/// no `-` for lvm2 to double). Not the `/dev/cryptpilot/<lv>` link: with udev running, its
/// LVM rules own that link and may drop it while the stage opens it.
fn lv_path(lv: &str) -> PathBuf {
    activate::mapper_path(&format!("{VG}-{lv}"))
}

fn name(n: &str) -> Result<DmName> {
    Ok(DmName::new(n).map_err(activate::Error::dm(n))?)
}

/// Runs the stage: afterwards `/dev/mapper/rootfs` is the root file system's device.
///
/// # Errors
/// The first step that fails: a configuration, metadata, key provider, unlock, root hash or
/// mapping error.
pub fn before_sysroot(s: &Stage<'_>, log: &mut dyn Log) -> Result<PathBuf> {
    let mapper = Mapper::open()?;
    let result = stage(s, &mapper, log);
    if result.is_err() {
        // Fail closed: no `rootfs` is left for a mount (systemd's sysroot.mount waits for
        // that device) when any later step failed.
        for n in ["rootfs", "rootfs_extended"] {
            if let Ok(n) = name(n) {
                if mapper.is_active(&n) {
                    let _ = mapper.close(&n);
                }
            }
        }
    }
    result
}

fn stage(s: &Stage<'_>, mapper: &Mapper, log: &mut dyn Log) -> Result<PathBuf> {
    let cfg = &s.config.fde;
    let overlay = cfg.rootfs.delta_backend == DeltaBackend::Overlayfs;
    let ram = cfg.rootfs.delta_location == DeltaLocation::Ram;
    // The whole disk stays open and locked until the group is active: udev re-reads the
    // partition table of a disk closed after writing unless someone holds this lock, and
    // would take the PV away while it is being opened (once the PV is in use, it cannot).
    let _disk_lock = if ram {
        None
    } else {
        let lock = grow_partition(&s.pv, log)?;
        ensure_delta_lv(&s.pv, log)?;
        lock
    };
    let lvs = crate::vg::activate(mapper, &s.pv)?;
    log.step(&format!(
        "volume group {VG} active: {} logical volumes",
        lvs.len()
    ));
    for lv in &lvs {
        log.detail(&format!("logical volume {}", lv.display()));
    }

    // The root file system: LUKS2 first when configured, then dm-verity over the plaintext
    // (itself the root with the overlayfs backend, the snapshot's origin otherwise).
    let mut data = lv_path("rootfs");
    if let Some(p) = &cfg.rootfs.encrypt {
        let v = volume("rootfs_decrypted", &data, false, p.clone(), None);
        volumes::lifecycle::open(&v, false, &mut Quiet)?;
        data = activate::mapper_path("rootfs_decrypted");
        log.step("rootfs unlocked");
    }
    let verity_name = name(if overlay { "rootfs" } else { "rootfs_verity" })?;
    open_verity(
        mapper,
        &data,
        &lv_path("rootfs_hash"),
        &s.config.metadata.root_hash,
        &verity_name,
        log,
    )?;
    log.step("rootfs verified by dm-verity against the initrd's root hash");

    if ram {
        if overlay {
            log.step("rootfs ready (read-only): writes will go to memory (tmpfs)");
            return Ok(activate::mapper_path("rootfs"));
        }
        let cow = zram(mem_total()?)?;
        let root = snapshot(mapper, &verity_name, &cow, false, log)?;
        writable(&root, log)?;
        log.step(&format!(
            "rootfs ready: writes go to memory ({})",
            cow.display()
        ));
        return Ok(root);
    }

    // The delta: recreated when it is wiped every boot, its key is temporary or it was never
    // finished; opened otherwise. With the overlayfs backend it holds an ext4.
    let delta = volume(
        "delta",
        &lv_path("delta"),
        cfg.delta.integrity,
        cfg.delta.encrypt.clone(),
        overlay.then_some(volumes::MakeFs::Ext4),
    );
    let temporary = for_config(&cfg.delta.encrypt).is_temporary();
    let fresh = temporary
        || cfg.rootfs.delta_location == DeltaLocation::Disk
        || volumes::lifecycle::state(&delta) != volumes::lifecycle::State::Initialized;
    if fresh && !temporary {
        volumes::lifecycle::init_open(&delta, &mut Quiet)?;
    } else {
        volumes::lifecycle::open(&delta, false, &mut Quiet)?;
    }
    log.step(if fresh {
        "delta created and opened"
    } else {
        "delta opened"
    });
    let persistent = cfg.rootfs.delta_location == DeltaLocation::DiskPersist;
    let kept = if persistent {
        "kept across boots"
    } else {
        "wiped every boot"
    };
    if overlay {
        log.step(&format!(
            "rootfs ready (read-only): writes will go to the encrypted delta ({kept})"
        ));
        return Ok(activate::mapper_path("rootfs"));
    }
    let cow = activate::mapper_path("delta");
    prepare_cow(&cow, persistent && !fresh)?;
    let root = snapshot(mapper, &verity_name, &cow, persistent, log)?;
    writable(&root, log)?;
    log.step(&format!(
        "rootfs ready: writes go to the encrypted delta ({kept})"
    ));
    Ok(root)
}

/// A converted rootfs carries ext4's `read-only` feature (it must not change under verity);
/// the snapshot takes writes, so it is cleared there (the change lands in the delta).
fn writable(root: &Path, log: &mut dyn Log) -> Result<()> {
    if crate::ext4::clear_read_only(root)? {
        log.step("rootfs: ext4 read-only feature cleared in the delta");
    }
    Ok(())
}

/// The stage after the root file system is mounted (`initrd-fde-after-sysroot`): it checks
/// that `sysroot` is mounted from `/dev/mapper/rootfs` (and not from anything an attacker
/// could have put in its place). With the dm-snapshot backend it then grows the file system
/// over the space the delta adds; with the overlayfs backend it puts the writable overlay
/// over `sysroot` ([`crate::overlay`]).
///
/// # Errors
/// [`Error::Io`] when `sysroot` is not mounted from the rootfs mapping, or a mount fails.
pub fn after_sysroot(config: &Loaded, sysroot: &Path, log: &mut dyn Log) -> Result<()> {
    let mapper = Mapper::open()?;
    let root = name("rootfs")?;
    let s = mapper.status(&root)?.ok_or_else(|| {
        activate::Error::dm("rootfs")(activate::DmError::NotFound("rootfs".into()))
    })?;
    let want = format!("{}:{}", s.major, s.minor);
    let info = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(info).map_err(Error::io(info, "read"))?;
    let mounted = mount_source(&text, sysroot);
    if mounted.as_deref() != Some(want.as_str()) {
        return Err(Error::io(sysroot, "trust")(std::io::Error::other(format!(
            "it is mounted from device {}, not from /dev/mapper/rootfs ({want})",
            mounted.as_deref().unwrap_or("none (not mounted)")
        ))));
    }
    log.step(&format!(
        "{} is the verity-protected rootfs",
        sysroot.display()
    ));
    if config.fde.rootfs.delta_backend == DeltaBackend::Overlayfs {
        let ram = config.fde.rootfs.delta_location == DeltaLocation::Ram;
        return crate::overlay::mount_overlay(sysroot, ram, log);
    }
    crate::ext4::grow_logged(sysroot, &activate::mapper_path("rootfs"), "rootfs", log);
    Ok(())
}

/// `MAJOR:MINOR` of the file system mounted last on `point`, from mountinfo's text.
fn mount_source(mountinfo: &str, point: &Path) -> Option<String> {
    let point = point.to_str()?;
    mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && f[4] == point).then(|| f[2].to_owned())
    })
}

/// A `volumes::Volume` for a device of the layout.
fn volume(
    n: &str,
    dev: &Path,
    integrity: bool,
    provider: keyprovider::ProviderConfig,
    makefs: Option<volumes::MakeFs>,
) -> volumes::Volume {
    volumes::Volume {
        name: DmName::new(n).unwrap_or_else(|_| unreachable!("fixed names are valid")),
        dev: dev.to_owned(),
        auto_open: false,
        makefs,
        integrity,
        provider,
        file: PathBuf::from("/etc/cryptpilot/fde.toml"),
    }
}

/// The partition holding `pv` grows to the end of a disk that grew (as `growpart`: only the
/// last partition of a GPT disk), and the kernel is told its new size. A disk that cannot
/// be grown this way (another partition ends last, no GPT, a kernel that refuses the new
/// size) is reported and left as it is: the boot does not depend on it.
fn grow_partition(pv: &Path, log: &mut dyn Log) -> Result<Option<DiskLock>> {
    let Some(part) = Partition::of(pv)? else {
        return Ok(None);
    };
    let disk = &part.disk;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .map_err(Error::io(disk, "open"))?;
    let mut d = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::nix(disk, "lock")(e))?;
    let g = match crate::gpt::grow_partition(&mut *d, part.lba, part.number) {
        Ok(g) => g,
        Err(e) => {
            log.step(&format!("{}: partition not grown: {e}", disk.display()));
            return Ok(Some(d));
        }
    };
    if g.new_last > g.old_last {
        // The numbers come from the disk and sysfs: checked, never wrapped.
        let start = part.start_sectors.checked_mul(512);
        let end = g
            .new_last
            .checked_add(1)
            .and_then(|e| e.checked_mul(part.lba));
        let Some((start, length)) = start
            .zip(end)
            .and_then(|(s, e)| Some((s, e.checked_sub(s)?)))
        else {
            log.step(&format!(
                "{}: partition {} does not fit its disk; not grown",
                disk.display(),
                part.number
            ));
            return Ok(Some(d));
        };
        let more = (g.new_last - g.old_last).saturating_mul(part.lba) >> 20;
        match dmioctl::blockdev::resize_partition(&d, part.number, start, length) {
            Ok(()) => log.step(&format!(
                "partition {} of {} grown to the end of the disk ({more} MiB more)",
                part.number,
                disk.display(),
            )),
            // The table on the disk is grown; the kernel sees it at the next boot.
            Err(e) => log.step(&format!(
                "{}: partition {} grown on the disk, but the kernel keeps its old size \
                 until the next boot: {e}",
                disk.display(),
                part.number
            )),
        }
    }
    Ok(Some(d))
}

/// An exclusive `flock` on a whole disk, held while the stage changes and opens it.
type DiskLock = nix::fcntl::Flock<std::fs::File>;

/// A partition as sysfs describes it.
#[derive(Debug)]
struct Partition {
    /// The whole disk's node.
    disk: PathBuf,
    /// Its number on the disk (1-based).
    number: u32,
    /// Its first sector, in 512-byte units.
    start_sectors: u64,
    /// The disk's logical sector size.
    lba: u64,
}

impl Partition {
    /// The partition `dev` is, or `None` for a whole disk (or a device sysfs does not know).
    fn of(dev: &Path) -> Result<Option<Self>> {
        let real = std::fs::canonicalize(dev).map_err(Error::io(dev, "resolve"))?;
        let Some(name) = real.file_name() else {
            return Ok(None);
        };
        let sys = Path::new("/sys/class/block").join(name);
        let read =
            |p: PathBuf| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
        let (Some(number), Some(start_sectors)) =
            (read(sys.join("partition")), read(sys.join("start")))
        else {
            return Ok(None);
        };
        let Some(disk) = std::fs::canonicalize(&sys).ok().and_then(|p| {
            p.parent()
                .and_then(|d| d.file_name())
                .map(ToOwned::to_owned)
        }) else {
            return Ok(None);
        };
        let lba = read(
            Path::new("/sys/class/block")
                .join(&disk)
                .join("queue/logical_block_size"),
        )
        .unwrap_or(512);
        Ok(Some(Partition {
            disk: Path::new("/dev").join(disk),
            number: u32::try_from(number).unwrap_or(0),
            start_sectors,
            lba,
        }))
    }
}

/// Creates the delta LV from all free extents, or gives it the extents freed by a grown PV.
/// The PV follows its device's size first (as `pvresize`): a grown partition gives it new
/// extents. A PV that cannot grow is reported and left as it is.
fn ensure_delta_lv(pv: &Path, log: &mut dyn Log) -> Result<()> {
    let mut p = crate::vg::open_pv(pv, true)?;
    let mut vg = p.read_vg().map_err(Error::lvm(pv))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let own = |vg: &lvm::VolumeGroup, p: &lvm::PhysicalVolume<std::fs::File>| {
        let key = p.key_in(vg)?;
        vg.pvs.iter().find(|x| x.key == key).map(|x| x.pe_count)
    };
    let before = own(&vg, &p).unwrap_or(0);
    let sectors =
        luks2::BlockIo::size(p.io_mut()).map_err(Error::io(pv, "read the size of"))? / 512;
    let grown = match p.resize(&mut vg, sectors) {
        Ok(after) if after > before => {
            log.step(&format!(
                "physical volume grown from {before} to {after} extents"
            ));
            true
        }
        Ok(_) => false,
        Err(e) => {
            log.step(&format!("physical volume not grown: {e}"));
            vg = p.read_vg().map_err(Error::lvm(pv))?;
            false
        }
    };
    let changed = grown
        | match vg.lv("delta") {
            None => {
                vg.create_lv("delta", None, now).map_err(Error::lvm(pv))?;
                log.step("delta volume created from the free extents");
                true
            }
            Some(_) if vg.free_extents() > 0 => {
                vg.extend_lv("delta", None).map_err(Error::lvm(pv))?;
                log.step("delta volume extended over the free extents");
                true
            }
            Some(_) => false,
        };
    if changed {
        p.write_vg(&mut vg, now).map_err(Error::lvm(pv))?;
    }
    Ok(())
}

/// Checks the tree's top against `root` and maps `data` under dm-verity as `name`.
fn open_verity(
    mapper: &Mapper,
    data: &Path,
    hash: &Path,
    root: &[u8],
    name: &DmName,
    log: &mut dyn Log,
) -> Result<()> {
    let mut d = activate::open_device(data, false, false)?;
    let mut h = activate::open_device(hash, false, false)?;
    let params = integrity::verity::Superblock::read(&mut h, 0)
        .and_then(|sb| sb.params(0))
        .map_err(activate::Error::integrity(hash))?;
    let o = VerityOptions {
        on_corruption: OnCorruption::Fail,
        ..VerityOptions::default()
    };
    log.detail(&format!(
        "verity: {} data blocks of {} bytes on {}, {:?} tree on {}",
        params.data_blocks,
        params.data_block_size,
        data.display(),
        params.hash,
        hash.display()
    ));
    mapper.open_verity((data, &mut d), (hash, &mut h), &params, root, name, &o)?;
    Ok(())
}

/// A persistent COW store keeps its header when it is being reused; otherwise its first
/// chunk is cleared so that the kernel starts an empty store (a new delta's plaintext is
/// whatever its ciphertext decrypts to).
fn prepare_cow(cow: &Path, reuse: bool) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(cow)
        .map_err(Error::io(cow, "open"))?;
    let mut head = [0u8; 4];
    luks2::BlockIo::read_exact_at(&mut f, &mut head, 0).map_err(Error::io(cow, "read"))?;
    if reuse && head == SNAPSHOT_MAGIC {
        return Ok(());
    }
    let zeros = vec![0u8; (SNAPSHOT_CHUNK * 512) as usize];
    luks2::BlockIo::write_all_at(&mut f, &zeros, 0).map_err(Error::io(cow, "clear"))?;
    luks2::BlockIo::sync(&mut f).map_err(Error::io(cow, "sync"))
}

/// `rootfs` = a dm-snapshot with `cow` (the delta, or a zram device) as its copy-on-write
/// store, over `rootfs_extended`: the verity device followed by as many zero sectors as the
/// store holds, so that the file system can grow into the space the delta gives. A
/// persistent snapshot that fills up fails writes (`PO`) rather than dropping the root.
fn snapshot(
    mapper: &Mapper,
    origin: &DmName,
    cow: &Path,
    persistent: bool,
    log: &mut dyn Log,
) -> Result<PathBuf> {
    let s = mapper.status(origin)?.ok_or_else(|| {
        activate::Error::dm(origin.as_str())(activate::DmError::NotFound(origin.to_string()))
    })?;
    let verity = (format!("{}:{}", s.major, s.minor), s.size_sectors);
    let (c, cow_sectors) = block_dev(cow)?;
    let linear = format!("{} 0", verity.0);
    mapper.map_targets(
        &name("rootfs_extended")?,
        None,
        &[(verity.1, "linear", &linear), (cow_sectors, "zero", "")],
        true,
    )?;
    let ext = block_dev(&activate::mapper_path("rootfs_extended"))?.0;
    let params = format!(
        "{ext} {c} {} {SNAPSHOT_CHUNK}",
        if persistent { "PO" } else { "N" }
    );
    let size = verity.1 + cow_sectors;
    log.detail(&format!(
        "rootfs: 0 {size} snapshot {params} (origin: {} sectors of verity, {cow_sectors} of zeros)",
        verity.1
    ));
    Ok(mapper.map_target(&name("rootfs")?, None, size, "snapshot", &params, false)?)
}

/// `MAJOR:MINOR` of a block device node, and its size in sectors.
fn block_dev(dev: &Path) -> Result<(String, u64)> {
    let mut f = activate::open_device(dev, false, false)?;
    let d = activate::DataDevice::new(dev, &mut f, false)?;
    Ok((d.dev_string(), d.size() / 512))
}

/// The machine's memory in bytes (`MemTotal`), the size of a memory delta.
fn mem_total() -> Result<u64> {
    let p = Path::new("/proc/meminfo");
    let text = std::fs::read_to_string(p).map_err(Error::io(p, "read"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| Error::io(p, "parse")(std::io::Error::other("no MemTotal line")))
}

/// A zram device of `bytes` for the memory delta: an unused `zram0`, or a new one from
/// `zram-control` (the zram module must be loaded).
fn zram(bytes: u64) -> Result<PathBuf> {
    let sys = Path::new("/sys/block/zram0");
    let unused = std::fs::read_to_string(sys.join("disksize")).is_ok_and(|s| s.trim() == "0");
    let n = if unused {
        0
    } else {
        let ctl = Path::new("/sys/class/zram-control/hot_add");
        let id = std::fs::read_to_string(ctl).map_err(Error::io(ctl, "read (is zram loaded?)"))?;
        id.trim()
            .parse::<u32>()
            .map_err(|_| Error::io(ctl, "parse")(std::io::Error::other(id.clone())))?
    };
    let size = PathBuf::from(format!("/sys/block/zram{n}/disksize"));
    std::fs::write(&size, bytes.to_string()).map_err(Error::io(&size, "write"))?;
    Ok(PathBuf::from(format!("/dev/zram{n}")))
}

/// A `volumes` UI for the boot: the delta is recreated by design, nothing is asked.
struct Quiet;

impl volumes::lifecycle::Ui for Quiet {
    fn confirm(&mut self, _warning: &str) -> bool {
        true
    }
    fn notice(&mut self, _message: &str) {}
    fn wipe_progress(&mut self, _done: u64, _total: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_mount_on_a_point_is_the_one_that_counts() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    30 1 253:4 / /sysroot ro - ext4 /dev/mapper/x ro\n\
                    31 30 253:7 / /sysroot rw - ext4 /dev/mapper/rootfs rw\n\
                    32 1 253:9 / /sysroot/boot rw - ext4 /dev/vda1 rw\n";
        assert_eq!(
            mount_source(info, Path::new("/sysroot")).as_deref(),
            Some("253:7")
        );
        assert_eq!(mount_source(info, Path::new("/mnt")), None);
    }
}
