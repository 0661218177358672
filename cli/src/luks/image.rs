//! Offline images: `encrypt-image`, `decrypt-image`, `read` and `write`: keys and files here,
//! the streaming in `activate::image`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use activate::image::{self, Segment, Source, Stream, Unlocked};

use super::{confirm, format_options, open_device, read_volume_key, write_out};
use crate::args::{Common, DecryptImageArgs, EncryptImageArgs, KeyOpts, ReadArgs, WriteArgs};
use crate::error::{CliError, CliResult};
use crate::input::read_bounded;
use crate::keys::Keys;
use crate::output::Output;
use crate::progress::Progress;

fn stream(threads: Option<usize>, sparse: bool) -> Stream {
    let mut s = Stream {
        sparse,
        ..Stream::default()
    };
    if let Some(n) = threads {
        s.threads = n.max(1);
    }
    s
}

/// Reads the image's header (from `header` when it is detached), then unlocks it with
/// --volume-key-file or a passphrase.
fn unlock(
    path: &Path,
    file: &mut File,
    header: Option<&Path>,
    key: &KeyOpts,
    vk_file: Option<&Path>,
    keys: &mut Keys,
) -> CliResult<Unlocked> {
    let mut header_file;
    let seg = match header {
        Some(h) => {
            let size = luks2::BlockIo::size(file).map_err(CliError::file(path, "read"))?;
            header_file = open_device(h, false, false)?;
            Segment::open(h, &mut header_file)?.detached(size)
        }
        None => Segment::open(path, file)?,
    };
    if let Some(f) = vk_file {
        let key = read_volume_key(f, seg.key_size())?;
        return Ok(seg.unlock_with_key(&key)?);
    }
    let pass = keys.existing(key, &format!("Enter passphrase for {}: ", path.display()))?;
    Ok(seg.unlock(&pass, key.key_slot, &key.kdf_limits())?)
}

/// Starts an output file (replacing an existing one once confirmed); it appears under its
/// name only when complete.
fn create_output(path: &Path, common: &Common) -> CliResult<Output> {
    let exists = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    if exists {
        confirm(
            common,
            &format!("{} exists and will be overwritten.", path.display()),
        )?;
    }
    Output::create(path, 0o644, true)
}

/// Encrypts a plain image into a new LUKS2 image.
pub(super) fn encrypt(a: EncryptImageArgs, keys: &mut Keys) -> CliResult<i32> {
    let input = &a.input;
    let inp = File::open(input).map_err(CliError::file(input, "open"))?;
    let mut opts = format_options(&a.new, &a.pbkdf, &a.key)?;
    if let Some(f) = &a.volume_key_file {
        opts.volume_key = Some(read_volume_key(f, opts.key_size)?);
    }
    let pass = keys.new_passphrase(
        a.key.key_file.as_deref(),
        a.key.keyfile_offset,
        a.key.keyfile_size,
        &format!("Enter passphrase for {}: ", a.output.display()),
    )?;
    let mut out = create_output(&a.output, &a.common)?;
    let mut progress = Progress::new("Encrypting");
    image::encrypt_image(
        Source {
            path: input,
            file: &inp,
        },
        (&a.output, out.file()),
        &opts,
        &pass,
        stream(a.threads, a.sparse),
        &mut |done, total| progress.update(done, total),
    )?;
    out.commit()?;
    progress.finish();
    Ok(0)
}

/// Decrypts a LUKS2 image's data into a plain image.
pub(super) fn decrypt(a: DecryptImageArgs, keys: &mut Keys) -> CliResult<i32> {
    let input = &a.input;
    let mut inp = open_device(input, false, false)?;
    let seg = unlock(
        input,
        &mut inp,
        a.hdr.header.as_deref(),
        &a.key,
        a.volume_key_file.as_deref(),
        keys,
    )?;
    let mut out = create_output(&a.output, &a.common)?;
    let mut progress = Progress::new("Decrypting");
    image::decrypt_image(
        Source {
            path: input,
            file: &inp,
        },
        &seg,
        (&a.output, out.file()),
        stream(a.threads, a.sparse),
        &mut |done, total| progress.update(done, total),
    )?;
    out.commit()?;
    progress.finish();
    Ok(0)
}

/// Prints decrypted bytes of the data segment.
pub(super) fn read(a: ReadArgs, keys: &mut Keys, out: &mut dyn Write) -> CliResult<i32> {
    let device = &a.device;
    let mut f = open_device(device, false, false)?;
    let seg = unlock(
        device,
        &mut f,
        a.hdr.header.as_deref(),
        &a.key,
        a.volume_key_file.as_deref(),
        keys,
    )?;
    let len = a.length.unwrap_or(seg.size.saturating_sub(a.offset));
    let source = Source {
        path: device,
        file: &f,
    };
    match &a.output {
        Some(p) => {
            let mut o = Output::create(p, 0o600, false)?;
            image::read_range(source, &seg, a.offset, len, o.file())?;
            o.commit()?;
        }
        None => image::read_range(source, &seg, a.offset, len, out)?,
    }
    Ok(0)
}

/// Encrypts bytes into the data segment.
pub(super) fn write(a: WriteArgs, keys: &mut Keys, out: &mut dyn Write) -> CliResult<i32> {
    if a.input.is_none()
        && a.key.key_file.is_none()
        && a.volume_key_file.is_none()
        && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        return Err(CliError::Usage(
            "with the data on standard input, give the key with --key-file or --volume-key-file"
                .into(),
        ));
    }
    let device = &a.device;
    let mut f = open_device(device, true, false)?;
    // No more can be written than the device holds.
    let room = f.metadata().map_err(CliError::file(device, "read"))?.len();
    let room = match room {
        0 => luks2::BlockIo::size(&mut f).map_err(CliError::file(device, "read"))?,
        n => n,
    };
    let mut data = read_bounded(a.input.as_deref(), room, "the data to write")?;
    let seg = unlock(
        device,
        &mut f,
        a.hdr.header.as_deref(),
        &a.key,
        a.volume_key_file.as_deref(),
        keys,
    )?;
    image::write_range(device, &f, &seg, a.offset, &mut data)?;
    write_out(out, "")
}
