//! The `kms` key provider: a secret of an Alibaba Cloud KMS instance, fetched with the
//! instance API's `GetSecretValue` and the client-key signature, spoken natively.
//!
//! The request is `POST https://<kms_instance_id>.cryptoservice.kms.aliyuncs.com/` with a
//! protocol-buffer body and these headers:
//!
//! ```text
//! x-kms-apiversion: dkms-gcs-0.2        x-kms-apiname: GetSecretValue
//! x-kms-signaturemethod: RSA_PKCS1_SHA_256
//! x-kms-acccesskeyid: <KeyId of the client key>   (sic: three c's)
//! Content-Type: application/x-protobuf  Content-Sha256: <upper-case hex SHA-256 of the body>
//! Date: <RFC 1123 date>                 Authorization: Bearer <base64 signature>
//! ```
//!
//! The signature is RSASSA-PKCS1-v1_5 with SHA-256, by the client key, over
//! `"POST\n" + content-sha256 + "\n" + content-type + "\n" + date + "\n"` followed by every
//! `x-kms-*` header as `name:value\n` in name order, then the resource `/`.
//!
//! The client key is what the console hands out: `clientKey_<id>.json` holding `KeyId` and
//! `PrivateKeyData` (a base64 PKCS#12 file) and its password file. The secret's value is the
//! passphrase in base64, as the existing cryptpilot stores it.
//!
//! # Security
//! TLS authenticates the instance against `kms_cert_pem` (the instance's CA,
//! `PrivateKmsCA_<id>.pem`), or the system roots when it is not set. The client key, its
//! password and the secret are held in zeroizing buffers and never printed; the PKCS#12
//! reader's own copy of the decrypted key is freed, not wiped (the key also sits in the volume
//! file in the clear), and rustls's record buffers are not wiped either.

mod proto;

use std::thread::sleep;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use luks2::Passphrase;
use luks2::SecretBuf;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::Errors;
use crate::http::{self, Endpoint, HttpError};
use crate::{KeyProvider, KmsConfig, Result};

const API_VERSION: &str = "dkms-gcs-0.2";
const SIGNATURE_METHOD: &str = "RSA_PKCS1_SHA_256";
const CONTENT_TYPE: &str = "application/x-protobuf";
/// Tries per fetch: the network may still be coming up at boot.
const ATTEMPTS: u32 = 5;
/// Error codes the instance API names as worth retrying.
const RETRYABLE: [&str; 3] = [
    "Rejected.Throttling",
    "ServiceUnavailableTemporary",
    "InternalFailure",
];

const ERR: Errors = Errors("kms");

/// The provider for one `[encrypt.kms]` table.
#[derive(Debug)]
pub struct Kms<'a> {
    config: &'a KmsConfig,
    /// Where to connect instead of `<host>:443` (tests).
    connect: Option<String>,
    retry_delay: Duration,
}

impl<'a> Kms<'a> {
    /// The provider for `config`.
    pub fn new(config: &'a KmsConfig) -> Self {
        Kms {
            config,
            connect: None,
            retry_delay: Duration::from_secs(1),
        }
    }

    /// The client key (opened with its password) and the instance endpoint, both checked.
    fn prepare(&self) -> Result<(ClientKey, Endpoint)> {
        let key = ClientKey::parse(&self.config.client_key, &self.config.client_key_password)?;
        Ok((key, self.endpoint()?))
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let id = &self.config.kms_instance_id;
        let label_ok = !id.is_empty()
            && id.len() <= 63
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !id.starts_with('-');
        if !label_ok {
            return Err(ERR.config(format!(
                "kms_instance_id '{id}' is not an instance id (kst-...)"
            )));
        }
        let host = format!("{id}.cryptoservice.kms.aliyuncs.com");
        let tls = http::tls_config_or_system(self.config.kms_cert_pem.as_deref())
            .map_err(|e| ERR.config(format!("kms_cert_pem: {e}")))?;
        Ok(Endpoint {
            connect: self
                .connect
                .clone()
                .unwrap_or_else(|| format!("{host}:443")),
            host,
            base_path: String::new(),
            tls: Some(tls),
        })
    }
}

impl KeyProvider for Kms<'_> {
    fn check(&self) -> Result<()> {
        self.prepare().map(drop)
    }

    /// # Errors
    /// [`crate::ErrorKind::Config`] for an unusable client key, password, instance id or CA;
    /// [`crate::ErrorKind::Unavailable`] when the instance cannot be reached, fails or
    /// throttles after every retry, or answers with something that is not the protocol;
    /// [`crate::ErrorKind::Refused`] when it refuses (unknown key or secret, a signature it
    /// does not accept) or the secret is empty or not base64.
    fn passphrase(&self) -> Result<Passphrase> {
        let (key, endpoint) = self.prepare()?;
        let body = request_body(&self.config.secret_name);
        let mut attempt = 1;
        let response = loop {
            match get_secret_value(&endpoint, &key, &body) {
                Err(Failure::Transient(why)) if attempt < ATTEMPTS => {
                    eprintln!(
                        "kms key provider: attempt {attempt} of {ATTEMPTS} failed ({why}); retrying"
                    );
                    attempt += 1;
                    sleep(self.retry_delay);
                }
                Err(failure) => {
                    let (Failure::Transient(why) | Failure::Broken(why) | Failure::Refused(why)) =
                        &failure;
                    let hint = if why.starts_with("TLS") && self.config.kms_cert_pem.is_none() {
                        " (set kms_cert_pem to the instance's CA, PrivateKmsCA_<id>.pem)"
                    } else {
                        ""
                    };
                    let what = format!(
                        "GetSecretValue '{}' on {}: {why}{hint}",
                        self.config.secret_name, endpoint.host
                    );
                    return Err(match failure {
                        Failure::Transient(_) | Failure::Broken(_) => ERR.unavailable(what),
                        Failure::Refused(_) => ERR.refused(what),
                    });
                }
                Ok(r) => break r,
            }
        };
        let data = proto::bytes_field(response.as_bytes(), 3)
            .map_err(|e| ERR.unavailable(format!("GetSecretValue response: {e}")))?;
        let text = data.trim_ascii();
        let pass = Zeroizing::new(STANDARD.decode(text).map_err(|_| {
            ERR.refused(format!(
                "secret '{}' is not base64 (the passphrase is stored base64-encoded)",
                self.config.secret_name
            ))
        })?);
        if pass.is_empty() {
            return Err(ERR.refused(format!("secret '{}' is empty", self.config.secret_name)));
        }
        Ok(Passphrase::from_slice(&pass))
    }
}

/// Why a request failed.
enum Failure {
    /// Worth another try (the network, throttling, a temporary failure).
    Transient(String),
    /// Not worth another try, and not the instance's refusal (TLS, a malformed answer).
    Broken(String),
    /// The instance refused.
    Refused(String),
}

/// `GetSecretValueRequest { SecretName }`.
fn request_body(secret_name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    proto::put_bytes(&mut body, 1, secret_name.as_bytes());
    body
}

/// One signed `GetSecretValue` call; the response body on HTTP 200.
fn get_secret_value(
    endpoint: &Endpoint,
    key: &ClientKey,
    body: &[u8],
) -> std::result::Result<SecretBuf, Failure> {
    let owned = signed_headers(key, body, &http_date(SystemTime::now()));
    let headers: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = match endpoint.send("POST", "/", &headers, Some(body)) {
        Ok(r) => r,
        Err(e @ (HttpError::Connect { .. } | HttpError::Io(_))) => {
            return Err(Failure::Transient(e.to_string()))
        }
        // A TLS failure is not retried: an untrusted certificate stays untrusted.
        Err(e) => return Err(Failure::Broken(e.to_string())),
    };
    if response.status == 200 {
        return Ok(response.body);
    }
    let body = response.body.as_bytes();
    // Errors come as an `Error` message; fall back to the text of anything else.
    let status = response.status;
    let code = proto::text_field(body, 2);
    let message = if code.is_empty() {
        format!("HTTP {status}: {}", response.body_text())
    } else {
        format!(
            "HTTP {status} {code}: {} (request id {})",
            proto::text_field(body, 3),
            proto::text_field(body, 4)
        )
    };
    if RETRYABLE.contains(&code.as_str()) || (code.is_empty() && status >= 500) {
        Err(Failure::Transient(message))
    } else {
        Err(Failure::Refused(message))
    }
}

/// Every header of a request with `body` sent at `date`, signed by `key`.
fn signed_headers(key: &ClientKey, body: &[u8], date: &str) -> Vec<(&'static str, String)> {
    let sha = content_sha256(body);
    let kms_headers = [
        ("x-kms-acccesskeyid", key.id.as_str()),
        ("x-kms-apiname", "GetSecretValue"),
        ("x-kms-apiversion", API_VERSION),
        ("x-kms-signaturemethod", SIGNATURE_METHOD),
    ];
    let signature = key.sign(&string_to_sign(&sha, date, &kms_headers));
    let mut headers: Vec<(&'static str, String)> = kms_headers
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    headers.extend([
        ("Accept", CONTENT_TYPE.to_owned()),
        ("Content-Type", CONTENT_TYPE.to_owned()),
        ("Content-Sha256", sha),
        ("Date", date.to_owned()),
        (
            "User-Agent",
            concat!("cryptpilot/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
        ("Authorization", format!("Bearer {signature}")),
    ]);
    headers
}

/// Upper-case hex SHA-256, as the `Content-Sha256` header carries it.
fn content_sha256(body: &[u8]) -> String {
    luks2::hex::encode(&Sha256::digest(body)).to_ascii_uppercase()
}

/// What the client key signs. `kms_headers` must be in name order.
fn string_to_sign(sha: &str, date: &str, kms_headers: &[(&str, &str)]) -> String {
    let mut s = format!("POST\n{sha}\n{CONTENT_TYPE}\n{date}\n");
    for (name, value) in kms_headers {
        s += &format!("{name}:{}\n", value.trim());
    }
    s + "/"
}

/// An RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The console's `clientKey_<id>.json`: the key id and the private key from its PKCS#12.
struct ClientKey {
    id: String,
    key: SigningKey<Sha256>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawClientKey {
    key_id: String,
    private_key_data: Zeroizing<String>,
}

impl ClientKey {
    /// `json` is the client key file's text, `password` its password file's (a trailing
    /// newline is ignored).
    fn parse(json: &str, password: &str) -> Result<Self> {
        let raw: RawClientKey = serde_json::from_str(json).map_err(|e| {
            ERR.config(format!(
                "client_key is not a client key file (JSON with KeyId and PrivateKeyData): {e}"
            ))
        })?;
        let der = Zeroizing::new(
            STANDARD
                .decode(raw.private_key_data.trim())
                .map_err(|_| ERR.config("client_key: PrivateKeyData is not base64"))?,
        );
        let store =
            p12_keystore::KeyStore::from_pkcs12(&der, password.trim_end()).map_err(|e| {
                let why = e.to_string();
                if why.contains("MAC") {
                    ERR.config(
                        "client_key_password does not open client_key (PKCS#12 MAC mismatch)",
                    )
                } else {
                    ERR.config(format!(
                        "client_key: PrivateKeyData is not usable PKCS#12: {why}"
                    ))
                }
            })?;
        let pkcs8 = store
            .entries()
            .find_map(|(_, entry)| match entry {
                p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => {
                    Some(Zeroizing::new(chain.key().to_vec()))
                }
                _ => None,
            })
            .ok_or_else(|| ERR.config("client_key: the PKCS#12 file holds no private key"))?;
        drop(store);
        let key = RsaPrivateKey::from_pkcs8_der(&pkcs8)
            .map_err(|e| ERR.config(format!("client_key: not an RSA private key: {e}")))?;
        Ok(ClientKey {
            id: raw.key_id,
            key: SigningKey::new(key),
        })
    }

    /// Base64 RSASSA-PKCS1-v1_5 SHA-256 signature of `text`.
    fn sign(&self, text: &str) -> String {
        STANDARD.encode(self.key.sign(text.as_bytes()).to_bytes())
    }
}

#[cfg(test)]
mod tests;
