//! `cryptpilot crypt` on the host (no device-mapper): configuration errors, show, and the
//! refusals that happen before any mapping; the VM suite covers the rest.

mod common;

use std::process::Command;

use common::*;

fn volumes(d: &Dir, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = d.path("cfg");
    std::fs::create_dir_all(dir.join("volumes")).expect("mkdir");
    for (name, text) in files {
        std::fs::write(dir.join("volumes").join(name), text).expect("write");
    }
    dir
}

#[test]
fn config_check_names_every_bad_file_and_line() {
    let d = Dir::new();
    let dir = volumes(
        &d,
        &[
            ("good.toml", "volume = \"ok\"\ndev = \"/dev/vdb\"\n[encrypt.otp]\n"),
            ("typo.toml", "volume = \"t\"\ndev = \"/dev/vdc\"\nauto_opne = true\n[encrypt.otp]\n"),
            ("two.toml", "volume = \"w\"\ndev = \"/dev/vdd\"\n[encrypt.otp]\n[encrypt.exec]\ncommand = \"x\"\n"),
            ("dup.toml", "volume = \"ok\"\ndev = \"/dev/vde\"\n[encrypt.otp]\n"),
        ],
    );
    let r = crypt(&dir, &["config", "check"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("typo.toml:3: unknown field `auto_opne`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("two.toml:4: table `encrypt`: more than one key provider"),
        "{}",
        r.stderr
    );
    // Files are read in name order: the later one is the duplicate.
    assert!(
        r.stderr
            .contains("good.toml:1: field `volume`: 'ok' is already defined in"),
        "{}",
        r.stderr
    );
    // Every other command refuses to work on a broken configuration, with the first error.
    let r = crypt(&dir, &["show"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
}

fn testdata(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keyprovider/src/testdata");
    std::fs::read_to_string(dir.join(name)).expect("test data")
}

fn kms_volume(name: &str, password: &str) -> String {
    format!(
        "volume = \"{name}\"\ndev = \"/dev/vdb\"\n[encrypt.kms]\nkms_instance_id = \"kst-test0123\"\n\
         secret_name = \"luks_passphrase\"\nclient_key = '''\n{}'''\n\
         client_key_password = \"{password}\"\nkms_cert_pem = '''\n{}'''\n",
        testdata("clientKey_legacy.json"),
        testdata("ca.pem"),
    )
}

#[test]
fn config_check_checks_what_providers_can_offline() {
    let d = Dir::new();
    let password = testdata("clientKey_password.txt");
    let good = kms_volume("k1", &password);
    let dir = volumes(&d, &[("k1.toml", &good)]);
    let r = crypt(&dir, &["config", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "configuration OK: 1 volume(s)\n"),
        "{}",
        r.stderr
    );

    let d = Dir::new();
    let wrong = kms_volume("k2", "not the password");
    let exec =
        "volume = \"e\"\ndev = \"/dev/vdc\"\n[encrypt.exec]\ncommand = \"no-such-key-tool\"\n";
    let kbs =
        "volume = \"b\"\ndev = \"/dev/vdd\"\n[encrypt.kbs]\nkbs_url = \"https://kbs.example\"\n\
               key_uri = \"kbs:///a/b/c\"\nkbs_root_cert = \"junk\"\n";
    let dir = volumes(
        &d,
        &[("k2.toml", &wrong), ("e.toml", exec), ("b.toml", kbs)],
    );
    let r = crypt(&dir, &["config", "check"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for want in [
        "k2.toml: volume 'k2': kms key provider: client_key_password does not open client_key",
        "e.toml: volume 'e': exec key provider: command 'no-such-key-tool' not found",
        "b.toml: volume 'b': kbs key provider: kbs_root_cert: no PEM certificate",
    ] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }
    assert!(!r.stderr.contains(password.trim()), "{}", r.stderr);
}

#[test]
fn show_and_early_refusals() {
    let d = Dir::new();
    let img = d.image("disk.img", 24);
    let dir = volumes(
        &d,
        &[
            ("a.toml", &format!("volume = \"a\"\ndev = \"{img}\"\nauto_open = true\nmakefs = \"ext4\"\n[encrypt.exec]\ncommand = \"sh\"\nargs = [\"-c\", \"echo denied >&2; exit 7\"]\n")),
            ("t.toml", "volume = \"t\"\ndev = \"/dev/does-not-exist\"\nintegrity = true\n[encrypt.otp]\n"),
        ],
    );
    let r = ok(crypt(&dir, &["config", "check"]));
    assert_eq!(r.stdout, "configuration OK: 2 volume(s)\n");
    let r = ok(crypt(&dir, &["show", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v[0]["volume"], "a");
    assert_eq!(v[0]["initialized"], "no");
    assert_eq!(v[0]["key_provider"], "exec");
    assert_eq!(v[1]["initialized"], "no device");
    assert_eq!(v[1]["integrity"], true);
    let before = contents(&img);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["init", "t"], 1, "needs no init"),
        (vec!["open", "a"], 1, "is not initialized; run init first"),
        (vec!["open", "nope"], 1, "no volume named 'nope'"),
        // A key command that fails is a refusal (exit 7), not a usage error.
        (vec!["init", "a"], 7, "exit status: 7): denied"),
    ];
    for (args, code, needle) in cases {
        fails_cleanly(&crypt(&dir, &args), code, needle);
        assert_eq!(contents(&img), before, "{args:?} changed the device");
    }
}

/// A key broker on loopback that refuses every request with `status` and a reason.
fn refusing_broker(status: u16) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            // Read the whole request first: closing on unread bytes resets the connection.
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let body = "{\"error\": \"policy denied the evidence\"}";
            let _ = write!(
                conn,
                "HTTP/1.1 {status} No\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn key_services_that_fail_exit_with_their_own_codes() {
    let d = Dir::new();
    let img = d.image("disk.img", 24);
    let kbs = |name: &str, url: &str| {
        format!("volume = \"{name}\"\ndev = \"{img}\"\n[encrypt.kbs]\nkbs_url = \"{url}\"\nkey_uri = \"kbs:///default/key/{name}\"\n")
    };
    let dir = volumes(
        &d,
        &[
            ("down.toml", &kbs("down", "http://127.0.0.1:1")),
            ("denied.toml", &kbs("denied", &refusing_broker(401))),
            ("broken.toml", &kbs("broken", &refusing_broker(503))),
        ],
    );
    let before = contents(&img);
    for (volume, code, needle) in [
        (
            "down",
            6,
            "kbs key provider: POST /kbs/v0/auth: cannot reach 127.0.0.1:1",
        ),
        (
            "denied",
            7,
            "HTTP 401: {\"error\": \"policy denied the evidence\"}",
        ),
        ("broken", 6, "HTTP 503"),
    ] {
        fails_cleanly(&crypt(&dir, &["init", volume]), code, needle);
        assert_eq!(contents(&img), before, "{volume} changed the device");
    }
}

#[test]
fn runs_as_cryptpilot_crypt() {
    let d = Dir::new();
    let dir = volumes(
        &d,
        &[(
            "a.toml",
            "volume = \"a\"\ndev = \"/dev/vdb\"\n[encrypt.otp]\n",
        )],
    );
    let link = d.path("cryptpilot-crypt");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cryptpilot"), &link).expect("link");
    let mut c = Command::new(&link);
    c.arg("-c").arg(&dir).args(["config", "check"]);
    let r = run_cmd(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "configuration OK: 1 volume(s)\n");
}
