//! The `kbs` key provider: Trustee's key-broker protocol (KBS attestation protocol 0.1.0),
//! spoken natively.
//!
//! 1. `POST /kbs/v0/auth` `{"version", "tee", "extra-params"}` -> a nonce and a session cookie.
//! 2. An ephemeral RSA-2048 key is made; the attester binds `sha384(nonce || tee-pubkey JSON)`
//!    into its evidence; `POST /kbs/v0/attest` `{"tee-pubkey", "tee-evidence"}`.
//! 3. `GET /kbs/v0/resource/<repository>/<type>/<tag>` -> the secret as a JWE encrypted to the
//!    ephemeral key (`RSA-OAEP-256`, `RSA-OAEP` or `RSA1_5`, with `A256GCM`).
//!
//! # Security
//! The secret is only readable with the ephemeral private key, which never leaves this
//! process, so it stays confidential over plain HTTP. HTTPS (`kbs_root_cert`) also
//! authenticates the broker; this build has no pure-Rust TLS yet and refuses `https://` URLs
//! with a clear error instead of silently downgrading.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use luks2::Passphrase;
use rsa::sha2::{Digest, Sha256, Sha384};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::provider::KeyProvider;
use crate::error::{CliError, CliResult};
use cryptpilot_config::KbsConfig;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted from the broker.
const MAX_RESPONSE: usize = 1 << 20;

fn err(msg: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("kbs key provider: {msg}"))
}

/// Where attestation evidence comes from: one small trait, one implementation per TEE.
pub(crate) trait Attester {
    /// The `tee` name the broker expects (`sample`, `tdx`, `snp`, ...).
    fn tee(&self) -> &str;
    /// Evidence binding `report_data` (a SHA-384 digest), as the broker's verifier reads it.
    fn evidence(&self, report_data: &[u8]) -> CliResult<String>;
}

/// Trustee's `sample` TEE: evidence without hardware, accepted only by brokers configured
/// for testing. The real TEE attesters (TDX and SEV-SNP quotes) plug in here.
pub(crate) struct SampleAttester;

impl Attester for SampleAttester {
    fn tee(&self) -> &str {
        "sample"
    }

    fn evidence(&self, report_data: &[u8]) -> CliResult<String> {
        Ok(json!({"svn": "1", "report_data": STANDARD.encode(report_data)}).to_string())
    }
}

/// The provider for one `[encrypt.kbs]` table.
pub(crate) struct Kbs<'a> {
    pub(crate) config: &'a KbsConfig,
    pub(crate) attester: Box<dyn Attester>,
}

impl KeyProvider for Kbs<'_> {
    fn passphrase(&self) -> CliResult<Passphrase> {
        let (host, port) = parse_url(&self.config.kbs_url)?;
        let path = resource_path(&self.config.key_uri)?;
        let mut session = Session {
            host,
            port,
            cookie: None,
        };
        let challenge = session.post(
            "/kbs/v0/auth",
            &json!({"version": "0.1.0", "tee": self.attester.tee(), "extra-params": ""}),
        )?;
        let nonce = challenge["nonce"]
            .as_str()
            .ok_or_else(|| err("the broker's challenge has no nonce"))?
            .to_owned();
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .map_err(|e| err(format!("cannot make the ephemeral key: {e}")))?;
        let pubkey = json!({
            "kty": "RSA",
            "alg": "RSA-OAEP-256",
            "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        });
        let mut h = Sha384::new();
        h.update(nonce.as_bytes());
        h.update(pubkey.to_string().as_bytes());
        let evidence = self.attester.evidence(&h.finalize())?;
        session.post(
            "/kbs/v0/attest",
            &json!({"tee-pubkey": pubkey, "tee-evidence": evidence}),
        )?;
        let jwe = session.get(&format!("/kbs/v0/resource/{path}"))?;
        let secret = decrypt_jwe(&key, &jwe)?;
        if secret.is_empty() {
            return Err(err(format!("{} is empty", self.config.key_uri)));
        }
        Ok(Passphrase::from_slice(&secret))
    }
}

/// `http://host[:port]` (no path). `https://` is refused: see the module's security notes.
fn parse_url(url: &str) -> CliResult<(String, u16)> {
    if url.starts_with("https://") {
        return Err(err(format!(
            "{url}: HTTPS is not supported by this build (no pure-Rust TLS); the secret is \
             encrypted to an attested key either way, so an http:// URL keeps it confidential"
        )));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| err(format!("'{url}' is not an http:// URL")))?
        .trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(err(format!("'{url}' must be http://host[:port]")));
    }
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_owned(),
            p.parse().map_err(|_| err(format!("bad port in '{url}'")))?,
        )),
        None => Ok((rest.to_owned(), 80)),
    }
}

/// `kbs:///repository/type/tag` -> `repository/type/tag`.
fn resource_path(uri: &str) -> CliResult<String> {
    let path = uri
        .strip_prefix("kbs:///")
        .ok_or_else(|| err(format!("'{uri}' is not kbs:///<repository>/<type>/<tag>")))?;
    let parts: Vec<&str> = path.split('/').collect();
    let ok = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if !ok {
        return Err(err(format!(
            "'{uri}' is not kbs:///<repository>/<type>/<tag>"
        )));
    }
    Ok(path.to_owned())
}

/// One broker conversation: HTTP/1.1 requests carrying the session cookie.
struct Session {
    host: String,
    port: u16,
    cookie: Option<String>,
}

impl Session {
    fn post(&mut self, path: &str, body: &Value) -> CliResult<Value> {
        self.request("POST", path, Some(&body.to_string()))
    }

    fn get(&mut self, path: &str) -> CliResult<Value> {
        self.request("GET", path, None)
    }

    fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> CliResult<Value> {
        let addr = format!("{}:{}", self.host, self.port);
        let mut s =
            TcpStream::connect(&addr).map_err(|e| err(format!("cannot reach {addr}: {e}")))?;
        s.set_read_timeout(Some(TIMEOUT)).ok();
        s.set_write_timeout(Some(TIMEOUT)).ok();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.host
        );
        if let Some(c) = &self.cookie {
            req += &format!("Cookie: {c}\r\n");
        }
        if let Some(b) = body {
            req += &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            );
        } else {
            req += "\r\n";
        }
        s.write_all(req.as_bytes())
            .map_err(|e| err(format!("{method} {path}: {e}")))?;
        let mut raw = Vec::new();
        s.take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| err(format!("{method} {path}: {e}")))?;
        let raw = Zeroizing::new(raw);
        if raw.len() > MAX_RESPONSE {
            return Err(err(format!(
                "{method} {path}: response over {MAX_RESPONSE} bytes"
            )));
        }
        let (status, headers, body) = parse_response(&raw)
            .ok_or_else(|| err(format!("{method} {path}: malformed HTTP response")))?;
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                if let Some(c) = v.split(';').next() {
                    self.cookie = Some(c.trim().to_owned());
                }
            }
        }
        if status != 200 {
            let text = String::from_utf8_lossy(&body);
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(err(format!("{method} {path}: HTTP {status}: {text}")));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| err(format!("{method} {path}: {e}")))
    }
}

/// Status, headers and body (de-chunked) of an HTTP/1.1 response.
type Response = (u16, Vec<(String, String)>, Zeroizing<Vec<u8>>);

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = &raw[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Zeroizing::new(Vec::new());
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            body = &body[line_end + 2..];
            if size == 0 {
                return Some((status, headers, out));
            }
            out.extend_from_slice(body.get(..size)?);
            body = body.get(size + 2..)?;
        }
    }
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = body.get(..len)?;
    }
    Some((status, headers, Zeroizing::new(body.to_vec())))
}

/// Decrypts a JWE (JSON serialization) addressed to `key`.
fn decrypt_jwe(key: &RsaPrivateKey, jwe: &Value) -> CliResult<Zeroizing<Vec<u8>>> {
    let field = |name: &str| -> CliResult<Vec<u8>> {
        let text = jwe[name]
            .as_str()
            .ok_or_else(|| err(format!("the resource response has no '{name}'")))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| err(format!("'{name}' is not base64url: {e}")))
    };
    let protected_b64 = jwe["protected"]
        .as_str()
        .ok_or_else(|| err("the resource response is not a JWE (no 'protected')"))?;
    let header: Value = serde_json::from_slice(&field("protected")?)
        .map_err(|e| err(format!("JWE header: {e}")))?;
    if header["enc"] != "A256GCM" {
        return Err(err(format!("unsupported JWE enc {}", header["enc"])));
    }
    let wrapped = field("encrypted_key")?;
    let cek = Zeroizing::new(
        match header["alg"].as_str() {
            Some("RSA-OAEP-256") => key.decrypt(Oaep::new::<Sha256>(), &wrapped),
            Some("RSA-OAEP") => key.decrypt(Oaep::new::<sha1::Sha1>(), &wrapped),
            Some("RSA1_5") => key.decrypt(Pkcs1v15Encrypt, &wrapped),
            other => return Err(err(format!("unsupported JWE alg {other:?}"))),
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
