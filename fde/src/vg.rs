//! The volume group on the disk's last partition, brought up as lvm2 brings it up: each
//! linear LV mapped with lvm2's `linear` table, dm name (`<vg>-<lv>`) and UUID
//! (`LVM-<vg uuid><lv uuid>`), and the `/dev/<vg>/<lv>` link lvm2 makes without udev.

use std::fs::File;
use std::path::{Path, PathBuf};

use activate::{DataDevice, DmName, Mapper};
use lvm::{PhysicalVolume, VolumeGroup};

use crate::{Error, Result};

/// Reads the volume group on the physical volume `pv`.
///
/// # Errors
/// [`Error::Lvm`], [`Error::Activate`] when the device cannot be opened.
pub fn read(pv: &Path) -> Result<VolumeGroup> {
    let f = activate::open_device(pv, false, false)?;
    PhysicalVolume::open(f)
        .and_then(|mut p| p.read_vg())
        .map_err(Error::lvm(pv))
}

/// Maps every LV of the group on `pv` that is not mapped yet (`vgchange -ay` for a one-PV
/// group). Returns the `/dev/<vg>/<lv>` paths, in metadata order.
///
/// # Errors
/// [`Error::Lvm`] for metadata that cannot be read or an LV on another PV;
/// [`Error::Activate`] when mapping fails; [`Error::Io`] for the `/dev/<vg>` links.
pub fn activate(mapper: &Mapper, pv: &Path) -> Result<Vec<PathBuf>> {
    let mut file = activate::open_device(pv, false, false)?;
    let mut pvd = PhysicalVolume::open(&mut file).map_err(Error::lvm(pv))?;
    let vg = pvd.read_vg().map_err(Error::lvm(pv))?;
    let key = pvd
        .key_in(&vg)
        .ok_or_else(|| Error::lvm(pv)(lvm::Error::Unsupported("PV not in its group".into())))?
        .to_owned();
    drop(pvd);
    let data = DataDevice::new(pv, &mut file, false)?;
    let mut paths = Vec::new();
    for lv in &vg.lvs {
        let name = DmName::new(&vg.dm_name(lv)).map_err(activate::Error::dm(&lv.name))?;
        let link = dev_link(&vg.name, &lv.name);
        if !mapper.is_active(&name) {
            let table = vg.linear_table(lv).map_err(Error::lvm(pv))?;
            let segments = table
                .into_iter()
                .map(|(_, len, on, off)| {
                    if on == key {
                        Ok((len, data.dev_string(), off))
                    } else {
                        Err(Error::lvm(pv)(lvm::Error::Unsupported(format!(
                            "{} has extents on another PV ({on})",
                            lv.name
                        ))))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            mapper.map_linear(&name, Some(&vg.dm_uuid(lv)), &segments, false)?;
        }
        make_link(&link, &name)?;
        paths.push(link);
    }
    Ok(paths)
}

/// Unmaps every LV of the group on `pv` that is mapped, and removes its `/dev/<vg>` link.
///
/// # Errors
/// [`Error::Lvm`]; [`Error::Activate`] when an LV is busy.
pub fn deactivate(mapper: &Mapper, pv: &Path) -> Result<()> {
    let vg = read(pv)?;
    for lv in &vg.lvs {
        let name = DmName::new(&vg.dm_name(lv)).map_err(activate::Error::dm(&lv.name))?;
        if mapper.is_active(&name) {
            mapper.close(&name)?;
        }
        let _ = std::fs::remove_file(dev_link(&vg.name, &lv.name));
    }
    let _ = std::fs::remove_dir(Path::new("/dev").join(&vg.name));
    Ok(())
}

fn dev_link(vg: &str, lv: &str) -> PathBuf {
    Path::new("/dev").join(vg).join(lv)
}

/// `/dev/<vg>/<lv>` -> `/dev/mapper/<dm name>`, as lvm2 links it when udev does not.
fn make_link(link: &Path, name: &DmName) -> Result<()> {
    if let Some(dir) = link.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(dir, "create"))?;
    }
    let target = activate::mapper_path(name.as_str());
    match std::fs::read_link(link) {
        Ok(t) if t == target => return Ok(()),
        Ok(_) => std::fs::remove_file(link).map_err(Error::io(link, "replace"))?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&target, link).map_err(Error::io(link, "link"))
}

/// The file-backed form of a PV for reading and writing metadata.
pub fn open_pv(pv: &Path, write: bool) -> Result<PhysicalVolume<File>> {
    let f = activate::open_device(pv, write, false)?;
    PhysicalVolume::open(f).map_err(Error::lvm(pv))
}

/// The block device holding the physical volume of the group `vg` (device-mapper devices
/// are skipped). Two devices carrying a group of that name (a cloned disk, a stick with
/// another image) are refused, as lvm2 refuses duplicates: the boot must not pick one.
///
/// # Errors
/// [`Error::Lvm`] naming the group when no device holds it, or several do.
pub fn find_pv(vg: &str) -> Result<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .map_err(Error::io(Path::new("/sys/class/block"), "read"))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with("dm-") && !n.starts_with("ram"))
        .collect();
    names.sort();
    let mut found = Vec::new();
    for n in names {
        let dev = Path::new("/dev").join(&n);
        let Ok(f) = File::open(&dev) else { continue };
        if PhysicalVolume::open(f)
            .and_then(|mut p| p.read_vg())
            .is_ok_and(|g| g.name == vg)
        {
            found.push(dev);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(Error::Lvm {
            device: PathBuf::from("/dev"),
            source: lvm::Error::Unsupported(if n == 0 {
                format!("no physical volume of volume group {vg} found")
            } else {
                let list: Vec<String> = found.iter().map(|d| d.display().to_string()).collect();
                format!(
                    "volume group {vg} is on several devices ({}); refusing to choose",
                    list.join(", ")
                )
            }),
        }),
    }
}
