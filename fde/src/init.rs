//! `/init` of the minimal initrd ([`crate::initrd`]): process 1 before the root file system
//! exists. It mounts the pseudo file systems, loads the carried modules in order, waits for
//! the physical volume, runs both boot stages, mounts `/dev/mapper/rootfs` on `/sysroot` and
//! switches to it, running its `/sbin/init`. Any failure prints one line and powers the
//! machine off: a confidential VM that cannot prove its root must not come up with a shell.
//!
//! Kernel command line words it reads: `init=PATH` (default `/sbin/init`),
//! `cryptpilot.pv=DEVICE` (default: the device holding the volume group), `rootdelay=SECONDS`
//! (how long to wait for that device, default 10), `rootfstype=TYPE`, `ro`.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::kmod::{finit_module, ModuleInitFlags};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::boot::{self, Log, Stage};
use crate::{Error, Result};

/// Where the root file system is mounted before the switch.
const SYSROOT: &str = "/sysroot";
/// The configuration the initrd carries.
const CONFIG_DIR: &str = "/etc/cryptpilot";
/// The longest `rootdelay=` honoured (an hour).
const MAX_WAIT_SECS: u64 = 3600;
/// `finit_module` flag: the file is compressed and the kernel decompresses it.
const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// What `/init` takes from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    /// The program to run on the new root.
    pub init: String,
    /// The physical volume, when given.
    pub pv: Option<PathBuf>,
    /// How long to wait for the physical volume to appear.
    pub wait: Duration,
    /// The root file system's type, when given (otherwise each the kernel knows is tried).
    pub fstype: Option<String>,
    /// Mount the root read-only.
    pub read_only: bool,
}

impl Cmdline {
    /// Reads `/proc/cmdline`'s words; unknown words are the kernel's or the system's.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut c = Cmdline {
            init: "/sbin/init".into(),
            pv: None,
            wait: Duration::from_secs(10),
            fstype: None,
            read_only: false,
        };
        for w in text.split_whitespace() {
            match w.split_once('=') {
                Some(("init", v)) => c.init = v.into(),
                Some(("cryptpilot.pv", v)) => c.pv = Some(v.into()),
                Some(("rootdelay", v)) => {
                    if let Ok(s) = v.parse::<u64>() {
                        c.wait = Duration::from_secs(s.min(MAX_WAIT_SECS));
                    }
                }
                Some(("rootfstype", v)) => c.fstype = Some(v.into()),
                None if w == "ro" => c.read_only = true,
                None if w == "rw" => c.read_only = false,
                _ => {}
            }
        }
        c
    }
}

/// Boot steps on the console, each with the milliseconds since `/init` started.
#[derive(Debug)]
struct Console {
    start: Instant,
    verbose: bool,
}

impl Log for Console {
    fn step(&mut self, line: &str) {
        eprintln!(
            "cryptpilot-fde: [{:>6} ms] {line}",
            self.start.elapsed().as_millis()
        );
    }

    fn detail(&mut self, line: &str) {
        if self.verbose {
            self.step(&format!("  {line}"));
        }
    }
}

/// Runs as process 1 and never returns: the new root's init replaces this process, or the
/// machine is powered off after one line naming what failed.
pub fn run() -> ! {
    let mut log = Console {
        start: Instant::now(),
        verbose: false,
    };
    let e = match boot(&mut log) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    eprintln!("cryptpilot-fde: boot stopped: {msg}");
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    // Process 1 must not exit; if power-off is not allowed, stay here.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn boot(log: &mut Console) -> Result<std::convert::Infallible> {
    // The kernel starts init without a PATH; tools a step runs (mkfs.ext4 for an overlayfs
    // delta, an exec key provider given by name) are looked up here.
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    mount_pseudo()?;
    let cmdline = Cmdline::parse(&read_text(Path::new("/proc/cmdline"))?);
    let loaded = load_modules(log);
    log.step(&format!("{loaded} kernel modules loaded"));
    let config = crate::load(Path::new(CONFIG_DIR))?;
    log.verbose = config.global.boot.verbose;
    log.detail(&format!("command line: {cmdline:?}"));
    let pv = match cmdline.pv.clone() {
        Some(p) => wait_for(&cmdline, || {
            p.exists()
                .then(|| p.clone())
                .ok_or_else(|| Error::io(&p, "find")(std::io::ErrorKind::NotFound.into()))
        })?,
        None => wait_for(&cmdline, || crate::vg::find_pv(boot::VG))?,
    };
    log.step(&format!("physical volume {}", pv.display()));
    let root = boot::before_sysroot(
        &Stage {
            config: &config,
            pv,
        },
        log,
    )?;
    let sysroot = Path::new(SYSROOT);
    // With the overlayfs backend the root is the verity device itself: read-only.
    let read_only =
        cmdline.read_only || config.fde.rootfs.delta_backend == crate::DeltaBackend::Overlayfs;
    mount_root(&root, sysroot, &cmdline, read_only)?;
    boot::after_sysroot(&config, sysroot, log)?;
    log.step(&format!(
        "switching to {} on {}",
        cmdline.init,
        root.display()
    ));
    switch_root(sysroot, &cmdline.init)
}

fn read_text(p: &Path) -> Result<String> {
    std::fs::read_to_string(p).map_err(Error::io(p, "read"))
}

fn mount_pseudo() -> Result<()> {
    // /run moves into the booted system, which does not mount it again: it gets the mode
    // and flags systemd gives it (a tmpfs root is world-writable otherwise).
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (fs, at, flags, opts) in [
        ("proc", "/proc", nosuid_nodev | MsFlags::MS_NOEXEC, None),
        ("sysfs", "/sys", nosuid_nodev | MsFlags::MS_NOEXEC, None),
        ("devtmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755")),
        ("tmpfs", "/run", nosuid_nodev, Some("mode=0755")),
        ("tmpfs", "/tmp", nosuid_nodev, Some("mode=1777")),
    ] {
        std::fs::create_dir_all(at).map_err(Error::io(Path::new(at), "create"))?;
        match mount(Some(fs), at, Some(fs), flags, opts) {
            // Mounted already (a kernel that mounts devtmpfs itself).
            Ok(()) | Err(nix::Error::EBUSY) => {}
            Err(e) => return Err(Error::nix(Path::new(at), "mount")(e)),
        }
    }
    Ok(())
}

/// Loads the modules the initrd lists, in order; returns how many were loaded. A module that
/// does not load is reported and skipped: the step that needs it fails with its own error.
fn load_modules(log: &mut Console) -> usize {
    let Ok(list) = std::fs::read_to_string(crate::initrd::MODULE_LIST) else {
        return 0;
    };
    let mut n = 0;
    for path in list.lines().filter(|l| !l.is_empty()) {
        let flags = if [".xz", ".zst", ".gz"].iter().any(|x| path.ends_with(x)) {
            ModuleInitFlags::from_bits_retain(MODULE_INIT_COMPRESSED_FILE)
        } else {
            ModuleInitFlags::empty()
        };
        let r = std::fs::File::open(path)
            .and_then(|f| finit_module(f.as_fd(), c"", flags).map_err(std::io::Error::from));
        match r {
            Ok(()) => n += 1,
            Err(e) if e.raw_os_error() == Some(nix::Error::EEXIST as i32) => {}
            Err(e) => log.step(&format!("module {path} not loaded: {e}")),
        }
    }
    n
}

/// Retries `find` until it succeeds or the command line's wait is over (devices appear
/// while their drivers probe).
fn wait_for<T>(c: &Cmdline, mut find: impl FnMut() -> Result<T>) -> Result<T> {
    let until = Instant::now() + c.wait;
    loop {
        match find() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Mounts `dev` on `at` with the given type, or each block file system the kernel knows.
fn mount_root(dev: &Path, at: &Path, c: &Cmdline, read_only: bool) -> Result<()> {
    let types = match &c.fstype {
        Some(t) => vec![t.clone()],
        None => {
            // ext4 first: it is the usual root, and it also mounts ext2 and ext3.
            let mut t: Vec<String> = read_text(Path::new("/proc/filesystems"))?
                .lines()
                .filter(|l| !l.starts_with("nodev"))
                .map(|l| l.trim().to_owned())
                .collect();
            t.sort_by_key(|n| n != "ext4");
            t
        }
    };
    let flags = if read_only {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    let mut last = nix::Error::ENODEV;
    for t in &types {
        match mount(Some(dev), at, Some(t.as_str()), flags, None::<&str>) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(Error::io(dev, "mount")(std::io::Error::other(format!(
        "on {} as {}: {last}",
        at.display(),
        types.join(", ")
    ))))
}

/// Moves the pseudo file systems under `root`, makes it `/` and runs `init` there.
fn switch_root(root: &Path, init: &str) -> Result<std::convert::Infallible> {
    for d in ["/dev", "/proc", "/sys", "/run"] {
        let target = root.join(d.trim_start_matches('/'));
        if target.is_dir() {
            mount(
                Some(d),
                &target,
                None::<&str>,
                MsFlags::MS_MOVE,
                None::<&str>,
            )
            .map_err(Error::nix(Path::new(d), "move"))?;
        } else {
            let _ = umount2(d, MntFlags::MNT_DETACH);
        }
    }
    let _ = umount2("/tmp", MntFlags::MNT_DETACH);
    nix::unistd::chdir(root).map_err(Error::nix(Path::new(SYSROOT), "enter"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(Error::nix(Path::new(SYSROOT), "move to /"))?;
    nix::unistd::chroot(".").map_err(Error::nix(Path::new(SYSROOT), "chroot to"))?;
    nix::unistd::chdir("/").map_err(Error::nix(Path::new("/"), "enter"))?;
    let prog = CString::new(init)
        .map_err(|_| Error::io(Path::new(init), "run")(std::io::ErrorKind::InvalidInput.into()))?;
    let e = nix::unistd::execv(&prog, &[&prog]).unwrap_err();
    Err(Error::nix(Path::new(init), "run")(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_words_it_reads() {
        let c = Cmdline::parse("BOOT_IMAGE=/vmlinuz console=ttyS0 ro quiet rootdelay=3 cryptpilot.pv=/dev/vda2 init=/bin/sh rootfstype=ext4\n");
        assert_eq!(
            c,
            Cmdline {
                init: "/bin/sh".into(),
                pv: Some("/dev/vda2".into()),
                wait: Duration::from_secs(3),
                fstype: Some("ext4".into()),
                read_only: true,
            }
        );
        let d = Cmdline::parse("rootdelay=x rw");
        assert_eq!(d.init, "/sbin/init");
        assert_eq!(d.wait, Duration::from_secs(10));
        assert!(!d.read_only && d.pv.is_none() && d.fstype.is_none());
    }
}
