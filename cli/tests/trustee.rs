//! `cryptpilot crypt` with a kbs volume against the real Trustee key broker: its refusals as
//! one line and a key-service exit code, with the device untouched. (The VM suite opens a
//! volume with the key it releases.)

mod common;

use common::*;
use testkit::trustee::{Broker, Options};

/// A configuration directory with one kbs volume `v` on `img`.
fn volume(d: &Dir, img: &str, url: &str, tag: &str, root: Option<String>) -> std::path::PathBuf {
    let dir = d.path("cfg");
    std::fs::create_dir_all(dir.join("volumes")).expect("mkdir");
    let mut text = format!(
        "volume = \"v\"\ndev = \"{img}\"\n[encrypt.kbs]\nkbs_url = \"{url}\"\nkey_uri = \"kbs:///default/local-resources/{tag}\"\n"
    );
    if let Some(pem) = root {
        text += &format!("kbs_root_cert = '''\n{pem}'''\n");
    }
    std::fs::write(dir.join("volumes/v.toml"), text).expect("write");
    dir
}

#[test]
fn refusals_of_the_real_broker_exit_with_key_service_codes() {
    let d = Dir::new();
    let img = d.image("disk.img", 24);
    let before = contents(&img);
    let secret = vec![("disk".to_owned(), b"passphrase".to_vec())];
    // The broker's default policy denies the sample TEE.
    let strict = Broker::start(&Options {
        resources: secret.clone(),
        ..Options::default()
    });
    let dir = volume(&d, &img, &strict.url(), "disk", None);
    fails_cleanly(
        &crypt(&dir, &["init", "v"]),
        7,
        "kbs key provider: GET /kbs/v0/resource/default/local-resources/disk: HTTP 401: PolicyDeny: Access denied by policy",
    );
    let open = Broker::start(&Options {
        allow_all: true,
        resources: secret,
        ..Options::default()
    });
    let dir = volume(&d, &img, &open.url(), "missing", None);
    fails_cleanly(&crypt(&dir, &["init", "v"]), 7, "PluginInternalError");
    let url = open.url();
    drop(open);
    let dir = volume(&d, &img, &url, "disk", None);
    fails_cleanly(&crypt(&dir, &["init", "v"]), 6, "cannot reach 127.0.0.1:");
    assert_eq!(contents(&img), before, "a refused init changed the device");
}

#[test]
fn config_check_accepts_the_brokers_root_certificate() {
    let d = Dir::new();
    let broker = Broker::start(&Options {
        tls: true,
        ..Options::default()
    });
    let dir = volume(&d, "/dev/vdb", &broker.url(), "disk", broker.ca_pem());
    let r = crypt(&dir, &["config", "check"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "configuration OK: 1 volume(s)\n"),
        "{}",
        r.stderr
    );
}
