//! The kbs provider against a key broker on loopback that follows the attestation protocol:
//! it checks the session cookie, that the evidence binds its nonce and the key, and answers
//! with a JWE encrypted to that key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::{BigUint, Oaep, RsaPublicKey};
use serde_json::{json, Value};

use super::*;

const SECRET: &[u8] = b"volume passphrase from the broker";

#[derive(Default)]
struct State {
    nonce: Option<String>,
    pubkey: Option<Value>,
    requests: Vec<String>,
}

fn respond(s: &mut std::net::TcpStream, status: u16, extra: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    );
}

/// A broker serving `default/key/data`; returns its URL and the request log.
fn broker() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            let mut line = String::new();
            r.read_line(&mut line).expect("request line");
            let (mut len, mut cookie) = (0usize, String::new());
            loop {
                let mut h = String::new();
                r.read_line(&mut h).expect("header");
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').expect("header");
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().expect("len"),
                    "cookie" => cookie = v.trim().to_owned(),
                    _ => {}
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).expect("body");
            let mut st = st.lock().expect("lock");
            st.requests.push(line.trim().to_owned());
            let session_ok = cookie == "kbs-session-id=s1";
            match line.split_whitespace().take(2).collect::<Vec<_>>()[..] {
                ["POST", "/kbs/v0/auth"] => {
                    let req: Value = serde_json::from_slice(&body).expect("json");
                    assert_eq!(req["version"], "0.1.0");
                    let nonce = STANDARD.encode(b"fresh nonce");
                    st.nonce = Some(nonce.clone());
                    respond(
                        &mut s,
                        200,
                        "Set-Cookie: kbs-session-id=s1; Path=/kbs\r\n",
                        &json!({"nonce": nonce, "extra-params": ""}).to_string(),
                    );
                }
                ["POST", "/kbs/v0/attest"] if session_ok => {
                    let req: Value = serde_json::from_slice(&body).expect("json");
                    let pubkey = req["tee-pubkey"].clone();
                    let evidence: Value =
                        serde_json::from_str(req["tee-evidence"].as_str().expect("evidence"))
                            .expect("evidence json");
                    let mut h = Sha384::new();
                    h.update(st.nonce.clone().expect("nonce").as_bytes());
                    h.update(pubkey.to_string().as_bytes());
                    if evidence["report_data"] != STANDARD.encode(h.finalize()) {
                        respond(
                            &mut s,
                            401,
                            "",
                            "{\"error\":\"evidence does not bind the nonce and key\"}",
                        );
                        continue;
                    }
                    st.pubkey = Some(pubkey);
                    respond(&mut s, 200, "", "{\"token\":\"t\"}");
                }
                ["GET", "/kbs/v0/resource/default/key/data"]
                    if session_ok && st.pubkey.is_some() =>
                {
                    let pk = st.pubkey.clone().expect("key");
                    let n = URL_SAFE_NO_PAD
                        .decode(pk["n"].as_str().expect("n"))
                        .expect("n");
                    let e = URL_SAFE_NO_PAD
                        .decode(pk["e"].as_str().expect("e"))
                        .expect("e");
                    let key =
                        RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
                            .expect("key");
                    let cek = [7u8; 32];
                    let iv = [9u8; 12];
                    let protected =
                        URL_SAFE_NO_PAD.encode(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
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
                    let jwe = json!({
                        "protected": protected,
                        "encrypted_key": URL_SAFE_NO_PAD.encode(wrapped),
                        "iv": URL_SAFE_NO_PAD.encode(iv),
                        "ciphertext": URL_SAFE_NO_PAD.encode(ct),
                        "tag": URL_SAFE_NO_PAD.encode(tag),
                    });
                    respond(&mut s, 200, "", &jwe.to_string());
                }
                [_, path] if path.starts_with("/kbs/v0/resource/") => {
                    respond(
                        &mut s,
                        if session_ok { 404 } else { 401 },
                        "",
                        "{\"error\":\"no such resource\"}",
                    );
                }
                _ => respond(&mut s, 401, "", "{\"error\":\"unauthorized\"}"),
            }
        }
    });
    (url, state)
}

fn config(url: &str, key_uri: &str) -> KbsConfig {
    KbsConfig {
        kbs_url: url.to_owned(),
        key_uri: key_uri.to_owned(),
        kbs_root_cert: None,
    }
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
    let (url, state) = broker();
    let cfg = config(&url, "kbs:///default/key/data");
    let kbs = Kbs {
        config: &cfg,
        attester: Box::new(SampleAttester),
    };
    let pass = kbs.passphrase().expect("passphrase");
    assert_eq!(pass.as_bytes(), SECRET);
    let log = state.lock().expect("lock").requests.clone();
    assert_eq!(
        log,
        [
            "POST /kbs/v0/auth HTTP/1.1",
            "POST /kbs/v0/attest HTTP/1.1",
            "GET /kbs/v0/resource/default/key/data HTTP/1.1"
        ]
    );
}

#[test]
fn refusals_are_clear() {
    let (url, _) = broker();
    let cfg = config(&url, "kbs:///default/key/data");
    let liar = Kbs {
        config: &cfg,
        attester: Box::new(LyingAttester),
    };
    let e = liar.passphrase().expect_err("bad evidence").to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("evidence does not bind"),
        "{e}"
    );
    let cfg = config(&url, "kbs:///default/key/other");
    let e = Kbs {
        config: &cfg,
        attester: Box::new(SampleAttester),
    }
    .passphrase()
    .expect_err("missing")
    .to_string();
    assert!(e.contains("HTTP 404"), "{e}");
    for (u, k, want) in [
        (
            "https://kbs.example",
            "kbs:///a/b/c",
            "HTTPS is not supported",
        ),
        ("ftp://x", "kbs:///a/b/c", "not an http:// URL"),
        ("http://127.0.0.1:1", "kbs:///a/b/c", "cannot reach"),
        ("http://h", "kbs:///a/../c", "is not kbs:///"),
    ] {
        let cfg = config(u, k);
        let e = Kbs {
            config: &cfg,
            attester: Box::new(SampleAttester),
        }
        .passphrase()
        .expect_err(u)
        .to_string();
        assert!(e.contains(want), "{u} {k}: {e}");
    }
}

#[test]
fn chunked_responses_are_read() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
    let (status, _, body) = parse_response(raw).expect("parse");
    assert_eq!((status, &body[..]), (200, &b"{\"a\":1}"[..]));
    assert!(parse_response(b"garbage").is_none());
}
