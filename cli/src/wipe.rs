//! Initialising the tags of a new integrity-protected volume: every sector written once
//! through a temporary mapping, so that each later read finds a valid tag (what cryptsetup's
//! format does unless told `--integrity-no-wipe`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use dmioctl::{DmControl, DmName};
use integrity::dm_integrity::Superblock;
use luks2::{FormatOptions, Header, VolumeKey};

use crate::activate::{DataDevice, Volume};
use crate::args::PerfOpts;
use crate::error::{CliError, CliResult};
use crate::luks::open_device;
use crate::progress::Progress;

/// Bytes written per call.
const CHUNK: usize = 4 << 20;

/// Formats LUKS2 with a dm-integrity layer on `device` (opened exclusively as `f`) and, given
/// device-mapper, initialises every tag. The exclusive handle is closed before the wipe: the
/// mapping claims the device. Returns the new header and volume key.
pub(crate) fn format_with_integrity(
    device: &Path,
    mut f: File,
    opts: &FormatOptions,
    pass: &[u8],
    fix_padding: bool,
    dm: Option<&DmControl>,
) -> CliResult<(Header, VolumeKey)> {
    let (dev, key, sb) = integrity::luks::format_luks2(&mut f, opts, pass, fix_padding)
        .map_err(CliError::integrity(device))?;
    let header = dev.header().clone();
    drop(dev);
    drop(f);
    if let Some(dm) = dm {
        let mut f = open_device(device, false, false)?;
        let data = crate::activate::data_device(device, &mut f, false)?;
        wipe_integrity(dm, &header, &key, &data, &sb)?;
    }
    Ok((header, key))
}

/// Writes zeros over the whole volume through a temporary journal-less mapping, then removes
/// the mapping. Returns the bytes written.
pub(crate) fn wipe_integrity(
    dm: &DmControl,
    header: &Header,
    key: &VolumeKey,
    data: &DataDevice,
    sb: &Superblock,
) -> CliResult<u64> {
    let activation = header
        .activation()
        .map_err(CliError::luks(Path::new("the new header")))?;
    let name_str = format!("temporary-cryptpilot-{}", header.uuid());
    let name = DmName::new(&name_str).map_err(CliError::dm(&name_str))?;
    let volume = Volume {
        header,
        activation: &activation,
        key,
        data,
        integrity: Some(sb),
    };
    let path =
        crate::activate::activate(dm, &volume, &name, None, &PerfOpts::default(), false, true)?;
    let result = write_zeros(&path, sb.provided_data_sectors * 512);
    let removed = crate::activate::remove_volume(dm, &name);
    let written = result?;
    removed?;
    Ok(written)
}

fn write_zeros(path: &Path, total: u64) -> CliResult<u64> {
    // Direct I/O skips the page cache: each chunk goes straight to dm-crypt.
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
        .open(path)
        .map_err(CliError::device(path, "open"))?;
    // O_DIRECT needs a buffer aligned to the logical block size (4096 covers all).
    let backing = vec![0u8; CHUNK + 4096];
    let skip = backing.as_ptr().align_offset(4096);
    let zeros = &backing[skip..skip + CHUNK];
    let mut progress = Progress::new("Wiping device to initialize integrity checksum", total);
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])
            .map_err(CliError::device(path, "write zeros to"))?;
        done += n as u64;
        progress.update(done);
    }
    f.sync_all().map_err(CliError::device(path, "flush"))?;
    progress.finish();
    Ok(done)
}
