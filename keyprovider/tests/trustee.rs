//! The kbs provider against the real Trustee key broker (`shared/tools/trustee/kbs`), on a
//! free loopback port: what our loopback test broker assumes, checked against the real one.

use keyprovider::attester::SampleAttester;
use keyprovider::{ErrorKind, Kbs, KbsConfig, KeyProvider};
use testkit::trustee::{Broker, Options};

const SECRET: &[u8] = b"volume passphrase \x00\xff released by Trustee";

fn config(url: &str, tag: &str, root: Option<String>) -> KbsConfig {
    KbsConfig {
        kbs_url: url.parse().expect("url"),
        key_uri: format!("kbs:///default/local-resources/{tag}")
            .parse()
            .expect("key uri"),
        kbs_root_cert: root,
    }
}

fn releasing() -> Options {
    Options {
        allow_all: true,
        resources: vec![("disk".into(), SECRET.to_vec())],
        ..Options::default()
    }
}

fn fetch(cfg: &KbsConfig) -> keyprovider::Result<luks2::Passphrase> {
    Kbs::with_attester(cfg, Box::new(SampleAttester)).passphrase()
}

/// Protocol 0.4.0, the canonical runtime data with the broker's hash (it names none:
/// SHA-384), sample evidence and an RSA-OAEP-256 JWE: the resource's bytes, exactly.
#[test]
fn the_real_broker_releases_the_resource_after_sample_attestation() {
    let broker = Broker::start(&releasing());
    let pass = fetch(&config(&broker.url(), "disk", None))
        .unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    assert_eq!(pass.as_bytes(), SECRET);
    // Two fetches, two sessions and two ephemeral keys: nothing is cached between them.
    let again = fetch(&config(&broker.url(), "disk", None)).expect("second fetch");
    assert_eq!(again.as_bytes(), SECRET);
    let log = broker.log();
    assert!(log.contains("POST /kbs/v0/attest HTTP/1.1\" 200"), "{log}");
    assert!(
        log.contains("GET /kbs/v0/resource/default/local-resources/disk HTTP/1.1\" 200"),
        "{log}"
    );
}

#[test]
fn https_is_checked_against_the_root_certificate() {
    let broker = Broker::start(&Options {
        tls: true,
        ..releasing()
    });
    assert!(broker.url().starts_with("https://"));
    let pass = fetch(&config(&broker.url(), "disk", broker.ca_pem()))
        .unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    assert_eq!(pass.as_bytes(), SECRET);
    let other = include_str!("../src/testdata/other-ca.pem").to_owned();
    let e = fetch(&config(&broker.url(), "disk", Some(other))).expect_err("another CA");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = e.to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
}

/// The broker's default resource policy denies the `sample` TEE.
#[test]
fn the_default_policy_refuses_sample_evidence() {
    let broker = Broker::start(&Options {
        allow_all: false,
        ..releasing()
    });
    let e = fetch(&config(&broker.url(), "disk", None)).expect_err("denied");
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    let e = e.to_string();
    assert!(
        e.starts_with(
            "kbs key provider: GET /kbs/v0/resource/default/local-resources/disk: HTTP 401"
        ),
        "{e}"
    );
    assert!(
        e.ends_with("HTTP 401: PolicyDeny: Access denied by policy"),
        "{e}"
    );
}

#[test]
fn a_missing_resource_is_refused() {
    let broker = Broker::start(&releasing());
    let e = fetch(&config(&broker.url(), "no-such-key", None)).expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    // Trustee does not say "not found": a missing resource fails inside its resource plugin.
    assert!(
        e.to_string()
            .ends_with("no-such-key: HTTP 401: PluginInternalError: Plugin internal error"),
        "{e}"
    );
}

#[test]
fn a_broker_that_is_not_running_is_unavailable() {
    let broker = Broker::start(&releasing());
    let url = broker.url();
    drop(broker);
    let e = fetch(&config(&url, "disk", None)).expect_err("stopped");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("cannot reach 127.0.0.1:"), "{e}");
}

/// This build demands exactly 0.4.0; a client that speaks only 0.1.0 is told so at `auth`.
#[test]
fn a_broker_that_demands_another_protocol_version_says_so() {
    let broker = Broker::start(&releasing());
    let cfg = config(&broker.url(), "disk", None);
    let e = Kbs::with_attester(&cfg, Box::new(SampleAttester))
        .legacy_protocol_only()
        .passphrase()
        .expect_err("0.1.0 only");
    assert_eq!(e.kind(), ErrorKind::Refused, "{e}");
    let e = e.to_string();
    assert!(
        e.contains("POST /kbs/v0/auth: HTTP 401: AttestationError: ")
            && e.contains("Version Mismatch: expect =0.4.0 while the request is 0.1.0"),
        "{e}"
    );
}
