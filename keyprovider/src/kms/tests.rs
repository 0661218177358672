//! The kms provider against a loopback KMS instance endpoint (TLS, the test CA) that checks
//! every part of the request a real instance checks: method, path, host, content type and
//! hash, API headers, a fresh date and the client key's signature over the string to sign.

use std::sync::{Arc, Mutex};

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;

use super::*;
use crate::testserver::{serve, Reply, Request, CA_PEM, KMS_HOST, OTHER_CA_PEM};
use crate::ErrorKind;

const CLIENT_KEY_LEGACY: &str = include_str!("../testdata/clientKey_legacy.json");
const CLIENT_KEY_PBES2: &str = include_str!("../testdata/clientKey_pbes2.json");
const PASSWORD: &str = include_str!("../testdata/clientKey_password.txt");
const CLIENT_PUB: &str = include_str!("../testdata/client-pub.pem");
const KEY_ID: &str = "KAAP.0b1f2e3d-test-client-key";
const SECRET_NAME: &str = "luks_passphrase";
const PASSPHRASE: &[u8] = b"volume passphrase \x00\xff from KMS";

fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    let mut body = Vec::new();
    proto::put_bytes(&mut body, 2, code.as_bytes());
    proto::put_bytes(&mut body, 3, message.as_bytes());
    proto::put_bytes(&mut body, 4, b"req-1");
    (
        status,
        "Content-Type: application/x-protobuf\r\n".into(),
        body,
    )
}

/// What a KMS instance checks before it answers; `Err` names the first failed check.
fn check(req: &Request) -> Result<(), String> {
    let want = |name: &str, value: &str| {
        (req.header(name) == value)
            .then_some(())
            .ok_or_else(|| format!("{name} is '{}'", req.header(name)))
    };
    if (req.method.as_str(), req.path.as_str()) != ("POST", "/") {
        return Err(format!("{} {}", req.method, req.path));
    }
    want("host", KMS_HOST)?;
    want("content-type", "application/x-protobuf")?;
    want("x-kms-apiversion", "dkms-gcs-0.2")?;
    want("x-kms-apiname", "GetSecretValue")?;
    want("x-kms-signaturemethod", "RSA_PKCS1_SHA_256")?;
    want("x-kms-acccesskeyid", KEY_ID)?;
    let sha: String = Sha256::digest(&req.body)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    want("content-sha256", &sha)?;
    let now = http_date(SystemTime::now());
    // Same day and hour as now (a real instance allows a few minutes of skew).
    let date = req.header("date");
    if date.get(..19) != now.get(..19) || !date.ends_with(" GMT") {
        return Err(format!("date '{date}' is not now ({now})"));
    }
    let mut kms: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-kms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    kms.sort();
    let mut to_sign = format!("POST\n{sha}\napplication/x-protobuf\n{date}\n");
    for (k, v) in &kms {
        to_sign += &format!("{k}:{v}\n");
    }
    to_sign += "/";
    let bearer = req
        .header("authorization")
        .strip_prefix("Bearer ")
        .ok_or("no bearer authorization")?;
    let sig = STANDARD
        .decode(bearer)
        .map_err(|_| "signature not base64")?;
    let sig = Signature::try_from(&sig[..]).map_err(|_| "bad signature length")?;
    let public = RsaPublicKey::from_public_key_pem(CLIENT_PUB).expect("public key");
    VerifyingKey::<Sha256>::new(public)
        .verify(to_sign.as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_owned())
}

/// A KMS instance holding [`SECRET_NAME`] = base64([`PASSPHRASE`]); it answers the first
/// `throttle` requests with `Rejected.Throttling`. Returns its address and request count.
fn instance(throttle: usize) -> (String, Arc<Mutex<usize>>) {
    let count = Arc::new(Mutex::new(0usize));
    let seen = count.clone();
    let addr = serve(true, move |req| {
        let mut n = seen.lock().expect("lock");
        *n += 1;
        if *n <= throttle {
            return error_reply(429, "Rejected.Throttling", "slow down");
        }
        if let Err(why) = check(&req) {
            return error_reply(401, "InvalidAccessKeyId.NotFound", &why);
        }
        let name = proto::bytes_field(&req.body, 1).expect("request body");
        if name != SECRET_NAME.as_bytes() {
            return error_reply(404, "Forbidden.ResourceNotFound", "no such secret");
        }
        let mut body = Vec::new();
        proto::put_bytes(&mut body, 1, name);
        proto::put_bytes(&mut body, 3, STANDARD.encode(PASSPHRASE).as_bytes());
        proto::put_bytes(&mut body, 4, b"text");
        proto::put_bytes(&mut body, 8, b"req-2");
        (200, "Content-Type: application/x-protobuf\r\n".into(), body)
    });
    (addr.to_string(), count)
}

fn config(client_key: &str, password: &str, secret: &str) -> KmsConfig {
    KmsConfig {
        kms_instance_id: "kst-test0123".into(),
        secret_name: secret.into(),
        client_key: Zeroizing::new(client_key.into()),
        client_key_password: Zeroizing::new(password.into()),
        kms_cert_pem: Some(CA_PEM.into()),
    }
}

fn fetch(cfg: &KmsConfig, addr: &str) -> Result<Passphrase> {
    let mut kms = Kms::new(cfg);
    kms.connect = Some(addr.to_owned());
    kms.retry_delay = Duration::ZERO;
    kms.passphrase()
}

#[test]
fn fetches_the_secret_with_a_signed_request() {
    let (addr, count) = instance(0);
    for key in [CLIENT_KEY_LEGACY, CLIENT_KEY_PBES2] {
        // The password file's trailing newline does not matter.
        let cfg = config(key, &format!("{PASSWORD}\n"), SECRET_NAME);
        let pass = fetch(&cfg, &addr).expect("passphrase");
        assert_eq!(pass.as_bytes(), PASSPHRASE);
    }
    assert_eq!(*count.lock().expect("lock"), 2);
}

#[test]
fn throttling_is_retried_then_reported() {
    let (addr, count) = instance(2);
    let cfg = config(CLIENT_KEY_LEGACY, PASSWORD, SECRET_NAME);
    assert_eq!(
        fetch(&cfg, &addr).expect("third try").as_bytes(),
        PASSPHRASE
    );
    assert_eq!(*count.lock().expect("lock"), 3);
    let (addr, count) = instance(usize::MAX);
    let e = fetch(&cfg, &addr).expect_err("always throttled");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(
        e.to_string().contains("Rejected.Throttling: slow down"),
        "{e}"
    );
    assert_eq!(*count.lock().expect("lock"), ATTEMPTS as usize);
}

#[test]
fn refusals_name_the_problem() {
    let (addr, count) = instance(0);
    let e =
        fetch(&config(CLIENT_KEY_LEGACY, PASSWORD, "other"), &addr).expect_err("missing secret");
    assert_eq!(e.kind(), ErrorKind::Refused);
    let e = e.to_string();
    assert!(
        e.contains("GetSecretValue 'other'")
            && e.contains("HTTP 404 Forbidden.ResourceNotFound: no such secret (request id req-1)"),
        "{e}"
    );
    // A key the instance does not know: the signature does not verify.
    let other_id = CLIENT_KEY_LEGACY.replace(KEY_ID, "KAAP.someone-else");
    let e = fetch(&config(&other_id, PASSWORD, SECRET_NAME), &addr).expect_err("unknown key");
    assert_eq!(e.kind(), ErrorKind::Refused);
    let e = e.to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("x-kms-acccesskeyid"),
        "{e}"
    );
    assert_eq!(
        *count.lock().expect("lock"),
        2,
        "no retries for final errors"
    );

    let cases = [
        (
            config(CLIENT_KEY_LEGACY, "wrong", SECRET_NAME),
            "does not open client_key",
        ),
        (config("{}", PASSWORD, SECRET_NAME), "not a client key file"),
        (
            config(
                r#"{"KeyId":"k","PrivateKeyData":"%%%"}"#,
                PASSWORD,
                SECRET_NAME,
            ),
            "PrivateKeyData is not base64",
        ),
        (
            config(
                r#"{"KeyId":"k","PrivateKeyData":"AAAA"}"#,
                PASSWORD,
                SECRET_NAME,
            ),
            "not usable PKCS#12",
        ),
    ];
    for (cfg, want) in cases {
        let e = fetch(&cfg, &addr).expect_err(want);
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    let mut cfg = config(CLIENT_KEY_LEGACY, PASSWORD, SECRET_NAME);
    cfg.kms_cert_pem = Some(OTHER_CA_PEM.into());
    let e = fetch(&cfg, &addr).expect_err("untrusted");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = e.to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    cfg.kms_cert_pem = None;
    let e = fetch(&cfg, &addr).expect_err("system roots").to_string();
    let want = if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        "set kms_cert_pem to the instance's CA"
    } else {
        "cannot be read"
    };
    assert!(e.contains(want), "{e}");
    cfg.kms_cert_pem = Some("junk".into());
    let e = fetch(&cfg, &addr).expect_err("no cert").to_string();
    assert!(
        e.contains("kms_cert_pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    cfg.kms_cert_pem = Some(CA_PEM.into());
    cfg.kms_instance_id = "kst-1.evil.example/".into();
    let e = fetch(&cfg, &addr).expect_err("bad id");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("is not an instance id"), "{e}");
    let e = fetch(
        &config(CLIENT_KEY_LEGACY, PASSWORD, SECRET_NAME),
        "127.0.0.1:1",
    )
    .expect_err("nothing listening");
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("cannot reach 127.0.0.1:1"), "{e}");
}

#[test]
fn secrets_that_are_not_base64_are_refused() {
    let addr = serve(true, |_| {
        let mut body = Vec::new();
        proto::put_bytes(&mut body, 3, b"not base64!");
        (200, String::new(), body)
    });
    let e = fetch(
        &config(CLIENT_KEY_LEGACY, PASSWORD, SECRET_NAME),
        &addr.to_string(),
    )
    .expect_err("not base64");
    assert_eq!(e.kind(), ErrorKind::Refused);
    assert!(e.to_string().contains("is not base64"), "{e}");
}

#[test]
fn dates_and_strings_to_sign() {
    let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096);
    assert_eq!(http_date(t), "Thu, 29 Feb 2024 12:34:56 GMT");
    assert_eq!(
        string_to_sign(
            "AB",
            "D",
            &[("x-kms-apiname", " GetSecretValue "), ("x-kms-b", "v")]
        ),
        "POST\nAB\napplication/x-protobuf\nD\nx-kms-apiname:GetSecretValue\nx-kms-b:v\n/"
    );
    assert_eq!(
        content_sha256(b""),
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    );
}

/// Byte for byte what Alibaba Cloud's own client sends (see `testdata/README.md`).
#[test]
fn requests_equal_the_vendor_sdks() {
    let kat: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/sdk_get_secret_value.json")).expect("kat");
    let field = |k: &str| kat[k].as_str().expect(k).to_owned();
    let body = request_body(SECRET_NAME);
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, field("body_hex"));
    let key = ClientKey::parse(CLIENT_KEY_LEGACY, PASSWORD).expect("client key");
    let headers = signed_headers(&key, &body, &field("date"));
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    let kms: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-kms-"))
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    assert_eq!(
        string_to_sign(&get("Content-Sha256"), &field("date"), &kms),
        field("string_to_sign")
    );
    assert_eq!(get("Authorization"), field("authorization"));
}

#[test]
fn nothing_secret_is_printed() {
    let cfg = config(CLIENT_KEY_LEGACY, PASSWORD, SECRET_NAME);
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("PrivateKeyData"),
        "{shown}"
    );
}
