//! `open`, `close` and `status`: a LUKS2 header's activation data mapped through `dmioctl`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::target::integrity::{Integrity, IntegrityMode};
use dmioctl::{DeviceInfo, DmControl, DmName, TableKind, Target};
use integrity::dm_integrity::Superblock;
use luks2::{Activation, Header, VolumeKey};
use zeroize::Zeroizing;

use crate::args::PerfOpts;
use crate::error::{CliError, CliResult};

/// How long `close` retries a briefly busy device.
const REMOVE_WAIT: Duration = Duration::from_secs(5);

/// The data device for a mapping: a block device as is, an image file through a loop device.
pub(crate) struct DataDevice {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) size: u64,
    /// Keeps the auto-clearing loop device attached until the table holds it.
    _loop: Option<dmioctl::loopdev::LoopDevice>,
}

impl DataDevice {
    /// `major:minor`, as tables name devices.
    pub(crate) fn dev_string(&self) -> String {
        format!("{}:{}", self.major, self.minor)
    }
}

pub(crate) fn data_device(path: &Path, file: &mut File, read_only: bool) -> CliResult<DataDevice> {
    let meta = file.metadata().map_err(CliError::device(path, "stat"))?;
    let size = luks2::BlockIo::size(file).map_err(CliError::device(path, "read the size of"))?;
    if meta.file_type().is_block_device() {
        let rdev = meta.rdev();
        return Ok(DataDevice {
            major: nix::sys::stat::major(rdev) as u32,
            minor: nix::sys::stat::minor(rdev) as u32,
            size,
            _loop: None,
        });
    }
    let lo =
        dmioctl::loopdev::attach(path, read_only).map_err(CliError::dm(&path.to_string_lossy()))?;
    let (major, minor) = lo.dev().map_err(CliError::dm(&path.to_string_lossy()))?;
    Ok(DataDevice {
        major,
        minor,
        size,
        _loop: Some(lo),
    })
}

/// Where the crypt target reads its sectors: the data device at the segment offset, or the
/// start of an integrity mapping.
pub(crate) struct Lower {
    device: String,
    offset_sectors: u64,
    /// Bytes available from there.
    available: u64,
    /// Tag bytes per sector (`integrity:N:aead`) when the lower device is an integrity mapping.
    tag_size: Option<u32>,
}

impl Lower {
    pub(crate) fn data(a: &Activation, dev: &DataDevice) -> Self {
        Lower {
            device: dev.dev_string(),
            offset_sectors: a.offset / 512,
            available: dev.size.saturating_sub(a.offset),
            tag_size: None,
        }
    }
}

/// The crypt table cryptsetup 2.6 would load for this header (with a hex key).
pub(crate) fn crypt_table(
    a: &Activation,
    key: &VolumeKey,
    lower: &Lower,
    perf: &PerfOpts,
) -> CliResult<(Crypt, u64)> {
    let sector = u64::from(a.sector_size);
    let bytes = a.size.unwrap_or(lower.available).min(lower.available) / sector * sector;
    if bytes == 0 {
        return Err(CliError::Usage(format!(
            "the device has no room for data after the {}-byte header",
            a.offset
        )));
    }
    let flag = |f: &str| a.flags.iter().any(|x| x == f);
    let mut options = Vec::new();
    if perf.allow_discards || flag("allow-discards") {
        options.push(CryptOption::AllowDiscards);
    }
    if perf.same_cpu_crypt || flag("same-cpu-crypt") {
        options.push(CryptOption::SameCpuCrypt);
    }
    if perf.submit_from_crypt_cpus || flag("submit-from-crypt-cpus") {
        options.push(CryptOption::SubmitFromCryptCpus);
    }
    if perf.no_read_workqueue || flag("no-read-workqueue") {
        options.push(CryptOption::NoReadWorkqueue);
    }
    if perf.no_write_workqueue || flag("no-write-workqueue") {
        options.push(CryptOption::NoWriteWorkqueue);
    }
    if let Some(tag) = lower.tag_size {
        options.push(CryptOption::Integrity(tag, "aead".into()));
    }
    if a.sector_size != 512 {
        options.push(CryptOption::SectorSize(a.sector_size));
    }
    let (cipher, _) = a.dm_cipher().map_err(|e| CliError::Usage(e.to_string()))?;
    let crypt = Crypt {
        cipher,
        key: CryptKey::Hex(Zeroizing::new(key.as_bytes().to_vec())),
        iv_offset: a.iv_tweak,
        device: lower.device.clone(),
        offset: lower.offset_sectors,
        options,
    };
    Ok((crypt, bytes / 512))
}

/// The integrity table cryptsetup 2.6 loads under a LUKS2 segment with integrity protection.
pub(crate) fn integrity_table(
    a: &Activation,
    sb: &Superblock,
    dev: &DataDevice,
    no_journal: bool,
) -> Integrity {
    let mut options = Vec::new();
    if sb.block_size() != 512 {
        options.push(format!("block_size:{}", sb.block_size()));
    }
    options.push(format!("journal_sectors:{}", sb.journal_area_sectors()));
    options.push(format!("interleave_sectors:{}", sb.interleave_sectors()));
    options.push("buffer_sectors:128".into());
    if !no_journal {
        options.push("journal_watermark:50".into());
        options.push("commit_time:10000".into());
    }
    if sb.flags & integrity::dm_integrity::FLAG_FIXED_PADDING != 0 {
        options.push("fix_padding".into());
    }
    Integrity {
        device: dev.dev_string(),
        offset: a.offset / 512,
        tag_size: Some(u32::from(sb.tag_size)),
        mode: if no_journal {
            IntegrityMode::Direct
        } else {
            IntegrityMode::Journal
        },
        options,
    }
}

/// Creates, loads and resumes one mapping; on any failure removes what it created.
pub(crate) fn create_mapping(
    dm: &DmControl,
    name: &DmName,
    uuid: Option<&str>,
    target: Target,
    read_only: bool,
) -> CliResult<DeviceInfo> {
    dm.dev_create(name, uuid, read_only)
        .map_err(CliError::dm(name.as_str()))?;
    let result = (|| {
        dm.table_load(name, &[target], read_only, true)?;
        let info = dm.dev_resume(name)?;
        dmioctl::node::ensure_node(name.as_str(), info.major, info.minor)?;
        Ok(info)
    })();
    result.map_err(|e| {
        let _ = dm.dev_remove(name, REMOVE_WAIT);
        CliError::dm(name.as_str())(e)
    })
}

/// What `open` maps: the unlocked volume on its data device.
pub(crate) struct Volume<'a> {
    pub(crate) header: &'a Header,
    pub(crate) activation: &'a Activation,
    pub(crate) key: &'a VolumeKey,
    pub(crate) data: &'a DataDevice,
    /// The dm-integrity superblock, for a segment with integrity protection.
    pub(crate) integrity: Option<&'a Superblock>,
}

/// Maps the volume as `name` (and `name_dif` under it for integrity), with cryptsetup's
/// tables and UUIDs; on failure removes whatever it created.
pub(crate) fn activate(
    dm: &DmControl,
    v: &Volume<'_>,
    name: &DmName,
    uuid: Option<&str>,
    perf: &PerfOpts,
    read_only: bool,
    no_journal: bool,
) -> CliResult<std::path::PathBuf> {
    let Some(sb) = v.integrity else {
        let (crypt, sectors) = crypt_table(
            v.activation,
            v.key,
            &Lower::data(v.activation, v.data),
            perf,
        )?;
        create_mapping(dm, name, uuid, crypt.target(0, sectors), read_only)?;
        return Ok(dmioctl::node::mapper_path(name.as_str()));
    };
    let dif =
        DmName::new(&format!("{}_dif", name.as_str())).map_err(CliError::dm(name.as_str()))?;
    // Always set: `remove_volume` recognises the integrity mapping by it.
    let dif_uuid = format!(
        "CRYPT-INTEGRITY-{}-{}",
        v.header.uuid().replace('-', ""),
        dif.as_str()
    );
    let table = integrity_table(v.activation, sb, v.data, no_journal);
    let sectors = sb.provided_data_sectors;
    let target = Target::new(0, sectors, "integrity", Zeroizing::new(table.to_string()));
    let info = create_mapping(dm, &dif, Some(&dif_uuid), target, read_only)?;
    let lower = Lower {
        device: format!("{}:{}", info.major, info.minor),
        offset_sectors: 0,
        available: sectors * 512,
        tag_size: Some(u32::from(sb.tag_size)),
    };
    let result = crypt_table(v.activation, v.key, &lower, perf).and_then(|(crypt, sectors)| {
        create_mapping(dm, name, uuid, crypt.target(0, sectors), read_only)
    });
    if let Err(e) = result {
        let _ = dm.dev_remove(&dif, REMOVE_WAIT);
        dmioctl::node::remove_node(dif.as_str());
        return Err(e);
    }
    Ok(dmioctl::node::mapper_path(name.as_str()))
}

/// Maps an unlocked volume as `name` with cryptsetup's UUIDs: reads the dm-integrity
/// superblock when the segment has one, attaches a loop device for an image file.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_unlocked(
    dm: &DmControl,
    device: &Path,
    file: &mut File,
    header: &Header,
    key: &VolumeKey,
    name: &DmName,
    perf: &PerfOpts,
    read_only: bool,
    no_journal: bool,
) -> CliResult<std::path::PathBuf> {
    let activation = header.activation().map_err(CliError::luks(device))?;
    let sb = match activation.integrity {
        Some(_) => Some(
            integrity::luks::read_luks2_superblock(file, &activation)
                .map_err(CliError::integrity(device))?,
        ),
        None => None,
    };
    let data = data_device(device, file, read_only)?;
    let volume = Volume {
        header,
        activation: &activation,
        key,
        data: &data,
        integrity: sb.as_ref(),
    };
    let uuid = header.dm_uuid(name.as_str());
    activate(dm, &volume, name, Some(&uuid), perf, read_only, no_journal)
}

/// Removes `name`, then the integrity mapping under it if cryptsetup or we made one.
pub(crate) fn remove_volume(dm: &DmControl, name: &DmName) -> CliResult {
    let deps = dm.table_deps(name).map_err(CliError::dm(name.as_str()))?;
    dm.dev_remove(name, REMOVE_WAIT)
        .map_err(CliError::dm(name.as_str()))?;
    dmioctl::node::remove_node(name.as_str());
    let devices = dm.list_devices().unwrap_or_default();
    for (dep_name, _, _) in devices
        .iter()
        .filter(|(_, ma, mi)| deps.contains(&(*ma, *mi)))
    {
        let Ok(dep) = DmName::new(dep_name) else {
            continue;
        };
        let is_ours = dm.dev_status(&dep).is_ok_and(|i| {
            i.uuid.starts_with("CRYPT-INTEGRITY-") || i.uuid.starts_with("CRYPT-SUBDEV-")
        });
        if is_ours && dep_name == &format!("{}_dif", name.as_str()) {
            dm.dev_remove(&dep, REMOVE_WAIT)
                .map_err(CliError::dm(dep_name))?;
            dmioctl::node::remove_node(dep_name);
        }
    }
    Ok(())
}

pub(crate) fn close(name: &str) -> CliResult<i32> {
    let dm_name = DmName::new(name).map_err(CliError::dm(name))?;
    let dm = DmControl::open().map_err(CliError::dm(name))?;
    remove_volume(&dm, &dm_name)?;
    Ok(0)
}

fn device_path(major: u32, minor: u32) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|d| format!("/dev/{d}")))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}

pub(crate) fn status(name: &str, json: bool, out: &mut dyn Write) -> CliResult<i32> {
    let dm_name = DmName::new(name).map_err(CliError::dm(name))?;
    let dm = DmControl::open().map_err(CliError::dm(name))?;
    let path = dmioctl::node::mapper_path(name);
    let info = match dm.dev_status(&dm_name) {
        Ok(i) => i,
        Err(dmioctl::Error::NotFound(_)) => {
            let text = if json {
                format!("{}\n", serde_json::json!({"name": name, "active": false}))
            } else {
                format!("{} is inactive.\n", path.display())
            };
            crate::luks::write_out(out, &text)?;
            return Ok(crate::error::code::WRONG_DEVICE);
        }
        Err(e) => return Err(CliError::dm(name)(e)),
    };
    let table = dm
        .table_status(&dm_name, TableKind::Table)
        .map_err(CliError::dm(name))?;
    let crypt = table
        .iter()
        .find(|t| t.kind == "crypt")
        .map(|t| Crypt::parse(t.params()))
        .transpose()
        .map_err(CliError::dm(name))?;
    let sectors: u64 = table.iter().map(|t| t.length).sum();
    let kind = if info.uuid.starts_with("CRYPT-LUKS2-") {
        "LUKS2"
    } else {
        "n/a"
    };
    let (cipher, key_bits, device, offset, sector_size) = match &crypt {
        Some(c) => {
            let key_bits = match &c.key {
                CryptKey::Hex(k) => k.len() * 8,
                CryptKey::Keyring { size, .. } => size * 8,
            };
            let dev = c
                .device
                .split_once(':')
                .and_then(|(a, b)| Some(device_path(a.parse().ok()?, b.parse().ok()?)))
                .unwrap_or_else(|| c.device.clone());
            let ss = c
                .options
                .iter()
                .find_map(|o| match o {
                    CryptOption::SectorSize(n) => Some(*n),
                    _ => None,
                })
                .unwrap_or(512);
            (c.cipher.clone(), key_bits, dev, c.offset, ss)
        }
        None => (String::new(), 0, String::new(), 0, 512),
    };
    let mode = if info.read_only {
        "readonly"
    } else {
        "read/write"
    };
    // With integrity, the crypt target sits on NAME_dif: report its tag size and mode.
    let integrity = crypt.as_ref().and_then(|c| {
        c.options.iter().find_map(|o| match o {
            CryptOption::Integrity(tag, kind) => Some((*tag, kind.clone())),
            _ => None,
        })
    });
    let dif_mode = integrity.as_ref().and_then(|_| {
        let dif = DmName::new(&format!("{name}_dif")).ok()?;
        let t = dm.table_status(&dif, TableKind::Table).ok()?;
        let i: Integrity = t.first()?.params().parse().ok()?;
        Some(match i.mode {
            IntegrityMode::Journal => "journal",
            IntegrityMode::Direct => "direct (no journal)",
            IntegrityMode::Bitmap => "bitmap",
            IntegrityMode::Recovery => "recovery",
        })
    });
    let integrity_text = match (&integrity, dif_mode) {
        (Some((tag, kind)), mode) => format!(
            "  integrity: {kind}, {tag}-byte tags, {}\n",
            mode.unwrap_or("unknown mode")
        ),
        (None, _) => String::new(),
    };
    let text = if json {
        format!(
            "{}\n",
            serde_json::json!({
                "name": name, "active": true, "type": kind, "uuid": info.uuid,
                "cipher": cipher, "key_bits": key_bits, "device": device,
                "sector_size": sector_size, "offset_sectors": offset, "size_sectors": sectors,
                "mode": mode, "open_count": info.open_count,
                "integrity": integrity.as_ref().map(|(tag, kind)| serde_json::json!({"type": kind, "tag_size": tag, "mode": dif_mode})),
                "major": info.major, "minor": info.minor,
            })
        )
    } else {
        format!(
            "{} is active{}.\n  type:    {kind}\n  cipher:  {cipher}\n  keysize: {key_bits} bits\n  key location: dm-crypt\n{integrity_text}  device:  {device}\n  sector size:  {sector_size}\n  offset:  {offset} sectors\n  size:    {sectors} sectors\n  mode:    {mode}\n",
            path.display(),
            if info.open_count > 0 { " and is in use" } else { "" },
        )
    };
    crate::luks::write_out(out, &text)
}
