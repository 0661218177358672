//! What configures a key provider: the `[encrypt.*]` tables of cryptpilot's volume files (and,
//! with the same shape, of its full-disk configuration). Fields are typed as they are read:
//! a broker URL, a resource URI and a command are checked by the deserializer, so a TOML
//! parser reports the line and field of a bad value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// The `encrypt` table as written: each provider's table, at most one of which may be set
/// (see [`EncryptTable::provider`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptTable {
    /// `[encrypt.otp]`.
    pub otp: Option<OtpConfig>,
    /// `[encrypt.exec]`.
    pub exec: Option<ExecConfig>,
    /// `[encrypt.kbs]`.
    pub kbs: Option<KbsConfig>,
    /// `[encrypt.kms]`.
    pub kms: Option<KmsConfig>,
}

/// Why an [`EncryptTable`] does not name exactly one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChoiceError {
    /// No provider table.
    None,
    /// More than one, in table order.
    Several(Vec<&'static str>),
}

impl fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChoiceError::None => f.write_str("no key provider (otp, exec, kbs or kms)"),
            ChoiceError::Several(names) => write!(
                f,
                "more than one key provider ({}); choose one",
                names.join(", ")
            ),
        }
    }
}

impl EncryptTable {
    /// The one provider configured.
    ///
    /// # Errors
    /// [`ChoiceError`] when there is none or more than one.
    pub fn provider(self) -> Result<ProviderConfig, ChoiceError> {
        let mut all: Vec<ProviderConfig> = Vec::new();
        all.extend(self.otp.map(|_| ProviderConfig::Otp));
        all.extend(self.exec.map(ProviderConfig::Exec));
        all.extend(self.kbs.map(ProviderConfig::Kbs));
        all.extend(self.kms.map(ProviderConfig::Kms));
        match all.len() {
            0 => Err(ChoiceError::None),
            1 => Ok(all.remove(0)),
            _ => Err(ChoiceError::Several(
                all.iter().map(ProviderConfig::name).collect(),
            )),
        }
    }
}

/// `[encrypt.otp]`: no fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtpConfig {}

/// `[encrypt.exec]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Program to run (a name looked up on `PATH`, or a path); never empty.
    #[serde(deserialize_with = "non_empty")]
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `[encrypt.kbs]`: Trustee's key broker.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbsConfig {
    /// Base URL of the key broker.
    pub kbs_url: ServiceUrl,
    /// `kbs:///<repository>/<type>/<tag>` of the key.
    pub key_uri: ResourceUri,
    /// PEM root certificate for HTTPS.
    pub kbs_root_cert: Option<String>,
}

impl fmt::Debug for KbsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KbsConfig({}, {})", self.kbs_url, self.key_uri)
    }
}

/// `[encrypt.kms]`: an Alibaba Cloud KMS secret; the client key and its password are secrets
/// and never printed.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsConfig {
    /// KMS instance.
    pub kms_instance_id: String,
    /// Name of the secret holding the passphrase.
    pub secret_name: String,
    /// The client key (JSON with the private key data).
    pub client_key: Zeroizing<String>,
    /// The client key's password.
    pub client_key_password: Zeroizing<String>,
    /// PEM CA certificate of the instance endpoint.
    pub kms_cert_pem: Option<String>,
}

impl fmt::Debug for KmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KmsConfig({}, {}, [REDACTED])",
            self.kms_instance_id, self.secret_name
        )
    }
}

/// The one key provider of a volume.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderConfig {
    /// A fresh random key on every open.
    Otp,
    /// A command's output.
    Exec(ExecConfig),
    /// A key broker (Trustee KBS).
    Kbs(KbsConfig),
    /// Alibaba Cloud KMS.
    Kms(KmsConfig),
}

impl ProviderConfig {
    /// The table name (`otp`, `exec`, `kbs`, `kms`).
    pub fn name(&self) -> &'static str {
        match self {
            ProviderConfig::Otp => "otp",
            ProviderConfig::Exec(_) => "exec",
            ProviderConfig::Kbs(_) => "kbs",
            ProviderConfig::Kms(_) => "kms",
        }
    }
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(serde::de::Error::custom("empty"));
    }
    Ok(s)
}

/// A key service's base URL: `http://host[:port]` or `https://host[:port]`, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    tls: bool,
    host: String,
    port: u16,
    /// Where the service is mounted: `""` or `/api` (no trailing slash).
    base_path: String,
}

/// A string that is not what its type requires; the message names the expected form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue(String);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidValue {}

impl ServiceUrl {
    /// Whether requests go over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host name (or address) the certificate must name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path the service is mounted under (`/api` for `http://kbs:8081/api`), empty for
    /// none; the protocol's paths follow it.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

impl FromStr for ServiceUrl {
    type Err = InvalidValue;

    fn from_str(url: &str) -> Result<Self, InvalidValue> {
        let bad = || InvalidValue(format!("'{url}' is not http(s)://host[:port][/path]"));
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("https://") {
            (r, true, 443)
        } else if let Some(r) = url.strip_prefix("http://") {
            (r, false, 80)
        } else {
            return Err(bad());
        };
        let rest = rest.trim_end_matches('/');
        let (rest, base_path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // A base path of plain segments: no query, fragment, escapes or `..`.
        let plain_segment = |seg: &str| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        };
        if !base_path.is_empty() && !base_path[1..].split('/').all(plain_segment) {
            return Err(bad());
        }
        if rest.is_empty()
            || rest.contains(['/', '?', '#', '@'])
            || rest.contains(char::is_whitespace)
        {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (rest, default_port),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(ServiceUrl {
            tls,
            host: host.to_owned(),
            port,
            base_path: base_path.to_owned(),
        })
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(
            f,
            "{scheme}://{}:{}{}",
            self.host, self.port, self.base_path
        )
    }
}

/// A broker resource: `kbs:///<repository>/<type>/<tag>`, each part a plain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUri {
    path: String,
}

impl ResourceUri {
    /// `repository/type/tag`, as the resource request's path ends.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl FromStr for ResourceUri {
    type Err = InvalidValue;

    fn from_str(uri: &str) -> Result<Self, InvalidValue> {
        let bad = || InvalidValue(format!("'{uri}' is not kbs:///<repository>/<type>/<tag>"));
        let path = uri.strip_prefix("kbs:///").ok_or_else(bad)?;
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
            return Err(bad());
        }
        Ok(ResourceUri {
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kbs:///{}", self.path)
    }
}

macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
deserialize_from_str!(ServiceUrl, ResourceUri);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls() {
        let u: ServiceUrl = "http://kbs.example:8080/".parse().expect("url");
        assert_eq!(
            (u.host(), u.port(), u.is_tls()),
            ("kbs.example", 8080, false)
        );
        let u: ServiceUrl = "https://10.0.0.1".parse().expect("url");
        assert_eq!((u.host(), u.port(), u.is_tls()), ("10.0.0.1", 443, true));
        assert_eq!(u.to_string(), "https://10.0.0.1:443");
        // The documented Trustee deployment answers under a path.
        let u: ServiceUrl = "http://10.0.0.2:8081/api".parse().expect("url");
        assert_eq!(
            (u.host(), u.port(), u.base_path()),
            ("10.0.0.2", 8081, "/api")
        );
        assert_eq!(u.to_string(), "http://10.0.0.2:8081/api");
        let u: ServiceUrl = "https://kbs/a/b-c_d.e~/".parse().expect("url");
        assert_eq!(u.base_path(), "/a/b-c_d.e~");
        for bad in [
            "ftp://x",
            "http://",
            "http://x/p?q",
            "http://x/p#f",
            "http://x/a//b",
            "http://x/a/../b",
            "http://x/%2e",
            "http://x/a b",
            "http://x:port",
            "http://u@x",
            "http://a b",
            "x:80",
        ] {
            let e = bad.parse::<ServiceUrl>().expect_err(bad);
            assert!(e.to_string().contains("http(s)://host[:port]"), "{e}");
        }
    }

    #[test]
    fn resource_uris() {
        let r: ResourceUri = "kbs:///default/key/volume-1".parse().expect("uri");
        assert_eq!(r.path(), "default/key/volume-1");
        assert_eq!(r.to_string(), "kbs:///default/key/volume-1");
        for bad in [
            "kbs://default/key/x",
            "kbs:///a/b",
            "kbs:///a/b/c/d",
            "kbs:///a/../c",
            "kbs:///a/b/c?x",
            "kbs:///a//c",
        ] {
            assert!(bad.parse::<ResourceUri>().is_err(), "{bad}");
        }
    }

    #[test]
    fn exactly_one_provider() {
        let t = |otp: bool, exec: bool| EncryptTable {
            otp: otp.then_some(OtpConfig {}),
            exec: exec.then(|| ExecConfig {
                command: "cat".into(),
                args: vec![],
            }),
            kbs: None,
            kms: None,
        };
        assert_eq!(t(true, false).provider().expect("otp").name(), "otp");
        assert_eq!(t(false, false).provider().unwrap_err(), ChoiceError::None);
        assert_eq!(
            t(true, true).provider().unwrap_err(),
            ChoiceError::Several(vec!["otp", "exec"])
        );
    }
}
