//! Helpers for running our binary and the real cryptsetup on image files.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Asserts a refusal as users must see it: exit `code`, one line on standard error starting
/// with `cryptpilot: ` and holding `needle`, no panic.
#[track_caller]
pub fn fails_cleanly(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "stderr: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    assert!(r.stderr.starts_with("cryptpilot: "), "{}", r.stderr);
    assert!(
        r.stderr.contains(needle),
        "wanted '{needle}' in: {}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

/// `cryptpilot crypt -c DIR ARGS...` with no standard input.
#[allow(dead_code)]
pub fn crypt(dir: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.arg("crypt").arg("-c").arg(dir).args(args);
    run_cmd(c)
}

/// Runs any command with no standard input.
#[allow(dead_code)]
pub fn run_cmd(cmd: Command) -> Run {
    run(cmd, None)
}

fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    use std::io::Write;
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `cryptpilot luks ARGS`.
pub fn ours(args: &[&str]) -> Run {
    ours_in(args, None)
}

pub fn ours_in(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.arg("luks").args(args);
    run(c, stdin)
}

/// Runs `cryptpilot verity ARGS`.
#[allow(dead_code)]
pub fn ours_verity(args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cryptpilot"));
    c.arg("verity").args(args);
    run(c, None)
}

/// Where Debian installs the real tool `name`; its absence fails the test.
pub fn tool_path(name: &str) -> String {
    [
        format!("/usr/sbin/{name}"),
        format!("/sbin/{name}"),
        format!("/usr/bin/{name}"),
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or_else(|| panic!("{name} not found: install Debian's cryptsetup-bin (.ci/run does)"))
}

fn tool(name: &str, args: &[&str]) -> Run {
    let mut c = Command::new(tool_path(name));
    c.args(args);
    run(c, None)
}

/// The real cryptsetup. Its absence fails the test: interop is not optional.
pub fn cryptsetup(args: &[&str]) -> Run {
    tool("cryptsetup", args)
}

/// The real veritysetup.
#[allow(dead_code)]
pub fn veritysetup(args: &[&str]) -> Run {
    tool("veritysetup", args)
}

#[track_caller]
pub fn ok(r: Run) -> Run {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    r
}

#[derive(Debug)]
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Default for Dir {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A sparse image of `mib` MiB.
    pub fn image(&self, name: &str, mib: u64) -> String {
        let p = self.path(name);
        std::fs::File::create(&p)
            .and_then(|f| f.set_len(mib << 20))
            .expect("image");
        p.to_string_lossy().into_owned()
    }

    /// A key file holding `content`.
    pub fn key(&self, name: &str, content: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).expect("key file");
        p.to_string_lossy().into_owned()
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
}

/// The volume key as cryptsetup sees it.
pub fn cs_volume_key(d: &Dir, image: &str, keyfile: &str) -> Vec<u8> {
    let out = d.path(&format!("cs-vk-{}", rand_suffix()));
    ok(cryptsetup(&[
        "luksDump",
        "-q",
        "--dump-volume-key",
        "--volume-key-file",
        out.to_str().expect("utf8"),
        "--key-file",
        keyfile,
        image,
    ]));
    std::fs::read(out).expect("volume key file")
}

/// The volume key as we see it.
pub fn our_volume_key(d: &Dir, image: &str, keyfile: &str) -> Vec<u8> {
    let out = d.path(&format!("our-vk-{}", rand_suffix()));
    ok(ours(&[
        "dump",
        "-q",
        "--dump-volume-key",
        "--volume-key-file",
        out.to_str().expect("utf8"),
        "--key-file",
        keyfile,
        image,
    ]));
    std::fs::read(out).expect("volume key file")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The whole contents of a file, to prove an operation changed nothing.
pub fn contents(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

/// Applies `edit` to the JSON area (after the 4096-byte binary header) of both copies of a
/// 16 KiB-metadata header, then re-seals each copy's SHA-256 checksum.
pub fn edit_area(img: &str, edit: &dyn Fn(&mut [u8])) {
    let mut bytes = contents(img);
    for off in [0, 16384] {
        let copy = &mut bytes[off..off + 16384];
        edit(&mut copy[4096..]);
        copy[448..512].fill(0);
        let sum = luks2::HashAlg::Sha256.digest(&[&copy[..]]);
        copy[448..480].copy_from_slice(&sum);
    }
    std::fs::write(img, bytes).expect("write");
}

/// Rewrites the JSON document of both copies with `edit` applied.
pub fn edit_json(img: &str, edit: &dyn Fn(&mut serde_json::Value)) {
    edit_area(img, &|area| {
        let end = area.iter().position(|&c| c == 0).expect("nul");
        let mut v: serde_json::Value = serde_json::from_slice(&area[..end]).expect("json");
        edit(&mut v);
        let text = serde_json::to_vec(&v).expect("json");
        area.fill(0);
        area[..text.len()].copy_from_slice(&text);
    });
}

/// Cheap KDF costs for test volumes (never for real keys).
pub const FAST: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

/// A 24 MiB image formatted by us with `key`.
pub fn formatted(d: &Dir, name: &str, key: &str) -> String {
    let img = d.image(name, 24);
    ok(ours(
        &[&["format", "-q", "--key-file", key][..], FAST, &[&img]].concat(),
    ));
    img
}

/// An image of `mib` MiB that the real cryptsetup formatted as LUKS2 with `key`.
pub fn cs_formatted(d: &Dir, name: &str, mib: u64, key: &str) -> String {
    let img = d.image(name, mib);
    ok(cryptsetup(
        &[
            &["luksFormat", "-q", "--type", "luks2", "--key-file", key][..],
            FAST,
            &[&img],
        ]
        .concat(),
    ));
    img
}
