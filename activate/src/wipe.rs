//! Initialising the tags of a new integrity-protected volume: every sector written once
//! through a temporary mapping, so that each later read finds a valid tag (what cryptsetup's
//! format does unless told `--integrity-no-wipe`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use dmioctl::DmName;
use integrity::dm_integrity::Superblock;
use luks2::{FormatOptions, Header, VolumeKey};

use crate::plan::{IntegrityOptions, Luks2Volume, Options, Plan};
use crate::{open_device, DataDevice, Error, Mapper, Result};

/// Reports `(done, total)` bytes of long work.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u64, u64);

/// Bytes written per call.
const CHUNK: usize = 4 << 20;

/// Formats LUKS2 with a dm-integrity layer on `device` (opened exclusively as `f`) and, given
/// a [`Mapper`], initialises every tag, reporting `(done, total)` bytes to `progress`. The
/// exclusive handle is closed before the wipe: the mapping claims the device. Returns the new
/// header and volume key.
///
/// # Errors
/// [`Error::Integrity`] when formatting fails; mapping and write errors from the wipe.
pub fn format_with_integrity(
    device: &Path,
    mut f: File,
    opts: &FormatOptions,
    passphrase: &luks2::Passphrase,
    fix_padding: bool,
    wipe: Option<(&Mapper, ProgressFn<'_>)>,
) -> Result<(Header, VolumeKey)> {
    let (dev, key, sb) = integrity::luks::format_luks2(&mut f, opts, passphrase, fix_padding)
        .map_err(Error::integrity(device))?;
    let header = dev.header().clone();
    drop(dev);
    drop(f);
    if let Some((mapper, progress)) = wipe {
        let mut f = open_device(device, false, false)?;
        let data = DataDevice::new(device, &mut f, false)?;
        wipe_integrity(mapper, &header, &key, &data, &sb, progress)?;
    }
    Ok((header, key))
}

/// Writes zeros over the whole volume through a temporary journal-less mapping, then removes
/// the mapping. Returns the bytes written.
///
/// # Errors
/// Mapping errors, and [`Error::Device`] when writing fails.
pub fn wipe_integrity(
    mapper: &Mapper,
    header: &Header,
    key: &VolumeKey,
    data: &DataDevice,
    sb: &Superblock,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let activation = header
        .activation()
        .map_err(Error::luks(Path::new("the new header")))?;
    let name_str = format!("temporary-cryptpilot-{}", header.uuid());
    let name = DmName::new(&name_str).map_err(Error::dm(&name_str))?;
    let volume = Luks2Volume {
        header,
        activation: &activation,
        key,
        data,
        integrity: Some(sb),
    };
    let options = Options {
        integrity_no_journal: true,
        ..Options::default()
    };
    let path = mapper.activate(&Plan::luks2(&volume, &name, None, &options)?)?;
    zero_then_close(mapper, &name, &path, sb, progress)
}

/// Initialises every tag of the standalone dm-integrity device `device` (open as `file`,
/// just formatted), as `integritysetup format` does unless `--no-wipe`: zeros written
/// through a temporary journal-less mapping with the tags' algorithm, which is then removed.
/// Returns the bytes written.
///
/// # Errors
/// [`Error::Integrity`] for an unreadable superblock; mapping and write errors.
pub fn wipe_standalone_integrity(
    mapper: &Mapper,
    device: &Path,
    file: &mut File,
    options: &IntegrityOptions,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let sb = integrity::dm_integrity::read_superblock(file, 0).map_err(Error::integrity(device))?;
    let name_str = format!("temporary-cryptpilot-integrity-{}", std::process::id());
    let name = DmName::new(&name_str).map_err(Error::dm(&name_str))?;
    let direct = IntegrityOptions {
        mode: dmioctl::target::integrity::IntegrityMode::Direct,
        ..options.clone()
    };
    let path = mapper.open_integrity(device, file, &name, &direct)?;
    zero_then_close(mapper, &name, &path, &sb, progress)
}

/// Writes zeros over the `sb.provided_data_sectors` of the temporary mapping `name` (at
/// `path`), then removes the mapping, whether or not the writing succeeded.
fn zero_then_close(
    mapper: &Mapper,
    name: &DmName,
    path: &Path,
    sb: &Superblock,
    progress: ProgressFn<'_>,
) -> Result<u64> {
    let total = luks2::Sectors(sb.provided_data_sectors)
        .bytes()
        .ok_or_else(|| Error::Invalid {
            reason: "the integrity superblock's size does not fit in 64 bits".into(),
        });
    let result = total.and_then(|t| write_zeros(path, t.0, progress));
    let removed = mapper.close(name);
    let written = result?;
    removed?;
    Ok(written)
}

fn write_zeros(path: &Path, total: u64, progress: ProgressFn<'_>) -> Result<u64> {
    // Direct I/O skips the page cache: each chunk goes straight to dm-crypt.
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
        .open(path)
        .map_err(Error::device(path, "open"))?;
    // O_DIRECT needs a buffer aligned to the logical block size (4096 covers all).
    let backing = vec![0u8; CHUNK + 4096];
    let skip = backing.as_ptr().align_offset(4096);
    let zeros = &backing[skip..skip + CHUNK];
    let mut done = 0u64;
    while done < total {
        let n = (total - done).min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])
            .map_err(Error::device(path, "write zeros to"))?;
        done += n as u64;
        progress(done, total);
    }
    f.sync_all().map_err(Error::device(path, "flush"))?;
    Ok(done)
}
