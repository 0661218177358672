//! The `kbs` key provider: Trustee's key-broker protocol, spoken natively. Version 0.4.0 (what
//! Trustee and guest-components speak today) first; a broker that refuses it is asked again
//! with 0.1.0 (older brokers).
//!
//! 1. `POST /kbs/v0/auth` `{"version", "tee", "extra-params"}` -> a nonce (and, in 0.4.0, the
//!    hash algorithm the broker selected from the ones offered) and a session cookie.
//! 2. An ephemeral RSA-2048 key is made and bound into the attester's evidence:
//!    - 0.4.0: the hash of the canonical JSON (RFC 8785) of
//!      `{"additional-evidence": "", "nonce", "tee-pubkey"}`; `POST /kbs/v0/attest`
//!      `{"init-data": null, "runtime-data": {"nonce", "tee-pubkey"},
//!        "tee-evidence": {"primary_evidence", "additional_evidence": ""}}`;
//!    - 0.1.0: `sha384(nonce || tee-pubkey JSON)`; `POST /kbs/v0/attest`
//!      `{"tee-pubkey", "tee-evidence"}`; the key is offered for `RSA1_5`, the only wrapping
//!      brokers of that era do (0.4.0 offers `RSA-OAEP-256`).
//! 3. `GET /kbs/v0/resource/<repository>/<type>/<tag>` -> the secret as a JWE encrypted to the
//!    ephemeral key (`RSA-OAEP-256`, `RSA-OAEP` or `RSA1_5`, with `A256GCM`).
//!
//! # Security
//! The secret is only readable with the ephemeral private key, which never leaves this
//! process, so it stays confidential over plain HTTP. `https://` URLs also authenticate the
//! broker: against `kbs_root_cert` when given, else against the system's trusted roots.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use luks2::Passphrase;
use rsa::sha2::{Digest, Sha256, Sha384, Sha512};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::attester::{self, Attester};
use crate::error::Errors;
use crate::http::{Endpoint, HttpError, Response};
use crate::{Error, KbsConfig, KeyProvider, Result};

const ERR: Errors = Errors("kbs");

/// The provider for one `[encrypt.kbs]` table.
pub struct Kbs<'a> {
    config: &'a KbsConfig,
    /// The attester; `None` picks the one for this guest at fetch time.
    attester: Option<Box<dyn Attester>>,
    /// The protocol versions offered, newest first.
    versions: &'static [Protocol],
}

impl std::fmt::Debug for Kbs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kbs({:?})", self.config)
    }
}

impl<'a> Kbs<'a> {
    /// The provider with the attester this guest has, chosen when a key is fetched.
    pub fn new(config: &'a KbsConfig) -> Self {
        Kbs {
            config,
            attester: None,
            versions: &[Protocol::V0_4, Protocol::V0_1],
        }
    }

    /// The provider with a given attester.
    pub fn with_attester(config: &'a KbsConfig, attester: Box<dyn Attester>) -> Self {
        Kbs {
            attester: Some(attester),
            ..Kbs::new(config)
        }
    }
}

impl KeyProvider for Kbs<'_> {
    fn check(&self) -> Result<()> {
        self.endpoint().map(drop)
    }

    /// # Errors
    /// [`crate::ErrorKind::Config`] for an unusable root certificate,
    /// [`crate::ErrorKind::Unavailable`] when the broker cannot be reached, answers with
    /// something that is not the protocol, or fails (HTTP 5xx), or no evidence can be made;
    /// [`crate::ErrorKind::Refused`] when the broker refuses (HTTP 4xx: attestation denied by
    /// its policy, no such resource) or releases an empty resource.
    fn passphrase(&self) -> Result<Passphrase> {
        let endpoint = self.endpoint()?;
        let path = self.config.key_uri.path();
        let detected;
        let attester: &dyn Attester = match &self.attester {
            Some(a) => a.as_ref(),
            None => {
                detected = attester::for_platform(std::path::Path::new("/dev"))?;
                detected.as_ref()
            }
        };
        let mut session = Session {
            endpoint,
            cookie: None,
        };
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .map_err(|e| ERR.unavailable(format!("cannot make the ephemeral key: {e}")))?;
        let tee = attester.tee();
        let (protocol, challenge) = self.authenticate(&mut session, tee)?;
        let pubkey = json!({
            "kty": "RSA",
            "alg": protocol.key_algorithm(),
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        let nonce = challenge["nonce"]
            .as_str()
            .ok_or_else(|| ERR.unavailable("the broker's challenge has no nonce"))?
            .to_owned();
        let attestation = if protocol == Protocol::V0_4 {
            let algorithm = &challenge["extra-params"]["selected-hash-algorithm"];
            let runtime = json!({"additional-evidence": "", "nonce": nonce, "tee-pubkey": pubkey});
            let digest = digest(algorithm.as_str(), canonical_json(&runtime).as_bytes())?;
            let evidence: Value =
                serde_json::from_str(&attester.evidence(&digest)?).map_err(|e| {
                    ERR.unavailable(format!("the attester's evidence is not JSON: {e}"))
                })?;
            json!({
                "init-data": null,
                "runtime-data": {"nonce": nonce, "tee-pubkey": pubkey},
                "tee-evidence": {"primary_evidence": evidence, "additional_evidence": ""},
            })
        } else {
            let mut h = Sha384::new();
            h.update(nonce.as_bytes());
            h.update(pubkey.to_string().as_bytes());
            let evidence = attester.evidence(&h.finalize())?;
            json!({"tee-pubkey": pubkey, "tee-evidence": evidence})
        };
        session.post("/kbs/v0/attest", &attestation)?;
        let jwe = session.get(&format!("/kbs/v0/resource/{path}"))?;
        let secret = decrypt_jwe(&key, &jwe)?;
        if secret.is_empty() {
            return Err(ERR.refused(format!("{} is empty", self.config.key_uri)));
        }
        Ok(Passphrase::from_slice(&secret))
    }
}

const AUTH: &str = "/kbs/v0/auth";

impl Kbs<'_> {
    /// Speaks only the 0.1.0 protocol (tests: what a broker that demands another version
    /// answers).
    #[doc(hidden)]
    pub fn legacy_protocol_only(mut self) -> Self {
        self.versions = &[Protocol::V0_1];
        self
    }

    /// `auth` in the newest version the broker accepts; a broker of the 0.1.0 era refuses
    /// 0.4.0, so it is asked again in its version. When every version is refused, the
    /// broker's answer to the first is the error.
    fn authenticate(&self, session: &mut Session, tee: &str) -> Result<(Protocol, Value)> {
        let mut first = None;
        for &version in self.versions {
            match session.post(AUTH, &version.auth_request(tee)) {
                Ok(challenge) => return Ok((version, challenge)),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or_else(|| ERR.config("no protocol version to speak")))
    }

    /// The broker, its certificates checked.
    fn endpoint(&self) -> Result<Endpoint> {
        Endpoint::new(&self.config.kbs_url, self.config.kbs_root_cert.as_deref())
            .map_err(|e| http_error(&format!("kbs_root_cert: {e}"), &e))
    }
}

/// An HTTP failure as a provider error: a configuration that cannot work, or a broker that
/// cannot be reached or answers badly.
fn http_error(what: &str, e: &HttpError) -> Error {
    match e {
        HttpError::Certificates(_) | HttpError::Url(_) => ERR.config(what),
        _ => ERR.unavailable(what),
    }
}

/// The protocol versions spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Today's Trustee.
    V0_4,
    /// Brokers of the 0.1.0 era.
    V0_1,
}

impl Protocol {
    fn auth_request(self, tee: &str) -> Value {
        let (version, extra) = match self {
            Protocol::V0_4 => (
                "0.4.0",
                json!({"supported-hash-algorithms": ["sha256", "sha384", "sha512"]}),
            ),
            Protocol::V0_1 => ("0.1.0", json!("")),
        };
        json!({"version": version, "tee": tee, "extra-params": extra})
    }

    /// What the ephemeral key is offered for: brokers of the 0.1.0 era only wrap for RSA1_5
    /// (PKCS#1 v1.5).
    fn key_algorithm(self) -> &'static str {
        match self {
            Protocol::V0_4 => "RSA-OAEP-256",
            Protocol::V0_1 => "RSA1_5",
        }
    }
}

/// The runtime-data digest with the broker's selected algorithm (SHA-384 when it names none).
fn digest(algorithm: Option<&str>, data: &[u8]) -> Result<Vec<u8>> {
    Ok(match algorithm.map(str::to_ascii_lowercase).as_deref() {
        None | Some("sha384") => Sha384::digest(data).to_vec(),
        Some("sha256") => Sha256::digest(data).to_vec(),
        Some("sha512") => Sha512::digest(data).to_vec(),
        Some(other) => {
            return Err(ERR.unavailable(format!(
                "the broker selected the hash algorithm '{other}', which was not offered"
            )))
        }
    })
}

/// JSON in the canonical form of RFC 8785 (JCS) for the values the protocol hashes: object
/// members sorted by name, no white space. Strings are escaped as JSON requires, which for
/// JCS is serde_json's escaping; integers print alike (no floats occur here).
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // JCS orders by UTF-16 code units.
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            let inner: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical_json(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// One broker conversation: requests carrying the session cookie.
struct Session {
    endpoint: Endpoint,
    cookie: Option<String>,
}

impl Session {
    fn post(&mut self, path: &str, body: &Value) -> Result<Value> {
        self.request("POST", path, Some(body.to_string().as_bytes()))
    }

    fn get(&mut self, path: &str) -> Result<Value> {
        self.request("GET", path, None)
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Value> {
        let mut headers = vec![("Accept", "application/json")];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let cookie = self.cookie.clone();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        let response = self
            .endpoint
            .send(method, path, &headers, body)
            .map_err(|e| http_error(&format!("{method} {path}: {e}"), &e))?;
        for (k, v) in &response.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                if let Some(c) = v.split(';').next() {
                    self.cookie = Some(c.trim().to_owned());
                }
            }
        }
        if response.status != 200 {
            return Err(status_error(method, path, &response));
        }
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(response.body.as_bytes())
            .map_err(|e| ERR.unavailable(format!("{method} {path}: {e}")))
    }
}

/// A broker's answer other than 200: it refused (4xx), or failed (anything else). Trustee
/// explains itself as `{"type": ".../errors/<Name>", "detail": "..."}`: that is shown as
/// `<Name>: <detail>`, anything else as the body's text.
fn status_error(method: &str, path: &str, response: &Response) -> Error {
    let body: Option<Value> = serde_json::from_slice(response.body.as_bytes()).ok();
    let reason = match body
        .as_ref()
        .and_then(|b| Some((b["type"].as_str()?, b["detail"].as_str()?)))
    {
        Some((kind, detail)) => format!("{}: {detail}", kind.rsplit('/').next().unwrap_or(kind)),
        None => response.body_text(),
    };
    let what = format!("{method} {path}: HTTP {}: {reason}", response.status);
    if (400..500).contains(&response.status) {
        ERR.refused(what)
    } else {
        ERR.unavailable(what)
    }
}

/// Decrypts a JWE (JSON serialization) addressed to `key`.
fn decrypt_jwe(key: &RsaPrivateKey, jwe: &Value) -> Result<Zeroizing<Vec<u8>>> {
    let err = |msg: &str| ERR.unavailable(msg);
    let field = |name: &str| -> Result<Vec<u8>> {
        let text = jwe[name]
            .as_str()
            .ok_or_else(|| ERR.unavailable(format!("the resource response has no '{name}'")))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| ERR.unavailable(format!("'{name}' is not base64url: {e}")))
    };
    let protected_b64 = jwe["protected"]
        .as_str()
        .ok_or_else(|| err("the resource response is not a JWE (no 'protected')"))?;
    let header: Value = serde_json::from_slice(&field("protected")?)
        .map_err(|e| ERR.unavailable(format!("JWE header: {e}")))?;
    if header["enc"] != "A256GCM" {
        return Err(ERR.unavailable(format!("unsupported JWE enc {}", header["enc"])));
    }
    let wrapped = field("encrypted_key")?;
    let cek = Zeroizing::new(
        match header["alg"].as_str() {
            Some("RSA-OAEP-256") => key.decrypt(Oaep::new::<Sha256>(), &wrapped),
            Some("RSA-OAEP") => key.decrypt(Oaep::new::<sha1::Sha1>(), &wrapped),
            Some("RSA1_5") => key.decrypt(Pkcs1v15Encrypt, &wrapped),
            other => return Err(ERR.unavailable(format!("unsupported JWE alg {other:?}"))),
        }
        .map_err(|_| err("cannot unwrap the content key: the response is not for this session"))?,
    );
    let iv = field("iv")?;
    if cek.len() != 32 || iv.len() != 12 {
        return Err(err("bad JWE key or IV length"));
    }
    let mut ct = field("ciphertext")?;
    ct.extend_from_slice(&field("tag")?);
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| err("bad content key"))?;
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: &ct,
                aad: protected_b64.as_bytes(),
            },
        )
        .map_err(|_| err("the resource does not authenticate (JWE tag mismatch)"))?;
    Ok(Zeroizing::new(plain))
}

#[cfg(test)]
mod tests;
