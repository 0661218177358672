//! The FDE configuration in two stages: TOML into raw structs that refuse unknown fields
//! (naming file, line and field), then validated types the boot stages trust.
//!
//! - `fde.toml`: `[rootfs]` (`delta_location`, older name `rw_overlay`; `delta_backend`;
//!   optional `[rootfs.encrypt.<provider>]`, otp refused) and `[delta]` (older name `[data]`:
//!   `integrity`, exactly one `[delta.encrypt.<provider>]`).
//! - `global.toml`: `[boot] verbose`.
//! - `metadata.toml`: `type = 1`, `root_hash = "<hex>"` (the verity root hash of the rootfs).

use std::path::{Path, PathBuf};

use keyprovider::{ChoiceError, EncryptTable, ProviderConfig};
use serde::Deserialize;
use volumes::ConfigError;

/// Where the delta (the writes over the read-only root) lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaLocation {
    /// On the disk, recreated (wiped) at every boot.
    #[default]
    Disk,
    /// On the disk, kept across boots.
    DiskPersist,
    /// In memory.
    Ram,
}

/// How writes are layered over the verity-checked root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeltaBackend {
    /// A dm-snapshot of the verity device with the delta as its copy-on-write store.
    #[default]
    DmSnapshot,
    /// An overlay file system with its upper directory on the delta.
    Overlayfs,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRootfs {
    #[serde(default, alias = "rw_overlay")]
    delta_location: DeltaLocation,
    #[serde(default)]
    delta_backend: DeltaBackend,
    encrypt: Option<EncryptTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelta {
    #[serde(default)]
    integrity: bool,
    encrypt: EncryptTable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFde {
    #[serde(default)]
    rootfs: RawRootfs,
    #[serde(alias = "data")]
    delta: RawDelta,
}

/// `[rootfs]`, validated.
#[derive(Debug, Clone)]
pub struct RootfsConfig {
    /// Where the delta lives.
    pub delta_location: DeltaLocation,
    /// How writes are layered.
    pub delta_backend: DeltaBackend,
    /// The rootfs LV's key provider when it is LUKS2 (`None`: verity only).
    pub encrypt: Option<ProviderConfig>,
}

/// `[delta]`, validated.
#[derive(Debug, Clone)]
pub struct DeltaConfig {
    /// LUKS2 with hmac-sha256 over dm-integrity.
    pub integrity: bool,
    /// The delta's key provider.
    pub encrypt: ProviderConfig,
}

/// `fde.toml`, validated.
#[derive(Debug, Clone)]
pub struct FdeConfig {
    /// `[rootfs]`.
    pub rootfs: RootfsConfig,
    /// `[delta]`.
    pub delta: DeltaConfig,
}

/// `global.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    /// `[boot]`.
    #[serde(default)]
    pub boot: BootConfig,
}

/// `[boot]` of `global.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootConfig {
    /// Log details of each boot step.
    #[serde(default)]
    pub verbose: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    #[serde(rename = "type")]
    kind: u32,
    root_hash: String,
}

/// `metadata.toml`: the rootfs's verity root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The root hash bytes.
    pub root_hash: Vec<u8>,
}

fn choice(file: &Path, text: &str, table: &str, e: ChoiceError) -> ConfigError {
    let needle = match &e {
        ChoiceError::None => format!("[{table}"),
        ChoiceError::Several(names) => format!("[{table}.encrypt.{}", names[1]),
    };
    ConfigError::at(file, text, &needle, format!("table `{table}.encrypt`: {e}"))
}

/// Parses and validates `fde.toml`.
///
/// # Errors
/// [`ConfigError`] naming the file, line and field.
pub fn parse_fde(file: &Path, text: &str) -> Result<FdeConfig, ConfigError> {
    let raw: RawFde = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let rootfs_encrypt = match raw.rootfs.encrypt {
        None => None,
        Some(t) => {
            let p = t.provider().map_err(|e| choice(file, text, "rootfs", e))?;
            if matches!(p, ProviderConfig::Otp) {
                return Err(ConfigError::at(
                    file,
                    text,
                    "[rootfs.encrypt.otp",
                    "table `rootfs.encrypt.otp`: a one-time key cannot protect the root file system (it would be lost at the next boot)".into(),
                ));
            }
            Some(p)
        }
    };
    let delta_table = if text.lines().any(|l| l.trim_start().starts_with("[delta")) {
        "delta"
    } else {
        "data"
    };
    let encrypt = raw
        .delta
        .encrypt
        .provider()
        .map_err(|e| choice(file, text, delta_table, e))?;
    Ok(FdeConfig {
        rootfs: RootfsConfig {
            delta_location: raw.rootfs.delta_location,
            delta_backend: raw.rootfs.delta_backend,
            encrypt: rootfs_encrypt,
        },
        delta: DeltaConfig {
            integrity: raw.delta.integrity,
            encrypt,
        },
    })
}

/// Parses `global.toml`.
///
/// # Errors
/// [`ConfigError`] naming the file, line and field.
pub fn parse_global(file: &Path, text: &str) -> Result<GlobalConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))
}

/// Parses `metadata.toml`: format `type = 1` and a hex root hash of 20 to 64 bytes.
///
/// # Errors
/// [`ConfigError`] naming the file, line and field.
pub fn parse_metadata(file: &Path, text: &str) -> Result<Metadata, ConfigError> {
    let raw: RawMetadata =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    if raw.kind != 1 {
        return Err(ConfigError::at(
            file,
            text,
            "type",
            format!("field `type`: metadata format {} is not 1", raw.kind),
        ));
    }
    let h = raw.root_hash.trim();
    match luks2::hex::decode(h) {
        Ok(b) if (20..=64).contains(&b.len()) => Ok(Metadata { root_hash: b }),
        _ => Err(ConfigError::at(
            file,
            text,
            "root_hash",
            format!("field `root_hash`: '{h}' is not a hex hash of 20 to 64 bytes"),
        )),
    }
}

/// The configuration an initrd carries: `fde.toml` and `metadata.toml` (required) and
/// `global.toml` (optional) in `dir`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `fde.toml`.
    pub fde: FdeConfig,
    /// `global.toml` (defaults when missing).
    pub global: GlobalConfig,
    /// `metadata.toml`.
    pub metadata: Metadata,
}

/// Reads the three files from `dir` (`/etc/cryptpilot` in the initrd).
///
/// # Errors
/// [`ConfigError`] for a missing required file or any error in one.
pub fn load(dir: &Path) -> Result<Loaded, ConfigError> {
    let read = |name: &str, required: bool| -> Result<Option<(PathBuf, String)>, ConfigError> {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(Some((path, t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
            Err(e) => Err(ConfigError {
                file: path,
                line: None,
                message: format!("cannot read: {e}"),
            }),
        }
    };
    let (fde_path, fde_text) = read("fde.toml", true)?.unwrap_or_default();
    let (meta_path, meta_text) = read("metadata.toml", true)?.unwrap_or_default();
    let global = match read("global.toml", false)? {
        Some((p, t)) => parse_global(&p, &t)?,
        None => GlobalConfig::default(),
    };
    Ok(Loaded {
        fde: parse_fde(&fde_path, &fde_text)?,
        global,
        metadata: parse_metadata(&meta_path, &meta_text)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fde(text: &str) -> Result<FdeConfig, ConfigError> {
        parse_fde(Path::new("/etc/cryptpilot/fde.toml"), text)
    }

    #[test]
    fn the_documented_files_parse() {
        let c = fde("[rootfs]\ndelta_location = \"disk-persist\"\ndelta_backend = \"overlayfs\"\n\n[rootfs.encrypt.exec]\ncommand = \"echo\"\nargs = [\"-n\", \"pw\"]\n\n[delta]\nintegrity = true\n\n[delta.encrypt.otp]\n")
            .expect("parse");
        assert_eq!(c.rootfs.delta_location, DeltaLocation::DiskPersist);
        assert_eq!(c.rootfs.delta_backend, DeltaBackend::Overlayfs);
        assert!(matches!(c.rootfs.encrypt, Some(ProviderConfig::Exec(_))));
        assert!(c.delta.integrity);
        assert!(matches!(c.delta.encrypt, ProviderConfig::Otp));
        // Defaults and the older names (`rw_overlay`, `[data]`).
        let c = fde("[rootfs]\nrw_overlay = \"ram\"\n[data.encrypt.otp]\n").expect("old names");
        assert_eq!(c.rootfs.delta_location, DeltaLocation::Ram);
        assert_eq!(c.rootfs.delta_backend, DeltaBackend::DmSnapshot);
        assert!(c.rootfs.encrypt.is_none() && !c.delta.integrity);
        let c = fde("[delta.encrypt.kbs]\nkbs_url = \"http://10.0.0.1:8081/api\"\nkey_uri = \"kbs:///default/key/delta\"\n")
            .expect("no [rootfs]");
        assert_eq!(c.rootfs.delta_location, DeltaLocation::Disk);
        let g = parse_global(Path::new("global.toml"), "[boot]\nverbose = true\n").expect("global");
        assert!(g.boot.verbose);
        let m = parse_metadata(
            Path::new("metadata.toml"),
            &format!("type = 1\nroot_hash = \"{}\"\n", "ab".repeat(32)),
        )
        .expect("metadata");
        assert_eq!(m.root_hash, vec![0xab; 32]);
    }

    #[test]
    fn mistakes_name_the_file_line_and_field() {
        for (text, line, needle) in [
            (
                "[rootfs]\ndelta_locaton = \"disk\"\n[delta.encrypt.otp]\n",
                2,
                "delta_locaton",
            ),
            (
                "[rootfs]\ndelta_location = \"tape\"\n[delta.encrypt.otp]\n",
                2,
                "tape",
            ),
            (
                "[rootfs]\n[rootfs.encrypt.otp]\n[delta.encrypt.otp]\n",
                2,
                "one-time key",
            ),
            ("[delta]\nintegrity = true\n", 1, "encrypt"),
            (
                "[delta.encrypt.otp]\n[delta.encrypt.exec]\ncommand = \"x\"\n",
                2,
                "more than one",
            ),
            ("[delta.encrypt.otp]\n[extra]\n", 2, "extra"),
        ] {
            let e = fde(text).expect_err(text);
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert!(
                e.to_string().starts_with("/etc/cryptpilot/fde.toml:"),
                "{e}"
            );
        }
        let m = |t: &str| parse_metadata(Path::new("metadata.toml"), t);
        assert!(m("type = 2\nroot_hash = \"00\"\n")
            .expect_err("type")
            .to_string()
            .contains("type"));
        for bad in ["xyz", "abc", "00", &"00".repeat(65)] {
            let e = m(&format!("type = 1\nroot_hash = \"{bad}\"\n")).expect_err(bad);
            assert_eq!(e.line, Some(2), "{e}");
        }
        assert!(m("type = 1\n").is_err());
        assert!(parse_global(Path::new("g"), "[boot]\nverbos = true\n").is_err());
    }

    #[test]
    fn load_reads_the_initrd_directory() {
        let d = tempfile::tempdir().expect("dir");
        std::fs::write(d.path().join("fde.toml"), "[delta.encrypt.otp]\n").expect("fde");
        let e = load(d.path()).expect_err("no metadata.toml");
        assert!(e.to_string().contains("metadata.toml"), "{e}");
        std::fs::write(
            d.path().join("metadata.toml"),
            format!("type = 1\nroot_hash = \"{}\"\n", "01".repeat(32)),
        )
        .expect("metadata");
        let l = load(d.path()).expect("load");
        assert!(!l.global.boot.verbose);
        assert_eq!(l.metadata.root_hash.len(), 32);
    }
}

/// A configuration bundle as `config dump` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    /// `{global, fde}` as TOML, the existing tool's older field names replaced.
    pub toml: String,
    /// SHA-384 (hex) of the compact TOML of the same bundle.
    pub sha384: String,
}

/// The bundle of `fde.toml` and `global.toml` from `files` (keys `etc/cryptpilot/<name>`,
/// as [`crate::initrd::read_files`] returns them), each checked as the boot would check it.
///
/// # Errors
/// [`ConfigError`] for a file the boot would refuse; a bundle with neither file.
pub fn dump(files: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<Dump, ConfigError> {
    use sha2::Digest;
    let mut bundle = toml::Table::new();
    for (name, key) in [("global.toml", "global"), ("fde.toml", "fde")] {
        let path = format!("etc/cryptpilot/{name}");
        let Some(bytes) = files.get(&path) else {
            continue;
        };
        let file = Path::new("/").join(&path);
        let text = String::from_utf8_lossy(bytes);
        if key == "fde" {
            parse_fde(&file, &text)?;
        } else {
            parse_global(&file, &text)?;
        }
        let mut table: toml::Table = toml::from_str(&text)
            .map_err(|e| ConfigError::at(&file, &text, "", e.message().to_owned()))?;
        // The older names, as the existing tool serializes them.
        if let Some(d) = table.remove("data") {
            table.insert("delta".into(), d);
        }
        if let Some(toml::Value::Table(r)) = table.get_mut("rootfs") {
            if let Some(v) = r.remove("rw_overlay") {
                r.insert("delta_location".into(), v);
            }
        }
        bundle.insert(key.into(), toml::Value::Table(table));
    }
    if bundle.is_empty() {
        return Err(ConfigError::at(
            Path::new("/etc/cryptpilot"),
            "",
            "",
            "the initrd carries neither fde.toml nor global.toml".into(),
        ));
    }
    let compact = toml::to_string(&bundle).unwrap_or_default();
    let digest = sha2::Sha384::digest(compact.as_bytes());
    Ok(Dump {
        toml: toml::to_string_pretty(&bundle).unwrap_or_default(),
        sha384: integrity::verity::to_hex(&digest),
    })
}
