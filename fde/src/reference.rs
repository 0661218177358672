//! Reference values: what a measured boot of a protected image records (the Authenticode
//! digests of shim and GRUB or of a unified kernel image, the kernel, the initrd that carries
//! the root hash, the kernel command line), computed from the image's files so that an
//! attestation service can be told which boot chain may have the delta key.
//!
//! The output is the existing tool's (`cryptpilot-fde-host show-reference-value`): keys in its
//! order, each with a list of lower-case hex values. With GRUB, every directory on the EFI
//! system partition holding `grubx64.efi` and a shim adds one value per key (two for the
//! command line: as GRUB's `linux` command names the kernel within `/boot`, and with the
//! device prefix GRUB measures on a separate boot partition).
//!
//! The files come from a [`BootFiles`] source: a disk image read without mounting
//! ([`ImageBoot`]) or the running system's `/boot` and `/boot/efi` ([`LocalBoot`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::authenticode::{self, HashAlgo};
use crate::image::{self, DiskImage};
use crate::{Error, Result};

/// Where a UKI boot keeps its one image on the EFI system partition.
pub const UKI_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";

/// Reference values in the existing tool's key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceValues {
    entries: Vec<(String, Vec<String>)>,
}

impl ReferenceValues {
    fn push(&mut self, key: String, value: String) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(value),
            None => self.entries.push((key, vec![value])),
        }
    }

    /// The keys and their values, in order.
    pub fn entries(&self) -> &[(String, Vec<String>)] {
        &self.entries
    }

    /// The values of `key`.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

impl serde::Serialize for ReferenceValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A source of the boot chain's files.
pub trait BootFiles {
    /// Every regular file on the EFI system partition, as absolute paths (`/EFI/debian/shimx64.efi`).
    ///
    /// # Errors
    /// Read errors.
    fn esp_files(&mut self) -> Result<Vec<String>>;
    /// A file on the EFI system partition, or `None` when it does not exist.
    ///
    /// # Errors
    /// Read errors other than a missing file.
    fn esp_read(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// A file under `/boot` of the booted system (`/boot/grub/grub.cfg`), wherever its file
    /// system is, or `None` when it does not exist.
    ///
    /// # Errors
    /// Read errors other than a missing file.
    fn boot_read(&mut self, path: &str) -> Result<Option<Vec<u8>>>;
    /// GRUB's name of the partition holding `/boot` (`(hd0,gpt3)`).
    fn boot_device(&self) -> String;
}

/// Computes the reference values of the boot chain in `files` for each of `algos`.
///
/// # Errors
/// [`Error::Image`] when no boot chain is found (no shim and GRUB pair and no UKI), GRUB's
/// configuration names no usable entry, or a file it names is missing or not a PE image.
pub fn compute(files: &mut dyn BootFiles, algos: &[HashAlgo]) -> Result<ReferenceValues> {
    let mut out = ReferenceValues::default();
    if let Some(uki) = files.esp_read(UKI_PATH)?.filter(|b| is_uki(b)) {
        for &a in algos {
            let d = pe_digest(&uki, UKI_PATH, a)?;
            out.push(format!("measurement.uki.{}", a.label()), d);
        }
        return Ok(out);
    }
    let dirs = grub_dirs(&files.esp_files()?);
    let mut found = false;
    for dir in dirs {
        let Some(grub) = files.esp_read(&format!("{dir}/grubx64.efi"))? else {
            continue;
        };
        let shim = match files.esp_read(&format!("{dir}/shimx64.efi"))? {
            Some(s) => s,
            None => match files.esp_read(&format!("{dir}/shim.efi"))? {
                Some(s) => s,
                None => continue,
            },
        };
        found = true;
        let entry = grub_entry(files, &dir)?;
        let kernel = files
            .boot_read(&entry.kernel)?
            .ok_or_else(|| missing(&entry.kernel))?;
        let initrd = files
            .boot_read(&entry.initrd)?
            .ok_or_else(|| missing(&entry.initrd))?;
        let in_boot = entry.kernel.strip_prefix("/boot").unwrap_or(&entry.kernel);
        // GRUB joins the words of its `linux` line with single blanks.
        let line = |path: &str| {
            if entry.cmdline.is_empty() {
                path.to_owned()
            } else {
                format!("{path} {}", entry.cmdline)
            }
        };
        let cmdlines = [
            line(in_boot),
            line(&format!("{}{}", files.boot_device(), entry.kernel)),
        ];
        for c in &cmdlines {
            out.push("kernel_cmdline".into(), format!("grub_kernel_cmdline {c}"));
        }
        for &a in algos {
            let l = a.label();
            for c in &cmdlines {
                out.push(
                    format!("measurement.kernel_cmdline.{l}"),
                    integrity::verity::to_hex(&a.file_digest(c.as_bytes())),
                );
            }
            out.push(
                format!("measurement.kernel.{l}"),
                integrity::verity::to_hex(&a.file_digest(&kernel)),
            );
            out.push(
                format!("measurement.initrd.{l}"),
                integrity::verity::to_hex(&a.file_digest(&initrd)),
            );
            out.push(
                format!("measurement.grub.{l}"),
                pe_digest(&grub, &format!("{dir}/grubx64.efi"), a)?,
            );
            out.push(
                format!("measurement.shim.{l}"),
                pe_digest(&shim, &format!("{dir}/shim"), a)?,
            );
        }
    }
    if !found {
        return Err(Error::Unsupported(
            "no boot chain found: the EFI system partition holds neither a unified kernel image at /EFI/BOOT/BOOTX64.EFI nor a directory with grubx64.efi and shimx64.efi".into(),
        ));
    }
    Ok(out)
}

/// The initrds the boot chain in `files` loads, each with where it came from: the UKI's
/// `.initrd` section, or the initrd of GRUB's default entry (once per distinct path).
///
/// # Errors
/// As [`compute`].
pub fn boot_initrds(files: &mut dyn BootFiles) -> Result<Vec<(String, Vec<u8>)>> {
    if let Some(uki) = files.esp_read(UKI_PATH)?.filter(|b| is_uki(b)) {
        let initrd = authenticode::section(&uki, ".initrd")
            .map_err(|e| Error::Unsupported(format!("{UKI_PATH}: {e}")))?
            .ok_or_else(|| Error::Unsupported(format!("{UKI_PATH} has no .initrd section")))?;
        return Ok(vec![(format!("{UKI_PATH} (.initrd)"), initrd.to_vec())]);
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in grub_dirs(&files.esp_files()?) {
        let entry = grub_entry(files, &dir)?;
        if out.iter().any(|(p, _)| *p == entry.initrd) {
            continue;
        }
        let initrd = files
            .boot_read(&entry.initrd)?
            .ok_or_else(|| missing(&entry.initrd))?;
        out.push((entry.initrd, initrd));
    }
    if out.is_empty() {
        return Err(Error::Unsupported(
            "no boot chain found: no unified kernel image and no GRUB on the EFI system partition"
                .into(),
        ));
    }
    Ok(out)
}

/// GRUB's default entry (the first GRUB directory's environment and configuration when
/// there are several; `/boot`'s own files come first anyway).
///
/// # Errors
/// As [`compute`].
pub fn default_entry(files: &mut dyn BootFiles) -> Result<GrubEntry> {
    let dir = grub_dirs(&files.esp_files()?)
        .into_iter()
        .next()
        .unwrap_or_default();
    grub_entry(files, &dir)
}

fn missing(path: &str) -> Error {
    Error::Unsupported(format!(
        "GRUB's default entry names {path}, which does not exist"
    ))
}

fn pe_digest(pe: &[u8], what: &str, a: HashAlgo) -> Result<String> {
    authenticode::digest(pe, a)
        .map(|d| integrity::verity::to_hex(&d))
        .map_err(|e| Error::Unsupported(format!("{what}: {e}")))
}

/// Whether `pe` is a unified kernel image (a PE image with a `.linux` section).
pub fn is_uki(pe: &[u8]) -> bool {
    matches!(authenticode::section(pe, ".linux"), Ok(Some(_)))
}

/// The directories holding `grubx64.efi` (any case), sorted.
fn grub_dirs(files: &[String]) -> Vec<String> {
    let dirs: BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            let (dir, name) = f.rsplit_once('/')?;
            name.eq_ignore_ascii_case("grubx64.efi")
                .then(|| dir.to_owned())
        })
        .collect();
    dirs.into_iter().collect()
}

/// The kernel, initrd and command line GRUB boots by default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrubEntry {
    /// The kernel's path under `/boot` (`/boot/vmlinuz-6.1.0-28-cloud-amd64`).
    pub kernel: String,
    /// The initrd's path under `/boot`.
    pub initrd: String,
    /// The command line after the kernel path, blanks collapsed as GRUB passes it.
    pub cmdline: String,
}

fn text(b: Option<Vec<u8>>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Finds GRUB's default entry as the existing tool does: `saved_entry` from grubenv, its BLS
/// snippet (`/boot/loader/entries/<saved_entry>.conf`) if there is one, else the `menuentry`
/// of grub.cfg whose line contains it. Without `saved_entry` (Debian's grubenv has none),
/// grub.cfg's `set default=` is followed (a number, `N>M` into a submenu, or a title or id).
fn grub_entry(files: &mut dyn BootFiles, esp_dir: &str) -> Result<GrubEntry> {
    let mut env = None;
    for p in ["/boot/grubenv", "/boot/grub/grubenv", "/boot/grub2/grubenv"] {
        if let Some(t) = text(files.boot_read(p)?) {
            env = Some(t);
            break;
        }
    }
    if env.is_none() {
        env = text(files.esp_read(&format!("{esp_dir}/grubenv"))?);
    }
    let vars = parse_grubenv(env.as_deref().unwrap_or(""));
    let mut cfg = None;
    for p in ["/boot/grub2/grub.cfg", "/boot/grub/grub.cfg"] {
        if let Some(t) = text(files.boot_read(p)?) {
            cfg = Some(t);
            break;
        }
    }
    if cfg.is_none() {
        cfg = text(files.esp_read(&format!("{esp_dir}/grub.cfg"))?);
    }
    let saved = vars
        .iter()
        .find(|(k, _)| k == "saved_entry")
        .map(|(_, v)| v.clone());
    if let Some(s) = &saved {
        if let Some(bls) = text(files.boot_read(&format!("/boot/loader/entries/{s}.conf"))?) {
            return bls_entry(&bls, &vars);
        }
    }
    let cfg = cfg.ok_or_else(|| {
        Error::Unsupported(
            "no grub.cfg under /boot/grub2, /boot/grub or beside GRUB on the EFI system partition"
                .into(),
        )
    })?;
    let default = match saved {
        Some(s) => s,
        None => cfg_default(&cfg, &vars),
    };
    cfg_entry(&cfg, &default)
}

/// `KEY=VALUE` lines of a GRUB environment block (the `#` padding is skipped).
pub fn parse_grubenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Replaces `$name` and `${name}` with GRUB environment values (absent ones expand to
/// nothing, as GRUB does).
fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], &b[e + 1..]),
                None => (b, ""),
            }
        } else {
            let e = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..e], &after[e..])
        };
        if let Some((_, v)) = vars.iter().find(|(k, _)| k == name) {
            out.push_str(v);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Makes a path from a `linux`/`initrd` line one under `/boot`.
fn under_boot(p: &str) -> String {
    if p == "/boot" || p.starts_with("/boot/") {
        p.to_owned()
    } else if let Some(r) = p.strip_prefix('/') {
        format!("/boot/{r}")
    } else {
        format!("/boot/{p}")
    }
}

fn collapse(words: &[&str]) -> String {
    words.join(" ")
}

fn bls_entry(bls: &str, vars: &[(String, String)]) -> Result<GrubEntry> {
    let field = |key: &str| {
        bls.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .find(|rest| rest.starts_with(char::is_whitespace))
            .map(str::trim)
    };
    let kernel = field("linux")
        .ok_or_else(|| Error::Unsupported("the BLS entry has no linux line".into()))?;
    let initrd = field("initrd")
        .ok_or_else(|| Error::Unsupported("the BLS entry has no initrd line".into()))?;
    let initrd = expand(initrd, vars);
    let opts = expand(field("options").unwrap_or(""), vars);
    let first = |s: &str| s.split_whitespace().next().unwrap_or("").to_owned();
    Ok(GrubEntry {
        kernel: under_boot(&first(kernel)),
        initrd: under_boot(&first(&initrd)),
        cmdline: collapse(&opts.split_whitespace().collect::<Vec<_>>()),
    })
}

/// grub.cfg's `set default=` value (a `${saved_entry}` reference counts as unset: the
/// environment had none), `0` without one.
fn cfg_default(cfg: &str, vars: &[(String, String)]) -> String {
    cfg.lines()
        .filter_map(|l| l.trim().strip_prefix("set default="))
        .map(|v| expand(v.trim_matches(|c| c == '"' || c == '\''), vars))
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| "0".into())
}

/// One `menuentry` or `submenu` of grub.cfg.
#[derive(Debug, Default)]
struct MenuItem {
    header: String,
    kernel_line: Option<String>,
    initrd_line: Option<String>,
    children: Vec<MenuItem>,
    submenu: bool,
}

/// The top-level menu of grub.cfg: braces are counted line by line (a line ending in `{`
/// opens a block, a line that is only `}` closes one), `linux`/`linuxefi` and
/// `initrd`/`initrdefi` lines inside an entry are kept, the last one winning.
fn parse_menu(cfg: &str) -> Vec<MenuItem> {
    // The stack holds open blocks; None for blocks that are not menu items (functions).
    let mut stack: Vec<Option<MenuItem>> = Vec::new();
    let mut top: Vec<MenuItem> = Vec::new();
    for line in cfg.lines() {
        let t = line.trim();
        if t == "}" {
            if let Some(Some(item)) = stack.pop() {
                match stack.iter_mut().rev().find_map(|b| b.as_mut()) {
                    Some(parent) => parent.children.push(item),
                    None => top.push(item),
                }
            }
            continue;
        }
        if t.ends_with('{') {
            let sub = t.starts_with("submenu");
            // Menus nest a level or two; deeper blocks (a hostile file) are not items, so
            // that nothing recurses without bound.
            let item =
                ((t.starts_with("menuentry") || sub) && stack.len() < 32).then(|| MenuItem {
                    header: t.to_owned(),
                    submenu: sub,
                    ..MenuItem::default()
                });
            stack.push(item);
            continue;
        }
        let Some(Some(item)) = stack.last_mut() else {
            continue;
        };
        let word = t.split_whitespace().next().unwrap_or("");
        if word == "linux" || word == "linuxefi" {
            item.kernel_line = Some(t.to_owned());
        } else if word == "initrd" || word == "initrdefi" {
            item.initrd_line = Some(t.to_owned());
        }
    }
    top
}

/// The entry `default` names: `N` or `N>M>…` by position, else the first entry whose
/// `menuentry` line contains the text after the last `>` (the existing tool's rule).
fn cfg_entry(cfg: &str, default: &str) -> Result<GrubEntry> {
    let menu = parse_menu(cfg);
    let by_index = || -> Option<&MenuItem> {
        let mut items = &menu;
        let mut found = None;
        for part in default.split('>') {
            let item = items.get(part.trim().parse::<usize>().ok()?)?;
            items = &item.children;
            found = Some(item);
        }
        found
    };
    let by_text = || -> Option<&MenuItem> {
        let want = default.rsplit('>').next().unwrap_or(default);
        fn find<'a>(items: &'a [MenuItem], want: &str) -> Option<&'a MenuItem> {
            items.iter().find_map(|i| {
                if i.submenu {
                    find(&i.children, want)
                } else {
                    i.header.contains(want).then_some(i)
                }
            })
        }
        find(&menu, want)
    };
    let item = by_index()
        .filter(|i| !i.submenu)
        .or_else(by_text)
        .ok_or_else(|| Error::Unsupported(format!("grub.cfg has no menu entry \"{default}\"")))?;
    let words = |l: &Option<String>, what: &str| -> Result<Vec<String>> {
        let l = l.as_deref().ok_or_else(|| {
            Error::Unsupported(format!("grub.cfg entry \"{default}\" has no {what} line"))
        })?;
        let w: Vec<String> = l.split_whitespace().skip(1).map(str::to_owned).collect();
        if w.is_empty() {
            return Err(Error::Unsupported(format!(
                "grub.cfg entry \"{default}\" has an empty {what} line"
            )));
        }
        Ok(w)
    };
    let k = words(&item.kernel_line, "linux")?;
    let i = words(&item.initrd_line, "initrd")?;
    let rest: Vec<&str> = k[1..].iter().map(String::as_str).collect();
    Ok(GrubEntry {
        kernel: under_boot(&k[0]),
        initrd: under_boot(&i[0]),
        cmdline: collapse(&rest),
    })
}

/// Entry points for the fuzz targets (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// grub.cfg's entry for `default` (or its own `set default=`), as the reference values
    /// read it.
    pub fn grub_cfg_entry(cfg: &str, default: Option<&str>) -> Option<super::GrubEntry> {
        let d = match default {
            Some(d) => d.to_owned(),
            None => super::cfg_default(cfg, &[]),
        };
        super::cfg_entry(cfg, &d).ok()
    }

    /// A BLS snippet's entry with the GRUB environment block `env`.
    pub fn bls_entry(bls: &str, env: &str) -> Option<super::GrubEntry> {
        super::bls_entry(bls, &super::parse_grubenv(env)).ok()
    }
}

/// The boot files of a disk image, read without mounting.
pub struct ImageBoot {
    esp: Option<fatfs::FileSystem<image::ReadOnly<image::Window>>>,
    /// `None` on a UKI layout, whose kernel is on the ESP.
    boot: Option<ext4_view::Ext4>,
    /// The `/boot` file system is a partition of its own (paths lose their `/boot`).
    separate: bool,
    boot_number: u32,
    path: PathBuf,
}

impl ImageBoot {
    /// Finds the EFI system partition (a FAT file system with an `EFI` directory) and the
    /// file system holding `/boot`: the ext4 partition named `boot`, else one with
    /// `/boot/vmlinuz*` (the root file system), else one with a `vmlinuz*` file at its top.
    ///
    /// Without such a file system, an ESP alone serves a UKI layout.
    ///
    /// # Errors
    /// [`Error::Image`] when neither an ESP nor a partition holding kernels exists; read
    /// errors.
    pub fn open(img: &DiskImage) -> Result<Self> {
        let esp = img.esp()?.map(|(_, fs)| fs);
        let mut named = None;
        let mut separate = None;
        let mut in_root = None;
        for p in img.partitions() {
            let Some(fs) = img.ext4(p)? else { continue };
            let has_kernel = |dir: &str| -> bool {
                fs.read_dir(dir).is_ok_and(|rd| {
                    rd.filter_map(|e| e.ok()).any(|e| {
                        e.file_name()
                            .as_str()
                            .is_ok_and(|n| n.starts_with("vmlinuz"))
                    })
                })
            };
            // A root file system holding /boot may also have /vmlinuz links at its top
            // (Debian makes them): /boot decides first, unless the partition is named boot.
            if p.name == "boot" && named.is_none() {
                named = Some((fs, p.number));
            } else if has_kernel("/boot") {
                if in_root.is_none() {
                    in_root = Some((fs, p.number));
                }
            } else if has_kernel("/") && separate.is_none() {
                separate = Some((fs, p.number));
            }
        }
        let ((boot, boot_number), sep) = match (named, in_root, separate) {
            (Some(b), _, _) => (b, true),
            (None, Some(r), _) => (r, false),
            (None, None, Some(b)) => (b, true),
            (None, None, None) if esp.is_some() => {
                return Ok(ImageBoot {
                    esp,
                    boot: None,
                    separate: false,
                    boot_number: 0,
                    path: img.path().to_owned(),
                })
            }
            (None, None, None) => {
                return Err(Error::Image {
                    path: img.path().to_owned(),
                    why: "no ext4 partition holds a kernel (vmlinuz*) at its root or under /boot"
                        .into(),
                })
            }
        };
        Ok(ImageBoot {
            esp,
            boot: Some(boot),
            separate: sep,
            boot_number,
            path: img.path().to_owned(),
        })
    }

    fn err(&self, why: String) -> Error {
        Error::Image {
            path: self.path.clone(),
            why,
        }
    }
}

impl std::fmt::Debug for ImageBoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBoot")
            .field("path", &self.path)
            .field("esp", &self.esp.is_some())
            .field("separate", &self.separate)
            .field("boot_number", &self.boot_number)
            .finish_non_exhaustive()
    }
}

impl BootFiles for ImageBoot {
    fn esp_files(&mut self) -> Result<Vec<String>> {
        let Some(fs) = &self.esp else {
            return Ok(Vec::new());
        };
        let all =
            image::fat_walk(fs).map_err(|e| self.err(format!("EFI system partition: {e}")))?;
        Ok(all
            .into_iter()
            .filter(|(_, dir)| !dir)
            .map(|(p, _)| p)
            .collect())
    }

    fn esp_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(fs) = &self.esp else {
            return Ok(None);
        };
        image::fat_read(fs, path)
            .map_err(|e| self.err(format!("EFI system partition: {path}: {e}")))
    }

    fn boot_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(boot) = &self.boot else {
            return Ok(None);
        };
        let on_fs = if self.separate {
            match path.strip_prefix("/boot") {
                Some("") => "/".to_owned(),
                Some(r) if r.starts_with('/') => r.to_owned(),
                _ => return Ok(None),
            }
        } else {
            path.to_owned()
        };
        image::ext4_read(boot, &on_fs).map_err(|e| self.err(format!("{path}: {e}")))
    }

    fn boot_device(&self) -> String {
        format!("(hd0,gpt{})", self.boot_number)
    }
}

/// The running system's boot files: `/boot/efi` (the EFI system partition) and `/boot`, and
/// the partition number of the device mounted on `/boot` (or `/`).
#[derive(Debug)]
pub struct LocalBoot {
    root: PathBuf,
    boot_number: u32,
}

impl LocalBoot {
    /// Reads the partition number of the device holding `/boot` from the mount table and
    /// sysfs.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when `/boot` is on no partition.
    pub fn new() -> Result<Self> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(Error::io(Path::new("/proc/self/mountinfo"), "read"))?;
        let dev_of = |mp: &str| {
            info.lines().rev().find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.get(4) == Some(&mp)).then(|| f.get(2).map(|d| (*d).to_owned()))?
            })
        };
        let dev = dev_of("/boot").or_else(|| dev_of("/")).ok_or_else(|| {
            Error::Unsupported("neither /boot nor / is in the mount table".into())
        })?;
        let part = Path::new("/sys/dev/block").join(&dev).join("partition");
        let number = std::fs::read_to_string(&part)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "/boot is on device {dev}, which is not a partition"
                ))
            })?;
        Ok(LocalBoot {
            root: PathBuf::from("/"),
            boot_number: number,
        })
    }

    fn read(&self, p: &Path) -> Result<Option<Vec<u8>>> {
        match std::fs::read(p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, "read")(e)),
        }
    }
}

impl BootFiles for LocalBoot {
    fn esp_files(&mut self) -> Result<Vec<String>> {
        let esp = self.root.join("boot/efi");
        let mut out = Vec::new();
        let mut dirs = vec![esp.clone()];
        while let Some(d) = dirs.pop() {
            let rd = match std::fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&d, "read")(e)),
            };
            for e in rd {
                let e = e.map_err(Error::io(&d, "read"))?;
                let t = e.file_type().map_err(Error::io(&e.path(), "stat"))?;
                if t.is_dir() {
                    dirs.push(e.path());
                } else if t.is_file() {
                    if let Ok(rel) = e.path().strip_prefix(&esp) {
                        out.push(format!("/{}", rel.display()));
                    }
                }
            }
        }
        Ok(out)
    }

    fn esp_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.read(
            &self
                .root
                .join("boot/efi")
                .join(path.trim_start_matches('/')),
        )
    }

    fn boot_read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.read(&self.root.join(path.trim_start_matches('/')))
    }

    fn boot_device(&self) -> String {
        format!("(hd0,gpt{})", self.boot_number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_CFG: &str = "\
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
set default=\"0\"
menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-1' {
\tload_video
\tlinux\t/boot/vmlinuz-6.1.0-28-cloud-amd64 root=UUID=1 ro  console=tty0 console=ttyS0,115200
\tinitrd\t/boot/initrd.img-6.1.0-28-cloud-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-1' {
\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-28-cloud-amd64' $menuentry_id_option 'gnulinux-6.1.0-28-advanced-1' {
\t\tlinux\t/boot/vmlinuz-6.1.0-28-cloud-amd64 root=UUID=1 ro single
\t\tinitrd\t/boot/initrd.img-6.1.0-28-cloud-amd64
\t}
}
";

    #[test]
    fn debian_default_entry() {
        let e = cfg_entry(DEBIAN_CFG, &cfg_default(DEBIAN_CFG, &[])).expect("entry");
        assert_eq!(e.kernel, "/boot/vmlinuz-6.1.0-28-cloud-amd64");
        assert_eq!(e.initrd, "/boot/initrd.img-6.1.0-28-cloud-amd64");
        assert_eq!(
            e.cmdline,
            "root=UUID=1 ro console=tty0 console=ttyS0,115200"
        );
        let sub = cfg_entry(DEBIAN_CFG, "1>0").expect("submenu entry");
        assert!(sub.cmdline.ends_with(" single"));
        let by_id = cfg_entry(
            DEBIAN_CFG,
            "gnulinux-advanced-1>gnulinux-6.1.0-28-advanced-1",
        )
        .expect("by id");
        assert_eq!(by_id, sub);
        assert!(cfg_entry(DEBIAN_CFG, "5").is_err());
    }

    #[test]
    fn separate_boot_paths_gain_boot() {
        let cfg = "menuentry 'x' {\n linux /vmlinuz-6 ro\n initrd initrd.img-6\n}\n";
        let e = cfg_entry(cfg, "0").expect("entry");
        assert_eq!(e.kernel, "/boot/vmlinuz-6");
        assert_eq!(e.initrd, "/boot/initrd.img-6");
    }

    #[test]
    fn bls_expands_grubenv() {
        let env = parse_grubenv(
            "# GRUB Environment Block\nsaved_entry=abc-5.10\nkernelopts=root=/dev/vda3 ro\n####",
        );
        let e = bls_entry(
            "title x\nversion 5.10\nlinux /vmlinuz-5.10\ninitrd /initramfs-5.10.img $tuned_initrd\noptions $kernelopts $tuned_params\n",
            &env,
        )
        .expect("bls");
        assert_eq!(e.kernel, "/boot/vmlinuz-5.10");
        assert_eq!(e.initrd, "/boot/initramfs-5.10.img");
        assert_eq!(e.cmdline, "root=/dev/vda3 ro");
    }
}
