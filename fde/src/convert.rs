//! Turning an ordinary GPT disk image into the protected layout, as an ordinary user: no loop
//! device, no mount, no chroot. The source is only read.
//!
//! The root file system (ext4, holding `/boot`) is copied into the output, its `/etc/fstab`
//! gains the new boot partition, it is checked, shrunk to its minimum and marked read-only
//! (e2fsprogs work on image files), hashed (and encrypted) while the page cache holds it, then
//! shifted to its place in the rootfs LV by inserting a hole before it. The output keeps every other partition (ESP, BIOS boot) with its GUIDs; the
//! root's place becomes a `boot` ext4 partition (the old `/boot`, a `boot -> .` link, our
//! initrd, a GRUB configuration) followed by an LVM2 PV with VG `cryptpilot` holding `rootfs`
//! (plain, or LUKS2 written by our own code) and `rootfs_hash` (the dm-verity tree of the
//! plaintext, computed here). The initrd carries `fde.toml`, `global.toml` and a
//! `metadata.toml` with the root hash; GRUB's configuration on the ESP is pointed at the boot
//! partition.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use luks2::{BlockIo, FormatOptions, Passphrase};

use crate::gpt::{self, Partition};
use crate::image::{self, DiskImage, Window, SECTOR};
use crate::reference::{self, ImageBoot};
use crate::{Error, Result};

/// The volume group's extent size in sectors (lvm2's default 4 MiB).
const EXTENT: u64 = 8192;
/// Partitions start on 1 MiB boundaries.
const ALIGN: u64 = 2048;
/// Room the rootfs LV keeps before the file system (a LUKS2 header's data offset; the
/// existing tool adds it whether or not the LV is encrypted).
const HEADER_ROOM: u64 = 16 << 20;
/// Copy and cipher chunk.
const CHUNK: usize = 4 << 20;
/// The most one `copy_file_range` call copies (progress shows between calls).
const COPY_STEP: u64 = 64 << 20;
/// The rootfs keyslot's Argon2id memory cost at most (KiB).
const ROOTFS_KDF_MEMORY_KIB: u32 = 256 << 10;
/// The name of the initrd on the boot partition.
pub const INITRD_PREFIX: &str = "initrd.img-";

/// What to convert and how.
#[derive(Debug)]
pub struct Options {
    /// A raw GPT disk image (read only).
    pub src: PathBuf,
    /// The raw output image; must not exist.
    pub dst: PathBuf,
    /// The directory with `fde.toml` and optionally `global.toml`.
    pub config_dir: PathBuf,
    /// The rootfs LV's passphrase; `None` leaves it unencrypted (dm-verity only).
    pub rootfs_passphrase: Option<Passphrase>,
    /// The root partition's number (default: found).
    pub rootfs_part: Option<u32>,
    /// The boot partition's size in bytes.
    pub boot_size: u64,
    /// The static binary that becomes the initrd's `/init`.
    pub init: PathBuf,
    /// An empty directory for temporary files (the old `/boot` and the kernel's modules).
    pub work: PathBuf,
    /// Extra files for the initrd (source, absolute path inside), such as an exec key
    /// provider's program.
    pub initrd_include: Vec<(PathBuf, PathBuf)>,
    /// Boot through a unified kernel image instead of GRUB.
    pub uki: Option<UkiOptions>,
    /// The costs of the rootfs keyslot's Argon2id.
    pub kdf: KdfCosts,
}

/// The rootfs keyslot's Argon2id costs. The keyslot is opened at boot on a machine of unknown
/// size and speed: by default its memory is capped at 256 MiB (cryptsetup's default takes up
/// to 1 GiB, half of the RAM of the machine converting) and its time cost is calibrated on
/// the converting machine to `iter_time`; fixed costs make the unlock time predictable on a
/// slower guest.
#[derive(Debug, Clone, Default)]
pub struct KdfCosts {
    /// Memory in KiB (cryptsetup's `--pbkdf-memory`); the calibration's ceiling, or the exact
    /// cost with `iterations`.
    pub memory_kib: Option<u32>,
    /// Time cost, skipping calibration (`--pbkdf-force-iterations`).
    pub iterations: Option<u32>,
    /// Parallel lanes (`--pbkdf-parallel`).
    pub parallel: Option<u32>,
    /// The calibration's target unlock time (`--iter-time`; default 2 s).
    pub iter_time: Option<std::time::Duration>,
}

impl KdfCosts {
    fn apply(&self, p: &mut luks2::PbkdfParams) {
        p.memory_kib = self
            .memory_kib
            .unwrap_or_else(|| p.memory_kib.min(ROOTFS_KDF_MEMORY_KIB));
        if let Some(i) = self.iterations {
            p.force_iterations = Some(i);
        }
        if let Some(n) = self.parallel {
            p.parallel = n;
        }
        if let Some(t) = self.iter_time {
            p.iter_time = t;
        }
    }
}

/// How the unified kernel image is made.
#[derive(Debug, Clone)]
pub struct UkiOptions {
    /// systemd's EFI stub (`linuxx64.efi.stub`); `None`: the image's own, else this
    /// machine's (Debian's systemd-boot-efi).
    pub stub: Option<PathBuf>,
    /// Appended to the kernel command line (the existing tool's default is
    /// `console=tty0 console=ttyS0,115200n8`).
    pub append_cmdline: String,
}

/// Where systemd installs its EFI stub.
pub const STUB_PATH: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// Where the conversion reports.
pub trait Report {
    /// A step begins.
    fn step(&mut self, what: &str);
    /// Bytes done of a long step.
    fn progress(&mut self, done: u64, total: u64);
}

/// What the conversion made.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The verity root hash (hex).
    pub root_hash: String,
    /// The root file system's size after shrinking, in bytes.
    pub rootfs_bytes: u64,
    /// The kernel version booted.
    pub kernel_version: String,
    /// The boot partition's number (`None` with a UKI).
    pub boot_partition: Option<u32>,
    /// The PV's partition number.
    pub pv_partition: u32,
    /// Whether the rootfs LV is LUKS2.
    pub encrypted: bool,
}

fn bad(path: &Path, why: impl Into<String>) -> Error {
    Error::Image {
        path: path.to_owned(),
        why: why.into(),
    }
}

/// Runs an e2fsprogs command in `dir`; exit codes up to `ok_max` count as success.
fn tool(dir: &Path, cmd: &str, args: &[&str], ok_max: i32) -> Result<String> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| Error::Tool {
            command: line.clone(),
            why: format!("cannot run it ({e}); install e2fsprogs"),
        })?;
    match out.status.code() {
        Some(c) if c <= ok_max => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        code => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(Error::Tool {
                command: line,
                why: format!(
                    "exit {}: {last}",
                    code.map_or("by signal".into(), |c| c.to_string())
                ),
            })
        }
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| bad(p, "the path is not UTF-8, which the tools need"))
}

/// The next run of data of `f` in `pos..end`, as (start, start of the following hole), both
/// within `pos..end` and the run never empty; `None` when only holes remain. A file system
/// that cannot say has data everywhere.
fn next_data(f: &File, pos: u64, end: u64) -> Option<(u64, u64)> {
    use nix::unistd::{lseek, Whence};
    let data = match lseek(f, pos as i64, Whence::SeekData) {
        Ok(d) => (d as u64).max(pos),
        Err(nix::errno::Errno::ENXIO) => return None,
        Err(_) => return Some((pos, end)),
    };
    if data >= end {
        return None;
    }
    let hole =
        lseek(f, data as i64, Whence::SeekHole).map_or(end, |h| (h as u64).clamp(data + 1, end));
    Some((data, hole))
}

/// Copies `len` bytes from `src` at `from` to `dst` at `to`, skipping holes (the
/// destination is a new sparse file: zeros are already there). Data ranges go through
/// `copy_file_range`, which copies inside the kernel (or shares the blocks, on file systems
/// that can); where it cannot serve (another file system, a device), through a buffer, which
/// also skips all-zero chunks.
fn sparse_copy(
    src: &File,
    from: u64,
    dst: &File,
    to: u64,
    len: u64,
    r: &mut dyn Report,
) -> std::io::Result<()> {
    use nix::errno::Errno;
    let mut buf = Vec::new();
    let mut in_kernel = true;
    let mut pos = 0u64;
    while pos < len {
        // Holes of the source are skipped; the data runs to the next hole.
        let Some((data, hole)) = next_data(src, from + pos, from + len) else {
            break;
        };
        pos = data - from;
        let data_end = hole - from;
        let n = (data_end - pos).min(COPY_STEP);
        if in_kernel {
            let (mut i, mut o) = ((from + pos) as i64, (to + pos) as i64);
            match nix::fcntl::copy_file_range(src, Some(&mut i), dst, Some(&mut o), n as usize) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the source ended early",
                    ))
                }
                Ok(k) => {
                    pos += k as u64;
                    r.progress(pos, len);
                    continue;
                }
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                    in_kernel = false;
                    buf = vec![0u8; CHUNK];
                }
                Err(e) => return Err(e.into()),
            }
        }
        let chunk = &mut buf[..n.min(CHUNK as u64) as usize];
        src.read_exact_at(chunk, from + pos)?;
        if chunk.iter().any(|&b| b != 0) {
            dst.write_all_at(chunk, to + pos)?;
        }
        pos += chunk.len() as u64;
        r.progress(pos, len);
    }
    r.progress(len, len);
    Ok(())
}

/// Writes the 4 KiB blocks of `data` that are not all zeros to `io` from `at` (the rest of a
/// new sparse file reads as zeros already).
fn write_nonzero(io: &mut dyn BlockIo, at: u64, data: &[u8]) -> std::io::Result<()> {
    for (i, block) in data.chunks(4096).enumerate() {
        if block.iter().any(|&b| b != 0) {
            io.write_all_at(block, at + (i * 4096) as u64)?;
        }
    }
    Ok(())
}

/// Reads of the start of a sparse file that skip its holes: they read as zeros without a
/// system call and without filling the page cache with zero pages (a shrunk file system image
/// is a quarter holes).
struct SkipHoles<'a>(&'a File);

impl BlockIo for SkipHoles<'_> {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let (data, hole) = next_data(self.0, pos, end).unwrap_or((end, end));
            buf[(pos - offset) as usize..(data - offset) as usize].fill(0);
            self.0.read_exact_at(
                &mut buf[(data - offset) as usize..(hole - offset) as usize],
                data,
            )?;
            pos = hole;
        }
        Ok(())
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }

    fn size(&mut self) -> std::io::Result<u64> {
        self.0.metadata().map(|m| m.len())
    }
}

/// The rootfs LV's LUKS2 header and keyslots, made in memory before the LV exists: a device
/// of the LV's size of which only the part before the data offset is kept (the format
/// writes nothing after it).
struct HeaderArea {
    kept: luks2::MemoryDevice,
    size: u64,
}

impl BlockIo for HeaderArea {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.kept.read_exact_at(buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.kept.write_all_at(buf, offset)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    fn size(&mut self) -> std::io::Result<u64> {
        Ok(self.size)
    }
}

/// Formats a LUKS2 header for an LV of `lv_bytes` whose data (from [`HEADER_ROOM`]) is the
/// `fs_bytes` at the start of `dst`, and encrypts those in place. Returns the header area.
fn encrypt_in_place(
    dst: &File,
    name: &Path,
    fs_bytes: u64,
    lv_bytes: u64,
    kdf: &KdfCosts,
    pass: &Passphrase,
    r: &mut dyn Report,
) -> Result<luks2::MemoryDevice> {
    let mut opts = FormatOptions {
        subsystem: "cryptpilot".into(),
        sector_size: Some(4096),
        data_offset: Some(HEADER_ROOM),
        ..FormatOptions::default()
    };
    kdf.apply(&mut opts.keyslot.pbkdf);
    let mut area = HeaderArea {
        kept: luks2::MemoryDevice::new(HEADER_ROOM as usize),
        size: lv_bytes,
    };
    let (dev, key) = luks2::format(&mut area, &opts, pass)
        .map_err(|e| bad(name, format!("LUKS2 format of LV rootfs: {e}")))?;
    let a = dev
        .header()
        .activation()
        .map_err(|e| bad(name, format!("LUKS2: {e}")))?;
    drop(dev);
    let cipher =
        luks2::SegmentCipher::new(&a, &key).map_err(|e| bad(name, format!("LUKS2: {e}")))?;
    if cipher.offset() != HEADER_ROOM {
        return Err(bad(
            name,
            "the LUKS2 header of LV rootfs does not end where its file system starts",
        ));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < fs_bytes {
        let n = (fs_bytes - pos).min(CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        dst.read_exact_at(chunk, pos)
            .map_err(Error::io(name, "read"))?;
        cipher
            .encrypt(pos, chunk, threads)
            .map_err(|e| bad(name, format!("LUKS2: {e}")))?;
        dst.write_all_at(chunk, pos)
            .map_err(Error::io(name, "write"))?;
        pos += n as u64;
        r.progress(pos, fs_bytes);
    }
    Ok(area.kept)
}

/// Moves the first `len` bytes of `f` up by `by` bytes (a multiple of 1 MiB) and makes the
/// first `by` bytes read as zeros: an inserted hole where the file system can (ext4, XFS),
/// else copies from the end backwards (in chunks no longer than `by`, so a chunk's source and
/// destination never overlap) and clears the head.
fn shift_up(f: &File, len: u64, by: u64) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{fallocate, FallocateFlags};
    match fallocate(f, FallocateFlags::FALLOC_FL_INSERT_RANGE, 0, by as i64) {
        Ok(()) => Ok(()),
        Err(Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EINVAL) => shift_up_by_copy(f, len, by),
        Err(e) => Err(e.into()),
    }
}

/// [`shift_up`] where no hole can be inserted.
fn shift_up_by_copy(f: &File, len: u64, by: u64) -> std::io::Result<()> {
    use nix::errno::Errno;
    let step = by.min(COPY_STEP);
    let mut buf = Vec::new();
    let mut end = len;
    while end > 0 {
        let n = end.min(step);
        let from = end - n;
        let (mut i, mut o) = (from as i64, (from + by) as i64);
        let copied = if buf.is_empty() {
            nix::fcntl::copy_file_range(f, Some(&mut i), f, Some(&mut o), n as usize)
        } else {
            Err(Errno::EXDEV)
        };
        match copied {
            Ok(k) if k as u64 == n => {}
            Ok(_) | Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                buf.resize(n as usize, 0);
                f.read_exact_at(&mut buf[..n as usize], from)?;
                f.write_all_at(&buf[..n as usize], from + by)?;
            }
            Err(e) => return Err(e.into()),
        }
        end = from;
    }
    zero_range(f, 0, by)
}

/// Makes `from..to` of `f` read as zeros: a hole where the file system can punch one, else
/// written zeros.
fn zero_range(f: &File, from: u64, to: u64) -> std::io::Result<()> {
    use nix::fcntl::{fallocate, FallocateFlags};
    if from >= to {
        return Ok(());
    }
    let punch = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    match fallocate(f, punch, from as i64, (to - from) as i64) {
        Ok(()) => return Ok(()),
        Err(
            nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENOSYS | nix::errno::Errno::EINVAL,
        ) => {}
        Err(e) => return Err(e.into()),
    }
    let zeros = vec![0u8; CHUNK];
    let mut pos = from;
    while pos < to {
        let n = (to - pos).min(CHUNK as u64) as usize;
        f.write_all_at(&zeros[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
}

/// The root partition: the one asked for, else the largest ext4 partition holding `/etc`
/// and `/usr`.
fn find_root(img: &DiskImage, asked: Option<u32>) -> Result<(Partition, ext4_view::Ext4)> {
    let is_root = |fs: &ext4_view::Ext4| {
        fs.exists("/etc").unwrap_or(false) && fs.exists("/usr").unwrap_or(false)
    };
    if let Some(n) = asked {
        let p = img
            .partition(n)
            .ok_or_else(|| bad(img.path(), format!("has no partition {n}")))?;
        let fs = img.ext4(p)?.ok_or_else(|| {
            bad(
                img.path(),
                format!("partition {n} holds no ext4 file system"),
            )
        })?;
        if !is_root(&fs) {
            return Err(bad(
                img.path(),
                format!("partition {n} is not a root file system (no /etc and /usr)"),
            ));
        }
        return Ok((p.clone(), fs));
    }
    let mut best: Option<(Partition, ext4_view::Ext4)> = None;
    for p in img.partitions() {
        if let Some(fs) = img.ext4(p)? {
            if is_root(&fs)
                && best
                    .as_ref()
                    .is_none_or(|(b, _)| p.len(SECTOR) > b.len(SECTOR))
            {
                best = Some((p.clone(), fs));
            }
        }
    }
    best.ok_or_else(|| {
        bad(
            img.path(),
            "no partition holds an ext4 root file system (with /etc and /usr); name it with --rootfs-part-num",
        )
    })
}

/// Copies the tree under `from` in `fs` to the directory `to` (files, directories, links;
/// permission bits kept).
fn extract_tree(fs: &ext4_view::Ext4, from: &str, to: &Path, max_bytes: u64) -> Result<u64> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // The image is someone else's: nothing written here follows a link it made (every
    // directory and file is created new, none may exist), its size is bounded, and a
    // directory cycle (hard-linked directories) ends the walk.
    const MAX_DEPTH: usize = 16;
    const MAX_ENTRIES: usize = 100_000;
    let too_much = |what: String| Error::Unsupported(format!("{from}: {what}"));
    let mut total = 0u64;
    let mut seen = 0usize;
    std::fs::create_dir_all(to).map_err(Error::io(to, "create"))?;
    let mut stack = vec![(from.to_owned(), to.to_owned(), 0usize)];
    while let Some((dir, out, depth)) = stack.pop() {
        let entries = fs
            .read_dir(dir.as_str())
            .map_err(|e| Error::Unsupported(format!("reading {dir}: {e}")))?;
        for e in entries {
            let e = e.map_err(|e| Error::Unsupported(format!("reading {dir}: {e}")))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(too_much(format!("more than {MAX_ENTRIES} entries")));
            }
            let name = e
                .file_name()
                .as_str()
                .map_err(|_| Error::Unsupported(format!("a name in {dir} is not UTF-8")))?
                .to_owned();
            if name == "." || name == ".." || (dir == from && name == "lost+found") {
                continue;
            }
            let src = format!("{}/{name}", dir.trim_end_matches('/'));
            let dst = out.join(&name);
            let meta = fs
                .symlink_metadata(src.as_str())
                .map_err(|e| Error::Unsupported(format!("{src}: {e}")))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target = fs
                    .read_link(src.as_str())
                    .map_err(|e| Error::Unsupported(format!("{src}: {e}")))?;
                let t = target
                    .to_str()
                    .map_err(|_| Error::Unsupported(format!("{src}: link target not UTF-8")))?;
                std::os::unix::fs::symlink(t, &dst).map_err(Error::io(&dst, "create"))?;
            } else if kind.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(too_much(format!("{src} is nested too deep")));
                }
                std::fs::create_dir(&dst).map_err(Error::io(&dst, "create"))?;
                stack.push((src, dst, depth + 1));
            } else if kind.is_regular_file() {
                total += meta.len();
                if total > max_bytes {
                    return Err(too_much(format!("holds more than {} MiB", max_bytes >> 20)));
                }
                let data = read_file(fs, &src)?.unwrap_or_default();
                let mode = u32::from(meta.mode()) & 0o7777;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&dst)
                    .map_err(Error::io(&dst, "create"))?;
                f.write_all(&data).map_err(Error::io(&dst, "write"))?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(Error::io(&dst, "set the mode of"))?;
            }
            // Device nodes, FIFOs and sockets have no place on a boot partition.
        }
    }
    Ok(total)
}

/// A host path for a debugfs command file, in double quotes there (no quote or newline in
/// it, which debugfs could not take).
fn debugfs_path(p: &Path) -> Result<&str> {
    let s = path_str(p)?;
    if s.contains(['"', '\n', '\\']) {
        return Err(bad(
            p,
            "the path holds a quote, backslash or newline, which debugfs cannot take",
        ));
    }
    Ok(s)
}

/// `mkfs.ext4 -d` gives every inode the owner of the file it copied (the converting user):
/// on the boot partition, the kernel, initrd and GRUB configuration must be root's.
fn root_owned(tree: &Path, fs_image: &Path, cmds: &Path, work: &Path) -> Result<()> {
    let mut script = String::new();
    let mut dirs = vec![(tree.to_owned(), String::new())];
    while let Some((dir, rel)) = dirs.pop() {
        for e in std::fs::read_dir(&dir).map_err(Error::io(&dir, "read"))? {
            let e = e.map_err(Error::io(&dir, "read"))?;
            let name = e.file_name();
            let name = name
                .to_str()
                .filter(|n| !n.contains(['"', '\n', '\\']))
                .ok_or_else(|| bad(&e.path(), "a name debugfs cannot take"))?;
            let path = format!("{rel}/{name}");
            script.push_str(&format!("sif \"{path}\" uid 0\nsif \"{path}\" gid 0\n"));
            if e.file_type()
                .map_err(Error::io(&e.path(), "stat"))?
                .is_dir()
            {
                dirs.push((e.path(), path));
            }
        }
    }
    std::fs::write(cmds, script).map_err(Error::io(cmds, "write"))?;
    tool(
        work,
        "debugfs",
        &["-w", "-f", path_str(cmds)?, path_str(fs_image)?],
        0,
    )
    .map(|_| ())
}

/// Writes `data` as a new file at `path` (an existing one, or a link there, is removed
/// first: the tree came from the image), with `mode`.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).map_err(Error::io(path, "remove"))?,
        Ok(_) => std::fs::remove_file(path).map_err(Error::io(path, "remove"))?,
        Err(_) => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(Error::io(path, "create"))?;
    f.write_all(data).map_err(Error::io(path, "write"))
}

/// Makes `path` a real directory (the image's tree may hold a link or a file there).
fn real_dir(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(path).map_err(Error::io(path, "remove"))?,
        Err(_) => {}
    }
    std::fs::create_dir(path).map_err(Error::io(path, "create"))
}

fn read_file(fs: &ext4_view::Ext4, path: &str) -> Result<Option<Vec<u8>>> {
    image::ext4_read(fs, path).map_err(|e| Error::Unsupported(format!("{path}: {e}")))
}

fn guid_uuid(g: &[u8; 16]) -> String {
    gpt::guid_text(g).to_ascii_lowercase()
}

/// Converts `o.src` into `o.dst`.
///
/// # Errors
/// [`Error::Image`] for a source without an ext4 root holding /boot, a kernel or GRUB entry,
/// or an output too small; [`Error::Config`] for a configuration the boot would refuse or
/// that disagrees with the passphrase option; [`Error::Tool`] when e2fsprogs fail; I/O errors.
/// The output may be partly written on error: the caller removes it.
pub fn convert(o: &Options, r: &mut dyn Report) -> Result<Converted> {
    // e2fsprogs run in the work directory (see `tool`), with paths inside it.
    if !o.work.is_absolute() {
        return Err(Error::Unsupported(format!(
            "the work directory {} must be an absolute path",
            o.work.display()
        )));
    }
    // The configuration first: nothing is written for one the boot would refuse.
    let conf = o.work.join("config");
    std::fs::create_dir_all(&conf).map_err(Error::io(&conf, "create"))?;
    let fde_path = o.config_dir.join("fde.toml");
    let fde_text = std::fs::read_to_string(&fde_path).map_err(Error::io(&fde_path, "read"))?;
    let fde = crate::config::parse_fde(&fde_path, &fde_text)?;
    std::fs::write(conf.join("fde.toml"), &fde_text).map_err(Error::io(&conf, "write"))?;
    let global = o.config_dir.join("global.toml");
    if global.exists() {
        let t = std::fs::read_to_string(&global).map_err(Error::io(&global, "read"))?;
        crate::config::parse_global(&global, &t)?;
        std::fs::write(conf.join("global.toml"), t).map_err(Error::io(&conf, "write"))?;
    }
    let mismatch = match (&fde.rootfs.encrypt, &o.rootfs_passphrase) {
        (Some(_), None) => Some(
            "[rootfs.encrypt] is set, so the rootfs needs a passphrase (--rootfs-passphrase-file), not --rootfs-no-encryption",
        ),
        (None, Some(_)) => Some(
            "no [rootfs.encrypt]: the boot could not open an encrypted rootfs; use --rootfs-no-encryption or add its key provider",
        ),
        _ => None,
    };
    if let Some(why) = mismatch {
        return Err(volumes::ConfigError::at(&fde_path, &fde_text, "[rootfs", why.into()).into());
    }

    r.step("reading the source image");
    let img = DiskImage::open(&o.src)?;
    let (root, fs) = find_root(&img, o.rootfs_part)?;
    let mut boot_files = ImageBoot::open(&img)?;
    let entry = reference::default_entry(&mut boot_files)?;
    let kver = entry
        .kernel
        .rsplit('/')
        .next()
        .and_then(|k| k.strip_prefix("vmlinuz-"))
        .ok_or_else(|| {
            bad(
                &o.src,
                format!("GRUB boots {}, not a vmlinuz-<version>", entry.kernel),
            )
        })?
        .to_owned();
    if !fs.exists("/boot/grub").unwrap_or(false)
        || !fs.exists(entry.kernel.as_str()).unwrap_or(false)
    {
        return Err(bad(
            &o.src,
            format!(
                "partition {}'s /boot does not hold {} and grub/: a separate boot partition is not supported yet",
                root.number, entry.kernel
            ),
        ));
    }
    let old_root_uuid = fs.uuid().to_string();

    // The root partition goes to the start of DST first; its writeback to the disk runs on
    // while /boot and the modules are read out.
    let src_file = File::open(&o.src).map_err(Error::io(&o.src, "open"))?;
    let mut dst = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&o.dst)
        .map_err(Error::io(&o.dst, "create"))?;
    dst.set_len(root.len(SECTOR))
        .map_err(Error::io(&o.dst, "size"))?;
    r.step("copying the root file system");
    sparse_copy(&src_file, root.offset(SECTOR), &dst, 0, root.len(SECTOR), r)
        .map_err(Error::io(&o.dst, "write"))?;
    let flushed = {
        let f = dst.try_clone().map_err(Error::io(&o.dst, "reopen"))?;
        std::thread::spawn(move || f.sync_data())
    };

    r.step("copying /boot and the kernel modules out of the root file system");
    let boot_tree = o.work.join("boot");
    if !o.boot_size.is_multiple_of(1 << 20) || o.boot_size < 64 << 20 {
        return Err(Error::Unsupported(format!(
            "the boot partition size must be a whole number of MiB, at least 64 MiB (-b {} bytes)",
            o.boot_size
        )));
    }
    let boot_bytes = extract_tree(&fs, "/boot", &boot_tree, image::MAX_FILE * 2)?;
    // The old boot loader's state does not apply to the new one-entry configuration (and
    // would make reference values follow an entry GRUB no longer boots).
    for stale in ["grubenv", "grub/grubenv", "grub2/grubenv", "loader/entries"] {
        let p = boot_tree.join(stale);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).map_err(Error::io(&p, "remove"))?,
            Ok(_) => std::fs::remove_file(&p).map_err(Error::io(&p, "remove"))?,
            Err(_) => {}
        }
    }
    let boot_size = if o.uki.is_some() { 0 } else { o.boot_size };
    let uki_parts = match &o.uki {
        Some(u) => Some(uki_inputs(&fs, u)?),
        None => None,
    };
    if o.uki.is_none() && boot_bytes + (64 << 20) > o.boot_size {
        return Err(bad(
            &o.src,
            format!(
                "/boot holds {} MiB, too much for a {} MiB boot partition (-b/--boot-part-size)",
                boot_bytes >> 20,
                o.boot_size >> 20
            ),
        ));
    }
    let link = boot_tree.join("boot");
    if std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&link).map_err(Error::io(&link, "remove"))?;
    } else {
        let _ = std::fs::remove_file(&link);
    }
    std::os::unix::fs::symlink(".", &link).map_err(Error::io(&boot_tree, "link boot in"))?;
    let modules = extract_modules(&fs, &kver, &o.work.join("modules"))?;
    let fstab = read_file(&fs, "/etc/fstab")?.unwrap_or_default();
    // The initrd but for the root hash is built meanwhile, on the other core: the copy and
    // e2fsprogs mostly wait for the disk. metadata.toml follows as an archive of its own.
    let initrd_head = {
        let opts = crate::initrd::Options {
            init: o.init.clone(),
            config_dir: conf.clone(),
            kernel_modules: Some(modules),
            modules: crate::initrd::DEFAULT_MODULES
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
            include: o.initrd_include.clone(),
            metadata_later: true,
        };
        std::thread::spawn(move || -> Result<Vec<u8>> {
            let mut out = Vec::new();
            crate::initrd::build(&opts, &mut out)?;
            Ok(out)
        })
    };

    // The root file system is copied to the start of DST, checked, edited and shrunk there,
    // then shifted up to its place in the rootfs LV: on ext4 and XFS by inserting a hole
    // before it (no data moves), elsewhere by a copy inside the file. This saves a copy of
    // the whole file system and the disk space of one. (resize2fs truncates an image file to
    // the new size, so the file system cannot be shrunk at an offset inside DST.)
    // Seeking gives a block device's size too (its metadata length is 0).
    let src_size = { &src_file }
        .seek(SeekFrom::End(0))
        .map_err(Error::io(&o.src, "read the size of"))?;
    let disk_sectors = src_size / SECTOR;
    let last_usable = disk_sectors.saturating_sub(34);
    let align = |x: u64| x.div_ceil(ALIGN) * ALIGN;
    let boot_first = align(root.first_lba);
    let boot_last = (boot_first + boot_size / SECTOR).saturating_sub(1);
    let pv_first = if o.uki.is_some() {
        boot_first
    } else {
        align(boot_last + 1)
    };
    let pv_end = img
        .partitions()
        .iter()
        .filter(|p| p.first_lba > root.first_lba)
        .map(|p| p.first_lba - 1)
        .min()
        .unwrap_or(last_usable)
        .min(last_usable);
    let pv_sectors = (pv_end + 1).saturating_sub(pv_first);
    let pv_off = pv_first * SECTOR;
    // The rootfs LV is the group's first, so it starts at the first extent; a LUKS2 rootfs
    // keeps its header before the file system.
    let lv_off = pv_off + lvm::PE_START * SECTOR;
    let fs_at = lv_off
        + if o.rootfs_passphrase.is_some() {
            HEADER_ROOM
        } else {
            0
        };
    // e2fsprogs flush what is dirty as they open the file: the copy's writeback ran meanwhile.
    flushed
        .join()
        .map_err(|_| Error::Unsupported("the output's flush stopped".into()))?
        .map_err(Error::io(&o.dst, "flush"))?;
    let boot_uuid = guid_uuid(&gpt::random_guid().map_err(Error::io(&o.dst, "make a UUID for"))?);

    r.step("adding the boot partition to /etc/fstab, checking and shrinking the root file system");
    // The tools run in the work directory and reach DST through a link there: e2fsprogs
    // would take a `?` in DST's own path for the start of I/O options.
    let dst_abs = std::fs::canonicalize(&o.dst).map_err(Error::io(&o.dst, "find"))?;
    std::os::unix::fs::symlink(&dst_abs, o.work.join("out"))
        .map_err(Error::io(&o.work, "link the output in"))?;
    let rootfs_s = "out".to_owned();
    let new_fstab = rewrite_fstab(
        &String::from_utf8_lossy(&fstab),
        o.uki.is_none().then_some(boot_uuid.as_str()),
    );
    let fstab_file = o.work.join("fstab");
    std::fs::write(&fstab_file, &new_fstab).map_err(Error::io(&fstab_file, "write"))?;
    let cmds = o.work.join("debugfs.cmd");
    std::fs::write(
        &cmds,
        format!(
            "rm /etc/fstab\nwrite \"{}\" /etc/fstab\nsif /etc/fstab uid 0\nsif /etc/fstab gid 0\nsif /etc/fstab mode 0100644\n",
            debugfs_path(&fstab_file)?
        ),
    )
    .map_err(Error::io(&cmds, "write"))?;
    let tool = |cmd: &str, args: &[&str], ok_max: i32| tool(&o.work, cmd, args, ok_max);
    // Checked before anything writes to it; debugfs's edit is no mount, so the check stays
    // fresh for resize2fs.
    tool("e2fsck", &["-f", "-y", &rootfs_s], 3)?;
    tool("debugfs", &["-w", "-f", path_str(&cmds)?, &rootfs_s], 0)?;
    // debugfs exits 0 even when a command fails: read the result back.
    let back = dst
        .try_clone()
        .ok()
        .and_then(|f| ext4_view::Ext4::load(Box::new(Window::new(f, 0, root.len(SECTOR)))).ok())
        .and_then(|f| f.read("/etc/fstab").ok());
    if back.as_deref() != Some(new_fstab.as_bytes()) {
        return Err(Error::Tool {
            command: "debugfs -w".into(),
            why: "could not replace /etc/fstab in the root file system (is it full?)".into(),
        });
    }
    // A file system resize2fs cannot shrink (a feature it does not handle, say) is converted
    // at its size: only space is lost.
    if let Err(e) = tool("resize2fs", &["-M", &rootfs_s], 0) {
        r.step(&format!("the root file system keeps its size: {e}"));
    }
    tool("tune2fs", &["-O", "read-only", &rootfs_s], 0)?;
    let sb = crate::ext4::read_at(&dst, 0, &o.dst)?.ok_or_else(|| {
        bad(
            &o.dst,
            "the root file system lost its ext4 superblock while shrinking",
        )
    })?;
    let fs_len = sb.blocks * sb.block_size;
    // dm-verity and the LUKS2 segment work in 4 KiB blocks: a file system of 1 or 2 KiB
    // blocks gets a zero tail up to the next one.
    let fs_bytes = (sb.blocks * sb.block_size).next_multiple_of(4096);

    r.step("laying out the output image");
    let data_blocks = fs_bytes / 4096;
    let mut params = integrity::verity::VerityParams::random(data_blocks, luks2::HashAlg::Sha256)
        .map_err(|e| Error::Unsupported(format!("verity: {e}")))?;
    let hash_bytes = params.hash_area_size();
    let rootfs_ext = (fs_bytes + HEADER_ROOM).div_ceil(EXTENT * SECTOR);
    let hash_ext = hash_bytes.div_ceil(EXTENT * SECTOR);
    let needed = (1 + rootfs_ext + hash_ext) * EXTENT + ALIGN;
    if pv_sectors < needed {
        return Err(bad(
            &o.src,
            format!(
                "the root file system needs {} MiB after the {} MiB boot partition, and {} MiB are left; grow the image (qemu-img resize) or shrink -b/--boot-part-size",
                (needed * SECTOR) >> 20,
                o.boot_size >> 20,
                (pv_sectors * SECTOR) >> 20
            ),
        ));
    }
    // What lay past the shrunk file system (the old tail, which resize2fs truncates only when
    // it shrank) goes; a 1 or 2 KiB-block file system gets its zero tail.
    dst.set_len(fs_len).map_err(Error::io(&o.dst, "size"))?;
    dst.set_len(fs_bytes).map_err(Error::io(&o.dst, "size"))?;

    // The tree and the encryption work on the file system where it is, while the page
    // cache still holds it; the tree and the LUKS2 header wait in memory for their LVs.
    r.step("computing the dm-verity hash tree");
    let mut tree = luks2::MemoryDevice::new(
        usize::try_from(hash_bytes).map_err(|_| bad(&o.src, "the verity tree is too large"))?,
    );
    params.hash_offset = 0;
    let root_hash = integrity::verity::format(&mut SkipHoles(&dst), &mut tree, &params)
        .map_err(|e| Error::Unsupported(format!("verity: {e}")))?;
    let root_hex = integrity::verity::to_hex(&root_hash);
    let luks_header = match &o.rootfs_passphrase {
        Some(pass) => {
            r.step("encrypting the root file system (LUKS2, aes-xts-plain64)");
            Some(encrypt_in_place(
                &dst,
                &o.dst,
                fs_bytes,
                rootfs_ext * EXTENT * SECTOR,
                &o.kdf,
                pass,
                r,
            )?)
        }
        None => None,
    };

    // The file system moves to its place and the disk gets its size: everything outside the
    // file system reads as zeros.
    r.step("moving the file system to its place in LV rootfs");
    shift_up(&dst, fs_bytes, fs_at).map_err(Error::io(&o.dst, "move the file system in"))?;
    dst.set_len(src_size).map_err(Error::io(&o.dst, "size"))?;
    let used: Vec<u32> = img
        .partitions()
        .iter()
        .map(|p| p.number)
        .filter(|&n| n != root.number || o.uki.is_none())
        .collect();
    let pv_number = (root.number..=128)
        .chain(1..root.number)
        .find(|n| !used.contains(n))
        .ok_or_else(|| bad(&o.src, "has no free partition number"))?;
    let mut table: Vec<Partition> = img
        .partitions()
        .iter()
        .filter(|p| p.number != root.number)
        .cloned()
        .collect();
    let rand = || gpt::random_guid().map_err(Error::io(&o.dst, "make a GUID for"));
    if o.uki.is_none() {
        table.push(Partition {
            number: root.number,
            type_guid: gpt::guid_bytes(gpt::LINUX_FS_TYPE),
            unique_guid: rand()?,
            first_lba: boot_first,
            last_lba: boot_last,
            attributes: 0,
            name: "boot".into(),
        });
    }
    table.push(Partition {
        number: pv_number,
        type_guid: gpt::guid_bytes(gpt::LINUX_LVM_TYPE),
        unique_guid: rand()?,
        first_lba: pv_first,
        last_lba: pv_end,
        attributes: 0,
        name: "primary".into(),
    });
    let disk_guid = gpt::disk_guid(
        &mut { &src_file }
            .try_clone()
            .map_err(Error::io(&o.src, "reopen"))?,
        SECTOR,
    )
    .map_err(|e| bad(&o.src, e.to_string()))?;
    // The MBR's boot code (GRUB's BIOS stage, with a BIOS boot partition) is kept.
    let mut boot_code = [0u8; 440];
    src_file
        .read_exact_at(&mut boot_code, 0)
        .map_err(Error::io(&o.src, "read"))?;
    dst.write_all_at(&boot_code, 0)
        .map_err(Error::io(&o.dst, "write"))?;
    gpt::write_table(&mut dst, SECTOR, disk_guid, &table)
        .map_err(|e| bad(&o.dst, e.to_string()))?;
    for p in img.partitions().iter().filter(|p| p.number != root.number) {
        let name = if p.name.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.name)
        };
        r.step(&format!("copying partition {}{name}", p.number));
        sparse_copy(
            &src_file,
            p.offset(SECTOR),
            &dst,
            p.offset(SECTOR),
            p.len(SECTOR),
            r,
        )
        .map_err(Error::io(&o.dst, "write"))?;
    }

    r.step("writing the LVM2 volume group cryptpilot");
    let win = |f: &File, start: u64, len: u64| -> Result<Window> {
        Ok(Window::new(
            f.try_clone().map_err(Error::io(&o.dst, "reopen"))?,
            start,
            len,
        ))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (mut pv, mut vg) = lvm::PhysicalVolume::create(
        win(&dst, pv_off, pv_sectors * SECTOR)?,
        crate::boot::VG,
        EXTENT,
        &format!("/dev/vda{pv_number}"),
        now,
    )
    .map_err(Error::lvm(&o.dst))?;
    vg.create_lv("rootfs", Some(rootfs_ext), now)
        .map_err(Error::lvm(&o.dst))?;
    vg.create_lv("rootfs_hash", Some(hash_ext), now)
        .map_err(Error::lvm(&o.dst))?;
    pv.write_vg(&mut vg, now).map_err(Error::lvm(&o.dst))?;
    let lv_window = |name: &str| -> Result<Window> {
        let lv = vg
            .lv(name)
            .ok_or_else(|| bad(&o.dst, format!("LV {name} vanished")))?;
        let t = vg.linear_table(lv).map_err(Error::lvm(&o.dst))?;
        let (_, len, _, off) = t
            .first()
            .cloned()
            .ok_or_else(|| bad(&o.dst, format!("LV {name} has no segment")))?;
        win(&dst, pv_off + off * SECTOR, len * SECTOR)
    };
    let mut rootfs_lv = lv_window("rootfs")?;
    if rootfs_lv.start() != lv_off {
        return Err(bad(
            &o.dst,
            "LV rootfs does not start at the first extent, where its file system was put",
        ));
    }
    if let Some(h) = &luks_header {
        write_nonzero(&mut rootfs_lv, 0, h.as_slice()).map_err(Error::io(&o.dst, "write"))?;
    }
    write_nonzero(&mut lv_window("rootfs_hash")?, 0, tree.as_slice())
        .map_err(Error::io(&o.dst, "write"))?;

    r.step("building the initrd");
    let mut initrd = initrd_head
        .join()
        .map_err(|_| Error::Unsupported("the initrd build stopped".into()))??;
    let metadata = format!("type = 1\nroot_hash = \"{root_hex}\"\n");
    std::fs::write(conf.join("metadata.toml"), &metadata).map_err(Error::io(&conf, "write"))?;
    crate::initrd::append_metadata(&metadata, &mut initrd)?;
    let initrd_path = boot_tree.join(format!("{INITRD_PREFIX}{kver}"));
    write_new(&initrd_path, &initrd, 0o644)?;
    let mut cmdline: Vec<&str> = entry
        .cmdline
        .split_whitespace()
        .filter(|w| !w.starts_with("root="))
        .collect();
    if let (Some(u), Some((stub, osrel))) = (&o.uki, &uki_parts) {
        cmdline.extend(u.append_cmdline.split_whitespace());
        r.step("building the unified kernel image (systemd's stub, kernel, initrd, command line)");
        // The kernel from the image itself, never through the host tree (whose links the
        // image made).
        let kernel = read_file(&fs, &entry.kernel)?
            .ok_or_else(|| bad(&o.src, format!("{} vanished", entry.kernel)))?;
        let mut line = cmdline.join(" ").into_bytes();
        line.push(0);
        let image = crate::uki::build(
            stub,
            &[
                (".osrel", osrel),
                (".cmdline", &line),
                (".uname", kver.as_bytes()),
                (".initrd", &initrd),
                (".linux", &kernel),
            ],
        )
        .map_err(|e| bad(&o.src, format!("the EFI stub: {e}")))?;
        r.step("replacing the EFI system partition's boot loaders with the UKI");
        install_uki(&img, &dst, &image)?;
        dst.sync_all().map_err(Error::io(&o.dst, "flush"))?;
        return Ok(Converted {
            root_hash: root_hex,
            rootfs_bytes: fs_bytes,
            kernel_version: kver,
            boot_partition: None,
            pv_partition: pv_number,
            encrypted: o.rootfs_passphrase.is_some(),
        });
    }
    let cfg = grub_cfg(&boot_uuid, root.number, &kver, &cmdline.join(" "));
    real_dir(&boot_tree.join("grub"))?;
    write_new(&boot_tree.join("grub/grub.cfg"), cfg.as_bytes(), 0o644)?;

    r.step("writing the boot partition");
    let boot_img = o.work.join("boot.img");
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-U",
            &boot_uuid,
            "-O",
            "^metadata_csum_seed,^orphan_file",
            "-E",
            "root_owner=0:0",
            "-d",
            path_str(&boot_tree)?,
            path_str(&boot_img)?,
            &format!("{}k", o.boot_size >> 10),
        ],
        0,
    )?;
    root_owned(&boot_tree, &boot_img, &o.work.join("owner.cmd"), &o.work)?;
    {
        let b = File::open(&boot_img).map_err(Error::io(&boot_img, "open"))?;
        sparse_copy(&b, 0, &dst, boot_first * SECTOR, o.boot_size, r)
            .map_err(Error::io(&o.dst, "write"))?;
    }

    r.step("pointing GRUB on the EFI system partition at the boot partition");
    retarget_esp(&img, &dst, &old_root_uuid, &boot_uuid)?;
    dst.sync_all().map_err(Error::io(&o.dst, "flush"))?;
    Ok(Converted {
        root_hash: root_hex,
        rootfs_bytes: fs_bytes,
        kernel_version: kver,
        boot_partition: Some(root.number),
        pv_partition: pv_number,
        encrypted: o.rootfs_passphrase.is_some(),
    })
}

/// The root file system's fstab after conversion: `/` comes from `/dev/mapper/rootfs` (the
/// old partition is gone, and `mount -o remount` looks the source up), without
/// `x-systemd.growfs` (the initrd grows it); the new boot partition is mounted on `/boot`
/// (an existing `/boot` line is replaced). Comments and other lines are kept.
pub fn rewrite_fstab(old: &str, boot_uuid: Option<&str>) -> String {
    let mut out = String::new();
    for line in old.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if line.trim_start().starts_with('#') || f.len() < 2 {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        match f[1] {
            "/" => {
                let mut fields: Vec<String> = f.iter().map(|s| (*s).to_owned()).collect();
                fields[0] = "/dev/mapper/rootfs".into();
                if let Some(opts) = fields.get_mut(3) {
                    let kept: Vec<&str> = opts
                        .split(',')
                        .filter(|o| *o != "x-systemd.growfs")
                        .collect();
                    *opts = if kept.is_empty() {
                        "defaults".into()
                    } else {
                        kept.join(",")
                    };
                }
                out.push_str(&fields.join(" "));
                out.push('\n');
            }
            "/boot" if boot_uuid.is_some() => {}
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if let Some(u) = boot_uuid {
        out.push_str(&format!("UUID={u} /boot ext4 defaults,auto,nofail 0 2\n"));
    }
    out
}

/// Extracts what the initrd needs of the image's module tree (`modules.dep`,
/// `modules.builtin` and the module files) into `to/<kver>`.
fn extract_modules(fs: &ext4_view::Ext4, kver: &str, to: &Path) -> Result<PathBuf> {
    let base = ["/usr/lib/modules", "/lib/modules"]
        .iter()
        .map(|b| format!("{b}/{kver}"))
        .find(|d| {
            fs.exists(format!("{d}/modules.dep").as_str())
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "the root file system has no /lib/modules/{kver}/modules.dep"
            ))
        })?;
    let dir = to.join(kver);
    std::fs::create_dir_all(&dir).map_err(Error::io(&dir, "create"))?;
    for f in ["modules.dep", "modules.builtin"] {
        if let Some(b) = read_file(fs, &format!("{base}/{f}"))? {
            std::fs::write(dir.join(f), b).map_err(Error::io(&dir, "write"))?;
        }
    }
    let wanted: Vec<String> = crate::initrd::DEFAULT_MODULES
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    for rel in crate::initrd::needed_modules(&dir, &wanted)? {
        let data = read_file(fs, &format!("{base}/{rel}"))?
            .ok_or_else(|| Error::Unsupported(format!("{base}/{rel} is listed but missing")))?;
        let out = dir.join(&rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent, "create"))?;
        }
        std::fs::write(&out, data).map_err(Error::io(&out, "write"))?;
    }
    Ok(dir)
}

/// The EFI stub (from `u`, the image, or this machine) and the image's os-release.
fn uki_inputs(fs: &ext4_view::Ext4, u: &UkiOptions) -> Result<(Vec<u8>, Vec<u8>)> {
    let stub = match &u.stub {
        Some(p) => std::fs::read(p).map_err(Error::io(p, "read"))?,
        None => match read_file(fs, STUB_PATH)? {
            Some(b) => b,
            None => std::fs::read(STUB_PATH).map_err(|e| {
                Error::Unsupported(format!(
                    "--uki needs systemd's EFI stub: neither the image nor this machine has {STUB_PATH} ({e}); install systemd-boot-efi or pass --uki-stub"
                ))
            })?,
        },
    };
    let osrel = match read_file(fs, "/etc/os-release")? {
        Some(b) => b,
        None => read_file(fs, "/usr/lib/os-release")?.unwrap_or_default(),
    };
    Ok((stub, osrel))
}

/// Empties the output ESP's `EFI` directory (shim, GRUB, their configuration: the UKI
/// replaces them, as the existing tool does) and writes the UKI as `EFI/BOOT/BOOTX64.EFI`.
fn install_uki(img: &DiskImage, dst: &File, uki: &[u8]) -> Result<()> {
    let fs = esp_rw(img, dst)?.ok_or_else(|| {
        bad(
            img.path(),
            "has no EFI system partition (FAT with an EFI directory) for the UKI",
        )
    })?;
    let esp_err = |e: std::io::Error| bad(img.path(), format!("ESP: {e}"));
    {
        let root = fs.root_dir();
        // Everything under EFI, children before their directories (the walk is bounded).
        let mut under: Vec<String> = image::fat_walk(&fs)
            .map_err(esp_err)?
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| p.to_ascii_uppercase().starts_with("/EFI/"))
            .collect();
        under.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        for p in under {
            root.remove(p.trim_start_matches('/')).map_err(esp_err)?;
        }
        if root.open_file("NvVars").is_ok() {
            root.remove("NvVars").map_err(esp_err)?;
        }
        let boot = root.create_dir("EFI/BOOT").map_err(esp_err)?;
        let mut f = boot.create_file("BOOTX64.EFI").map_err(esp_err)?;
        f.truncate()
            .and_then(|()| f.write_all(uki))
            .and_then(|()| f.flush())
            .map_err(esp_err)?;
    }
    fs.unmount().map_err(esp_err)
}

/// The boot partition's GRUB configuration: one entry booting our initrd.
pub fn grub_cfg(boot_uuid: &str, boot_part: u32, kver: &str, cmdline: &str) -> String {
    format!(
        "# Written by cryptpilot fde convert: the root is the dm-verity-checked LV rootfs,\n\
         # opened by the initrd (its metadata.toml carries the root hash).\n\
         set default=\"0\"\nset timeout=1\n\
         insmod part_gpt\ninsmod ext2\n\
         search --no-floppy --fs-uuid --set=root --hint hd0,gpt{boot_part} {boot_uuid}\n\
         menuentry 'Linux {kver} (cryptpilot)' --id cryptpilot {{\n\
         \tlinux\t/vmlinuz-{kver} {cmdline}\n\
         \tinitrd\t/{INITRD_PREFIX}{kver}\n}}\n"
    )
}

/// The source's EFI system partition in the output image `dst` (its bytes copied there
/// already), opened for writing.
fn esp_rw(img: &DiskImage, dst: &File) -> Result<Option<fatfs::FileSystem<Window>>> {
    let Some((esp, _)) = img.esp()? else {
        return Ok(None);
    };
    let w = Window::new(
        dst.try_clone().map_err(Error::io(img.path(), "reopen"))?,
        esp.offset(SECTOR),
        esp.len(SECTOR),
    );
    fatfs::FileSystem::new(w, fatfs::FsOptions::new())
        .map(Some)
        .map_err(|e| bad(img.path(), format!("ESP: {e}")))
}

/// Rewrites each `grub.cfg` beside a `grubx64.efi` on the output's ESP: the old root file
/// system's UUID becomes the boot partition's (its `boot -> .` link keeps `/boot/grub`).
fn retarget_esp(img: &DiskImage, dst: &File, old: &str, new: &str) -> Result<()> {
    let Some(fs) = esp_rw(img, dst)? else {
        return Ok(());
    };
    let cfgs: Vec<String> = image::fat_walk(&fs)
        .map_err(|e| bad(img.path(), format!("ESP: {e}")))?
        .into_iter()
        .filter(|(p, dir)| {
            !dir && p
                .rsplit('/')
                .next()
                .is_some_and(|n| n.eq_ignore_ascii_case("grub.cfg"))
        })
        .map(|(p, _)| p)
        .collect();
    for path in cfgs {
        let rel = path.trim_start_matches('/');
        let mut text = String::new();
        fs.root_dir()
            .open_file(rel)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| bad(img.path(), format!("ESP {path}: {e}")))?;
        if !text.contains(old) {
            continue;
        }
        // The boot partition took the root's number: a `hd0,gptN` hint stays right.
        let new_text = text.replace(old, new);
        let mut f = fs
            .root_dir()
            .create_file(rel)
            .map_err(|e| bad(img.path(), format!("ESP {path}: {e}")))?;
        f.truncate()
            .and_then(|()| f.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| f.write_all(new_text.as_bytes()))
            .and_then(|()| f.flush())
            .map_err(|e| bad(img.path(), format!("ESP {path}: {e}")))?;
    }
    fs.unmount()
        .map_err(|e| bad(img.path(), format!("ESP: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shifted(shift: fn(&File, u64, u64) -> std::io::Result<()>) {
        let (len, by) = ((7 << 19) + 4096, 1u64 << 20);
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(&data).expect("write");
        shift(&f, len, by).expect("shift");
        let mut back = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut back).expect("read");
        assert_eq!(back.len() as u64, by + len);
        assert!(
            back[..by as usize].iter().all(|&b| b == 0),
            "head not cleared"
        );
        assert!(back[by as usize..] == data[..], "data not moved intact");
    }

    /// A partition that starts off a 4 KiB boundary (sector 34) with holes in it.
    #[test]
    fn sparse_copy_from_an_unaligned_start_over_holes() {
        struct Quiet;
        impl Report for Quiet {
            fn step(&mut self, _: &str) {}
            fn progress(&mut self, _: u64, _: u64) {}
        }
        let src = tempfile::tempfile().expect("temp file");
        src.set_len(4 << 20).expect("size");
        for (at, byte) in [(0u64, 1u8), (2 << 20, 2), ((3 << 20) + 4096, 3)] {
            src.write_all_at(&[byte; 8192], at).expect("write");
        }
        let (from, len) = (34 * 512, (4 << 20) - 34 * 512);
        let dst = tempfile::tempfile().expect("temp file");
        dst.set_len(len).expect("size");
        sparse_copy(&src, from, &dst, 0, len, &mut Quiet).expect("copy");
        let mut a = vec![0u8; len as usize];
        let mut b = vec![0u8; len as usize];
        src.read_exact_at(&mut a, from).expect("read");
        dst.read_exact_at(&mut b, 0).expect("read");
        assert!(a == b, "the copy differs");
    }

    #[test]
    fn the_file_system_moves_up_with_a_cleared_head() {
        shifted(shift_up);
        // Overlapping source and destination, copied from the end backwards.
        shifted(shift_up_by_copy);
    }

    #[test]
    fn fstab_points_at_the_new_devices() {
        let old =
            "# comment\nPARTUUID=a / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1\n\
                   PARTUUID=b /boot/efi vfat defaults 0 0\nUUID=c /boot ext4 defaults 0 2\n";
        assert_eq!(
            rewrite_fstab(old, Some("u")),
            "# comment\n/dev/mapper/rootfs / ext4 rw,discard,errors=remount-ro 0 1\n\
             PARTUUID=b /boot/efi vfat defaults 0 0\nUUID=u /boot ext4 defaults,auto,nofail 0 2\n"
        );
        assert_eq!(
            rewrite_fstab("", Some("u")),
            "UUID=u /boot ext4 defaults,auto,nofail 0 2\n"
        );
        let keep = "UUID=c /boot ext4 defaults 0 2\n";
        assert_eq!(
            rewrite_fstab(keep, None),
            keep,
            "a UKI boot keeps /boot as it was"
        );
    }
}
