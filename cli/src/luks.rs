//! The `cryptpilot luks` verbs: argument handling around the `luks2` library.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use luks2::{
    FormatOptions, HashAlg, KdfLimits, KeyslotOptions, Luks2, PbkdfKind, PbkdfParams,
    SegmentIntegrity, VolumeKey,
};

use crate::args::{Common, KeyOpts, LuksCommand as Luks, NewVolumeOpts, PbkdfOpts, TokenAction};
use crate::error::{code, CliError, CliResult};
use crate::keys::Keys;
use crate::progress::Progress;

/// Opens a device or image (exclusively locked for writers, `O_EXCL` when `exclusive`).
pub(crate) fn open_device(path: &Path, write: bool, exclusive: bool) -> CliResult<File> {
    Ok(activate::open_device(path, write, exclusive)?)
}

fn open_luks(path: &Path, write: bool) -> CliResult<Luks2<File>> {
    let f = open_device(path, write, false)?;
    Luks2::open(f).map_err(CliError::luks(path))
}

/// Asks for confirmation of a destructive step; `--batch-mode` skips the question, and
/// without a terminal to ask on, the step is refused.
pub(crate) fn confirm(common: &Common, warning: &str) -> CliResult {
    if common.batch {
        return Ok(());
    }
    if !io::stdin().is_terminal() {
        return Err(CliError::Refused(format!(
            "{warning} Not confirmed (no terminal to ask on); pass --batch-mode to proceed"
        )));
    }
    eprint!("\nWARNING!\n========\n{warning}\n\nAre you sure? (Type 'yes' in capital letters): ");
    let mut answer = String::new();
    io::stdin()
        .read_line(&mut answer)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    if answer.trim_end() == "YES" {
        Ok(())
    } else {
        Err(CliError::Refused(
            "operation aborted; nothing was changed".into(),
        ))
    }
}

fn pbkdf_params(o: &PbkdfOpts) -> CliResult<PbkdfParams> {
    let mut p = PbkdfParams::default();
    if let Some(k) = &o.pbkdf {
        p.kind = PbkdfKind::parse(k).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    if let Some(h) = &o.hash {
        p.hash = HashAlg::parse(h).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    if let Some(m) = o.pbkdf_memory {
        p.memory_kib = m;
    }
    if let Some(n) = o.pbkdf_parallel {
        p.parallel = n;
    }
    if let Some(ms) = o.iter_time {
        p.iter_time = Duration::from_millis(ms);
    }
    p.force_iterations = o.pbkdf_force_iterations;
    Ok(p)
}

fn keyslot_options(o: &PbkdfOpts) -> CliResult<KeyslotOptions> {
    Ok(KeyslotOptions {
        pbkdf: pbkdf_params(o)?,
        ..KeyslotOptions::default()
    })
}

/// FormatOptions from the layout, KDF and key-slot flags.
pub(crate) fn format_options(
    new: &NewVolumeOpts,
    pbkdf: &PbkdfOpts,
    key: &KeyOpts,
) -> CliResult<FormatOptions> {
    let mut opts = FormatOptions::default();
    if let Some(c) = &new.cipher {
        opts.cipher = c.clone();
    }
    if let Some(bits) = new.key_size {
        if bits % 8 != 0 {
            return Err(CliError::Usage(format!(
                "key size {bits} is not a multiple of 8 bits"
            )));
        }
        opts.key_size = bits / 8;
    } else if !opts.cipher.contains("-xts-") {
        opts.key_size = 32;
    }
    opts.sector_size = new.sector_size;
    if let Some(m) = new.metadata_size {
        opts.metadata_size = m;
    }
    opts.keyslots_size = new.keyslots_size;
    opts.data_offset = new.offset.map(|s| s * 512);
    opts.label = new.label.clone().unwrap_or_default();
    opts.subsystem = new.subsystem.clone().unwrap_or_default();
    opts.uuid = new.uuid.clone();
    opts.keyslot = keyslot_options(pbkdf)?;
    if let Some(s) = key.key_slot {
        opts.keyslot_id = s;
    }
    Ok(opts)
}

pub(crate) fn read_volume_key(path: &Path) -> CliResult<VolumeKey> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(CliError::file(path, "read volume key file"))?;
    Ok(VolumeKey::new(buf))
}

fn write_secret_file(path: &Path, bytes: &[u8]) -> CliResult {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map_err(CliError::file(path, "create"))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(CliError::file(path, "write"))
}

pub(crate) fn unlock<D: luks2::BlockIo>(
    dev: &mut Luks2<D>,
    device: &Path,
    pass: &[u8],
    slot: Option<u32>,
) -> CliResult<(u32, VolumeKey)> {
    dev.unlock(pass, slot, &KdfLimits::default())
        .map_err(CliError::luks(device))
}

fn print_hex_block(out: &mut String, bytes: &[u8]) {
    for (i, line) in bytes.chunks(16).enumerate() {
        if i > 0 {
            out.push_str("\t\t");
        }
        for b in line {
            out.push_str(&format!("{b:02x} "));
        }
        out.push('\n');
    }
}

/// Runs one `luks` verb; returns the exit code for verbs that report through it (is-luks).
pub(crate) fn run(cmd: Luks, out: &mut dyn Write) -> CliResult<i32> {
    let mut keys = Keys::default();
    match cmd {
        Luks::Format {
            device,
            passphrase_file,
            key,
            pbkdf,
            new,
            volume_key_file,
            integrity,
            integrity_no_wipe,
            integrity_legacy_padding,
            common,
        } => {
            if passphrase_file.is_some() && key.key_file.is_some() {
                return Err(CliError::Usage(
                    "give the key file either as an argument or with --key-file, not both".into(),
                ));
            }
            let mut opts = format_options(&new, &pbkdf, &key)?;
            if let Some(name) = &integrity {
                let kind =
                    SegmentIntegrity::parse(name).map_err(|e| CliError::Usage(e.to_string()))?;
                kind.dm_params(&opts.cipher)
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                opts.integrity = Some(kind);
                opts.key_size += kind.mac_key_size();
            }
            if let Some(f) = &volume_key_file {
                opts.volume_key = Some(read_volume_key(f)?);
            }
            // The wipe needs device-mapper: make sure of it before anything is written.
            let mapper = if integrity.is_some() && !integrity_no_wipe {
                Some(activate::Mapper::open().map_err(|e| CliError::Usage(format!(
                    "initialising integrity tags needs device-mapper ({e}); pass --integrity-no-wipe to format without it"
                )))?)
            } else {
                None
            };
            let mut f = open_device(&device, true, true)?;
            let sig = luks2::probe::signature(&mut f).map_err(CliError::device(&device, "read"))?;
            if let Some(sig) = sig {
                confirm(
                    &common,
                    &format!("{} contains a {sig} signature. This will overwrite data on it irrevocably.", device.display()),
                )?;
            }
            let pass = match passphrase_file.as_ref().or(key.key_file.as_ref()) {
                Some(kf) => Keys::from_file(kf, key.keyfile_offset, key.keyfile_size)?,
                None => keys.new_passphrase(
                    None,
                    &format!("Enter passphrase for {}: ", device.display()),
                )?,
            };
            if opts.integrity.is_none() {
                luks2::format(&mut f, &opts, pass.as_bytes()).map_err(CliError::luks(&device))?;
                return Ok(0);
            }
            let mut progress = Progress::new("Wiping device to initialize integrity checksum");
            let mut report = |done, total| progress.update(done, total);
            let wipe = mapper
                .as_ref()
                .map(|m| (m, &mut report as &mut dyn FnMut(u64, u64)));
            activate::format_with_integrity(
                &device,
                f,
                &opts,
                pass.as_bytes(),
                !integrity_legacy_padding,
                wipe,
            )?;
            progress.finish();
            Ok(0)
        }
        Luks::Open {
            device,
            name,
            test_passphrase,
            readonly,
            integrity_no_journal,
            perf,
            key,
            common: _,
        } => {
            if test_passphrase {
                let mut dev = open_luks(&device, false)?;
                let pass = keys.existing(
                    &key,
                    &format!("Enter passphrase for {}: ", device.display()),
                )?;
                unlock(&mut dev, &device, pass.as_bytes(), key.key_slot)?;
                return Ok(0);
            }
            let Some(name) = name else {
                return Err(CliError::Usage(
                    "open needs a mapping NAME (or --test-passphrase)".into(),
                ));
            };
            let options = crate::mapping::options(&perf, readonly, integrity_no_journal);
            crate::mapping::open(&device, &name, &key, &mut keys, &options)
        }
        Luks::Close { name, common: _ } => crate::mapping::close(&name),
        cmd @ (Luks::EncryptImage { .. }
        | Luks::DecryptImage { .. }
        | Luks::Read { .. }
        | Luks::Write { .. }) => crate::image::run(cmd, &mut keys, out),
        Luks::Status { name, json } => crate::mapping::status(&name, json, out),
        Luks::Dump {
            device,
            json,
            dump_volume_key,
            volume_key_file,
            key,
            common: _,
        } => {
            let mut dev = open_luks(&device, false)?;
            if dump_volume_key {
                let pass = keys.existing(
                    &key,
                    &format!("Enter passphrase for {}: ", device.display()),
                )?;
                let (_, vk) = unlock(&mut dev, &device, pass.as_bytes(), key.key_slot)?;
                if let Some(f) = volume_key_file {
                    write_secret_file(&f, vk.as_bytes())?;
                    writeln_out(out, &format!("Key stored to file {}.", f.display()))?;
                    return Ok(0);
                }
                let h = dev.header();
                let seg = h.data_segment().map(|(_, s)| s);
                let cipher = seg.and_then(|s| s.encryption.clone()).unwrap_or_default();
                let (name, mode) = cipher.split_once('-').unwrap_or((&cipher, ""));
                let mut s = format!(
                    "LUKS header information for {}\nCipher name:   \t{name}\nCipher mode:   \t{mode}\nPayload offset:\t{}\nUUID:          \t{}\nMK bits:       \t{}\nMK dump:\t",
                    device.display(),
                    seg.map_or(0, |s| s.offset.0 / 512),
                    h.uuid(),
                    vk.len() * 8
                );
                print_hex_block(&mut s, vk.as_bytes());
                return write_out(out, &s);
            }
            let text = if json {
                dev.header().metadata_json_pretty() + "\n"
            } else {
                luks2::dump_text(dev.header())
            };
            write_out(out, &text)
        }
        Luks::AddKey {
            device,
            new_key_file,
            key,
            pbkdf,
            volume_key_file,
            common: _,
        } => {
            let mut dev = open_luks(&device, true)?;
            let vk = match &volume_key_file {
                Some(f) => {
                    let vk = read_volume_key(f)?;
                    dev.verify_volume_key(&vk)
                        .map_err(CliError::luks(&device))?;
                    vk
                }
                None => {
                    let pass = keys.existing(&key, "Enter any existing passphrase: ")?;
                    unlock(&mut dev, &device, pass.as_bytes(), None)?.1
                }
            };
            let new = keys.new_passphrase(
                new_key_file.as_deref(),
                "Enter new passphrase for key slot: ",
            )?;
            let opts = keyslot_options(&pbkdf)?;
            dev.add_keyslot(&vk, new.as_bytes(), key.key_slot, &opts)
                .map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::RemoveKey {
            device,
            passphrase_file,
            key,
            common,
        } => {
            let mut dev = open_luks(&device, true)?;
            let pass = match passphrase_file.as_ref() {
                Some(f) => Keys::from_file(f, key.keyfile_offset, key.keyfile_size)?,
                None => keys.existing(&key, "Enter passphrase to be deleted: ")?,
            };
            let (slot, _) = unlock(&mut dev, &device, pass.as_bytes(), key.key_slot)?;
            if dev.header().keyslot_ids().len() == 1 {
                confirm(&common, "This is the last keyslot. The device will become unusable after purging this key.")?;
            }
            dev.kill_keyslot(slot).map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::ChangeKey {
            device,
            new_key_file,
            key,
            pbkdf,
            common: _,
        } => {
            let mut dev = open_luks(&device, true)?;
            let old = keys.existing(&key, "Enter passphrase to be changed: ")?;
            let (slot, vk) = unlock(&mut dev, &device, old.as_bytes(), key.key_slot)?;
            let new = keys.new_passphrase(new_key_file.as_deref(), "Enter new passphrase: ")?;
            let opts = keyslot_options(&pbkdf)?;
            dev.change_keyslot(slot, &vk, new.as_bytes(), &opts)
                .map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::KillSlot {
            device,
            slot,
            key,
            common,
        } => {
            let mut dev = open_luks(&device, true)?;
            if !dev.header().keyslot_ids().contains(&slot) {
                return Err(CliError::luks(&device)(luks2::Error::KeyslotNotFound(slot)));
            }
            if !common.batch || key.key_file.is_some() {
                let pass = keys.existing(&key, "Enter any remaining passphrase: ")?;
                unlock(&mut dev, &device, pass.as_bytes(), None)?;
            }
            if dev.header().keyslot_ids().len() == 1 {
                confirm(&common, "This is the last keyslot. The device will become unusable after purging this key.")?;
            }
            dev.kill_keyslot(slot).map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::HeaderBackup {
            device,
            file,
            common: _,
        } => {
            let mut dev = open_luks(&device, false)?;
            let bytes = dev.backup().map_err(CliError::luks(&device))?;
            write_secret_file(&file, &bytes)?;
            Ok(0)
        }
        Luks::HeaderRestore {
            device,
            file,
            common,
        } => {
            let mut bytes = Vec::new();
            File::open(&file)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(CliError::file(&file, "read header backup"))?;
            let backup = luks2::check_backup(&bytes).map_err(CliError::luks(&file))?;
            let mut f = open_device(&device, true, true)?;
            let warning = match Luks2::open(&mut f) {
                Ok(cur) if cur.header().uuid() == backup.uuid() => {
                    "Device already contains a LUKS2 header. Replacing it will destroy existing keyslots.".to_owned()
                }
                Ok(cur) => format!(
                    "Device contains a LUKS2 header with UUID {}, the backup has UUID {}. Replacing it will destroy existing keyslots.",
                    cur.header().uuid(),
                    backup.uuid()
                ),
                Err(_) => "Device does not contain a valid LUKS2 header. Replacing the header can destroy data on it.".to_owned(),
            };
            confirm(&common, &warning)?;
            luks2::restore_backup(&mut f, &bytes).map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::Repair { device, common: _ } => {
            let mut dev = open_luks(&device, true)?;
            let msg = match dev.repair().map_err(CliError::luks(&device))? {
                Some(copy) => format!("Repaired the {copy} header copy.\n"),
                None => "Both header copies are valid; nothing to repair.\n".to_owned(),
            };
            write_out(out, &msg)
        }
        Luks::Uuid {
            device,
            uuid,
            common,
        } => match uuid {
            None => {
                let dev = open_luks(&device, false)?;
                write_out(out, &format!("{}\n", dev.header().uuid()))
            }
            Some(u) => {
                let mut dev = open_luks(&device, true)?;
                confirm(
                    &common,
                    &format!(
                        "Do you really want to change the UUID of {}?",
                        device.display()
                    ),
                )?;
                dev.set_uuid(&u).map_err(CliError::luks(&device))?;
                Ok(0)
            }
        },
        Luks::IsLuks { device, verbose } => {
            let f = open_device(&device, false, false)?;
            match Luks2::open(f) {
                Ok(_) => Ok(0),
                Err(e) => {
                    if verbose {
                        eprintln!("{}: {e}", device.display());
                    }
                    Ok(code::FAILURE)
                }
            }
        }
        Luks::Config {
            device,
            label,
            subsystem,
            common: _,
        } => {
            if label.is_none() && subsystem.is_none() {
                return Err(CliError::Usage(
                    "config needs --label and/or --subsystem".into(),
                ));
            }
            let mut dev = open_luks(&device, true)?;
            dev.set_labels(label.as_deref(), subsystem.as_deref())
                .map_err(CliError::luks(&device))?;
            Ok(0)
        }
        Luks::Token {
            action,
            device,
            token_id,
            json_file,
            replace,
            common: _,
        } => token(
            action,
            &device,
            token_id,
            json_file.as_deref(),
            replace,
            out,
        ),
    }
}

fn token(
    action: TokenAction,
    device: &Path,
    token_id: Option<u32>,
    json_file: Option<&Path>,
    replace: bool,
    out: &mut dyn Write,
) -> CliResult<i32> {
    let need_id =
        || token_id.ok_or_else(|| CliError::Usage("this token action needs --token-id".into()));
    match action {
        TokenAction::Import => {
            let mut text = String::new();
            match json_file {
                Some(p) => File::open(p)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .map_err(CliError::file(p, "read token JSON"))?,
                None => io::stdin().read_to_string(&mut text).map_err(|e| {
                    CliError::Usage(format!("cannot read token JSON from standard input: {e}"))
                })?,
            };
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("token is not valid JSON: {e}")))?;
            let serde_json::Value::Object(map) = value else {
                return Err(CliError::Usage("token JSON must be an object".into()));
            };
            let mut dev = open_luks(device, true)?;
            let id = dev
                .import_token(map, token_id, replace)
                .map_err(CliError::luks(device))?;
            write_out(out, &format!("Token {id} created.\n"))
        }
        TokenAction::Export => {
            let dev = open_luks(device, false)?;
            let t = dev.token(need_id()?).map_err(CliError::luks(device))?;
            let text = serde_json::to_string(t).unwrap_or_default() + "\n";
            match json_file {
                Some(p) => {
                    std::fs::write(p, text).map_err(CliError::file(p, "write token JSON"))?;
                    Ok(0)
                }
                None => write_out(out, &text),
            }
        }
        TokenAction::Remove => {
            let mut dev = open_luks(device, true)?;
            dev.remove_token(need_id()?)
                .map_err(CliError::luks(device))?;
            Ok(0)
        }
    }
}

/// Writes to standard output; a closed pipe is not an error.
pub(crate) fn write_out(out: &mut dyn Write, s: &str) -> CliResult<i32> {
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(CliError::File {
            path: PathBuf::from("standard output"),
            what: "write to",
            source: e,
        }),
    }
}

fn writeln_out(out: &mut dyn Write, s: &str) -> CliResult {
    write_out(out, &format!("{s}\n")).map(|_| ())
}
