//! Offline images: `encrypt-image`, `decrypt-image`, `read` and `write`: keys and files here,
//! the streaming in `activate::image`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use activate::image::{self, Segment, Source, Stream, Unlocked};

use crate::args::{Common, KeyOpts, LuksCommand};
use crate::error::{CliError, CliResult};
use crate::keys::Keys;
use crate::luks::{confirm, format_options, open_device, read_volume_key, write_out};
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

/// Reads the image's header, then unlocks it with --volume-key-file or a passphrase.
fn unlock(
    path: &Path,
    file: &mut File,
    key: &KeyOpts,
    vk_file: Option<&Path>,
    keys: &mut Keys,
) -> CliResult<Unlocked> {
    let seg = Segment::open(path, file)?;
    if let Some(f) = vk_file {
        return Ok(seg.unlock_with_key(&read_volume_key(f)?)?);
    }
    let pass = keys.existing(key, &format!("Enter passphrase for {}: ", path.display()))?;
    Ok(seg.unlock(pass.as_bytes(), key.key_slot)?)
}

/// Creates (or, once confirmed, replaces) an output file.
fn create_output(path: &Path, common: &Common) -> CliResult<File> {
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
            threads,
            common,
        } => {
            let inp = File::open(&input).map_err(CliError::file(&input, "open"))?;
            let mut opts = format_options(&new, &pbkdf, &key)?;
            if let Some(f) = &volume_key_file {
                opts.volume_key = Some(read_volume_key(f)?);
            }
            let pass = match key.key_file.as_ref() {
                Some(kf) => Keys::from_file(kf, key.keyfile_offset, key.keyfile_size)?,
                None => keys.new_passphrase(
                    None,
                    &format!("Enter passphrase for {}: ", output.display()),
                )?,
            };
            let mut f = create_output(&output, &common)?;
            let mut progress = Progress::new("Encrypting");
            let source = Source {
                path: &input,
                file: &inp,
            };
            image::encrypt_image(
                source,
                (&output, &mut f),
                &opts,
                pass.as_bytes(),
                stream(threads, sparse),
                &mut |done, total| progress.update(done, total),
            )?;
            progress.finish();
            Ok(0)
        }
        LuksCommand::DecryptImage {
            input,
            output,
            key,
            volume_key_file,
            sparse,
            threads,
            common,
        } => {
            let mut inp = open_device(&input, false, false)?;
            let seg = unlock(&input, &mut inp, &key, volume_key_file.as_deref(), keys)?;
            let mut f = create_output(&output, &common)?;
            let mut progress = Progress::new("Decrypting");
            let source = Source {
                path: &input,
                file: &inp,
            };
            image::decrypt_image(
                source,
                &seg,
                (&output, &mut f),
                stream(threads, sparse),
                &mut |done, total| progress.update(done, total),
            )?;
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
            let seg = unlock(&device, &mut f, &key, volume_key_file.as_deref(), keys)?;
            let len = length.unwrap_or(seg.size.saturating_sub(offset));
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
            let source = Source {
                path: &device,
                file: &f,
            };
            image::read_range(source, &seg, offset, len, &mut sink)?;
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
            let seg = unlock(&device, &mut f, &key, volume_key_file.as_deref(), keys)?;
            image::write_range(&device, &f, &seg, offset, &mut data)?;
            write_out(out, "")
        }
        _ => Err(CliError::Usage("not an image verb".into())),
    }
}
