//! Attesters: where the `kbs` provider's attestation evidence comes from. One small trait,
//! one implementation per TEE, chosen by what the guest has.
//!
//! - Intel TDX: a TD quote from the kernel's configfs-tsm interface
//!   (`/sys/kernel/config/tsm/report`, Linux 6.7+), with the CC event log when the firmware
//!   publishes it, as Trustee's TDX verifier reads them (`{"cc_eventlog", "quote"}`).
//! - No TEE: Trustee's `sample` evidence, accepted only by brokers configured for testing.
//! - AMD SEV-SNP: detected and refused with a clear error (not in this build).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::error::Errors;
use crate::{Error, Result};

/// Evidence that cannot be made: the broker was not asked, so try again (or fix the guest).
fn err(msg: impl std::fmt::Display) -> Error {
    Errors("kbs").unavailable(format!("attestation: {msg}"))
}

/// A source of attestation evidence.
pub trait Attester {
    /// The `tee` name the broker expects (`sample`, `tdx`, ...).
    fn tee(&self) -> &str;
    /// Evidence binding `report_data` (a SHA-384 digest), as the broker's verifier reads it.
    fn evidence(&self, report_data: &[u8]) -> Result<String>;
}

/// Trustee's `sample` TEE: evidence without hardware.
#[derive(Debug)]
pub struct SampleAttester;

impl Attester for SampleAttester {
    fn tee(&self) -> &str {
        "sample"
    }

    fn evidence(&self, report_data: &[u8]) -> Result<String> {
        Ok(json!({"svn": "1", "report_data": STANDARD.encode(report_data)}).to_string())
    }
}

/// Where TD quotes come from.
pub trait QuoteSource {
    /// A quote over the 64 bytes of `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>>;
}

/// The kernel's configfs-tsm report interface: make a report directory, write `inblob`, read
/// `outblob`, check nobody else wrote in between (`generation`), remove the directory.
#[derive(Debug)]
pub struct ConfigfsTsm {
    /// The report directory (`/sys/kernel/config/tsm/report`).
    pub root: PathBuf,
    /// The `provider` the reports must come from (`tdx_guest`).
    pub provider: &'static str,
}

impl QuoteSource for ConfigfsTsm {
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = self.root.join(format!(
            "cryptpilot-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).map_err(|e| {
            err(format!(
                "cannot create a report in {} ({e}); is configfs mounted?",
                self.root.display()
            ))
        })?;
        let result = read_report(&dir, report_data, self.provider);
        let _ = fs::remove_dir(&dir);
        result
    }
}

fn read_report(dir: &Path, report_data: &[u8; 64], want: &str) -> Result<Vec<u8>> {
    let read = |name: &str| {
        fs::read(dir.join(name)).map_err(|e| err(format!("{}: {e}", dir.join(name).display())))
    };
    let text = |name: &str| read(name).map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let provider = text("provider")?;
    if provider != want {
        return Err(err(format!(
            "the report provider is '{provider}', not '{want}'"
        )));
    }
    fs::write(dir.join("inblob"), report_data)
        .map_err(|e| err(format!("{}: {e}", dir.join("inblob").display())))?;
    let before = text("generation")?;
    let quote = read("outblob")?;
    if text("generation")? != before {
        return Err(err("another process changed the report while it was read"));
    }
    if quote.is_empty() {
        return Err(err("the TEE returned an empty quote"));
    }
    Ok(quote)
}

/// Intel TDX through a [`QuoteSource`].
#[allow(missing_debug_implementations)]
pub struct TdxAttester {
    /// Where quotes come from.
    pub quotes: Box<dyn QuoteSource>,
    /// The CC event log ACPI table, if the firmware has one.
    pub ccel: PathBuf,
}

impl Attester for TdxAttester {
    fn tee(&self) -> &str {
        "tdx"
    }

    fn evidence(&self, report_data: &[u8]) -> Result<String> {
        // The quote carries 64 bytes of report data: the digest, then zeros.
        let mut data = [0u8; 64];
        if report_data.len() > data.len() {
            return Err(err("report data over 64 bytes"));
        }
        data[..report_data.len()].copy_from_slice(report_data);
        let quote = self.quotes.quote(&data)?;
        let eventlog = match fs::read(&self.ccel) {
            Ok(log) => Some(STANDARD.encode(log)),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(err(format!("{}: {e}", self.ccel.display()))),
        };
        Ok(json!({"cc_eventlog": eventlog, "quote": STANDARD.encode(quote)}).to_string())
    }
}

/// The attester for this guest, judged by the TEE guest devices under `dev` (`/dev`).
///
/// # Errors
/// A guest with a TEE this build has no attester for (SEV-SNP).
pub fn for_platform(dev: &Path) -> Result<Box<dyn Attester>> {
    if dev.join("tdx_guest").exists() {
        return Ok(Box::new(TdxAttester {
            quotes: Box::new(ConfigfsTsm {
                root: PathBuf::from("/sys/kernel/config/tsm/report"),
                provider: "tdx_guest",
            }),
            ccel: PathBuf::from("/sys/firmware/acpi/tables/data/CCEL"),
        }));
    }
    if dev.join("sev-guest").exists() {
        return Err(err(
            "this is an AMD SEV-SNP guest; this build has no SEV-SNP attester (TDX and the \
             sample TEE only)",
        ));
    }
    Ok(Box::new(SampleAttester))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    struct FakeQuotes(RefCell<Vec<[u8; 64]>>);

    impl QuoteSource for Rc<FakeQuotes> {
        fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
            self.0.borrow_mut().push(*report_data);
            Ok(b"QUOTE".to_vec())
        }
    }

    #[test]
    fn tdx_evidence_is_what_trustee_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quotes = Rc::new(FakeQuotes(RefCell::new(Vec::new())));
        let tdx = TdxAttester {
            quotes: Box::new(quotes.clone()),
            ccel: dir.path().join("CCEL"),
        };
        assert_eq!(tdx.tee(), "tdx");
        let digest = [0xabu8; 48];
        let ev: serde_json::Value =
            serde_json::from_str(&tdx.evidence(&digest).expect("evidence")).expect("json");
        assert_eq!(ev["quote"], STANDARD.encode(b"QUOTE"));
        assert!(ev["cc_eventlog"].is_null());
        let seen = quotes.0.borrow()[0];
        assert_eq!(&seen[..48], &digest[..]);
        assert_eq!(&seen[48..], &[0u8; 16][..]);
        fs::write(dir.path().join("CCEL"), b"log").expect("ccel");
        let ev: serde_json::Value =
            serde_json::from_str(&tdx.evidence(&digest).expect("evidence")).expect("json");
        assert_eq!(ev["cc_eventlog"], STANDARD.encode(b"log"));
        assert!(tdx.evidence(&[0u8; 65]).is_err());
    }

    #[test]
    fn reports_are_read_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for (name, body) in [
            ("provider", &b"tdx_guest\n"[..]),
            ("generation", b"1\n"),
            ("outblob", b"QUOTE"),
        ] {
            fs::write(d.join(name), body).expect("write");
        }
        let data = [7u8; 64];
        assert_eq!(read_report(d, &data, "tdx_guest").expect("quote"), b"QUOTE");
        assert_eq!(fs::read(d.join("inblob")).expect("inblob"), data);
        let e = read_report(d, &data, "sev_guest")
            .expect_err("provider")
            .to_string();
        assert!(e.contains("'tdx_guest', not 'sev_guest'"), "{e}");
        fs::write(d.join("outblob"), b"").expect("write");
        let e = read_report(d, &data, "tdx_guest")
            .expect_err("empty")
            .to_string();
        assert!(e.contains("empty quote"), "{e}");
        let e = ConfigfsTsm {
            root: d.join("missing"),
            provider: "tdx_guest",
        }
        .quote(&data)
        .expect_err("no configfs")
        .to_string();
        assert!(e.contains("is configfs mounted"), "{e}");
    }

    #[test]
    fn the_platform_decides() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(for_platform(dir.path()).expect("none").tee(), "sample");
        fs::write(dir.path().join("sev-guest"), b"").expect("dev");
        let e = for_platform(dir.path()).err().expect("snp").to_string();
        assert!(e.contains("SEV-SNP"), "{e}");
        fs::write(dir.path().join("tdx_guest"), b"").expect("dev");
        assert_eq!(for_platform(dir.path()).expect("tdx").tee(), "tdx");
    }
}
