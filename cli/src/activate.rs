//! `open`, `close` and `status`: a LUKS2 header's activation data mapped through `dmioctl`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::time::Duration;

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::{DmControl, DmName, TableKind};
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

/// The crypt table cryptsetup 2.6 would load for this header (with a hex key).
pub(crate) fn crypt_table(
    a: &Activation,
    key: &VolumeKey,
    dev: &DataDevice,
    perf: &PerfOpts,
) -> CliResult<(Crypt, u64)> {
    let sector = u64::from(a.sector_size);
    let avail = dev.size.saturating_sub(a.offset);
    let bytes = a.size.unwrap_or(avail).min(avail) / sector * sector;
    if bytes == 0 {
        return Err(CliError::Usage(format!(
            "the device ({} bytes) has no room for data after the {}-byte header",
            dev.size, a.offset
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
    if a.sector_size != 512 {
        options.push(CryptOption::SectorSize(a.sector_size));
    }
    let crypt = Crypt {
        cipher: a.cipher.clone(),
        key: CryptKey::Hex(Zeroizing::new(key.as_bytes().to_vec())),
        iv_offset: a.iv_tweak,
        device: format!("{}:{}", dev.major, dev.minor),
        offset: a.offset / 512,
        options,
    };
    Ok((crypt, bytes / 512))
}

/// Creates, loads and resumes the mapping; on any failure removes what it created.
pub(crate) fn activate(
    dm: &DmControl,
    header: &Header,
    name: &DmName,
    crypt: &Crypt,
    sectors: u64,
    read_only: bool,
) -> CliResult<std::path::PathBuf> {
    let uuid = header.dm_uuid(name.as_str());
    dm.dev_create(name, Some(&uuid), read_only)
        .map_err(CliError::dm(name.as_str()))?;
    let result = (|| {
        dm.table_load(name, &[crypt.target(0, sectors)], read_only, true)?;
        let info = dm.dev_resume(name)?;
        dmioctl::node::ensure_node(name.as_str(), info.major, info.minor)
    })();
    match result {
        Ok(path) => Ok(path),
        Err(e) => {
            let _ = dm.dev_remove(name, REMOVE_WAIT);
            Err(CliError::dm(name.as_str())(e))
        }
    }
}

pub(crate) fn close(name: &str) -> CliResult<i32> {
    let dm_name = DmName::new(name).map_err(CliError::dm(name))?;
    let dm = DmControl::open().map_err(CliError::dm(name))?;
    dm.dev_remove(&dm_name, REMOVE_WAIT)
        .map_err(CliError::dm(name))?;
    dmioctl::node::remove_node(name);
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
    let text = if json {
        format!(
            "{}\n",
            serde_json::json!({
                "name": name, "active": true, "type": kind, "uuid": info.uuid,
                "cipher": cipher, "key_bits": key_bits, "device": device,
                "sector_size": sector_size, "offset_sectors": offset, "size_sectors": sectors,
                "mode": mode, "open_count": info.open_count,
                "major": info.major, "minor": info.minor,
            })
        )
    } else {
        format!(
            "{} is active{}.\n  type:    {kind}\n  cipher:  {cipher}\n  keysize: {key_bits} bits\n  key location: dm-crypt\n  device:  {device}\n  sector size:  {sector_size}\n  offset:  {offset} sectors\n  size:    {sectors} sectors\n  mode:    {mode}\n",
            path.display(),
            if info.open_count > 0 { " and is in use" } else { "" },
        )
    };
    crate::luks::write_out(out, &text)
}
