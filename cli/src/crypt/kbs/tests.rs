//! The kbs provider against a key broker on loopback that follows the attestation protocol:
//! it checks the session cookie, that the evidence binds its nonce and the key, and answers
//! with a JWE encrypted to that key.

use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::{BigUint, Oaep, RsaPublicKey};
use serde_json::{json, Value};

use super::*;
use crate::crypt::attester::SampleAttester;
use crate::crypt::testserver::{serve, Reply, CA_PEM, OTHER_CA_PEM};

const SECRET: &[u8] = b"volume passphrase from the broker";

#[derive(Default)]
struct State {
    nonce: Option<String>,
    pubkey: Option<Value>,
    requests: Vec<String>,
}

fn json_reply(status: u16, extra: &str, body: &str) -> Reply {
    (
        status,
        format!("Content-Type: application/json\r\n{extra}"),
        body.as_bytes().to_vec(),
    )
}

/// A broker serving `default/key/data` (over TLS when `tls`); returns its URL and the
/// request log.
fn broker(tls: bool) -> (String, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    let addr = serve(tls, move |req| {
        let mut st = st.lock().expect("lock");
        st.requests.push(format!("{} {}", req.method, req.path));
        let session_ok = req.header("cookie") == "kbs-session-id=s1";
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", "/kbs/v0/auth") => {
                let body: Value = serde_json::from_slice(&req.body).expect("json");
                assert_eq!(body["version"], "0.1.0");
                let nonce = STANDARD.encode(b"fresh nonce");
                st.nonce = Some(nonce.clone());
                json_reply(
                    200,
                    "Set-Cookie: kbs-session-id=s1; Path=/kbs\r\n",
                    &json!({"nonce": nonce, "extra-params": ""}).to_string(),
                )
            }
            ("POST", "/kbs/v0/attest") if session_ok => {
                let body: Value = serde_json::from_slice(&req.body).expect("json");
                let pubkey = body["tee-pubkey"].clone();
                let evidence: Value =
                    serde_json::from_str(body["tee-evidence"].as_str().expect("evidence"))
                        .expect("evidence json");
                let mut h = Sha384::new();
                h.update(st.nonce.clone().expect("nonce").as_bytes());
                h.update(pubkey.to_string().as_bytes());
                if evidence["report_data"] != STANDARD.encode(h.finalize()) {
                    return json_reply(
                        401,
                        "",
                        "{\"error\":\"evidence does not bind the nonce and key\"}",
                    );
                }
                st.pubkey = Some(pubkey);
                json_reply(200, "", "{\"token\":\"t\"}")
            }
            ("GET", "/kbs/v0/resource/default/key/data") if session_ok && st.pubkey.is_some() => {
                let pk = st.pubkey.clone().expect("key");
                json_reply(200, "", &seal(&pk).to_string())
            }
            (_, path) if path.starts_with("/kbs/v0/resource/") => json_reply(
                if session_ok { 404 } else { 401 },
                "",
                "{\"error\":\"no such resource\"}",
            ),
            _ => json_reply(401, "", "{\"error\":\"unauthorized\"}"),
        }
    });
    let scheme = if tls { "https" } else { "http" };
    (format!("{scheme}://localhost:{}", addr.port()), state)
}

/// [`SECRET`] as a JWE to the JWK `pk`.
fn seal(pk: &Value) -> Value {
    let n = URL_SAFE_NO_PAD
        .decode(pk["n"].as_str().expect("n"))
        .expect("n");
    let e = URL_SAFE_NO_PAD
        .decode(pk["e"].as_str().expect("e"))
        .expect("e");
    let key =
        RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).expect("key");
    let cek = [7u8; 32];
    let iv = [9u8; 12];
    let protected = URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
    let wrapped = key
        .encrypt(&mut rand_core::OsRng, Oaep::new::<Sha256>(), &cek)
        .expect("wrap");
    let sealed = Aes256Gcm::new_from_slice(&cek)
        .expect("cek")
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: SECRET,
                aad: protected.as_bytes(),
            },
        )
        .expect("seal");
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    json!({
        "protected": protected,
        "encrypted_key": URL_SAFE_NO_PAD.encode(wrapped),
        "iv": URL_SAFE_NO_PAD.encode(iv),
        "ciphertext": URL_SAFE_NO_PAD.encode(ct),
        "tag": URL_SAFE_NO_PAD.encode(tag),
    })
}

fn config(url: &str, key_uri: &str) -> KbsConfig {
    KbsConfig {
        kbs_url: url.to_owned(),
        key_uri: key_uri.to_owned(),
        kbs_root_cert: None,
    }
}

fn fetch(cfg: &KbsConfig) -> CliResult<Passphrase> {
    Kbs {
        config: cfg,
        attester: Some(Box::new(SampleAttester)),
    }
    .passphrase()
}

struct LyingAttester;

impl Attester for LyingAttester {
    fn tee(&self) -> &str {
        "sample"
    }
    fn evidence(&self, _: &[u8]) -> CliResult<String> {
        Ok(json!({"svn": "1", "report_data": STANDARD.encode([0u8; 48])}).to_string())
    }
}

#[test]
fn fetches_the_secret_through_attestation() {
    let (url, state) = broker(false);
    let cfg = config(&url, "kbs:///default/key/data");
    let pass = fetch(&cfg).expect("passphrase");
    assert_eq!(pass.as_bytes(), SECRET);
    let log = state.lock().expect("lock").requests.clone();
    assert_eq!(
        log,
        [
            "POST /kbs/v0/auth",
            "POST /kbs/v0/attest",
            "GET /kbs/v0/resource/default/key/data"
        ]
    );
}

#[test]
fn https_brokers_are_authenticated_by_the_root_certificate() {
    let (url, _) = broker(true);
    let mut cfg = config(&url, "kbs:///default/key/data");
    cfg.kbs_root_cert = Some(CA_PEM.to_owned());
    assert_eq!(fetch(&cfg).expect("passphrase").as_bytes(), SECRET);
    cfg.kbs_root_cert = Some(OTHER_CA_PEM.to_owned());
    let e = fetch(&cfg).expect_err("untrusted").to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
}

#[test]
fn refusals_are_clear() {
    let (url, _) = broker(false);
    let cfg = config(&url, "kbs:///default/key/data");
    let liar = Kbs {
        config: &cfg,
        attester: Some(Box::new(LyingAttester)),
    };
    let e = liar.passphrase().expect_err("bad evidence").to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("evidence does not bind"),
        "{e}"
    );
    let cfg = config(&url, "kbs:///default/key/other");
    let e = fetch(&cfg).expect_err("missing").to_string();
    assert!(e.contains("HTTP 404"), "{e}");
    for (u, k, want) in [
        ("ftp://x", "kbs:///a/b/c", "is not http(s)://host[:port]"),
        ("http://127.0.0.1:1", "kbs:///a/b/c", "cannot reach"),
        ("http://h", "kbs:///a/../c", "is not kbs:///"),
    ] {
        let cfg = config(u, k);
        let e = fetch(&cfg).expect_err(u).to_string();
        assert!(e.contains(want), "{u} {k}: {e}");
    }
}
