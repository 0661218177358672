//! The `verity` verbs: veritysetup's format, verify, open, close and dump, on the `integrity`
//! crate's hash trees; mappings through the `activate` library.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use activate::{OnCorruption, VerityOptions};
use integrity::verity::{self, Superblock, VerityParams, SUPERBLOCK_SIZE};
use luks2::{BlockIo, HashAlg};

use crate::args::{
    VerityCheck, VerityCommand, VerityDumpArgs, VerityFormatArgs, VerityOpenArgs, VerityPlace,
    VerityTree, VerityVerifyArgs,
};
use crate::error::{CliError, CliResult};
use crate::luks::write_out;

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

fn open_file(path: &Path, write: bool) -> CliResult<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(CliError::device(path, "open"))?;
    usable(path, f)
}

/// `f` if it is a block device or an image file: a directory or a character device
/// (`/dev/null`) is "not compatible", as in veritysetup (exit 4).
fn usable(path: &Path, f: File) -> CliResult<File> {
    use std::os::unix::fs::FileTypeExt;
    let kind = f
        .metadata()
        .map_err(CliError::device(path, "examine"))?
        .file_type();
    if kind.is_file() || kind.is_block_device() {
        return Ok(f);
    }
    Err(CliError::device(path, "use")(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "not a block device or disk image file",
    )))
}

fn size_of(path: &Path, f: &mut File) -> CliResult<u64> {
    f.size().map_err(CliError::device(path, "read the size of"))
}

/// --hash-offset in 512-byte units, as veritysetup takes it.
fn check_offset(place: &VerityPlace) -> CliResult<()> {
    match place.hash_offset.is_multiple_of(512) {
        true => Ok(()),
        false => Err(CliError::Stated("Unsupported VERITY hash offset.".into())),
    }
}

/// The tree's shape from the options alone (format, or --no-superblock).
fn params_from_options(
    tree: &VerityTree,
    place: &VerityPlace,
    data: &Path,
    data_file: &mut File,
) -> CliResult<VerityParams> {
    check_offset(place)?;
    let hash = tree.hash.unwrap_or(HashAlg::Sha256);
    let mut p = VerityParams::random(1, hash).map_err(CliError::integrity(data))?;
    if let Some(n) = tree.data_block_size {
        p.data_block_size = n;
    }
    if let Some(n) = tree.hash_block_size {
        p.hash_block_size = n;
    }
    match tree.salt.as_deref() {
        Some("-") => p.salt.clear(),
        Some(hex) => {
            p.salt = verity::parse_hex(hex)
                .map_err(|_| CliError::Stated("Invalid salt string specified.".into()))?
        }
        None => {}
    }
    if let Some(u) = &tree.uuid {
        p.uuid = verity::parse_uuid(u).map_err(usage)?;
    }
    match tree.format {
        Some(t @ 2..) => {
            return Err(CliError::Stated(
                format!("Unsupported VERITY hash type {t}.").into(),
            ))
        }
        Some(t) => p.hash_type = t,
        None => {}
    }
    p.hash_offset = place.hash_offset;
    p.superblock = !place.no_superblock;
    let whole = size_of(data, data_file)? / u64::from(p.data_block_size.max(1));
    p.data_blocks = match tree.data_blocks {
        Some(n) if n > whole => {
            return Err(usage(format!(
                "--data-blocks {n} is more than the {whole} blocks of {}",
                data.display()
            )))
        }
        // 0, as veritysetup takes it, is the whole device.
        Some(0) | None => whole,
        Some(n) => n,
    };
    Ok(p)
}

/// The tree's shape: from the superblock on the hash device, or from the options.
fn params_for(
    tree: &VerityTree,
    place: &VerityPlace,
    data: &Path,
    data_file: &mut File,
    hash: &Path,
    hash_file: &mut File,
) -> CliResult<VerityParams> {
    if place.no_superblock {
        return params_from_options(tree, place, data, data_file);
    }
    check_offset(place)?;
    let sb = read_superblock(hash, hash_file, place.hash_offset)?;
    sb.params(place.hash_offset)
        .map_err(CliError::integrity(hash))
}

fn read_superblock(path: &Path, f: &mut File, offset: u64) -> CliResult<Superblock> {
    // A device that ends before a whole superblock has none, as veritysetup finds.
    let mut b = Vec::with_capacity(SUPERBLOCK_SIZE);
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.take(SUPERBLOCK_SIZE as u64).read_to_end(&mut b))
        .map_err(CliError::device(path, "read the verity superblock of"))?;
    Superblock::parse(&b).map_err(CliError::integrity(path))
}

fn root_hash_of(arg: Option<&str>, file: Option<&Path>, p: &VerityParams) -> CliResult<Vec<u8>> {
    let n = p.hash.output_len();
    let text = match (arg, file) {
        // (veritysetup takes the file then: its command line drops the argument.)
        (Some(_), Some(_)) => {
            return Err(usage(
                "give the root hash as an argument or with --root-hash-file, not both",
            ))
        }
        (Some(h), None) => h.to_owned(),
        (None, Some(f)) => root_hash_text(f, n)?,
        (None, None) => return Err(usage("no root hash given (argument or --root-hash-file)")),
    };
    // Not hex, or not the hash's length: veritysetup's sentence for both.
    match verity::parse_hex(&text) {
        Ok(root) if root.len() == n => Ok(root),
        _ => Err(CliError::Stated(
            "Invalid root hash string specified.".into(),
        )),
    }
}

/// The root hash text in `file` as veritysetup reads it: the first two characters per hash
/// byte, whatever follows them (a newline, or anything else).
fn root_hash_text(file: &Path, n: usize) -> CliResult<String> {
    let shown = file.display();
    let f = File::open(file)
        .map_err(|_| CliError::Stated(format!("Cannot read root hash file {shown}.").into()))?;
    // A regular file only (not a pipe, not a device), as veritysetup takes one.
    let regular = f.metadata().is_ok_and(|m| m.is_file());
    let mut text = Vec::with_capacity(2 * n);
    match f.take(2 * n as u64).read_to_end(&mut text) {
        Ok(got) if regular && got == 2 * n => Ok(String::from_utf8_lossy(&text).into_owned()),
        _ => Err(CliError::Stated(
            format!("Invalid root hash file {shown}.").into(),
        )),
    }
}

fn salt_text(p: &VerityParams) -> String {
    if p.salt.is_empty() {
        "-".into()
    } else {
        verity::to_hex(&p.salt)
    }
}

/// veritysetup's header report (format and dump).
fn report(path: &Path, p: &VerityParams, root: Option<&[u8]>, json: bool) -> String {
    let hash_size = p.hash_offset + p.hash_area_size();
    if json {
        let mut v = serde_json::json!({
            "hash_device": path.display().to_string(),
            "uuid": p.superblock.then(|| verity::format_uuid(&p.uuid)),
            "hash_type": p.hash_type,
            "data_blocks": p.data_blocks,
            "data_block_size": p.data_block_size,
            "hash_blocks": p.hash_blocks(),
            "hash_block_size": p.hash_block_size,
            "hash_algorithm": p.hash.name(),
            "salt": salt_text(p),
            "hash_offset": p.hash_offset,
            "hash_device_size": hash_size,
        });
        if let Some(r) = root {
            v["root_hash"] = verity::to_hex(r).into();
        }
        return format!("{v}\n");
    }
    let mut s = format!("VERITY header information for {}\n", path.display());
    // Without a superblock there is no UUID; veritysetup prints the line empty.
    let uuid = if p.superblock {
        verity::format_uuid(&p.uuid)
    } else {
        String::new()
    };
    s += &format!("UUID:            \t{uuid}\n");
    s += &format!(
        "Hash type:       \t{}\nData blocks:     \t{}\nData block size: \t{}\nHash blocks:     \t{}\nHash block size: \t{}\nHash algorithm:  \t{}\nSalt:            \t{}\n",
        p.hash_type,
        p.data_blocks,
        p.data_block_size,
        p.hash_blocks(),
        p.hash_block_size,
        p.hash.name(),
        salt_text(p)
    );
    if let Some(r) = root {
        s += &format!("Root hash:      \t{}\n", verity::to_hex(r));
    }
    // veritysetup leaves the line out for a tree at an offset (data and hash in one file).
    if p.hash_offset == 0 {
        s += &format!("Hash device size: \t{hash_size} [bytes]\n");
    }
    s
}

pub(crate) fn run(cmd: VerityCommand, out: &mut dyn Write) -> CliResult<i32> {
    match cmd {
        VerityCommand::Format(a) => format(a, out),
        VerityCommand::Verify(a) => verify(a),
        VerityCommand::Open(a) => open(a),
        VerityCommand::Close(a) => crate::mapping::close(&a.name, &a.deferral, out),
        VerityCommand::Status(a) => crate::mapping::verity_status(&a.name, out),
        VerityCommand::Dump(a) => dump(a, out),
    }
}

/// Hashes the data into a tree and prints veritysetup's report with the root hash.
fn format(a: VerityFormatArgs, out: &mut dyn Write) -> CliResult<i32> {
    let mut data_file = open_file(&a.data, false)?;
    let p = params_from_options(&a.tree, &a.place, &a.data, &mut data_file)?;
    let hash_device = &a.hash_device;
    p.check().map_err(CliError::integrity(hash_device))?;
    // A new hash image is the owner's only, as veritysetup creates it.
    let hash_file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(hash_device)
        // veritysetup: "Cannot create hash image ... for writing", exit 1.
        .map_err(CliError::file(hash_device, "create the hash image"))?;
    let mut hash_file = usable(hash_device, hash_file)?;
    // Data and hash in one file (or device): the hash area must start after the data, or it
    // would overwrite it (veritysetup refuses the same). Without a superblock the tree
    // starts at the hash block that holds --hash-offset, which may be before it.
    let data_end = p.data_blocks.saturating_mul(u64::from(p.data_block_size));
    let hash_start = p.hash_offset.min(p.tree_offset());
    if same_file(&data_file, &hash_file) && data_end > hash_start {
        return Err(CliError::Usage(format!(
            "Data area overlaps with hash area (the data ends at {data_end} bytes, \
             --hash-offset is {}).",
            p.hash_offset
        )));
    }
    let root = verity::format(&mut data_file, &mut hash_file, &p)
        .map_err(CliError::integrity(hash_device))?;
    if let Some(f) = &a.root_hash_file {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(f)
            .and_then(|mut file| file.write_all(verity::to_hex(&root).as_bytes()))
            .map_err(CliError::file(f, "write"))?;
    }
    write_out(out, &report(hash_device, &p, Some(&root), a.json))
}

/// Whether `a` and `b` are the same file or block device.
fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) if a.file_type().is_block_device() && b.file_type().is_block_device() => {
            a.rdev() == b.rdev()
        }
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The data and hash files, the tree's shape and the root hash the verbs that check need.
struct Checked {
    data_file: File,
    hash_file: File,
    params: VerityParams,
    root: Vec<u8>,
}

fn checked(data: &Path, c: &VerityCheck) -> CliResult<Checked> {
    let mut data_file = open_file(data, false)?;
    let mut hash_file = open_file(&c.hash_device, false)?;
    let params = params_for(
        &c.tree,
        &c.place,
        data,
        &mut data_file,
        &c.hash_device,
        &mut hash_file,
    )?;
    let root = root_hash_of(c.root_hash.as_deref(), c.root_hash_file.as_deref(), &params)?;
    Ok(Checked {
        data_file,
        hash_file,
        params,
        root,
    })
}

/// Checks every block offline; names the first bad one.
fn verify(a: VerityVerifyArgs) -> CliResult<i32> {
    let mut c = checked(&a.data, &a.check)?;
    verity::verify(&mut c.data_file, &mut c.hash_file, &c.params, &c.root)
        .map_err(CliError::integrity(&a.data))?;
    Ok(0)
}

/// Maps the data read-only, checked block by block by the kernel.
fn open(a: VerityOpenArgs) -> CliResult<i32> {
    let dm_name = crate::mapping::dm_name(&a.name)?;
    let on_corruption =
        match (
            a.ignore_corruption,
            a.restart_on_corruption,
            a.panic_on_corruption,
        ) {
            (false, false, false) => OnCorruption::Fail,
            (true, false, false) => OnCorruption::Ignore,
            (false, true, false) => OnCorruption::Restart,
            (false, false, true) => OnCorruption::Panic,
            _ => return Err(usage(
                "choose one of --ignore-corruption, --restart-on-corruption, --panic-on-corruption",
            )),
        };
    let options = VerityOptions {
        on_corruption,
        ignore_zero_blocks: a.ignore_zero_blocks,
        check_at_most_once: a.check_at_most_once,
    };
    let mut c = checked(&a.data, &a.check)?;
    let mapper = crate::mapping::mapper_for(&dm_name, 1)?;
    mapper.open_verity(
        (&a.data, &mut c.data_file),
        (&a.check.hash_device, &mut c.hash_file),
        &c.params,
        &c.root,
        &dm_name,
        &options,
    )?;
    Ok(0)
}

/// Prints the superblock as veritysetup's dump does.
fn dump(a: VerityDumpArgs, out: &mut dyn Write) -> CliResult<i32> {
    let mut f = open_file(&a.hash_device, false)?;
    let sb = read_superblock(&a.hash_device, &mut f, a.hash_offset)?;
    let p = sb
        .params(a.hash_offset)
        .map_err(CliError::integrity(&a.hash_device))?;
    write_out(out, &report(&a.hash_device, &p, None, a.json))
}
