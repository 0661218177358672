//! `cryptpilot fde initrd`: the archive read back by the real cpio (GNU cpio, through gzip),
//! the modules in dependency order, a reproducible result, and the refusals (a dynamically
//! linked /init, a bad configuration, an existing output) leaving no file behind.

mod common;

use std::process::Command;

use common::{fails_cleanly, ok, run_cmd, Dir, Run};

const FDE: &str = "[rootfs]\ndelta_location = \"disk-persist\"\n\n[delta.encrypt.exec]\n\
                   command = \"/bin/key\"\n";
const METADATA: &str = "type = 1\nroot_hash = \
                        \"9b84e587cb4fe5dffd096dcea37acc04dd766fdcd4062e6b4c7060b4f4e735c1\"\n";

/// A configuration directory, a module tree and an ELF file without a program interpreter.
fn inputs(d: &Dir) {
    std::fs::create_dir_all(d.path("cfg")).expect("test setup");
    std::fs::write(d.path("cfg/fde.toml"), FDE).expect("test setup");
    std::fs::write(d.path("cfg/metadata.toml"), METADATA).expect("test setup");
    let m = d.path("lib/modules/6.1.0-test");
    std::fs::create_dir_all(m.join("kernel/drivers/md")).expect("test setup");
    std::fs::write(
        m.join("modules.dep"),
        "kernel/drivers/md/dm-crypt.ko: kernel/drivers/md/dm-mod.ko\n\
         kernel/drivers/md/dm-mod.ko:\n\
         kernel/drivers/md/raid456.ko: kernel/drivers/md/dm-mod.ko\n",
    )
    .expect("test setup");
    std::fs::write(
        m.join("modules.builtin"),
        "kernel/drivers/block/virtio_blk.ko\n",
    )
    .expect("test setup");
    std::fs::write(m.join("kernel/drivers/md/dm-crypt.ko"), b"crypt module").expect("test setup");
    std::fs::write(m.join("kernel/drivers/md/dm-mod.ko"), b"dm module").expect("test setup");
    std::fs::write(m.join("kernel/drivers/md/raid456.ko"), b"not wanted").expect("test setup");
    let mut elf = vec![0u8; 0x40 + 56];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    elf[0x40] = 1; // PT_LOAD
    std::fs::write(d.path("init"), elf).expect("test setup");
    std::fs::write(d.path("key-program"), b"#!/bin/sh\necho -n key\n").expect("test setup");
}

fn initrd(d: &Dir, extra: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args(["fde", "initrd", "-c"]).arg(d.path("cfg"));
    c.arg("--kernel-modules")
        .arg(d.path("lib/modules/6.1.0-test"));
    c.arg("--include")
        .arg(format!("{}:/bin/key", d.p("key-program")));
    c.args(extra);
    run_cmd(c)
}

/// `gzip -dc FILE | cpio ARGS` in `dir`.
fn cpio(file: &str, args: &str, dir: &std::path::Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc '{file}' | cpio --quiet {args}"))
        .current_dir(dir)
        .output()
        .expect("gzip and cpio (Debian's cpio package)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_real_cpio_reads_what_it_writes() {
    let d = Dir::new();
    inputs(&d);
    let out = d.p("initrd.img");
    let r = ok(initrd(&d, &["--init", &d.p("init"), "--out", &out]));
    assert!(
        r.stdout.contains("2 kernel modules of 6.1.0-test"),
        "{}",
        r.stdout
    );
    // The default set names modules this tree does not have: said once, not an error.
    assert!(
        r.stderr.contains("not in this kernel") && r.stderr.contains("ext4"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("virtio_blk"),
        "built in, not missing: {}",
        r.stderr
    );

    let list = cpio(&out, "-it", d.dir.path());
    let names: Vec<&str> = list.lines().collect();
    for want in [
        "init",
        "dev/console",
        "etc/cryptpilot/fde.toml",
        "etc/cryptpilot/metadata.toml",
        "etc/cryptpilot/modules",
        "lib/modules/6.1.0-test/kernel/drivers/md/dm-mod.ko",
        "lib/modules/6.1.0-test/kernel/drivers/md/dm-crypt.ko",
        "bin/key",
        "sysroot",
        "proc",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(!list.contains("raid456"), "an unwanted module was carried");
    assert!(!list.contains("global.toml"), "no global.toml was given");

    let long = cpio(&out, "-itv", d.dir.path());
    let console = long
        .lines()
        .find(|l| l.ends_with("dev/console"))
        .expect("test setup");
    assert!(console.starts_with("crw-------"), "{console}");
    assert!(
        console.contains("5,") && console.contains(" 1 "),
        "{console}"
    );
    let init = long
        .lines()
        .find(|l| l.ends_with(" init"))
        .expect("test setup");
    assert!(init.starts_with("-rwxr-xr-x"), "{init}");

    let x = d.path("x");
    std::fs::create_dir(&x).expect("test setup");
    cpio(&out, "-id", &x);
    assert_eq!(
        std::fs::read_to_string(x.join("etc/cryptpilot/modules")).expect("test setup"),
        "/lib/modules/6.1.0-test/kernel/drivers/md/dm-mod.ko\n\
         /lib/modules/6.1.0-test/kernel/drivers/md/dm-crypt.ko\n"
    );
    assert_eq!(
        std::fs::read_to_string(x.join("etc/cryptpilot/fde.toml")).expect("test setup"),
        FDE
    );
    assert_eq!(
        std::fs::read(x.join("init")).expect("test setup"),
        std::fs::read(d.path("init")).expect("test setup")
    );
    assert_eq!(
        std::fs::read(x.join("lib/modules/6.1.0-test/kernel/drivers/md/dm-crypt.ko"))
            .expect("test setup"),
        b"crypt module"
    );

    // The same inputs give the same bytes (the initrd is measured).
    let again = d.p("again.img");
    ok(initrd(&d, &["--init", &d.p("init"), "--out", &again]));
    assert_eq!(
        std::fs::read(&out).expect("test setup"),
        std::fs::read(&again).expect("test setup")
    );
}

fn no_partial(d: &Dir) {
    let left: Vec<String> = std::fs::read_dir(d.dir.path())
        .expect("test setup")
        .map(|e| {
            e.expect("test setup")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with("initrd"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn refusals_leave_nothing_behind() {
    let d = Dir::new();
    inputs(&d);
    let out = d.p("initrd.img");

    // This test build of the binary is linked dynamically: it cannot be /init.
    let me = std::fs::read(env!("CARGO_BIN_EXE_cryptpilot")).expect("test setup");
    let dynamic = me.windows(11).any(|w| w == b"ld-linux-x8");
    if dynamic {
        fails_cleanly(&initrd(&d, &["--out", &out]), 1, "dynamically linked");
        no_partial(&d);
    }
    // A shell script is no ELF file.
    let r = initrd(&d, &["--init", &d.p("key-program"), "--out", &out]);
    fails_cleanly(&r, 1, "not a 64-bit little-endian ELF");
    no_partial(&d);

    // The configuration is checked when the initrd is made, not at boot.
    std::fs::write(
        d.path("cfg/fde.toml"),
        "[rootfs]\ndelta_location = \"disk\"\n",
    )
    .expect("test setup");
    let r = initrd(&d, &["--init", &d.p("init"), "--out", &out]);
    fails_cleanly(&r, 1, "delta");
    no_partial(&d);
    std::fs::write(d.path("cfg/fde.toml"), FDE).expect("test setup");

    // A missing included file names it.
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args(["fde", "initrd", "-c"]).arg(d.path("cfg"));
    c.args([
        "--init",
        &d.p("init"),
        "--include",
        "/nonexistent/prog:/bin/prog",
        "--out",
        &out,
    ]);
    fails_cleanly(&run_cmd(c), 1, "/nonexistent/prog");
    no_partial(&d);

    // An existing output is kept unless --force.
    std::fs::write(&out, b"keep me").expect("test setup");
    let r = initrd(&d, &["--init", &d.p("init"), "--out", &out]);
    fails_cleanly(&r, 1, "--force");
    assert_eq!(std::fs::read(&out).expect("test setup"), b"keep me");
    ok(initrd(
        &d,
        &["--init", &d.p("init"), "--out", &out, "--force"],
    ));
    assert_ne!(std::fs::read(&out).expect("test setup"), b"keep me");
}
