//! `luks open`, `close` and `status`: unlocking here, mapping in the `activate` library.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::args::TokenOpts;
use activate::{Active, DmName, IntegrityMode, KeyringKey, Mapper, Options, PlainParams, Status};
use luks2::plain::PlainHash;
use luks2::{Luks1, Luks2};

use crate::args::{
    Deferral, KeyOpts, LuksMapFlags, PerfOpts, PlainOpenArgs, RefreshArgs, ResizeArgs, ResumeArgs,
};
use crate::error::{code, CliError, CliResult};
use crate::keys::Keys;
use crate::luks::any::{starts_luks1, AnyLuks};
use crate::luks::{confirm, open_device, unlock, with_tries, write_out};

/// The mapping options of a LUKS volume's flags, `read_only`; with `--persistent` the
/// header's stored flags do not apply.
pub(crate) fn luks_options(flags: &LuksMapFlags, read_only: bool) -> Options {
    Options {
        ignore_persistent: flags.persistent,
        ..options(
            &flags.perf,
            read_only,
            flags.integrity_no_journal,
            flags.disable_keyring,
        )
    }
}

/// The mapping options of `open`'s flags.
pub(crate) fn options(
    perf: &PerfOpts,
    read_only: bool,
    integrity_no_journal: bool,
    disable_keyring: bool,
) -> Options {
    Options {
        read_only,
        allow_discards: perf.allow_discards,
        same_cpu_crypt: perf.same_cpu_crypt,
        submit_from_crypt_cpus: perf.submit_from_crypt_cpus,
        no_read_workqueue: perf.no_read_workqueue,
        no_write_workqueue: perf.no_write_workqueue,
        integrity_no_journal,
        disable_keyring,
        refresh: false,
        ignore_persistent: false,
    }
}

pub(crate) fn dm_name(name: &str) -> CliResult<DmName> {
    Ok(DmName::new(name).map_err(activate::Error::dm(name))?)
}

/// Device-mapper, to map a volume as `name` (not taken yet). Called once the volume's header
/// has been read, where cryptsetup first tries to activate: without device-mapper, the
/// error carries how many times cryptsetup would have tried (its report repeats per try).
pub(crate) fn mapper_for(name: &DmName, attempts: u8) -> CliResult<Mapper> {
    let mapper = open_mapper(Some((name.to_string(), attempts)))?;
    mapper.ensure_free(name)?;
    Ok(mapper)
}

/// Device-mapper, to look a mapping up (`status`).
fn query_mapper() -> CliResult<Mapper> {
    open_mapper(None)
}

/// Device-mapper; its absence is [`CliError::NoDeviceMapper`] (exit 1, where cryptsetup's
/// open and status exit 1).
fn open_mapper(activating: Option<(String, u8)>) -> CliResult<Mapper> {
    Mapper::open().map_err(|e| match e {
        activate::Error::Dm {
            source: activate::DmError::NoDeviceMapper,
            ..
        } => CliError::NoDeviceMapper { activating },
        e => e.into(),
    })
}

/// The mapping `arg` names, with device-mapper to act on it (`mapper` opens it). As in
/// libcryptsetup, `arg` may be a path to a mapping's device node (`/dev/mapper/NAME`,
/// `/dev/dm-0`). A path to nothing names no mapping: `None`, found before device-mapper is
/// needed. A node of anything else is [`CliError::NotMapped`] with exit code `not_mapped`.
fn named<M>(
    arg: &str,
    mapper: impl FnOnce() -> CliResult<M>,
    not_mapped: i32,
) -> CliResult<Option<(DmName, M)>> {
    if !arg.contains('/') {
        let name = dm_name(arg)?;
        return Ok(Some((name, mapper()?)));
    }
    let Ok(meta) = std::fs::metadata(arg) else {
        return Ok(None);
    };
    let mapper = mapper()?;
    let other = || CliError::NotMapped {
        path: arg.to_owned(),
        code: not_mapped,
    };
    if !meta.file_type().is_block_device() {
        return Err(other());
    }
    let rdev = meta.rdev();
    let sysfs = format!(
        "/sys/dev/block/{}:{}/dm/name",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let name = std::fs::read_to_string(sysfs).map_err(|_| other())?;
    Ok(Some((dm_name(name.trim_end_matches('\n'))?, mapper)))
}

/// What `look` finds of the mapping `name` names (`None`: not mapped, or a path to nothing).
fn looked_up<T>(
    name: &str,
    look: impl FnOnce(&Mapper, &DmName) -> activate::Result<Option<T>>,
) -> CliResult<Option<T>> {
    match named(name, query_mapper, code::FAILURE)? {
        Some((dm_name, mapper)) => Ok(look(&mapper, &dm_name)?),
        None => Ok(None),
    }
}

/// [`named`] for the commands that change a mapping: a path to nothing is cryptsetup's
/// "Device ARG is not active." (exit 4).
fn existing(arg: &str) -> CliResult<(DmName, Mapper)> {
    named(arg, || Ok(Mapper::open()?), code::WRONG_DEVICE)?
        .ok_or_else(|| activate::Error::dm(arg)(activate::DmError::NotFound(arg.to_owned())).into())
}

/// How a status report names a mapping: a path as given, a name under `/dev/mapper`.
fn shown(arg: &str) -> std::path::PathBuf {
    match arg.contains('/') {
        true => arg.into(),
        false => activate::mapper_path(arg),
    }
}

/// A volume to open: its data device, and its header when that is detached (`--header`).
pub(crate) struct Volume<'a> {
    pub(crate) data: &'a Path,
    pub(crate) header: Option<&'a Path>,
    /// What the passphrase prompt names: the data device as given, or for a mapping being
    /// refreshed the image file behind its loop device.
    pub(crate) named: &'a Path,
}

/// Refuses a device in use (mounted, or under another mapping) as busy, as cryptsetup does;
/// the exclusive open is only a check: the kernel claims the device for the table.
fn ensure_unused(device: &Path) -> CliResult {
    drop(open_device(device, false, true)?);
    Ok(())
}

/// How `open` gets the volume key: the volume key file, else the keyring tokens, else the
/// passphrase (asked for, or from the key file).
pub(crate) struct Unlock<'a> {
    pub(crate) key: &'a KeyOpts,
    pub(crate) tokens: &'a TokenOpts,
    pub(crate) volume_key_file: Option<&'a Path>,
}

/// Unlocks `volume` and maps it as `name` (or with `options.refresh`, swaps the live
/// mapping's tables); with `persistent`, then stores the flags now on in the LUKS2 header.
pub(crate) fn open(
    volume: &Volume<'_>,
    name: &str,
    unlock_with: &Unlock<'_>,
    keys: &mut Keys,
    options: &Options,
    persistent: bool,
) -> CliResult<i32> {
    let key = unlock_with.key;
    let dm_name = dm_name(name)?;
    let device = volume.data;
    let mut file = open_device(device, !options.read_only, false)?;
    let data_size = luks2::BlockIo::size(&mut file).map_err(CliError::device(device, "read"))?;
    let mut detached = match volume.header {
        Some(h) => Some((h, open_device(h, false, false)?)),
        None => None,
    };
    let (path, f) = match &mut detached {
        Some((h, f)) => (*h, f),
        None => (device, &mut file),
    };
    let prompt = format!("Enter passphrase for {}: ", volume.named.display());
    // A refresh swaps the tables of the live mapping, which holds the device.
    let mapper_to_use = |attempts| match options.refresh {
        true => open_mapper(Some((name.to_owned(), attempts))),
        false => mapper_for(&dm_name, attempts),
    };
    let unused_unless_refreshing = |device| match options.refresh {
        true => Ok(()),
        false => ensure_unused(device),
    };
    if starts_luks1(f) {
        let mut dev = Luks1::open(f).map_err(CliError::luks(path))?;
        if unlock_with.tokens.token_only && unlock_with.volume_key_file.is_none() {
            return Err(crate::luks::no_luks1_tokens(path));
        }
        room_for_data(
            device,
            data_size,
            u64::from(dev.header().payload_offset) * 512,
        )?;
        let mapper = mapper_to_use(1)?;
        unused_unless_refreshing(device)?;
        let vk = match unlock_with.volume_key_file {
            Some(file) => {
                let vk = crate::luks::read_volume_key(file, dev.header().key_bytes as usize)?;
                dev.verify_volume_key(&vk).map_err(CliError::luks(path))?;
                vk
            }
            None => {
                with_tries(keys, key, &prompt, |pass| {
                    dev.unlock(pass, key.key_slot, &key.kdf_limits())
                        .map_err(CliError::luks(path))
                })?
                .1
            }
        };
        let header = dev.header().clone();
        drop(detached);
        mapper.open_luks1(device, &mut file, &header, &vk, &dm_name, options)?;
        if persistent {
            // The volume is open, so the exit code stays 0.
            match crate::luks::as_cryptsetup() {
                true => eprintln!(
                    "This operation is supported only for LUKS2 device.\n{FLAGS_NOT_STORED}"
                ),
                false => eprintln!("cryptpilot: {name} is open, but a LUKS1 header cannot store its flags (--persistent)"),
            }
        }
        return Ok(0);
    }
    let mut dev = Luks2::open(f).map_err(CliError::luks(path))?;
    let activation = dev.header().activation().map_err(CliError::luks(path))?;
    // cryptsetup tries the tokens, then the passphrase (a volume key file alone).
    let attempts = match unlock_with.volume_key_file.is_some() || unlock_with.tokens.token_only {
        true => 1,
        false => 2,
    };
    room_for_data(device, data_size, activation.offset)?;
    let mapper = mapper_to_use(attempts)?;
    unused_unless_refreshing(device)?;
    let vk = if let Some(file) = unlock_with.volume_key_file {
        let vk = crate::luks::read_volume_key(file, activation.key_size)?;
        dev.verify_volume_key(&vk).map_err(CliError::luks(path))?;
        vk
    } else if let Some((_, vk)) = crate::luks::try_tokens(&mut dev, path, key, unlock_with.tokens)?
    {
        vk
    } else {
        with_tries(keys, key, &prompt, |pass| {
            unlock(&mut dev, path, pass, key.key_slot, key)
        })?
        .1
    };
    let header = dev.header().clone();
    drop(dev);
    drop(detached);
    mapper.open_luks2(device, &mut file, &header, &vk, &dm_name, options)?;
    if persistent {
        let stored = mapper
            .status(&dm_name)
            .map_err(CliError::from)
            .and_then(|s| {
                let s = s.ok_or_else(|| {
                    activate::Error::dm(name)(activate::DmError::NotFound(name.to_owned()))
                })?;
                let flags: Vec<_> = s
                    .persistent_flags()
                    .into_iter()
                    .filter(|&f| options.wants(f))
                    .collect();
                let mut dev =
                    Luks2::open(open_device(path, true, false)?).map_err(CliError::luks(path))?;
                dev.set_persistent_flags(&flags)
                    .map_err(CliError::luks(path))
            });
        // The volume is open whatever happens here, so the exit code stays 0.
        if let Err(e) = stored {
            match crate::luks::as_cryptsetup() {
                true => eprintln!("{FLAGS_NOT_STORED}"),
                false => eprintln!(
                    "cryptpilot: {name} is open, but its flags were not stored in the header: {e}"
                ),
            }
        }
    }
    Ok(0)
}

/// cryptsetup's line when `--persistent` could not store the flags of an open that worked.
const FLAGS_NOT_STORED: &str = "Device activated but cannot make flags persistent.";

/// `plain open`: the key from a key file as is, or hashed from a passphrase, mapped with
/// cryptsetup 2.6's plain table.
pub(crate) fn open_plain(a: &PlainOpenArgs, keys: &mut Keys) -> CliResult<i32> {
    if a.key_size == 0 || !a.key_size.is_multiple_of(8) {
        return Err(CliError::Usage(format!(
            "--key-size {}: the key size must be a multiple of 8 bits",
            a.key_size
        )));
    }
    let key_bytes = (a.key_size / 8) as usize;
    // cryptsetup's parse of a cipher without a mode: `aes` is `aes-cbc-plain`, `null` is
    // `cipher_null-ecb`.
    let cipher = match a.cipher.as_str() {
        "null" | "cipher_null" => "cipher_null-ecb".to_owned(),
        c if c.contains('-') || c.starts_with("capi:") => c.to_owned(),
        c => format!("{c}-cbc-plain"),
    };
    let source = PlainKeySource {
        key_file: a.key_file.as_deref(),
        keyfile_offset: a.keyfile_offset,
        keyfile_size: a.keyfile_size,
        hash: a.hash.as_deref(),
        verify: a.verify_passphrase,
    };
    source.warn_ignored(a.common.batch);
    let dm_name = dm_name(&a.name)?;
    // cryptsetup looks for device-mapper and the name first in plain mode.
    let mapper = mapper_for(&dm_name, 1)?;
    if !a.shared {
        ensure_unused(&a.device)?;
    }
    let mut file = open_device(&a.device, !a.readonly, false)?;
    if a.offset == 0 {
        if let Some(sig) =
            luks2::probe::signature(&mut file).map_err(CliError::device(&a.device, "read"))?
        {
            // cryptsetup's report (blkid's names), then its question.
            if !a.common.batch {
                println!("{}", crate::luks::signature_warning(&a.device, sig));
            }
            let warning = format!(
                "Detected device signature(s) on {}. Proceeding further may damage existing data.",
                a.device.display()
            );
            confirm(&a.common, &warning)?;
        }
    }
    let prompt = format!("Enter passphrase for {}: ", a.device.display());
    let key = source.key(key_bytes, &prompt, keys)?;
    let params = PlainParams {
        cipher,
        offset: luks2::Sectors(a.offset),
        skip: a.skip,
        // 0 is the rest of the device, as in cryptsetup.
        size: a.size.filter(|&n| n > 0).map(luks2::Sectors),
        sector_size: a.sector_size,
        iv_large_sectors: a.iv_large_sectors,
    };
    let o = options(&a.perf, a.readonly, false, true);
    mapper.open_plain(&a.device, &mut file, &params, &key, &dm_name, &o)?;
    Ok(0)
}

/// Refuses a data device of `size` bytes that ends before the header's data `offset` (a
/// detached header on too small a device), as cryptsetup does before it activates.
fn room_for_data(device: &Path, size: u64, offset: u64) -> CliResult {
    // In whole sectors, as cryptsetup counts.
    if size / 512 > offset / 512 {
        return Ok(());
    }
    Err(CliError::Stated(match device.is_file() {
        true => format!(
            "LUKS file container {} is too small for activation, there is no remaining space for data.",
            device.display()
        )
        .into(),
        false => format!(
            "Device {} has no room for data after the {offset}-byte header.",
            device.display()
        )
        .into(),
    }))
}

/// cryptsetup 2.6's plain-mode passphrase hash.
const PLAIN_DEFAULT_HASH: &str = "ripemd160";

/// Where plain mode's key comes from: a key file's bytes as they are, else a passphrase
/// hashed (cryptsetup's rules).
struct PlainKeySource<'a> {
    /// `-` is standard input, hashed as a passphrase.
    key_file: Option<&'a Path>,
    keyfile_offset: u64,
    keyfile_size: Option<u64>,
    /// How a passphrase becomes the key (default ripemd160).
    hash: Option<&'a str>,
    /// Ask twice on a terminal.
    verify: bool,
}

impl PlainKeySource<'_> {
    /// cryptsetup's warnings (unless `-q`) for the options a key file makes pointless.
    fn warn_ignored(&self, batch: bool) {
        if batch || self.key_file.is_none_or(|f| f == Path::new("-")) {
            return;
        }
        if self.hash.is_some() {
            println!("WARNING: The --hash parameter is being ignored in plain mode with keyfile specified.");
        }
        if self.keyfile_size.is_some() {
            println!("WARNING: The --keyfile-size option is being ignored, the read size is the same as the encryption key size.");
        }
    }

    /// The `key_bytes`-byte key, a passphrase asked with `prompt` where one is needed.
    fn key(&self, key_bytes: usize, prompt: &str, keys: &mut Keys) -> CliResult<luks2::VolumeKey> {
        match self.key_file.filter(|f| *f != Path::new("-")) {
            // A key file's bytes are the key, unhashed (cryptsetup reads exactly the key size).
            Some(f) => {
                let bytes = Keys::from_file(f, self.keyfile_offset, Some(key_bytes as u64))?;
                PlainHash::parse("plain", key_bytes)
                    .and_then(|h| h.key(key_bytes, bytes.as_bytes()))
                    .map_err(|e| CliError::Usage(e.to_string()))
            }
            // The hash applies to passphrases only.
            None => {
                let spec = self.hash.unwrap_or(PLAIN_DEFAULT_HASH);
                let hash = PlainHash::parse(spec, key_bytes)
                    .map_err(|e| CliError::Usage(format!("--hash {spec}: {e}")))?;
                let (offset, size) = (self.keyfile_offset, self.keyfile_size);
                let pass = match self.key_file {
                    Some(f) => Keys::from_file(f, offset, size)?,
                    None if self.verify => keys.new_passphrase(None, offset, size, prompt)?,
                    None => keys.existing(
                        &KeyOpts {
                            keyfile_offset: offset,
                            keyfile_size: size,
                            ..KeyOpts::default()
                        },
                        prompt,
                    )?,
                };
                hash.key(key_bytes, pass.as_bytes())
                    .map_err(|e| CliError::Usage(e.to_string()))
            }
        }
    }
}

/// `luks suspend`: I/O to `name` waits, its key wiped from the kernel.
pub(crate) fn suspend(name: &str) -> CliResult<i32> {
    let (dm_name, mapper) = existing(name)?;
    mapper.suspend_and_wipe_key(&dm_name)?;
    Ok(0)
}

/// `luks resume`: the passphrase unlocks the header on the mapping's device (or `--header`),
/// and the volume key goes back to the suspended mapping.
pub(crate) fn resume(a: &ResumeArgs, keys: &mut Keys) -> CliResult<i32> {
    let (dm_name, mapper) = existing(&a.name)?;
    let Some(s) = mapper.status(&dm_name)? else {
        return Err(
            activate::Error::dm(&a.name)(activate::DmError::NotFound(a.name.clone())).into(),
        );
    };
    if !s.suspended {
        return Err(activate::Error::Suspend {
            name: a.name.clone(),
            refusal: activate::SuspendRefusal::NotSuspended,
        }
        .into());
    }
    let data = Path::new(&s.device);
    let header = a.hdr.of(data);
    let mut dev = crate::luks::any::open_any(header, false)?;
    let prompt = format!("Enter passphrase for {}: ", data.display());
    let (slot, vk) = with_tries(keys, &a.key, &prompt, |pass| {
        dev.unlock(header, pass, a.key.key_slot, &a.key)
    })?;
    crate::luks::report_unlocked(slot);
    // The header must be this mapping's (its UUID is in the mapping's), or a foreign key
    // would go in and the volume read as noise.
    if !maps(&dev, &s) {
        return Err(activate::Error::Suspend {
            name: a.name.clone(),
            refusal: activate::SuspendRefusal::ForeignHeader,
        }
        .into());
    }
    let description = match &dev {
        AnyLuks::V2(d) => d.header().key_description(),
        AnyLuks::V1(_) => None,
    };
    mapper.resume_with_key(&dm_name, &vk, description.as_deref())?;
    Ok(0)
}

/// Whether `dev` is the header of the mapping `s` (its UUID is in the mapping's).
fn maps(dev: &AnyLuks, s: &Status) -> bool {
    let version = match dev {
        AnyLuks::V2(_) => 2,
        AnyLuks::V1(_) => 1,
    };
    let prefix = format!("CRYPT-LUKS{version}-{}-", dev.uuid().replace('-', ""));
    s.uuid.starts_with(&prefix)
}

/// `luks refresh`: the live LUKS mapping `a.name` takes tables with the flags given (and,
/// without `--persistent`, the header's stored ones), as cryptsetup's `refresh`: its header,
/// on the device under it (or `--header`), must be the mapping's and unlocks again; the
/// mapping stays read-only or read-write as it is.
pub(crate) fn refresh(a: &RefreshArgs, keys: &mut Keys) -> CliResult<i32> {
    let found = named(&a.name, query_mapper, code::FAILURE)?;
    let status = match &found {
        Some((name, mapper)) => mapper.status(name)?,
        None => None,
    };
    let (Some((dm_name, _)), Some(s)) = (found, status) else {
        return Err(CliError::Stated(
            format!("Device {} is not active.", a.name).into(),
        ));
    };
    // cryptsetup's type for the mapping, from its UUID (`CRYPT-LUKS2-...`).
    let kind = s
        .uuid
        .strip_prefix("CRYPT-")
        .and_then(|r| r.split('-').next());
    match kind {
        Some("LUKS1" | "LUKS2") => {}
        Some("PLAIN") => return refresh_plain(a, &s, &dm_name, keys),
        Some("LOOPAES") => {
            return Err(CliError::Usage(
                "refresh: a loop-AES mapping is not supported by this cryptsetup (cryptpilot)"
                    .into(),
            ))
        }
        Some(kind) => {
            return Err(CliError::Stated(
                format!("Refresh is not supported for device type {kind}").into(),
            ))
        }
        None => {
            return Err(CliError::Stated(
                format!("{} is not cryptsetup managed device.", a.name).into(),
            ))
        }
    }
    let data = std::path::PathBuf::from(&s.device);
    let header = a.hdr.of(&data);
    if !maps(&crate::luks::any::open_any(header, false)?, &s) {
        return Err(CliError::Stated(
            format!("Mismatching parameters on device {}.", a.name).into(),
        ));
    }
    let options = Options {
        refresh: true,
        ..luks_options(&a.map, s.read_only)
    };
    let volume = Volume {
        data: &data,
        header: a.hdr.header.as_deref(),
        named: s.loop_file.as_deref().map_or(&data, Path::new),
    };
    let unlock = Unlock {
        key: &a.key,
        tokens: &a.tokens,
        volume_key_file: a.volume_key_file.as_deref(),
    };
    open(
        &volume,
        dm_name.as_str(),
        &unlock,
        keys,
        &options,
        a.map.persistent,
    )
}

/// [`refresh`] of the plain mapping `s`: its cipher, key size, offsets, size and sector size
/// are the live mapping's; the key comes as at `open` (`--hash`, `--key-file`) and must be
/// the live one. `--persistent` has nowhere to store flags and is ignored, as cryptsetup
/// ignores it.
fn refresh_plain(a: &RefreshArgs, s: &Status, name: &DmName, keys: &mut Keys) -> CliResult<i32> {
    let data = std::path::PathBuf::from(&s.device);
    let mapper = open_mapper(Some((name.to_string(), 1)))?;
    let mut file = open_device(&data, !s.read_only, false)?;
    let named = s.loop_file.as_deref().map_or(data.as_path(), Path::new);
    let source = PlainKeySource {
        key_file: a.key.key_file.as_deref(),
        keyfile_offset: a.key.keyfile_offset,
        keyfile_size: a.key.keyfile_size,
        hash: a.hash.as_deref(),
        verify: false,
    };
    source.warn_ignored(a.common.batch);
    let prompt = format!("Enter passphrase for {}: ", named.display());
    let key = source.key(s.key_bits / 8, &prompt, keys)?;
    let params = PlainParams {
        cipher: s.cipher.clone(),
        offset: luks2::Sectors(s.offset_sectors),
        skip: s.iv_offset,
        size: Some(luks2::Sectors(s.size_sectors)),
        sector_size: s.sector_size,
        iv_large_sectors: s.iv_large_sectors,
    };
    let o = Options {
        refresh: true,
        ..options(&a.map.perf, s.read_only, false, true)
    };
    mapper.open_plain(&data, &mut file, &params, &key, name, &o)?;
    Ok(0)
}

/// Removes the mapping `name` (and its integrity layer): now, or with `--deferred` once it is
/// no longer in use; `--cancel-deferred` keeps it after all.
pub(crate) fn close(name: &str, when: &Deferral, out: &mut dyn Write) -> CliResult<i32> {
    let (dm_name, mapper) = existing(name)?;
    if when.cancel_deferred {
        // (The kernel refuses when no close was deferred.)
        mapper.cancel_deferred_close(&dm_name).map_err(|_| {
            CliError::Stated(format!("Could not cancel deferred remove from device {name}.").into())
        })?;
    } else if when.deferred {
        if mapper.close_deferred(&dm_name)? {
            write_out(
                out,
                &format!("Device {name} is still active and scheduled for deferred removal.\n"),
            )?;
        }
    } else {
        mapper.close(&dm_name)?;
    }
    Ok(0)
}

/// Resizes the open mapping `name` (exit 4 when it is not mapped). A mapping whose key is in
/// the kernel keyring needs it again: the passphrase unlocks the header on the mapping's
/// device (or `--header`).
pub(crate) fn resize(a: &ResizeArgs, keys: &mut Keys) -> CliResult<i32> {
    let (dm_name, mapper) = existing(&a.name)?;
    let key = match mapper.status(&dm_name)? {
        Some(s) if s.key_in_keyring => Some(keyring_key(&s, a, keys)?),
        _ => None,
    };
    mapper.resize(&dm_name, a.size.map(luks2::Sectors), key.as_ref())?;
    Ok(0)
}

/// The volume key of the mapping `s`, unlocked from its header with a passphrase.
fn keyring_key(s: &Status, a: &ResizeArgs, keys: &mut Keys) -> CliResult<KeyringKey> {
    let data = Path::new(&s.device);
    let device = a.hdr.of(data);
    let mut dev =
        Luks2::open(open_device(device, false, false)?).map_err(CliError::luks(device))?;
    let description = dev.header().key_description().ok_or_else(|| {
        CliError::Usage(format!(
            "{}: no digest covers the data segment",
            device.display()
        ))
    })?;
    let prompt = format!("Enter passphrase for {}: ", data.display());
    let (_, key) = match crate::luks::try_tokens(&mut dev, device, &a.key, &Default::default())? {
        Some(unlocked) => unlocked,
        None => {
            let pass = keys.existing(&a.key, &prompt)?;
            unlock(&mut dev, device, &pass, a.key.key_slot, &a.key)?
        }
    };
    Ok(KeyringKey { description, key })
}

/// Prints cryptsetup's status report; exit 4 when `name` is not mapped.
pub(crate) fn status(name: &str, json: bool, out: &mut dyn Write) -> CliResult<i32> {
    let path = shown(name);
    let status = looked_up(name, |m, n| m.status(n))?;
    let Some(s) = status else {
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
    rw(s.read_only)
}

fn rw(read_only: bool) -> &'static str {
    if read_only {
        "readonly"
    } else {
        "read/write"
    }
}

/// Prints the first line of a mapping's status (`active` finds its [`Active`] part) and
/// gives the status back; `None` (after cryptsetup's "inactive" line) when it is not mapped.
fn active_line<T>(
    path: &Path,
    status: Option<T>,
    active: impl Fn(&T) -> &Active,
    out: &mut dyn Write,
) -> CliResult<Option<T>> {
    let Some(s) = status else {
        write_out(out, &format!("{} is inactive.\n", path.display()))?;
        return Ok(None);
    };
    let busy = if active(&s).open_count > 0 {
        " and is in use"
    } else {
        ""
    };
    write_out(out, &format!("{} is active{busy}.\n", path.display()))?;
    Ok(Some(s))
}

/// `veritysetup status`: veritysetup 2.6's lines, from the kernel's table and status.
pub(crate) fn verity_status(name: &str, out: &mut dyn Write) -> CliResult<i32> {
    let s = looked_up(name, |m, n| m.verity_status(n))?;
    // veritysetup puts any name, a path too, under /dev/mapper when it is inactive.
    let path = match s {
        Some(_) => shown(name),
        None => format!("/dev/mapper/{name}").into(),
    };
    let Some(s) = active_line(&path, s, |s| &s.active, out)? else {
        return Ok(code::WRONG_DEVICE);
    };
    let mut t = format!("  type:        {}\n", s.active.kind);
    let Some(v) = &s.table else {
        write_out(out, &t)?;
        return Err(CliError::Usage(format!(
            "{name} is not a dm-verity mapping"
        )));
    };
    let salt = if v.salt.is_empty() { "-" } else { &v.salt };
    let hash_offset = v.hash_start * u64::from(v.hash_block_size) / 512;
    t.push_str(&format!(
        "  status:      {}\n  hash type:   {}\n  data block:  {}\n  hash block:  {}\n  hash name:   {}\n  salt:        {salt}\n  data device: {}\n",
        if s.verified { "verified" } else { "corrupted" },
        v.version, v.data_block_size, v.hash_block_size, v.algorithm, v.data_device,
    ));
    if let Some(l) = &s.data_loop {
        t.push_str(&format!("  data loop:   {l}\n"));
    }
    t.push_str(&format!(
        "  size:        {} sectors\n  mode:        {}\n  hash device: {}\n",
        s.active.size_sectors,
        rw(s.active.read_only),
        v.hash_device
    ));
    if let Some(l) = &s.hash_loop {
        t.push_str(&format!("  hash loop:   {l}\n"));
    }
    t.push_str(&format!(
        "  hash offset: {hash_offset} sectors\n  root hash:   {}\n",
        v.root_digest
    ));
    // veritysetup's flag words, in its order (the last two without a trailing space).
    let flags: String = [
        ("ignore_corruption", "ignore_corruption "),
        ("restart_on_corruption", "restart_on_corruption "),
        ("panic_on_corruption", "panic_on_corruption "),
        ("ignore_zero_blocks", "ignore_zero_blocks "),
        ("check_at_most_once", "check_at_most_once"),
        ("try_verify_in_tasklet", "try_verify_in_tasklet"),
    ]
    .iter()
    .filter(|(o, _)| v.options.iter().any(|x| x == o))
    .map(|(_, w)| *w)
    .collect();
    if !flags.is_empty() {
        t.push_str(&format!("  flags:       {flags}\n"));
    }
    write_out(out, &t)?;
    Ok(0)
}

/// `integritysetup status`: integritysetup 2.6's lines, from the kernel's table and status.
pub(crate) fn integrity_status(name: &str, out: &mut dyn Write) -> CliResult<i32> {
    let path = shown(name);
    let s = looked_up(name, |m, n| m.integrity_status(n))?;
    let Some(s) = active_line(&path, s, |s| &s.active, out)? else {
        return Ok(code::WRONG_DEVICE);
    };
    let mut t = format!("  type:    {}\n", s.active.kind);
    // Another kind of mapping: integritysetup stops after its type, and succeeds.
    let Some(i) = &s.table else {
        write_out(out, &t)?;
        return Ok(0);
    };
    let opt = |key: &str| {
        i.options
            .iter()
            .find_map(|o| o.strip_prefix(key)?.strip_prefix(':'))
    };
    let num = |key: &str| opt(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let algorithm = opt("internal_hash")
        .map(|h| h.split(':').next().unwrap_or(h))
        .unwrap_or("(none)");
    t.push_str(&format!(
        "  tag size: {}\n  integrity: {algorithm}\n  device:  {}\n",
        i.tag_size.unwrap_or(0),
        i.device
    ));
    if let Some(l) = &s.loop_file {
        t.push_str(&format!("  loop:    {l}\n"));
    }
    let block_size = opt("block_size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(512u64);
    t.push_str(&format!(
        "  sector size:  {block_size} bytes\n  interleave sectors: {}\n  size:    {} sectors\n  mode:    {}{}\n  failures: {}\n",
        num("interleave_sectors"),
        s.active.size_sectors,
        rw(s.active.read_only),
        if i.mode == IntegrityMode::Recovery { " recovery" } else { "" },
        s.failures,
    ));
    if i.mode == IntegrityMode::Bitmap {
        t.push_str(&format!(
            "  bitmap 512-byte sectors per bit: {}\n  bitmap flush interval: {} ms\n",
            num("sectors_per_bit"),
            num("bitmap_flush_interval")
        ));
    }
    if matches!(i.mode, IntegrityMode::Direct | IntegrityMode::Bitmap) {
        t.push_str("  journal: not active\n");
    } else {
        t.push_str(&format!(
            "  journal size: {} bytes\n  journal watermark: {}%\n  journal commit time: {} ms\n",
            num("journal_sectors") * 512,
            num("journal_watermark"),
            num("commit_time")
        ));
    }
    if i.options.iter().any(|o| o == "allow_discards") {
        t.push_str("  flags: discards \n");
    }
    write_out(out, &t)?;
    Ok(0)
}

fn status_json(name: &str, s: &Status) -> serde_json::Value {
    let integrity = s
        .integrity
        .as_ref()
        .map(|i| serde_json::json!({"type": i.kind, "key_bits": i.key_bits, "tag_size": i.tag_size, "mode": i.mode}));
    serde_json::json!({
        "name": name, "active": true, "type": s.kind, "uuid": s.uuid,
        "cipher": s.cipher, "key_bits": s.key_bits, "key_location": key_location(s), "device": s.device,
        "loop": s.loop_file, "sector_size": s.sector_size, "offset_sectors": s.offset_sectors,
        "skipped_sectors": s.iv_offset, "flags": s.flags,
        "size_sectors": s.size_sectors, "mode": mode(s), "open_count": s.open_count,
        "integrity": integrity, "major": s.major, "minor": s.minor,
    })
}

fn key_location(s: &Status) -> &'static str {
    if s.key_in_keyring {
        "keyring"
    } else {
        "dm-crypt"
    }
}

fn status_text(path: &Path, s: &Status) -> String {
    // With integrity: the protection and its key, as cryptsetup (tag size and journalling
    // mode are in --json).
    let integrity = match &s.integrity {
        Some(i) if i.key_bits > 0 => format!(
            "  integrity: {}\n  integrity keysize: {} bits\n",
            i.kind, i.key_bits
        ),
        Some(i) => format!("  integrity: {}\n", i.kind),
        None => String::new(),
    };
    let mut t = format!(
        "{} is active{}.\n  type:    {}\n  cipher:  {}\n  keysize: {} bits\n  key location: {}\n{integrity}  device:  {}\n",
        path.display(),
        if s.open_count > 0 { " and is in use" } else { "" },
        s.kind,
        s.cipher,
        s.key_bits,
        key_location(s),
        s.device,
    );
    if let Some(f) = &s.loop_file {
        t.push_str(&format!("  loop:    {f}\n"));
    }
    t.push_str(&format!(
        "  sector size:  {}\n  offset:  {} sectors\n  size:    {} sectors\n",
        s.sector_size, s.offset_sectors, s.size_sectors
    ));
    if s.iv_offset != 0 {
        t.push_str(&format!("  skipped: {} sectors\n", s.iv_offset));
    }
    let suspended = if s.suspended { " (suspended)" } else { "" };
    t.push_str(&format!("  mode:    {}{suspended}\n", mode(s)));
    if !s.flags.is_empty() {
        // cryptsetup ends each flag with a space but the last kind (no_write_workqueue).
        let flags: String = s
            .flags
            .iter()
            .map(|f| match *f {
                "no_write_workqueue" => (*f).to_owned(),
                f => format!("{f} "),
            })
            .collect();
        t.push_str(&format!("  flags:   {flags}\n"));
    }
    t
}
