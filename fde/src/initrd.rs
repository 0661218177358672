//! The minimal initrd: a gzip-compressed newc cpio archive whose `/init` is the static
//! cryptpilot binary itself, with the configuration under `/etc/cryptpilot` and the kernel
//! modules the boot needs. No shell, udev or systemd is inside; [`crate::init`] is what runs.
//!
//! The archive is reproducible (entries sorted, owner root, time 0, gzip without a time
//! stamp): the same inputs give the same bytes, and so the same measurement.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Modules the boot stages need when the kernel has them as modules (built-in ones are
/// skipped): disk drivers of the common clouds, device-mapper targets, the ciphers and hashes
/// dm-crypt, dm-integrity and dm-verity ask the crypto API for (there is no `modprobe` in the
/// initrd to answer the kernel's requests), zram for a memory delta and the file systems.
pub const DEFAULT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "nvme",
    "dm_mod",
    "dm_crypt",
    "dm_integrity",
    "dm_verity",
    "dm_snapshot",
    "dm_zero",
    "aesni_intel",
    "xts",
    "cbc",
    "essiv",
    "sha256_generic",
    "sha256_ssse3",
    "hmac",
    "authenc",
    "crc32c_generic",
    "crc32c_intel",
    "lzo",
    "lzo_rle",
    "zram",
    "ext4",
    "overlay",
];

/// Where `/init` finds the modules to load, one path under `/lib/modules/<version>` a line,
/// in load order.
pub const MODULE_LIST: &str = "/etc/cryptpilot/modules";
/// The configuration files carried (`fde.toml` and `metadata.toml` must exist).
const CONFIG_FILES: [&str; 3] = ["fde.toml", "global.toml", "metadata.toml"];

/// What goes into the initrd.
#[derive(Debug, Clone)]
pub struct Options {
    /// The binary that becomes `/init`: a statically linked cryptpilot.
    pub init: PathBuf,
    /// The directory holding `fde.toml`, `metadata.toml` and optionally `global.toml`.
    pub config_dir: PathBuf,
    /// A kernel's module tree (`lib/modules/<version>`, with `modules.dep`), if any.
    pub kernel_modules: Option<PathBuf>,
    /// Module names to carry with their dependencies (see [`DEFAULT_MODULES`]).
    pub modules: Vec<String>,
    /// Extra files: source, and the absolute path inside the initrd.
    pub include: Vec<(PathBuf, PathBuf)>,
    /// `metadata.toml` is not in `config_dir` yet: it follows as its own archive, through
    /// [`append_metadata`] (a converter learns the root hash after the rest is built).
    pub metadata_later: bool,
}

/// What [`build`] put in.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The kernel version of the module tree.
    pub kernel_version: Option<String>,
    /// Module files carried, in load order (relative to the module tree).
    pub modules: Vec<String>,
    /// Wanted modules the kernel has neither as a module nor built in.
    pub missing: Vec<String>,
    /// Files in the archive.
    pub entries: usize,
}

/// Writes the initrd described by `o` to `out` (gzip-compressed newc cpio).
///
/// # Errors
/// [`Error::Config`] when the configuration does not load (it is checked here, not at boot);
/// [`Error::Initrd`] when the init binary is not static or a module tree is unusable;
/// [`Error::Io`] for any file that cannot be read or the output that cannot be written.
pub fn build(o: &Options, out: &mut dyn Write) -> Result<Built> {
    if o.metadata_later {
        let read = |name: &str| -> Result<Option<(PathBuf, String)>> {
            let p = o.config_dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(t) => Ok(Some((p, t))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != "fde.toml" => {
                    Ok(None)
                }
                Err(e) => Err(Error::io(&p, "read")(e)),
            }
        };
        if let Some((p, t)) = read("fde.toml")? {
            crate::config::parse_fde(&p, &t)?;
        }
        if let Some((p, t)) = read("global.toml")? {
            crate::config::parse_global(&p, &t)?;
        }
    } else {
        crate::load(&o.config_dir)?;
    }
    let mut tree = Tree::default();
    let init = read(&o.init)?;
    check_static(&o.init, &init)?;
    tree.file("init", 0o755, init);
    for d in ["dev", "proc", "sys", "run", "tmp", "sysroot"] {
        tree.dir(d);
    }
    // The kernel opens /dev/console for /init's standard streams before anything is mounted.
    tree.node("dev/console", 0o020_600, (5, 1));
    for f in CONFIG_FILES {
        let p = o.config_dir.join(f);
        if (f == "global.toml" && !p.exists()) || (f == "metadata.toml" && o.metadata_later) {
            continue;
        }
        tree.file(&format!("etc/cryptpilot/{f}"), 0o644, read(&p)?);
    }
    let mut built = Built::default();
    if let Some(dir) = &o.kernel_modules {
        let version = dir
            .file_name()
            .map(|v| v.to_string_lossy().into_owned())
            .ok_or_else(|| initrd_error(dir, "is not a lib/modules/<version> directory"))?;
        let plan = ModuleTree::read(dir)?.plan(&o.modules);
        // The kernel decompresses modules itself only since Linux 6.4.
        if plan.files.iter().any(|f| !f.ends_with(".ko")) && !decompresses_modules(&version) {
            return Err(initrd_error(
                dir,
                "holds compressed modules, which a kernel before 6.4 cannot load itself",
            ));
        }
        for rel in &plan.files {
            let data = read(&dir.join(rel))?;
            tree.file(&format!("lib/modules/{version}/{rel}"), 0o644, data);
        }
        let list: String = plan
            .files
            .iter()
            .map(|r| format!("/lib/modules/{version}/{r}\n"))
            .collect();
        tree.file(
            MODULE_LIST.trim_start_matches('/'),
            0o644,
            list.into_bytes(),
        );
        built.kernel_version = Some(version);
        built.modules = plan.files;
        built.missing = plan.missing;
    }
    for (src, dst) in &o.include {
        let rel = dst
            .to_str()
            .filter(|d| d.starts_with('/') && !d.split('/').any(|c| c == ".."))
            .ok_or_else(|| initrd_error(dst, "must be an absolute path without .."))?;
        let mode = std::fs::metadata(src)
            .map_err(Error::io(src, "read"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)?;
        let rel = rel.trim_start_matches('/');
        // Nothing checked above (the init, the configuration, the modules) is replaced.
        if tree.entries.contains_key(rel) {
            return Err(initrd_error(dst, "is already in the initrd; not replaced"));
        }
        tree.file(rel, mode, read(src)?);
    }
    built.entries = tree.entries.len();
    let mut gz = flate2::GzBuilder::new().write(out, flate2::Compression::fast());
    tree.write(&mut gz)
        .map_err(Error::io(Path::new("initrd"), "write"))?;
    gz.finish()
        .map_err(Error::io(Path::new("initrd"), "write"))?;
    Ok(built)
}

/// Appends `metadata.toml` (checked first) to an initrd built with
/// [`Options::metadata_later`], as a gzip-compressed archive of its own: the kernel unpacks
/// concatenated archives in order.
///
/// # Errors
/// [`Error::Config`] for metadata the boot would refuse; [`Error::Io`] when `out` fails.
pub fn append_metadata(text: &str, out: &mut dyn Write) -> Result<()> {
    crate::config::parse_metadata(Path::new("metadata.toml"), text)?;
    let mut tree = Tree::default();
    tree.file(
        "etc/cryptpilot/metadata.toml",
        0o644,
        text.as_bytes().to_vec(),
    );
    let mut gz = flate2::GzBuilder::new().write(out, flate2::Compression::fast());
    tree.write(&mut gz)
        .map_err(Error::io(Path::new("initrd"), "write"))?;
    gz.finish()
        .map_err(Error::io(Path::new("initrd"), "write"))?;
    Ok(())
}

/// The module files (relative to the tree) an initrd built with `modules` carries from the
/// tree at `dir`, in load order: what a converter must extract from an image's module tree.
/// Only `modules.dep` and `modules.builtin` are read.
///
/// # Errors
/// As [`build`] for an unusable module tree.
pub fn needed_modules(dir: &Path, modules: &[String]) -> Result<Vec<String>> {
    Ok(ModuleTree::read(dir)?.plan(modules).files)
}

/// Whether kernel `version` (`6.12.30-amd64`) loads compressed modules (6.4 and later).
fn decompresses_modules(version: &str) -> bool {
    let mut n = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse::<u32>().unwrap_or(0));
    let (major, minor) = (n.next().unwrap_or(0), n.next().unwrap_or(0));
    (major, minor) >= (6, 4)
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(Error::io(p, "read"))
}

fn initrd_error(path: &Path, why: &str) -> Error {
    Error::Initrd {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

/// `/init` runs before any library can be found: the binary must be an ELF file without a
/// program interpreter (statically linked).
fn check_static(path: &Path, elf: &[u8]) -> Result<()> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // 64-bit little-endian ELF only: the targets the binary is built for.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err(initrd_error(
            path,
            "is not a 64-bit little-endian ELF executable",
        ));
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return Err(initrd_error(path, "has a truncated ELF header"));
    };
    for i in 0..u64::from(count) {
        let at = phoff
            .checked_add(i * u64::from(size))
            .and_then(|a| usize::try_from(a).ok())
            .unwrap_or(usize::MAX);
        match u32_at(at) {
            None => return Err(initrd_error(path, "has a truncated ELF program header")),
            // PT_INTERP: a dynamic loader is needed.
            Some(3) => {
                return Err(initrd_error(
                    path,
                    "is dynamically linked; /init must be static \
                     (build with RUSTFLAGS='-C target-feature=+crt-static')",
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A kernel's module tree: every module's file and dependencies (`modules.dep`) and the
/// names built into the kernel (`modules.builtin`).
#[derive(Debug, Default)]
struct ModuleTree {
    /// Module name (`-` read as `_`) -> its file, relative to the tree.
    files: HashMap<String, String>,
    /// File -> the files it needs.
    deps: HashMap<String, Vec<String>>,
    builtin: HashSet<String>,
}

/// Modules to carry, in load order, and the names not found.
#[derive(Debug, Default, PartialEq)]
struct ModulePlan {
    files: Vec<String>,
    missing: Vec<String>,
}

/// `kernel/fs/ext4/ext4.ko.xz` -> `ext4`; `dm-crypt` -> `dm_crypt`.
fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

impl ModuleTree {
    fn read(dir: &Path) -> Result<Self> {
        let dep = dir.join("modules.dep");
        let text = std::fs::read_to_string(&dep).map_err(Error::io(&dep, "read"))?;
        let mut t = Self::parse(&text);
        // modules.dep may come from an image someone else made (conversion): every path must
        // stay inside the tree, or reading it would take a host file into the initrd.
        let inside = |p: &str| {
            !p.is_empty()
                && !p.starts_with('/')
                && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        };
        if let Some(bad) = t
            .deps
            .iter()
            .flat_map(|(f, d)| std::iter::once(f).chain(d))
            .find(|p| !inside(p))
        {
            return Err(initrd_error(
                &dep,
                &format!("names {bad:?}, a path outside the module tree"),
            ));
        }
        if let Ok(b) = std::fs::read_to_string(dir.join("modules.builtin")) {
            t.builtin = b.lines().map(module_name).collect();
        }
        Ok(t)
    }

    fn parse(modules_dep: &str) -> Self {
        let mut t = Self::default();
        for line in modules_dep.lines() {
            let Some((file, deps)) = line.split_once(':') else {
                continue;
            };
            t.files.insert(module_name(file), file.to_owned());
            t.deps.insert(
                file.to_owned(),
                deps.split_whitespace().map(str::to_owned).collect(),
            );
        }
        t
    }

    /// The files for `names`, each after what it needs.
    fn plan(&self, names: &[String]) -> ModulePlan {
        let mut plan = ModulePlan::default();
        let mut seen = HashSet::new();
        for n in names {
            let n = module_name(n);
            match self.files.get(&n) {
                Some(f) => self.visit(f, &mut seen, &mut plan.files, 0),
                None if self.builtin.contains(&n) => {}
                None => plan.missing.push(n),
            }
        }
        plan
    }

    /// Dependencies first. modules.dep lists every module's whole dependency set, so real
    /// chains are short: past 64 levels (a hostile file) the deeper ones are not followed.
    fn visit(&self, file: &str, seen: &mut HashSet<String>, order: &mut Vec<String>, depth: u32) {
        if !seen.insert(file.to_owned()) {
            return;
        }
        if depth < 64 {
            for d in self.deps.get(file).into_iter().flatten() {
                self.visit(d, seen, order, depth + 1);
            }
        }
        order.push(file.to_owned());
    }
}

/// The archive's entries by path (no leading `/`), parents made as needed.
#[derive(Debug, Default)]
struct Tree {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug)]
enum Entry {
    Dir,
    File { mode: u32, data: Vec<u8> },
    Node { mode: u32, rdev: (u32, u32) },
}

impl Tree {
    fn dir(&mut self, path: &str) {
        let mut at = String::new();
        for c in path.split('/').filter(|c| !c.is_empty()) {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(c);
            self.entries.entry(at.clone()).or_insert(Entry::Dir);
        }
    }

    fn parent(&mut self, path: &str) {
        if let Some((p, _)) = path.rsplit_once('/') {
            self.dir(p);
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.parent(path);
        self.entries
            .insert(path.to_owned(), Entry::File { mode, data });
    }

    fn node(&mut self, path: &str, mode: u32, rdev: (u32, u32)) {
        self.parent(path);
        self.entries
            .insert(path.to_owned(), Entry::Node { mode, rdev });
    }

    /// newc: for each entry a 110-byte ASCII header, the name (NUL-terminated) and the data,
    /// each padded to 4 bytes; then the `TRAILER!!!` entry.
    fn write(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let mut off = 0u64;
        for (ino, (path, e)) in (1u32..).zip(&self.entries) {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match e {
                Entry::Dir => (0o040_755, &[], (0, 0)),
                Entry::File { mode, data } => (0o100_000 | mode, data, (0, 0)),
                Entry::Node { mode, rdev } => (*mode, &[], *rdev),
            };
            let nlink = if matches!(e, Entry::Dir) { 2 } else { 1 };
            off += newc_entry(w, off, ino, mode, nlink, rdev, path, data)?;
        }
        newc_entry(w, off, 0, 0, 1, (0, 0), "TRAILER!!!", &[])?;
        Ok(())
    }
}

/// One newc entry at archive offset `off`; returns the bytes written.
#[allow(clippy::too_many_arguments)]
fn newc_entry(
    w: &mut dyn Write,
    off: u64,
    ino: u32,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    name: &str,
    data: &[u8],
) -> std::io::Result<u64> {
    let size = u32::try_from(data.len()).map_err(|_| {
        std::io::Error::other(format!("{name}: larger than 4 GiB, too large for cpio"))
    })?;
    let namesize = name.len() + 1;
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{namesize:08x}{:08x}",
        0, 0, 0, 0, 0, rdev.0, rdev.1, 0
    );
    let pad = |n: u64| (4 - n % 4) % 4;
    let mut n = 0u64;
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    n += 110 + namesize as u64;
    let p = pad(off + n);
    w.write_all(&[0u8; 3][..p as usize])?;
    n += p;
    w.write_all(data)?;
    n += data.len() as u64;
    let p = pad(off + n);
    w.write_all(&[0u8; 3][..p as usize])?;
    Ok(n + p)
}

/// The most bytes an initrd is decompressed to when reading it (a hostile image must not
/// make a reader allocate without bound; real initrds are far smaller).
const MAX_UNPACKED: u64 = 1 << 30;

/// The regular files under `dir` (`etc/cryptpilot`) of an initrd: concatenated newc cpio
/// archives, each uncompressed (an early microcode archive) or gzip- or zstd-compressed (ours
/// is gzip, dracut's and initramfs-tools' gzip or zstd). Paths are returned without a leading
/// `/` or `./`; a later archive's file replaces an earlier one's, as the kernel unpacks them.
///
/// # Errors
/// [`Error::Initrd`] (with `what` as the path) for a format that is neither, a damaged archive,
/// or more than 1 GiB unpacked.
pub fn read_files(data: &[u8], dir: &str, what: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    read_archives(data, dir.trim_matches('/'), what, true, &mut out)?;
    Ok(out)
}

/// Archives one after another; a compressed stream (allowed only at the outer level: no
/// nesting, so no chain of bombs) runs to the end.
fn read_archives(
    data: &[u8],
    dir: &str,
    what: &Path,
    outer: bool,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    let bad = |why: String| Error::Initrd {
        path: what.to_owned(),
        why,
    };
    let mut rest = data;
    loop {
        // Archives are padded with zeros between them.
        let skip = rest.iter().position(|&b| b != 0).unwrap_or(rest.len());
        rest = &rest[skip..];
        if rest.is_empty() {
            return Ok(());
        }
        if rest.starts_with(b"07070") {
            rest = read_newc(rest, dir, out).map_err(bad)?;
            continue;
        }
        if !outer {
            return Err(bad(
                "holds a compressed stream inside a compressed stream".into()
            ));
        }
        let mut buf = Vec::new();
        let limit = MAX_UNPACKED;
        let read: Result<usize> = if rest.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            // Member by member: zero padding may follow a member (the kernel skips it).
            let mut src = rest;
            let mut n = 0usize;
            while src.starts_with(&[0x1f, 0x8b]) && buf.len() as u64 <= limit {
                let mut dec = flate2::bufread::GzDecoder::new(src);
                n += (&mut dec)
                    .take(limit + 1 - buf.len() as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| bad(format!("gzip: {e}")))?;
                src = dec.into_inner();
                let zeros = src.iter().position(|&b| b != 0).unwrap_or(src.len());
                src = &src[zeros..];
            }
            Ok(n)
        } else if rest.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            use std::io::Read;
            let mut src = rest;
            let mut n = 0;
            // Concatenated zstd frames: one decoder per frame.
            while !src.is_empty() && src.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut src)
                    .map_err(|e| bad(format!("zstd: {e}")))?;
                n += (&mut dec)
                    .take(limit + 1 - n as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| bad(format!("zstd: {e}")))?;
                if buf.len() as u64 > limit {
                    break;
                }
            }
            Ok(n)
        } else {
            return Err(bad(format!(
                "is not a cpio archive, nor gzip- or zstd-compressed (starts with {:02x?})",
                &rest[..rest.len().min(4)]
            )));
        };
        read?;
        if buf.len() as u64 > limit {
            return Err(bad("unpacks to more than 1 GiB".into()));
        }
        // The compressed stream runs to the end: what it holds may be several archives.
        return read_archives(&buf, dir, what, false, out);
    }
}

/// One newc archive from the start of `data` up to its trailer; keeps regular files under
/// `dir`. Returns what follows the archive.
fn read_newc<'a>(
    mut data: &'a [u8],
    dir: &str,
    out: &mut BTreeMap<String, Vec<u8>>,
) -> std::result::Result<&'a [u8], String> {
    let start = data.as_ptr() as usize;
    let off = |d: &[u8]| d.as_ptr() as usize - start;
    loop {
        let h = data
            .get(..110)
            .ok_or_else(|| "a cpio header is cut short".to_owned())?;
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return Err(format!("bad cpio header magic at byte {}", off(data)));
        }
        let field = |i: usize| -> std::result::Result<usize, String> {
            let t = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).map_err(|_| "bad header")?;
            usize::from_str_radix(t, 16).map_err(|_| format!("bad cpio header field {t:?}"))
        };
        let (mode, size, namesize) = (field(1)?, field(6)?, field(11)?);
        let name_end = 110usize
            .checked_add(namesize)
            .filter(|&e| e <= data.len() && namesize > 0)
            .ok_or_else(|| "a cpio name runs past the end".to_owned())?;
        let name = String::from_utf8_lossy(&data[110..name_end - 1]).into_owned();
        let pad4 = |n: usize| n.div_ceil(4) * 4;
        let body = pad4(off(data) + name_end) - off(data);
        let body_end = body
            .checked_add(size)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| format!("{name}: its data runs past the end of the archive"))?;
        if name == "TRAILER!!!" {
            let next = (pad4(off(data) + body_end) - off(data)).min(data.len());
            return Ok(&data[next..]);
        }
        let clean = name.trim_start_matches("./").trim_start_matches('/');
        let is_file = mode & 0o170000 == 0o100000;
        if is_file && clean.strip_prefix(dir).is_some_and(|r| r.starts_with('/')) {
            out.insert(clean.to_owned(), data[body..body_end].to_vec());
        }
        let next = (pad4(off(data) + body_end) - off(data)).min(data.len());
        data = &data[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A modules.dep from an image someone else made cannot name files outside its tree.
    #[test]
    fn module_paths_stay_in_the_tree() {
        let d = tempfile::tempdir().expect("dir");
        for dep in [
            "kernel/dm-mod.ko: /etc/shadow\n",
            "kernel/dm-mod.ko: ../../../etc/shadow\n",
            "/etc/shadow:\n",
            "kernel//dm-mod.ko:\n",
        ] {
            std::fs::write(d.path().join("modules.dep"), dep).expect("write");
            let e = needed_modules(d.path(), &["dm_mod".to_owned()]).expect_err(dep);
            assert!(e.to_string().contains("outside the module tree"), "{e}");
        }
    }

    #[test]
    fn hostile_initrds_are_errors_not_panics() {
        let p = Path::new("x");
        let mut ok_archive = Vec::new();
        newc_entry(
            &mut ok_archive,
            0,
            1,
            0o100644,
            1,
            (0, 0),
            "etc/cryptpilot/fde.toml",
            b"a",
        )
        .expect("entry");
        let n = ok_archive.len() as u64;
        newc_entry(&mut ok_archive, n, 0, 0, 1, (0, 0), "TRAILER!!!", b"").expect("trailer");
        let files = read_files(&ok_archive, "/etc/cryptpilot", p).expect("read");
        assert_eq!(
            files.get("etc/cryptpilot/fde.toml").map(Vec::as_slice),
            Some(&b"a"[..])
        );
        for cut in [5, 50, 110, 120, ok_archive.len() - 20] {
            assert!(
                read_files(&ok_archive[..cut], "etc/cryptpilot", p).is_err(),
                "cut {cut}"
            );
        }
        let mut huge = ok_archive.clone();
        huge[6 + 8 * 6..6 + 8 * 7].copy_from_slice(b"ffffffff");
        assert!(read_files(&huge, "etc/cryptpilot", p).is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0x1f, 0x8b, 0, 0]).expect("gz");
        let nested = gz.finish().expect("gz");
        assert!(
            read_files(&nested, "etc/cryptpilot", p).is_err(),
            "no nesting"
        );
        assert!(read_files(b"\x1f\x8bjunk", "etc/cryptpilot", p).is_err());
        // A gzip stream padded with zeros, as boot loaders and initrd tools may leave it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&ok_archive).expect("gz");
        let mut padded = gz.finish().expect("gz");
        padded.extend_from_slice(&[0u8; 512]);
        let files = read_files(&padded, "etc/cryptpilot", p).expect("padded gzip");
        assert!(files.contains_key("etc/cryptpilot/fde.toml"));
        assert!(read_files(b"hello", "etc/cryptpilot", p).is_err());
    }

    const DEP: &str = "kernel/drivers/md/dm-mod.ko:\n\
        kernel/drivers/md/dm-crypt.ko: kernel/drivers/md/dm-mod.ko\n\
        kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n\
        kernel/drivers/md/dm-bufio.ko:\n\
        kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz kernel/fs/mbcache.ko.xz\n\
        kernel/fs/jbd2/jbd2.ko.xz:\n\
        kernel/fs/mbcache.ko.xz:\n";

    #[test]
    fn compressed_modules_need_a_kernel_that_decompresses() {
        assert!(decompresses_modules("6.12.30-amd64"));
        assert!(decompresses_modules("6.4.0"));
        assert!(!decompresses_modules("6.1.0-57-cloud-amd64"));
        assert!(!decompresses_modules("5.14.0-427.el9.x86_64"));
        assert!(!decompresses_modules("garbage"));
    }

    #[test]
    fn modules_come_after_what_they_need_once_each() {
        let mut t = ModuleTree::parse(DEP);
        t.builtin.insert("virtio_blk".into());
        let names: Vec<String> = ["dm-verity", "dm_crypt", "virtio_blk", "nope", "ext4"]
            .map(String::from)
            .into();
        let p = t.plan(&names);
        assert_eq!(
            p.files,
            [
                "kernel/drivers/md/dm-bufio.ko",
                "kernel/drivers/md/dm-mod.ko",
                "kernel/drivers/md/dm-verity.ko",
                "kernel/drivers/md/dm-crypt.ko",
                "kernel/fs/jbd2/jbd2.ko.xz",
                "kernel/fs/mbcache.ko.xz",
                "kernel/fs/ext4/ext4.ko.xz",
            ]
        );
        assert_eq!(p.missing, ["nope"]);
    }

    #[test]
    fn the_archive_is_newc_with_parents_and_a_trailer() {
        let mut t = Tree::default();
        t.file("etc/cryptpilot/fde.toml", 0o644, b"abcde".to_vec());
        t.node("dev/console", 0o020_600, (5, 1));
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        // Walk the archive back: names, modes and data as written.
        let mut at = 0;
        let mut seen = Vec::new();
        loop {
            let h = std::str::from_utf8(&out[at..at + 110]).unwrap();
            assert_eq!(&h[..6], "070701");
            let field = |i: usize| u32::from_str_radix(&h[6 + 8 * i..14 + 8 * i], 16).unwrap();
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name = std::str::from_utf8(&out[at + 110..at + 110 + namesize - 1]).unwrap();
            at += (110 + namesize).div_ceil(4) * 4;
            let data = &out[at..at + size];
            at += size.div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                break;
            }
            seen.push((name.to_owned(), mode, data.to_vec(), (field(9), field(10))));
        }
        assert_eq!(at, out.len());
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "etc",
                "etc/cryptpilot",
                "etc/cryptpilot/fde.toml"
            ]
        );
        assert_eq!(seen[1].1, 0o020_600);
        assert_eq!(seen[1].3, (5, 1));
        assert_eq!(seen[4].1, 0o100_644);
        assert_eq!(seen[4].2, b"abcde");
    }

    #[test]
    fn only_a_static_elf_may_be_init() {
        let me = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&me).unwrap();
        // The test binary is linked however the build links it; a fake PT_INTERP decides.
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes());
        assert!(check_static(&me, &elf).is_ok());
        elf[0x40 + 56..0x44 + 56].copy_from_slice(&3u32.to_le_bytes());
        let e = check_static(&me, &elf).unwrap_err().to_string();
        assert!(e.contains("dynamically linked"), "{e}");
        assert!(check_static(&me, &elf[..0x50]).is_err());
        assert!(check_static(&me, b"#!/bin/sh\n").is_err());
        assert!(bytes.starts_with(b"\x7fELF"));
    }
}
