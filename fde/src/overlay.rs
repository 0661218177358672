//! The overlayfs backend's second half, after the verity-checked root is mounted read-only
//! on the sysroot: the delta's ext4 (or a tmpfs for a memory delta) is mounted beside it,
//! and an overlay with its upper and work directories there is mounted over the sysroot.
//! Container runtimes keep their own overlay stores, which cannot live on an overlay: their
//! directories are bound from the delta itself (copied from the root the first time), as
//! the existing tool does.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::boot::Log;
use crate::{Error, Result};

/// Where the delta's file system is mounted (in the initrd, out of the booted system's view).
const DELTA_DIR: &str = "/delta_volume";
/// Where a memory delta's tmpfs is mounted.
const RAM_DIR: &str = "/ram_overlay";
/// Where the read-only root stays visible while the overlay covers the sysroot.
const LOWER_COPY: &str = "/sysroot_bak";
/// Directories bound from the delta rather than overlaid.
const BIND_DIRS: [&str; 3] = [
    "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots",
    "var/lib/containers",
    "var/lib/docker",
];

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(Error::io(p, "create"))
}

/// Mounts the writable overlay over `sysroot`: its upper layer on the delta (the
/// `/dev/mapper/delta` ext4), or on a tmpfs when `ram`.
///
/// # Errors
/// [`Error::Io`] when a directory cannot be made or a mount fails. A container directory
/// that cannot be bound is reported and skipped.
pub fn mount_overlay(sysroot: &Path, ram: bool, log: &mut dyn Log) -> Result<()> {
    let dir = if ram {
        let d = Path::new(RAM_DIR);
        mkdir(d)?;
        mount(
            Some("tmpfs"),
            d,
            Some("tmpfs"),
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        )
        .map_err(Error::nix(d, "mount"))?;
        d.to_path_buf()
    } else {
        let d = Path::new(DELTA_DIR);
        mkdir(d)?;
        let dev = activate::mapper_path("delta");
        mount(
            Some(&dev),
            d,
            Some("ext4"),
            MsFlags::MS_NOSUID,
            None::<&str>,
        )
        .map_err(Error::nix(d, "mount"))?;
        // A delta extended over a grown disk: its file system follows.
        crate::ext4::grow_logged(d, &dev, "delta", log);
        d.join("overlay")
    };
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    mkdir(&upper)?;
    mkdir(&work)?;
    let lower = Path::new(LOWER_COPY);
    mkdir(lower)?;
    mount(
        Some(sysroot),
        lower,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(Error::nix(lower, "mount"))?;
    mount(
        None::<&str>,
        lower,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(Error::nix(lower, "mount"))?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        sysroot.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        sysroot,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(Error::nix(sysroot, "mount"))?;
    log.step(&format!(
        "{} is an overlay: writes go to {}",
        sysroot.display(),
        if ram {
            "memory (tmpfs)"
        } else {
            "the encrypted delta"
        }
    ));
    for d in BIND_DIRS {
        if let Err(e) = bind(sysroot, lower, &dir.join("mount-binds").join(d), d) {
            log.step(&format!("/{d} not bound from the delta: {e}"));
        }
    }
    Ok(())
}

/// Binds `origin` (made from the lower layer's copy the first time) on the sysroot's `rel`.
fn bind(sysroot: &Path, lower: &Path, origin: &Path, rel: &str) -> Result<()> {
    let target = sysroot.join(rel);
    mkdir(&target)?;
    if !origin.is_dir() {
        let tmp = PathBuf::from(format!("{}.partial", origin.display()));
        let _ = std::fs::remove_dir_all(&tmp);
        mkdir(&tmp)?;
        let source = lower.join(rel);
        if source.is_dir() {
            copy_tree(&source, &tmp)?;
        }
        std::fs::rename(&tmp, origin).map_err(Error::io(origin, "create"))?;
    }
    mount(
        Some(origin),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(Error::nix(&target, "mount"))
}

/// Copies the tree under `from` into the existing directory `to`: directories, regular
/// files (hard links kept as links), symbolic links and device nodes and fifos (overlay
/// whiteouts are 0/0 character devices) with their modes and owners. Extended attributes
/// are not copied.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    copy_into(from, to, &mut std::collections::HashMap::new())
}

fn copy_into(
    from: &Path,
    to: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let entries = std::fs::read_dir(from).map_err(Error::io(from, "read"))?;
    for e in entries {
        let e = e.map_err(Error::io(from, "read"))?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let meta = std::fs::symlink_metadata(&src).map_err(Error::io(&src, "read"))?;
        let t = meta.file_type();
        if t.is_symlink() {
            let link = std::fs::read_link(&src).map_err(Error::io(&src, "read"))?;
            std::os::unix::fs::symlink(&link, &dst).map_err(Error::io(&dst, "create"))?;
        } else if t.is_dir() {
            mkdir(&dst)?;
            copy_into(&src, &dst, links)?;
        } else if meta.nlink() > 1 && links.contains_key(&(meta.dev(), meta.ino())) {
            let first = &links[&(meta.dev(), meta.ino())];
            std::fs::hard_link(first, &dst).map_err(Error::io(&dst, "link"))?;
            continue;
        } else if t.is_file() {
            std::fs::copy(&src, &dst).map_err(Error::io(&dst, "create"))?;
        } else if t.is_char_device() || t.is_block_device() || t.is_fifo() {
            let kind = if t.is_char_device() {
                nix::sys::stat::SFlag::S_IFCHR
            } else if t.is_block_device() {
                nix::sys::stat::SFlag::S_IFBLK
            } else {
                nix::sys::stat::SFlag::S_IFIFO
            };
            let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
            nix::sys::stat::mknod(&dst, kind, mode, meta.rdev())
                .map_err(Error::nix(&dst, "create"))?;
        } else {
            continue;
        }
        if meta.nlink() > 1 && !t.is_dir() {
            links.insert((meta.dev(), meta.ino()), dst.clone());
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))
            .map_err(Error::io(&dst, "chown"))?;
        if !t.is_symlink() {
            std::fs::set_permissions(&dst, meta.permissions()).map_err(Error::io(&dst, "chmod"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_are_copied_with_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("tempdir");
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(a.join("x/y")).expect("setup");
        std::fs::write(a.join("x/y/f"), b"data").expect("setup");
        std::fs::set_permissions(a.join("x/y/f"), std::fs::Permissions::from_mode(0o640))
            .expect("setup");
        std::os::unix::fs::symlink("x/y/f", a.join("link")).expect("setup");
        std::fs::hard_link(a.join("x/y/f"), a.join("hard")).expect("setup");
        nix::unistd::mkfifo(
            &a.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("setup");
        std::fs::create_dir(&b).expect("setup");
        copy_tree(&a, &b).expect("copy");
        assert_eq!(std::fs::read(b.join("x/y/f")).expect("copied"), b"data");
        let mode = std::fs::metadata(b.join("x/y/f"))
            .expect("copied")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(b.join("link")).expect("link"),
            Path::new("x/y/f")
        );
    }
}
