//! `luks open`, `close` and `status`: unlocking here, mapping in the `activate` library.

use std::io::Write;
use std::path::Path;

use activate::{DmName, Mapper, Options, Status};
use luks2::Luks2;

use crate::args::{KeyOpts, PerfOpts};
use crate::error::{code, CliError, CliResult};
use crate::keys::Keys;
use crate::luks::{open_device, unlock, write_out};

/// The mapping options of `open`'s flags.
pub(crate) fn options(perf: &PerfOpts, read_only: bool, integrity_no_journal: bool) -> Options {
    Options {
        read_only,
        allow_discards: perf.allow_discards,
        same_cpu_crypt: perf.same_cpu_crypt,
        submit_from_crypt_cpus: perf.submit_from_crypt_cpus,
        no_read_workqueue: perf.no_read_workqueue,
        no_write_workqueue: perf.no_write_workqueue,
        integrity_no_journal,
    }
}

pub(crate) fn dm_name(name: &str) -> CliResult<DmName> {
    Ok(DmName::new(name).map_err(activate::Error::dm(name))?)
}

/// A volume to open: its data device, and its header when that is detached (`--header`).
pub(crate) struct Volume<'a> {
    pub(crate) data: &'a Path,
    pub(crate) header: Option<&'a Path>,
}

/// Unlocks `volume` and maps it as `name`.
pub(crate) fn open(
    volume: &Volume<'_>,
    name: &str,
    key: &KeyOpts,
    keys: &mut Keys,
    options: &Options,
) -> CliResult<i32> {
    let dm_name = dm_name(name)?;
    let mapper = Mapper::open()?;
    mapper.ensure_free(&dm_name)?;
    let device = volume.data;
    let mut file = open_device(device, !options.read_only, false)?;
    let (header, vk) = {
        let mut detached = match volume.header {
            Some(h) => Some((h, open_device(h, false, false)?)),
            None => None,
        };
        let (path, f) = match &mut detached {
            Some((h, f)) => (*h, f),
            None => (device, &mut file),
        };
        let mut dev = Luks2::open(f).map_err(CliError::luks(path))?;
        dev.header().activation().map_err(CliError::luks(path))?;
        let prompt = format!("Enter passphrase for {}: ", device.display());
        let pass = keys.existing(key, &prompt)?;
        let (_, vk) = unlock(&mut dev, path, &pass, key.key_slot, key)?;
        (dev.header().clone(), vk)
    };
    mapper.open_luks2(device, &mut file, &header, &vk, &dm_name, options)?;
    Ok(0)
}

/// Removes the mapping `name` (and its integrity layer).
pub(crate) fn close(name: &str) -> CliResult<i32> {
    let dm_name = dm_name(name)?;
    Mapper::open()?.close(&dm_name)?;
    Ok(0)
}

/// Resizes the open mapping `name` (exit 4 when it is not mapped).
pub(crate) fn resize(name: &str, size: Option<u64>) -> CliResult<i32> {
    let dm_name = dm_name(name)?;
    Mapper::open()?.resize(&dm_name, size.map(luks2::Sectors))?;
    Ok(0)
}

/// Prints cryptsetup's status report; exit 4 when `name` is not mapped.
pub(crate) fn status(name: &str, json: bool, out: &mut dyn Write) -> CliResult<i32> {
    let dm_name = dm_name(name)?;
    let path = activate::mapper_path(name);
    let Some(s) = Mapper::open()?.status(&dm_name)? else {
        let text = if json {
            format!("{}\n", serde_json::json!({"name": name, "active": false}))
        } else {
            format!("{} is inactive.\n", path.display())
        };
        write_out(out, &text)?;
        return Ok(code::WRONG_DEVICE);
    };
    let text = if json {
        format!("{}\n", status_json(name, &s))
    } else {
        status_text(&path, &s)
    };
    write_out(out, &text)
}

fn mode(s: &Status) -> &'static str {
    if s.read_only {
        "readonly"
    } else {
        "read/write"
    }
}

fn status_json(name: &str, s: &Status) -> serde_json::Value {
    let integrity = s
        .integrity
        .as_ref()
        .map(|i| serde_json::json!({"type": i.kind, "tag_size": i.tag_size, "mode": i.mode}));
    serde_json::json!({
        "name": name, "active": true, "type": s.kind, "uuid": s.uuid,
        "cipher": s.cipher, "key_bits": s.key_bits, "device": s.device,
        "sector_size": s.sector_size, "offset_sectors": s.offset_sectors,
        "size_sectors": s.size_sectors, "mode": mode(s), "open_count": s.open_count,
        "integrity": integrity, "major": s.major, "minor": s.minor,
    })
}

fn status_text(path: &Path, s: &Status) -> String {
    // With integrity, the crypt target sits on NAME_dif: report its tag size and mode.
    let integrity = match &s.integrity {
        Some(i) => format!(
            "  integrity: {}, {}-byte tags, {}\n",
            i.kind,
            i.tag_size,
            i.mode.unwrap_or("unknown mode")
        ),
        None => String::new(),
    };
    format!(
        "{} is active{}.\n  type:    {}\n  cipher:  {}\n  keysize: {} bits\n  key location: dm-crypt\n{integrity}  device:  {}\n  sector size:  {}\n  offset:  {} sectors\n  size:    {} sectors\n  mode:    {}\n",
        path.display(),
        if s.open_count > 0 { " and is in use" } else { "" },
        s.kind,
        s.cipher,
        s.key_bits,
        s.device,
        s.sector_size,
        s.offset_sectors,
        s.size_sectors,
        mode(s),
    )
}
