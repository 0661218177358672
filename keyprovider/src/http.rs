//! The little HTTP/1.1 the network key providers need: one request per connection, over
//! plain TCP or TLS (rustls; its crypto provider is ring by default, or RustCrypto's pure-Rust
//! one with the `tls-rustcrypto` feature).
//!
//! Hand-written rather than a client crate: it is one request and one bounded response, the
//! response is read into a buffer of fixed capacity that is wiped (a client crate's buffers
//! grow and are freed unwiped), and the parser is a pure function that the fuzz target
//! `http_response` and a property test reach.
//!
//! # Security
//! Response bodies may hold key material: they live in fixed-capacity zeroizing buffers. TLS
//! trusts only the certificates it is given (the `kbs_root_cert` / `kms_cert_pem` of a volume
//! file), or the system bundle when none is given.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use zeroize::Zeroizing;

use crate::ServiceUrl;
use luks2::SecretBuf;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted.
const MAX_RESPONSE: usize = 1 << 20;
/// Debian's bundle of the system's trusted roots.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum HttpError {
    /// A host name that is not a TLS server name.
    Url(String),
    /// No usable certificate in the given PEM text.
    Certificates(String),
    /// Could not connect.
    Connect { addr: String, source: io::Error },
    /// The TLS handshake or record layer failed (an untrusted certificate, say).
    Tls(String),
    /// Reading or writing failed.
    Io(io::Error),
    /// The response is larger than [`MAX_RESPONSE`].
    TooLarge,
    /// Not an HTTP/1.1 response.
    Malformed,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Url(u) => write!(f, "'{u}' is not a TLS server name"),
            HttpError::Certificates(why) => write!(f, "{why}"),
            HttpError::Connect { addr, source } => write!(f, "cannot reach {addr}: {source}"),
            HttpError::Tls(why) => write!(f, "TLS: {why}"),
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::TooLarge => write!(f, "response over {MAX_RESPONSE} bytes"),
            HttpError::Malformed => write!(f, "malformed HTTP response"),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        // rustls reports handshake failures through io::Error with its error inside.
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => HttpError::Tls(tls.to_string()),
            None => HttpError::Io(e),
        }
    }
}

/// The rustls crypto provider this build uses.
pub(crate) fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "tls-ring")]
    return Arc::new(rustls::crypto::ring::default_provider());
    #[cfg(all(feature = "tls-rustcrypto", not(feature = "tls-ring")))]
    return Arc::new(rustls_rustcrypto::provider());
    #[cfg(not(any(feature = "tls-ring", feature = "tls-rustcrypto")))]
    compile_error!("keyprovider needs the tls-ring or the tls-rustcrypto feature");
}

/// A TLS client configuration trusting exactly the certificates in `pem`.
///
/// # Errors
/// [`HttpError::Certificates`] when `pem` holds no certificate or a malformed one.
pub(crate) fn tls_config(pem: &str) -> Result<Arc<ClientConfig>, HttpError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert =
            cert.map_err(|e| HttpError::Certificates(format!("bad PEM certificate: {e:?}")))?;
        roots
            .add(cert)
            .map_err(|e| HttpError::Certificates(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(HttpError::Certificates(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in the given text".into(),
        ));
    }
    let config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// [`tls_config`] for `pem`, or for the system bundle when there is none.
///
/// # Errors
/// As [`tls_config`]; also when no `pem` is given and the system bundle cannot be read.
pub(crate) fn tls_config_or_system(pem: Option<&str>) -> Result<Arc<ClientConfig>, HttpError> {
    match pem {
        Some(p) => tls_config(p),
        None => {
            let bundle = std::fs::read_to_string(SYSTEM_BUNDLE).map_err(|e| {
                HttpError::Certificates(format!(
                    "no CA certificate given and {SYSTEM_BUNDLE} cannot be read: {e}"
                ))
            })?;
            tls_config(&bundle)
        }
    }
}

/// Where requests go: the host name (the `Host` header and the name the certificate must
/// carry), the address to connect to, and TLS if any.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) connect: String,
    /// Prefixed to every request path (`/api`), or empty.
    pub(crate) base_path: String,
    pub(crate) tls: Option<Arc<ClientConfig>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        write!(f, "{scheme}://{} via {}", self.host, self.connect)
    }
}

impl Endpoint {
    /// Requests to `url`; `https` trusts `root_pem`, or the system bundle when it is `None`.
    ///
    /// # Errors
    /// Certificate errors as [`tls_config`].
    pub(crate) fn new(url: &ServiceUrl, root_pem: Option<&str>) -> Result<Self, HttpError> {
        let tls = if url.is_tls() {
            Some(tls_config_or_system(root_pem)?)
        } else {
            None
        };
        Ok(Endpoint {
            host: url.host().to_owned(),
            connect: format!("{}:{}", url.host(), url.port()),
            base_path: url.base_path().to_owned(),
            tls,
        })
    }

    /// Sends one request and reads the whole response (`Connection: close`).
    ///
    /// # Errors
    /// Connection, TLS and I/O failures, a response over [`MAX_RESPONSE`] or a malformed one.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let tcp = TcpStream::connect(&self.connect).map_err(|source| HttpError::Connect {
            addr: self.connect.clone(),
            source,
        })?;
        tcp.set_read_timeout(Some(TIMEOUT)).ok();
        tcp.set_write_timeout(Some(TIMEOUT)).ok();
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\n",
            self.base_path, self.host
        );
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        if let Some(b) = body {
            head += &format!("Content-Length: {}\r\n", b.len());
        }
        head += "Connection: close\r\n\r\n";
        let request = [head.as_bytes(), body.unwrap_or_default()];
        let raw = match &self.tls {
            None => exchange(tcp, &request)?,
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|_| HttpError::Url(self.host.clone()))?;
                let conn = ClientConnection::new(config.clone(), name)
                    .map_err(|e| HttpError::Tls(e.to_string()))?;
                exchange(StreamOwned::new(conn, tcp), &request)?
            }
        };
        parse_response(raw.as_bytes()).ok_or(HttpError::Malformed)
    }
}

/// Writes `request`, reads until the peer closes (a TLS peer that closes without
/// `close_notify` after a complete response is accepted: the length is checked by the parser).
fn exchange(mut s: impl Read + Write, request: &[&[u8]]) -> Result<SecretBuf, HttpError> {
    for part in request {
        s.write_all(part)?;
    }
    s.flush()?;
    let mut raw = SecretBuf::with_capacity(MAX_RESPONSE);
    let mut buf = Zeroizing::new([0u8; 16 * 1024]);
    loop {
        match s.read(&mut buf[..]) {
            Ok(0) => break,
            Ok(n) => raw
                .extend_from_slice(&buf[..n])
                .map_err(|_| HttpError::TooLarge)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(raw)
}

/// Status, headers and the (de-chunked) body of a response.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: SecretBuf,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Response({}, {} body bytes)",
            self.status,
            self.body.len()
        )
    }
}

impl Response {
    /// The first header called `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as one line of text, for error messages.
    pub(crate) fn body_text(&self) -> String {
        let text = String::from_utf8_lossy(self.body.as_bytes());
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Parses a whole response (what was read until the peer closed).
pub(crate) fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    if !status_line.starts_with("HTTP/1.") {
        return None;
    }
    // Three digits, 100 to 599 (RFC 9110): "1401", "+20" or "000" is no status.
    let code = status_line.split_whitespace().nth(1)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok().filter(|s| (100..=599).contains(s))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut response = Response {
        status,
        headers,
        // Never more body than bytes received: a fixed capacity, no reallocation.
        body: SecretBuf::with_capacity(raw.len()),
    };
    let mut body = &raw[end + 4..];
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            body = &body[line_end + 2..];
            if size == 0 {
                return Some(response);
            }
            response.body.extend_from_slice(body.get(..size)?).ok()?;
            body = body.get(size.checked_add(2)?..)?;
        }
    }
    if let Some(len) = response.header("content-length") {
        body = body.get(..len.parse::<usize>().ok()?)?;
    }
    response.body.extend_from_slice(body).ok()?;
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a peer sends, parsing returns (never panics), and a body never exceeds
        /// what was received.
        #[test]
        fn hostile_responses_do_not_panic(raw in proptest::collection::vec(any::<u8>(), 0..512),
                                          head in "HTTP/1\\.[01] [0-9]{3} [a-zA-Z]{0,4}\r\n((Content-Length: [0-9]{1,3}|Transfer-Encoding: chunked)\r\n)?\r\n") {
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&raw);
            if let Some(r) = parse_response(&bytes) {
                prop_assert!(r.body.len() <= bytes.len());
            }
            let _ = parse_response(&raw);
        }
    }

    #[test]
    fn endpoints() {
        let url = "http://kbs.example:8080/".parse().expect("url");
        let e = Endpoint::new(&url, None).unwrap();
        assert_eq!(
            (e.host.as_str(), e.connect.as_str()),
            ("kbs.example", "kbs.example:8080")
        );
        assert!(e.tls.is_none());
        let url = "https://x".parse().expect("url");
        let e = Endpoint::new(&url, Some("not a certificate")).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }

    /// Found by the http_response fuzz target: a four-digit status was taken as a status.
    #[test]
    fn regression_status_codes_have_three_digits() {
        let crash = b"HTTP/1.1 1401 Unauthorized\r\nTransfer-Ecndiong: chunked\r\n\r\n\0\0\0\0\0\x005\x0f\nerror\r\n3;x\r\xbf\xbf\n!!!\r\n0\r\n\r\n";
        assert!(parse_response(crash).is_none());
        for bad in [
            "HTTP/1.1 20 OK",
            "HTTP/1.1 +20 OK",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 2a0 OK",
            "HTTP/1.1 000 OK",
            "HTTP/1.1 600 OK",
        ] {
            assert!(
                parse_response(format!("{bad}\r\n\r\n").as_bytes()).is_none(),
                "{bad}"
            );
        }
        let ok = parse_response(b"HTTP/1.1 401 Unauthorized\r\n\r\n").expect("401");
        assert_eq!(ok.status, 401);
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.body.as_bytes()), (200, &b"abc"[..]));
        let r = parse_response(
            b"HTTP/1.1 404 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_bytes()), (404, &b"abcde"[..]));
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab",
            b"HTTP/1.1 200",
        ] {
            assert!(parse_response(bad).is_none());
        }
    }
}
