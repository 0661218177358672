//! Loopback HTTP(S) servers for the key-provider tests: one request per connection, answered
//! by a handler the test supplies. TLS uses the test certificates in `testdata/`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// The test root CA, which issued [`SERVER_CERT`].
pub(crate) const CA_PEM: &str = include_str!("testdata/ca.pem");
/// A root that issued nothing used here.
pub(crate) const OTHER_CA_PEM: &str = include_str!("testdata/other-ca.pem");
const SERVER_CERT: &str = include_str!("testdata/server.pem");
const SERVER_KEY: &str = include_str!("testdata/server.key");
/// A host name the server certificate carries.
pub(crate) const KMS_HOST: &str = "kst-test0123.cryptoservice.kms.aliyuncs.com";

/// One request as the server read it.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (any case), or "".
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A response: status, extra header lines (each ending in CRLF) and body.
pub(crate) type Reply = (u16, String, Vec<u8>);

fn read_request(s: &mut impl Read) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let len: usize = request.header("content-length").parse().unwrap_or(0);
    request.body = vec![0u8; len];
    s.read_exact(&mut request.body).ok()?;
    Some(request)
}

fn answer(mut s: impl Read + Write, handler: &mut dyn FnMut(Request) -> Reply) {
    let Some(request) = read_request(&mut s) else {
        return;
    };
    let (status, extra, body) = handler(request);
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    let _ = s.write_all(&out);
    let _ = s.flush();
}

fn tls_server() -> Arc<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(SERVER_CERT.as_bytes())
            .collect::<Result<_, _>>()
            .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY.as_bytes()).expect("server key");
    let config = ServerConfig::builder_with_provider(crate::http::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    Arc::new(config)
}

/// Serves on a loopback port until the test ends; over TLS when `tls`.
pub(crate) fn serve(
    tls: bool,
    mut handler: impl FnMut(Request) -> Reply + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = tls.then(tls_server);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp): Result<TcpStream, _> = conn else {
                return;
            };
            match &config {
                None => answer(tcp, &mut handler),
                Some(c) => {
                    let conn = ServerConnection::new(c.clone()).expect("tls session");
                    let mut stream = StreamOwned::new(conn, tcp);
                    answer(&mut stream, &mut handler);
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                }
            }
        }
    });
    addr
}
