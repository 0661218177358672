//! The real Trustee key broker (`kbs`), as a test fixture.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository this build stores its resources under, and its type.
pub const REPOSITORY: &str = "default/local-resources";

/// Where the broker's binaries and configurations are: `shared/tools/trustee` beside the
/// repository (as CI lays it out), or `$TRUSTEE_TOOLS`.
pub fn tools() -> PathBuf {
    if let Some(dir) = std::env::var_os("TRUSTEE_TOOLS") {
        return PathBuf::from(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("shared/tools/trustee");
    assert!(
        dir.join("kbs").is_file(),
        "no Trustee key broker at {} (shared/ belongs beside the repository; or set TRUSTEE_TOOLS)",
        dir.display()
    );
    dir
}

/// How the broker is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Install a resource policy that releases resources to every attested client, the
    /// `sample` TEE included. Without it the broker's default policy denies `sample`.
    pub allow_all: bool,
    /// Serve HTTPS with a leaf for 127.0.0.1 from a CA made for this broker.
    pub tls: bool,
    /// Resources as `(tag, bytes)` under [`REPOSITORY`].
    pub resources: Vec<(String, Vec<u8>)>,
}

/// A running broker; stopped (killed and reaped) on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls: bool,
}

impl Broker {
    /// Starts a broker and waits (a few seconds at most) until it accepts connections.
    ///
    /// # Panics
    /// When the binary is missing, the certificates cannot be made, or it does not start.
    pub fn start(opts: &Options) -> Broker {
        let tools = tools();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let repo = d.join("storage/repository");
        std::fs::create_dir_all(&repo).unwrap();
        for (tag, bytes) in &opts.resources {
            let name = format!("{}\\x2F{tag}", REPOSITORY.replace('/', "\\x2F"));
            std::fs::write(repo.join(name), bytes).unwrap();
        }
        if opts.allow_all {
            std::fs::create_dir_all(d.join("storage/kbs")).unwrap();
            std::fs::copy(
                tools.join("allow_all.rego"),
                d.join("storage/kbs/resource-policy.rego"),
            )
            .unwrap();
        }
        if opts.tls {
            make_certificates(&d.join("tls"));
        }
        // A port can be taken between finding it free and the broker binding it: try again.
        for _ in 0..5 {
            let port = free_port();
            write_config(&tools, d, port, opts.tls);
            let log = std::fs::File::create(d.join("kbs.log")).unwrap();
            let child = Command::new(tools.join("kbs"))
                .arg("-c")
                .arg(d.join("kbs-config.toml"))
                .current_dir(d)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start kbs");
            let mut child = child;
            if wait_ready(&mut child, port) {
                return Broker {
                    child,
                    dir,
                    port,
                    tls: opts.tls,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the key broker did not start; see {}/kbs.log", d.display());
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM of the CA that issued its certificate (HTTPS only).
    pub fn ca_pem(&self) -> Option<String> {
        self.tls
            .then(|| std::fs::read_to_string(self.dir.path().join("tls/ca.crt")).unwrap())
    }

    /// What it logged so far (for assertion messages).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("kbs.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the broker answers within a few seconds (false when it exited first).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test configuration (built-in attestation service, sample verifier, local storage, an
/// open admin API) on `port`, with HTTPS settings when `tls`.
fn write_config(tools: &Path, dir: &Path, port: u16, tls: bool) {
    let base = std::fs::read_to_string(tools.join("kbs-config-insecure-admin.toml")).unwrap();
    let server = if tls {
        format!(
            "sockets = [\"127.0.0.1:{port}\"]\ninsecure_http = false\nprivate_key = \"./tls/https.key\"\ncertificate = \"./tls/https.crt\""
        )
    } else {
        format!("sockets = [\"127.0.0.1:{port}\"]\ninsecure_http = true")
    };
    let config = base.replace(
        "sockets = [\"127.0.0.1:8080\"]\ninsecure_http = true",
        &server,
    );
    assert_ne!(
        config, base,
        "the broker's sample configuration changed shape"
    );
    std::fs::write(dir.join("kbs-config.toml"), config).unwrap();
}

/// A CA and a leaf for 127.0.0.1 (rustls refuses a self-signed certificate used as its own
/// CA), made with the openssl command.
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian package openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=cryptpilot test broker CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "https.key",
        "-out",
        "https.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "https.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "https.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
