//! The drop-in's questions and passphrase prompts on a terminal: each case runs the real
//! cryptsetup and ours under its name on a pseudo-terminal (their controlling terminal, as a
//! user's), answers each prompt as it appears (a passphrase once the program has turned echo
//! off), and compares the whole transcript, the exit code and whether the terminal echoes
//! again at the end (also after ^C, ^D or `--timeout`); where the real tool changed no byte
//! of an image (a "no", a wrong passphrase, a refusal), ours must change none. Answers echoed
//! after their prompts are taken out of both transcripts.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tool_path;

const FAST: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

/// Runs `program args` in `dir` on a new pseudo-terminal, answering each prompt (output
/// ending in ": ") with the next of `answers` (`^C` and `^D` are sent as those keys).
/// Returns the transcript, with a note when the terminal's echo was left off, and the exit
/// code.
fn on_terminal(program: &Path, args: &[&str], dir: &Path, answers: &[&str]) -> (String, i32) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = File::from(pty.slave);
    let mut master = File::from(pty.master);
    // setsid --ctty makes the terminal the controlling one, as a login's: programs that
    // open /dev/tty find it.
    let mut child = Command::new("setsid")
        .arg("--ctty")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("spawn setsid");
    let (tx, rx) = mpsc::channel();
    let mut reader = master.try_clone().expect("dup");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the last holder of the terminal's other side has gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let mut answers = answers.iter();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(chunk) => {
                out.extend_from_slice(&chunk);
                if out.ends_with(b": ") {
                    if let Some(a) = answers.next() {
                        // A passphrase prompt: wait until the program has turned echo off
                        // (cryptsetup flushes input as it does, so an earlier answer would
                        // be lost). A yes/no question keeps echo on.
                        if !out.ends_with(b"capital letters): ") {
                            echo_off(&master);
                        }
                        // ^C and ^D are keys, not lines.
                        let keys = match *a {
                            "^C" => "\x03".to_owned(),
                            "^D" => "\x04".to_owned(),
                            line => format!("{line}\n"),
                        };
                        master.write_all(keys.as_bytes()).expect("answer");
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "{} {args:?} hung; so far: {}",
                    program.display(),
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    let mut text = String::from_utf8_lossy(&out).replace("\r\n", "\n");
    // A program must give the terminal back as it found it, also after ^C.
    if !echoes(&master) {
        text.push_str("\n[echo left off]\n");
    }
    (text, code)
}

/// Whether files `a` and `b` hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (Ok(mut a), Ok(mut b)) = (File::open(a), File::open(b)) else {
        return false;
    };
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut a, &mut x);
        if n != read_full(&mut b, &mut y) || x[..n] != y[..n] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how many bytes were read.
fn read_full(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read: {e}"),
        }
    }
    n
}

/// Whether the terminal echoes what is typed.
fn echoes(master: &File) -> bool {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    tcgetattr(master).is_ok_and(|t| t.local_flags.contains(LocalFlags::ECHO))
}

/// Waits (up to 10 s) until the terminal's echo is off.
fn echo_off(master: &File) {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    for _ in 0..500 {
        match tcgetattr(master) {
            Ok(t) if !t.local_flags.contains(LocalFlags::ECHO) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return,
        }
    }
}

/// The transcript with each answer's echo after its prompt taken out: "prompt: ANSWER\n"
/// reads as "prompt: \n", as a passphrase prompt shows when echo was off.
fn strip_echoes(text: &str, answers: &[&str]) -> String {
    answers.iter().fold(text.to_owned(), |t, a| {
        t.replace(&format!(": {a}\n"), ": \n")
    })
}

/// One case: `args` for cryptsetup, or for the tool its first word names (`integritysetup`).
fn case(name: &str, args: &[&str], answers: &[&str], base: &Path, links: &Path) -> Option<String> {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let (tool, args) = match args.split_first() {
        Some((&"integritysetup", rest)) => ("integritysetup", rest),
        _ => ("cryptsetup", args),
    };
    let mut results = Vec::new();
    for (side, program) in [
        ("real", Path::new(&tool_path(tool)).to_owned()),
        ("ours", links.join(tool)),
    ] {
        let dir = tmp.path().join(side);
        std::fs::create_dir(&dir).expect("mkdir");
        for e in std::fs::read_dir(base).expect("base") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
        }
        let (text, code) = on_terminal(&program, args, &dir, answers);
        results.push((strip_echoes(&text, answers), code));
    }
    // Where the real tool changed no byte (a "no", a wrong passphrase), ours changes none.
    let mut changed = Vec::new();
    for e in std::fs::read_dir(base).expect("base") {
        let name = e.expect("entry").file_name();
        let same_as_base =
            |side: &str| same_bytes(&base.join(&name), &tmp.path().join(side).join(&name));
        if same_as_base("real") && !same_as_base("ours") {
            changed.push(name.to_string_lossy().into_owned());
        }
    }
    if !changed.is_empty() {
        return Some(format!(
            "{name}: {tool} {}: ours changed {} where the real tool changed nothing",
            args.join(" "),
            changed.join(", ")
        ));
    }
    let (real, ours) = (&results[0], &results[1]);
    (real != ours).then(|| {
        format!(
            "{name}: {tool} {}\n--- real (exit {})\n{}--- ours (exit {})\n{}",
            args.join(" "),
            real.1,
            real.0,
            ours.1,
            ours.0
        )
    })
}

#[test]
fn questions_and_prompts_read_as_cryptsetups() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let links = tmp.path().join("bin");
    std::fs::create_dir(&links).expect("mkdir");
    for tool in ["cryptsetup", "integritysetup"] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cryptpilot"), links.join(tool))
            .expect("link");
    }
    let base = tmp.path().join("base");
    std::fs::create_dir(&base).expect("mkdir");
    for name in ["blank.img", "img"] {
        File::create(base.join(name))
            .and_then(|f| f.set_len(32 << 20))
            .expect("image");
    }
    std::fs::write(base.join("key"), b"pw1").expect("key");
    // 600 characters, over cryptsetup's 512-byte terminal passphrase, and the same with its
    // last one changed.
    let long = "0123456789".repeat(60);
    let long2 = format!("{}X", &long[..599]);
    let (long, long2) = (long.as_str(), long2.as_str());
    std::fs::write(base.join("long-key"), &long.as_bytes()[..512]).expect("key");
    std::fs::copy(base.join("blank.img"), base.join("long.img")).expect("copy");
    let mut format_long = vec!["luksFormat", "-q"];
    format_long.extend(FAST);
    format_long.extend(["long.img", "long-key"]);
    let st = Command::new(tool_path("cryptsetup"))
        .args(&format_long)
        .current_dir(&base)
        .status()
        .expect("format");
    assert!(st.success());
    let mut format = vec!["luksFormat", "-q"];
    format.extend(FAST);
    format.extend(["img", "key"]);
    let st = Command::new(tool_path("cryptsetup"))
        .args(&format)
        .current_dir(&base)
        .status()
        .expect("format");
    assert!(st.success());
    let st = Command::new(tool_path("cryptsetup"))
        .args(["luksHeaderBackup", "img", "--header-backup-file", "backup"])
        .current_dir(&base)
        .status()
        .expect("backup");
    assert!(st.success());
    let with_fast = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        head.iter().chain(FAST).chain(tail).copied().collect()
    };
    let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "format",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", "pw1", "pw1"],
        ),
        ("format, no", vec!["luksFormat", "blank.img"], vec!["no"]),
        (
            "format, empty passphrase",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", "", ""],
        ),
        (
            "empty passphrase",
            vec!["open", "--test-passphrase", "img"],
            vec!["", "", ""],
        ),
        (
            "--timeout 1",
            vec!["open", "--test-passphrase", "-t", "1", "img"],
            vec![],
        ),
        (
            "format, --timeout 1",
            with_fast(&["luksFormat", "--timeout", "1"], &["blank.img"]),
            vec!["YES", "pw1"],
        ),
        (
            "end of input",
            vec!["open", "--test-passphrase", "img"],
            vec!["^D"],
        ),
        (
            "interrupted",
            vec!["open", "--test-passphrase", "img"],
            vec!["^C"],
        ),
        (
            "interrupted question",
            vec!["luksFormat", "blank.img"],
            vec!["^C"],
        ),
        (
            "question, end of input",
            vec!["luksFormat", "blank.img"],
            vec!["^D"],
        ),
        (
            "interrupted verification",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", "pw1", "^C"],
        ),
        // long.img's passphrase is the first 512 bytes of `long`: both cut a typed line there.
        (
            "open, long passphrase",
            vec!["open", "--test-passphrase", "long.img"],
            vec![long],
        ),
        (
            "format, long passphrase",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", long, long],
        ),
        (
            "format, long passphrases differ past 512",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", long, long2],
        ),
        // integritysetup asks before any format (yes needs device-mapper for the real one).
        (
            "integritysetup format, no",
            vec!["integritysetup", "format", "--no-wipe", "blank.img"],
            vec!["no"],
        ),
        (
            "integritysetup format over LUKS, no",
            vec!["integritysetup", "format", "img"],
            vec!["NO"],
        ),
        (
            "format, typo",
            with_fast(&["luksFormat"], &["blank.img"]),
            vec!["YES", "pw1", "pw2"],
        ),
        (
            "format over LUKS",
            with_fast(&["luksFormat"], &["img"]),
            vec!["no"],
        ),
        (
            "three tries",
            vec!["open", "--test-passphrase", "img"],
            vec!["wrong1", "wrong2", "wrong3"],
        ),
        (
            "second try",
            vec!["open", "--test-passphrase", "-v", "img"],
            vec!["wrong1", "pw1"],
        ),
        (
            "--tries 2",
            vec!["open", "--test-passphrase", "-T", "2", "img"],
            vec!["wrong1", "wrong2"],
        ),
        (
            "--tries 0 (one try)",
            vec!["open", "--test-passphrase", "-T", "0", "img"],
            vec!["wrong1"],
        ),
        (
            "add key",
            with_fast(&["luksAddKey"], &["img"]),
            vec!["pw1", "pw2", "pw2"],
        ),
        (
            "change key",
            with_fast(&["luksChangeKey"], &["img"]),
            vec!["pw1", "pw2", "pw2"],
        ),
        (
            "change key, typo",
            with_fast(&["luksChangeKey"], &["img"]),
            vec!["pw1", "pw2", "pw3"],
        ),
        (
            "remove key",
            vec!["luksRemoveKey", "img"],
            vec!["pw1", "YES"],
        ),
        (
            "kill last slot, no",
            vec!["luksKillSlot", "img", "0"],
            vec!["no"],
        ),
        ("erase, no", vec!["erase", "img"], vec!["no"]),
        ("erase", vec!["-v", "erase", "img"], vec!["YES"]),
        (
            "volume key, no",
            vec!["luksDump", "--dump-volume-key", "img"],
            vec!["no"],
        ),
        (
            "volume key, empty key file",
            vec!["luksDump", "--dump-volume-key", "-d", "/dev/null", "img"],
            vec!["YES"],
        ),
        (
            "UUID",
            vec![
                "luksUUID",
                "--uuid",
                "11111111-2222-3333-4444-555555555555",
                "img",
            ],
            vec!["no"],
        ),
        (
            "header restore, no",
            vec!["luksHeaderRestore", "img", "--header-backup-file", "backup"],
            vec!["no"],
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, args, answers)| case(name, args, answers, &base, &links))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} terminal sessions differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
