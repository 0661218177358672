//! The kbs provider against a key broker on loopback that follows the attestation protocol:
//! it checks the session cookie, that the evidence binds its nonce and the key, and answers
//! with a JWE encrypted to that key.

use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt, RsaPublicKey};
use serde_json::{json, Value};

use super::*;
use crate::attester::SampleAttester;
use crate::testserver::{serve, Reply, CA_PEM, OTHER_CA_PEM};
use crate::ErrorKind;

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

/// What the broker speaks.
#[derive(Clone, Copy)]
struct Speaks {
    tls: bool,
    /// `0.4.0` (today's Trustee) or `0.1.0` (older brokers, which refuse 0.4.0 at auth).
    version: &'static str,
    /// The hash algorithm a 0.4.0 broker selects, if it names one.
    hash: Option<&'static str>,
    /// The path the broker is mounted under (`/api` behind Trustee's gateway), or empty.
    prefix: &'static str,
}

const TODAY: Speaks = Speaks {
    tls: false,
    version: "0.4.0",
    hash: None,
    prefix: "",
};

/// The report data a 0.4.0 broker expects: the digest of the runtime data in RFC 8785 form,
/// written out by hand here (members sorted by name, no white space).
fn expected_v4(nonce: &str, pk: &Value, hash: Option<&str>) -> Vec<u8> {
    let jcs = format!(
        r#"{{"additional-evidence":"","nonce":"{nonce}","tee-pubkey":{{"alg":"{}","e":"{}","kty":"RSA","n":"{}"}}}}"#,
        pk["alg"].as_str().expect("alg"),
        pk["e"].as_str().expect("e"),
        pk["n"].as_str().expect("n"),
    );
    match hash {
        Some("sha512") => Sha512::digest(jcs.as_bytes()).to_vec(),
        Some("sha256") => Sha256::digest(jcs.as_bytes()).to_vec(),
        _ => Sha384::digest(jcs.as_bytes()).to_vec(),
    }
}

/// The attestation body checked as the broker speaks: the JWK it binds, or why it refuses.
fn check_attestation(speaks: Speaks, nonce: &str, body: &Value) -> Result<Value, &'static str> {
    if speaks.version == "0.1.0" {
        let pubkey = body["tee-pubkey"].clone();
        if pubkey["alg"] != "RSA1_5" {
            return Err("algorithm is not RSA1_5");
        }
        let evidence: Value =
            serde_json::from_str(body["tee-evidence"].as_str().ok_or("no evidence")?)
                .map_err(|_| "evidence is not JSON")?;
        let mut h = Sha384::new();
        h.update(nonce.as_bytes());
        h.update(pubkey.to_string().as_bytes());
        return (evidence["report_data"] == STANDARD.encode(h.finalize()))
            .then_some(pubkey)
            .ok_or("evidence does not bind the nonce and key");
    }
    let runtime = &body["runtime-data"];
    let tee = &body["tee-evidence"];
    if runtime["nonce"] != nonce || tee["additional_evidence"] != "" || !body["init-data"].is_null()
    {
        return Err("malformed attestation");
    }
    let pubkey = runtime["tee-pubkey"].clone();
    let expected = STANDARD.encode(expected_v4(nonce, &pubkey, speaks.hash));
    (tee["primary_evidence"]["report_data"] == expected.as_str())
        .then_some(pubkey)
        .ok_or("evidence does not bind the nonce and key")
}

/// A broker serving `default/key/data`; returns its URL and the request log.
fn broker(speaks: Speaks) -> (String, Arc<Mutex<State>>) {
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    let addr = serve(speaks.tls, move |req| {
        let mut st = st.lock().expect("lock");
        st.requests.push(format!("{} {}", req.method, req.path));
        let session_ok = req.header("cookie") == "kbs-session-id=s1";
        let Some(path) = req.path.strip_prefix(speaks.prefix) else {
            return json_reply(404, "", "{}");
        };
        match (req.method.as_str(), path) {
            ("POST", "/kbs/v0/auth") => {
                let body: Value = serde_json::from_slice(&req.body).expect("json");
                if body["version"] != speaks.version {
                    return json_reply(
                        401,
                        "",
                        r#"{"type":"RcarAuthFailed","detail":"KBS Client Protocol Version Mismatch"}"#,
                    );
                }
                let mut extra = json!("");
                if speaks.version == "0.4.0" {
                    let offered = &body["extra-params"]["supported-hash-algorithms"];
                    assert_eq!(offered, &json!(["sha256", "sha384", "sha512"]));
                    if let Some(h) = speaks.hash {
                        extra = json!({"selected-hash-algorithm": h});
                    }
                }
                let nonce = STANDARD.encode(b"fresh nonce");
                st.nonce = Some(nonce.clone());
                json_reply(
                    200,
                    "Set-Cookie: kbs-session-id=s1; Path=/kbs\r\n",
                    &json!({"nonce": nonce, "extra-params": extra}).to_string(),
                )
            }
            ("POST", "/kbs/v0/attest") if session_ok => {
                let body: Value = serde_json::from_slice(&req.body).expect("json");
                let nonce = st.nonce.clone().expect("nonce");
                match check_attestation(speaks, &nonce, &body) {
                    Ok(pubkey) => {
                        st.pubkey = Some(pubkey);
                        json_reply(200, "", "{\"token\":\"t\"}")
                    }
                    Err(why) => json_reply(401, "", &json!({"error": why}).to_string()),
                }
            }
            ("GET", "/kbs/v0/resource/default/key/data") if session_ok && st.pubkey.is_some() => {
                let pk = st.pubkey.clone().expect("key");
                json_reply(200, "", &seal(&pk).to_string())
            }
            // What Trustee answers for a resource it does not have (a session or not).
            (_, path) if path.starts_with("/kbs/v0/resource/") => json_reply(
                401,
                "",
                "{\"type\":\"https://github.com/confidential-containers/kbs/errors/PluginInternalError\",\"detail\":\"Plugin internal error\"}",
            ),
            _ => json_reply(401, "", "{\"error\":\"unauthorized\"}"),
        }
    });
    let scheme = if speaks.tls { "https" } else { "http" };
    (
        format!("{scheme}://localhost:{}{}", addr.port(), speaks.prefix),
        state,
    )
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
    // Wrap the content key the way the JWK asks, as Trustee does.
    let (protected, wrapped) = match pk["alg"].as_str() {
        Some("RSA-OAEP-256") => (
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#),
            key.encrypt(&mut rand_core::OsRng, Oaep::new::<Sha256>(), &cek),
        ),
        Some("RSA1_5") => (
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA1_5","enc":"A256GCM"}"#),
            key.encrypt(&mut rand_core::OsRng, Pkcs1v15Encrypt, &cek),
        ),
        other => panic!("unsupported JWK alg {other:?}"),
    };
    let wrapped = wrapped.expect("wrap");
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
        kbs_url: url.parse().expect("url"),
        key_uri: key_uri.parse().expect("key uri"),
        kbs_root_cert: None,
    }
}

fn fetch(cfg: &KbsConfig) -> Result<Passphrase> {
    Kbs::with_attester(cfg, Box::new(SampleAttester)).passphrase()
}

struct LyingAttester;

impl Attester for LyingAttester {
    fn tee(&self) -> &str {
        "sample"
    }
    fn evidence(&self, _: &[u8]) -> Result<String> {
        Ok(json!({"svn": "1", "report_data": STANDARD.encode([0u8; 48])}).to_string())
    }
}

#[test]
fn fetches_the_secret_through_attestation() {
    let (url, state) = broker(TODAY);
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

/// A broker behind a gateway that mounts it under `/api` (the documented Trustee deployment:
/// `kbs_url = "http://<trustee-ip>:8081/api"`): every request goes under the prefix.
#[test]
fn a_broker_under_a_path_prefix() {
    let (url, state) = broker(Speaks {
        prefix: "/api",
        ..TODAY
    });
    assert!(url.ends_with("/api"), "{url}");
    let pass = fetch(&config(&url, "kbs:///default/key/data")).expect("passphrase");
    assert_eq!(pass.as_bytes(), SECRET);
    let log = state.lock().expect("lock").requests.clone();
    assert_eq!(
        log,
        [
            "POST /api/kbs/v0/auth",
            "POST /api/kbs/v0/attest",
            "GET /api/kbs/v0/resource/default/key/data"
        ]
    );
    // Without the prefix the gateway has nothing there.
    let bare = url.trim_end_matches("/api");
    assert!(fetch(&config(bare, "kbs:///default/key/data")).is_err());
}

#[test]
fn the_selected_hash_algorithm_binds_the_evidence() {
    for hash in ["sha256", "sha384", "sha512"] {
        let (url, _) = broker(Speaks {
            hash: Some(hash),
            ..TODAY
        });
        let cfg = config(&url, "kbs:///default/key/data");
        assert_eq!(fetch(&cfg).expect(hash).as_bytes(), SECRET);
    }
    let (url, _) = broker(Speaks {
        hash: Some("md5"),
        ..TODAY
    });
    let e = fetch(&config(&url, "kbs:///default/key/data")).expect_err("md5");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.to_string().contains("'md5', which was not offered"),
        "{e}"
    );
}

#[test]
fn older_brokers_are_spoken_to_in_their_version() {
    let (url, state) = broker(Speaks {
        version: "0.1.0",
        ..TODAY
    });
    let cfg = config(&url, "kbs:///default/key/data");
    assert_eq!(fetch(&cfg).expect("passphrase").as_bytes(), SECRET);
    let log = state.lock().expect("lock").requests.clone();
    assert_eq!(log[..2], ["POST /kbs/v0/auth", "POST /kbs/v0/auth"]);
}

#[test]
fn canonical_json_sorts_members_and_drops_space() {
    let v = json!({"b": [1, {"z": "\u{e9}\n", "a": null}], "a": true, "B": "x"});
    assert_eq!(
        canonical_json(&v),
        "{\"B\":\"x\",\"a\":true,\"b\":[1,{\"a\":null,\"z\":\"\u{e9}\\n\"}]}"
    );
}

#[test]
fn https_brokers_are_authenticated_by_the_root_certificate() {
    let (url, _) = broker(Speaks { tls: true, ..TODAY });
    let mut cfg = config(&url, "kbs:///default/key/data");
    cfg.kbs_root_cert = Some(CA_PEM.to_owned());
    assert_eq!(fetch(&cfg).expect("passphrase").as_bytes(), SECRET);
    cfg.kbs_root_cert = Some(OTHER_CA_PEM.to_owned());
    let e = fetch(&cfg).expect_err("untrusted");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = e.to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    cfg.kbs_root_cert = Some("not a certificate".to_owned());
    let e = fetch(&cfg).expect_err("bad pem");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string().contains("kbs_root_cert: no PEM certificate"),
        "{e}"
    );
}

#[test]
fn refusals_are_clear() {
    let (url, _) = broker(TODAY);
    let cfg = config(&url, "kbs:///default/key/data");
    let liar = Kbs::with_attester(&cfg, Box::new(LyingAttester));
    let e = liar.passphrase().expect_err("bad evidence");
    assert_eq!(e.kind(), ErrorKind::Refused);
    let e = e.to_string();
    assert!(
        e.starts_with("kbs key provider: ")
            && e.contains("HTTP 401")
            && e.contains("evidence does not bind"),
        "{e}"
    );
    let cfg = config(&url, "kbs:///default/key/other");
    let e = fetch(&cfg).expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert!(
        e.to_string()
            .ends_with("HTTP 401: PluginInternalError: Plugin internal error"),
        "{e}"
    );
    let cfg = config("http://127.0.0.1:1", "kbs:///a/b/c");
    let e = fetch(&cfg).expect_err("nothing listening");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("cannot reach"), "{e}");
}

/// The JWE content cipher's AES key schedule wipes itself on drop (the `aes` crate's
/// `zeroize` feature, turned on through this crate's manifest): without it this does not
/// compile.
#[test]
fn the_content_cipher_wipes_its_key_schedule() {
    fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wipes_on_drop::<aes::Aes256>();
}
