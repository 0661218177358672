//! Offline images: `encrypt-image`, `decrypt-image`, `read` and `write` through the userspace
//! segment cipher, streaming in bounded chunks with all CPUs, sparse-aware.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use luks2::{BlockIo, Luks2, SegmentCipher, VolumeKey};

use crate::args::{KeyOpts, LuksCommand};
use crate::error::{CliError, CliResult};
use crate::keys::Keys;
use crate::luks::{confirm, format_options, open_device, read_volume_key, write_out};
use crate::progress::Progress;

/// Bytes encrypted per step: memory stays bounded whatever the image size.
const CHUNK: usize = 16 << 20;

fn threads(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// The volume key from --volume-key-file or a passphrase.
fn volume_key(
    dev: &mut Luks2<&mut File>,
    device: &Path,
    key: &KeyOpts,
    vk_file: Option<&Path>,
    keys: &mut Keys,
) -> CliResult<VolumeKey> {
    if let Some(f) = vk_file {
        let vk = read_volume_key(f)?;
        dev.verify_volume_key(&vk).map_err(CliError::luks(device))?;
        return Ok(vk);
    }
    let pass = keys.existing(key, &format!("Enter passphrase for {}: ", device.display()))?;
    dev.unlock(pass.as_bytes(), key.key_slot, &luks2::KdfLimits::default())
        .map(|(_, vk)| vk)
        .map_err(CliError::luks(device))
}

/// Opens a LUKS2 image and keys its data segment; returns the cipher and the segment's size.
fn open_segment(
    path: &Path,
    file: &mut File,
    key: &KeyOpts,
    vk_file: Option<&Path>,
    keys: &mut Keys,
) -> CliResult<(SegmentCipher, u64)> {
    let mut dev = Luks2::open(&mut *file).map_err(CliError::luks(path))?;
    let a = dev.header().activation().map_err(CliError::luks(path))?;
    let vk = volume_key(&mut dev, path, key, vk_file, keys)?;
    let cipher = SegmentCipher::new(&a, &vk).map_err(CliError::luks(path))?;
    drop(dev);
    let size = file
        .size()
        .map_err(CliError::device(path, "read the size of"))?;
    let avail = size.saturating_sub(a.offset);
    let seg = a.size.unwrap_or(avail).min(avail) / a.sector_size as u64 * a.sector_size as u64;
    Ok((cipher, seg))
}

/// Whether `[pos, pos + len)` of `f` is entirely a hole (no data before `pos + len`).
fn is_hole(f: &File, pos: u64, len: u64) -> bool {
    use nix::unistd::{lseek, Whence};
    let Ok(pos_off) = i64::try_from(pos) else {
        return false;
    };
    match lseek(f, pos_off, Whence::SeekData) {
        Ok(next) => next as u64 >= pos + len,
        // ENXIO: no data at or after `pos`.
        Err(nix::Error::ENXIO) => true,
        Err(_) => false,
    }
}

/// Creates (or, once confirmed, replaces) an output file.
fn create_output(path: &Path, common: &crate::args::Common) -> CliResult<File> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        confirm(
            common,
            &format!("{} exists and will be overwritten.", path.display()),
        )?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(CliError::file(path, "create"))
}

pub(crate) fn run(cmd: LuksCommand, keys: &mut Keys, out: &mut dyn Write) -> CliResult<i32> {
    match cmd {
        LuksCommand::EncryptImage {
            input,
            output,
            new,
            key,
            pbkdf,
            volume_key_file,
            sparse,
            threads: n,
            common,
        } => {
            let mut inp = File::open(&input).map_err(CliError::file(&input, "open"))?;
            let in_size = inp
                .size()
                .map_err(CliError::file(&input, "read the size of"))?;
            let mut opts = format_options(&new, &pbkdf, &key)?;
            if let Some(f) = &volume_key_file {
                opts.volume_key = Some(read_volume_key(f)?);
            }
            let sector =
                u64::from(
                    opts.sector_size
                        .unwrap_or(if in_size % 4096 == 0 { 4096 } else { 512 }),
                );
            opts.sector_size = Some(sector as u32);
            let offset = opts
                .planned_data_offset()
                .map_err(CliError::luks(&output))?;
            let data_len = in_size.div_ceil(sector) * sector;
            let pass = match key.key_file.as_ref() {
                Some(kf) => Keys::from_file(kf, key.keyfile_offset, key.keyfile_size)?,
                None => keys.new_passphrase(
                    None,
                    &format!("Enter passphrase for {}: ", output.display()),
                )?,
            };
            let mut f = create_output(&output, &common)?;
            f.set_len(offset + data_len)
                .map_err(CliError::file(&output, "size"))?;
            let (dev, vk) =
                luks2::format(&mut f, &opts, pass.as_bytes()).map_err(CliError::luks(&output))?;
            let a = dev.header().activation().map_err(CliError::luks(&output))?;
            drop(dev);
            let cipher = SegmentCipher::new(&a, &vk).map_err(CliError::luks(&output))?;
            let threads = threads(n);
            let mut buf = vec![0u8; CHUNK];
            let mut progress = Progress::new("Encrypting", data_len);
            let mut pos = 0u64;
            while pos < data_len {
                let len = (data_len - pos).min(CHUNK as u64) as usize;
                let hole = is_hole(&inp, pos, len as u64);
                if !(sparse && hole) {
                    let chunk = &mut buf[..len];
                    let have = (in_size - pos).min(len as u64) as usize;
                    if hole {
                        chunk.fill(0);
                    } else {
                        inp.read_exact_at(&mut chunk[..have], pos)
                            .map_err(CliError::file(&input, "read"))?;
                        chunk[have..].fill(0);
                    }
                    cipher
                        .encrypt(pos, chunk, threads)
                        .map_err(CliError::luks(&output))?;
                    f.write_all_at(chunk, offset + pos)
                        .map_err(CliError::file(&output, "write"))?;
                }
                pos += len as u64;
                progress.update(pos);
            }
            f.sync_all().map_err(CliError::file(&output, "flush"))?;
            progress.finish();
            Ok(0)
        }
        LuksCommand::DecryptImage {
            input,
            output,
            key,
            volume_key_file,
            sparse,
            threads: n,
            common,
        } => {
            let mut inp = open_device(&input, false, false)?;
            let (cipher, seg) =
                open_segment(&input, &mut inp, &key, volume_key_file.as_deref(), keys)?;
            let mut f = create_output(&output, &common)?;
            let threads = threads(n);
            let offset = cipher.offset();
            let ss = cipher.sector_size();
            let mut buf = vec![0u8; CHUNK];
            let mut progress = Progress::new("Decrypting", seg);
            let mut pos = 0u64;
            while pos < seg {
                let len = (seg - pos).min(CHUNK as u64) as usize;
                if !(sparse && is_hole(&inp, offset + pos, len as u64)) {
                    let chunk = &mut buf[..len];
                    inp.read_exact_at(chunk, offset + pos)
                        .map_err(CliError::device(&input, "read"))?;
                    cipher
                        .decrypt(pos, chunk, threads)
                        .map_err(CliError::luks(&input))?;
                    // All-zero sectors are left as holes.
                    for (i, s) in chunk.chunks(ss).enumerate() {
                        if s.iter().any(|&b| b != 0) {
                            f.write_all_at(s, pos + (i * ss) as u64)
                                .map_err(CliError::file(&output, "write"))?;
                        }
                    }
                }
                pos += len as u64;
                progress.update(pos);
            }
            f.set_len(seg).map_err(CliError::file(&output, "size"))?;
            f.sync_all().map_err(CliError::file(&output, "flush"))?;
            progress.finish();
            Ok(0)
        }
        LuksCommand::Read {
            device,
            offset,
            length,
            output,
            key,
            volume_key_file,
            common: _,
        } => {
            let mut f = open_device(&device, false, false)?;
            let (cipher, seg) =
                open_segment(&device, &mut f, &key, volume_key_file.as_deref(), keys)?;
            let len = length.unwrap_or(seg.saturating_sub(offset));
            if offset.checked_add(len).is_none_or(|end| end > seg) {
                return Err(CliError::Usage(format!(
                    "{len} bytes at {offset} go past the {seg}-byte data segment"
                )));
            }
            let mut sink: Box<dyn Write> = match &output {
                Some(p) => Box::new(
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(p)
                        .map_err(CliError::file(p, "create"))?,
                ),
                None => Box::new(&mut *out),
            };
            let mut pos = offset;
            let mut buf = vec![0u8; CHUNK];
            while pos < offset + len {
                let n = (offset + len - pos).min(CHUNK as u64) as usize;
                let chunk = &mut buf[..n];
                f.read_exact_at(chunk, cipher.offset() + pos)
                    .map_err(CliError::device(&device, "read"))?;
                cipher
                    .decrypt(pos, chunk, threads(None))
                    .map_err(CliError::luks(&device))?;
                sink.write_all(chunk)
                    .map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))?;
                pos += n as u64;
            }
            sink.flush()
                .map_err(|e| CliError::Usage(format!("cannot write the output: {e}")))?;
            Ok(0)
        }
        LuksCommand::Write {
            device,
            offset,
            input,
            key,
            volume_key_file,
            common: _,
        } => {
            if input.is_none()
                && key.key_file.is_none()
                && volume_key_file.is_none()
                && !std::io::IsTerminal::is_terminal(&std::io::stdin())
            {
                return Err(CliError::Usage(
                    "with the data on standard input, give the key with --key-file or --volume-key-file".into(),
                ));
            }
            let mut data = Vec::new();
            match &input {
                Some(p) => File::open(p)
                    .and_then(|mut f| f.read_to_end(&mut data))
                    .map_err(CliError::file(p, "read"))?,
                None => std::io::stdin()
                    .read_to_end(&mut data)
                    .map_err(|e| CliError::Usage(format!("cannot read standard input: {e}")))?,
            };
            let mut f = open_device(&device, true, false)?;
            let (cipher, seg) =
                open_segment(&device, &mut f, &key, volume_key_file.as_deref(), keys)?;
            if offset
                .checked_add(data.len() as u64)
                .is_none_or(|end| end > seg)
            {
                return Err(CliError::Usage(format!(
                    "{} bytes at {offset} go past the {seg}-byte data segment",
                    data.len()
                )));
            }
            cipher
                .encrypt(offset, &mut data, threads(None))
                .map_err(CliError::luks(&device))?;
            f.write_all_at(&data, cipher.offset() + offset)
                .and_then(|()| f.sync_all())
                .map_err(CliError::device(&device, "write"))?;
            write_out(out, "")
        }
        _ => Err(CliError::Usage("not an image verb".into())),
    }
}
