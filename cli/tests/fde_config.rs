//! `cryptpilot fde config check`: the configuration loaded as the boot loads it, then each
//! volume's key fetched from its provider (exec providers here: a program that prints a key,
//! one that fails, each leaving a mark when it runs).

mod common;

use std::process::Command;

use common::{fails_cleanly, ok, run_cmd, Dir, Run};

const METADATA: &str =
    "type = 1\nroot_hash = \"9b84e587cb4fe5dffd096dcea37acc04dd766fdcd4062e6b4c7060b4f4e735c1\"\n";

fn exec(d: &Dir, name: &str, ok: bool) -> String {
    let mark = d.p(&format!("{name}.ran"));
    let body = if ok {
        format!("touch '{mark}'; printf key-{name}")
    } else {
        format!("touch '{mark}'; echo {name} refused >&2; exit 3")
    };
    format!(
        "command = \"sh\"\nargs = [\"-c\", \"{}\"]\n",
        body.replace('"', "\\\"")
    )
}

fn config(d: &Dir, rootfs: Option<bool>, delta_ok: bool) -> String {
    let c = d.p("conf");
    std::fs::create_dir_all(&c).expect("mkdir");
    let mut fde = String::from("[rootfs]\n");
    if let Some(r) = rootfs {
        fde.push_str(&format!("[rootfs.encrypt.exec]\n{}", exec(d, "rootfs", r)));
    }
    fde.push_str(&format!(
        "[delta.encrypt.exec]\n{}",
        exec(d, "delta", delta_ok)
    ));
    std::fs::write(format!("{c}/fde.toml"), fde).expect("fde.toml");
    std::fs::write(format!("{c}/metadata.toml"), METADATA).expect("metadata.toml");
    c
}

fn check(conf: &str, extra: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.args(["fde", "config", "check", "-c", conf]).args(extra);
    run_cmd(c)
}

fn ran(d: &Dir, name: &str) -> bool {
    d.path(&format!("{name}.ran")).exists()
}

#[test]
fn keys_are_fetched_one_line_per_volume() {
    let d = Dir::new();
    let c = config(&d, Some(true), true);
    let r = ok(check(&c, &[]));
    assert_eq!(
        r.stdout,
        "rootfs: exec provider: key fetched\ndelta: exec provider: key fetched\nFDE config check passed\n"
    );
    assert!(!r.stdout.contains("key-"), "no key is printed");
    assert!(ran(&d, "rootfs") && ran(&d, "delta"));
}

#[test]
fn skip_check_passphrase_fetches_nothing() {
    let d = Dir::new();
    let c = config(&d, Some(true), true);
    let r = ok(check(&c, &["--skip-check-passphrase"]));
    assert!(
        r.stdout
            .contains("rootfs: exec provider: settings checked; key not fetched"),
        "{}",
        r.stdout
    );
    assert!(!ran(&d, "rootfs") && !ran(&d, "delta"));
}

#[test]
fn verity_only_rootfs_is_said() {
    let d = Dir::new();
    let c = config(&d, None, true);
    let r = ok(check(&c, &[]));
    assert!(
        r.stdout
            .starts_with("rootfs: not encrypted (dm-verity only)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_failing_provider_stops_unless_keep_checking() {
    let d = Dir::new();
    let c = config(&d, Some(false), true);
    let r = check(&c, &[]);
    fails_cleanly(&r, 1, "rootfs: the exec provider gives no key");
    assert!(!ran(&d, "delta"), "stops at the first failure");
    let d = Dir::new();
    let c = config(&d, Some(false), false);
    let r = check(&c, &["--keep-checking"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 2, "{}", r.stderr);
    assert!(ran(&d, "delta"));
    assert!(!r.stdout.contains("passed"), "{}", r.stdout);
}

#[test]
fn a_bad_configuration_is_one_line() {
    let d = Dir::new();
    let c = config(&d, Some(true), true);
    std::fs::write(format!("{c}/fde.toml"), "[rootfs]\nbogus = 1\n").expect("write");
    fails_cleanly(&check(&c, &[]), 1, "fde.toml");
    assert!(!ran(&d, "rootfs"));
}

/// The existing tool's command names reach the same verbs: `cryptpilot-convert` is
/// `cryptpilot fde convert`, `cryptpilot-fde-host` is `cryptpilot fde`.
#[test]
fn multi_call_names() {
    let d = Dir::new();
    for (name, args, needle) in [
        (
            "cryptpilot-convert",
            vec!["--help"],
            "--rootfs-no-encryption",
        ),
        (
            "cryptpilot-fde-host",
            vec!["show-reference-value", "--help"],
            "--hash-algo",
        ),
        (
            "cryptpilot-fde-host",
            vec!["config", "check", "--help"],
            "--skip-check-passphrase",
        ),
    ] {
        let link = d.path(name);
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cryptpilot"), &link).expect("link");
        }
        let mut c = Command::new(&link);
        c.args(&args);
        let r = ok(run_cmd(c));
        assert!(r.stdout.contains(needle), "{name} {args:?}: {}", r.stdout);
    }
    // The existing tool's spelling of the boot partition size.
    let mut c = Command::new(d.path("cryptpilot-convert"));
    c.args([
        "--in",
        "/nonexistent.img",
        "--out",
        &d.p("o.img"),
        "-c",
        "/nonexistent",
        "--rootfs-no-encryption",
        "--boot_part_size",
        "1G",
    ]);
    let r = run_cmd(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("nonexistent"), "{}", r.stderr);
}
