//! Volume files in two stages: TOML into raw structs that refuse unknown fields, then a
//! validated [`Volume`]. Every error names the file and, where the TOML parser knows it, the
//! line and field.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use activate::DmName;
use keyprovider::{ChoiceError, EncryptTable, ProviderConfig};
use luks2::SecretBuf;
use serde::Deserialize;

/// A file system `makefs` can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MakeFs {
    /// `ext4`.
    Ext4,
    /// `xfs`.
    Xfs,
    /// `vfat`.
    Vfat,
    /// `swap`.
    Swap,
}

impl MakeFs {
    /// The name in the file.
    pub fn name(self) -> &'static str {
        match self {
            MakeFs::Ext4 => "ext4",
            MakeFs::Xfs => "xfs",
            MakeFs::Vfat => "vfat",
            MakeFs::Swap => "swap",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVolume {
    volume: String,
    dev: PathBuf,
    #[serde(default)]
    auto_open: bool,
    makefs: Option<MakeFs>,
    #[serde(default)]
    integrity: bool,
    encrypt: EncryptTable,
}

/// A validated volume.
#[derive(Debug, Clone)]
pub struct Volume {
    /// `volume`: the /dev/mapper name.
    pub name: DmName,
    /// `dev`: the block device (or image file).
    pub dev: PathBuf,
    /// `auto_open`: opened by the boot service.
    pub auto_open: bool,
    /// `makefs`: the file system to create.
    pub makefs: Option<MakeFs>,
    /// `integrity`: dm-integrity under the encryption.
    pub integrity: bool,
    /// The `[encrypt.*]` table.
    pub provider: ProviderConfig,
    /// The file it came from.
    pub file: PathBuf,
}

/// A configuration error: the file, the line when known, and what is wrong.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// A TOML parser's error on `text` from `file`, with its line when the parser knows it.
    pub fn from_toml(file: &Path, text: &str, e: &toml::de::Error) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: e.span().map(|s| line_of(text, s.start)),
            // The parser's message, without its own rendering of the source excerpt.
            message: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }

    /// `message` about `file`, at the first line of `text` that starts with `needle`.
    pub fn at(file: &Path, text: &str, needle: &str, message: String) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: line_starting(text, needle),
            message,
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `needle` first starts a line (ignoring leading spaces), if it does.
fn line_starting(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map(|i| i + 1)
}

/// Parses and validates one volume file.
pub fn parse_volume(file: &Path, text: &str) -> Result<Volume, ConfigError> {
    let err = |line: Option<usize>, message: String| ConfigError {
        file: file.to_owned(),
        line,
        message,
    };
    let raw: RawVolume =
        toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let name_line = line_starting(text, "volume");
    let name = match DmName::new(&raw.volume) {
        Ok(n) if !raw.volume.contains(char::is_whitespace) => n,
        _ => {
            return Err(err(
                name_line,
                format!(
                    "field `volume`: '{}' is not a usable /dev/mapper name",
                    raw.volume
                ),
            ))
        }
    };
    if !raw.dev.is_absolute() {
        return Err(err(
            line_starting(text, "dev"),
            format!(
                "field `dev`: '{}' is not an absolute path",
                raw.dev.display()
            ),
        ));
    }
    let provider = raw.encrypt.provider().map_err(|e| {
        let line = match &e {
            ChoiceError::None => line_starting(text, "[encrypt"),
            ChoiceError::Several(names) => line_starting(text, &format!("[encrypt.{}", names[1])),
        };
        err(line, format!("table `encrypt`: {e}"))
    })?;
    Ok(Volume {
        name,
        dev: raw.dev,
        auto_open: raw.auto_open,
        makefs: raw.makefs,
        integrity: raw.integrity,
        provider,
        file: file.to_owned(),
    })
}

/// The largest volume file read: a client key and certificates fit many times over.
pub const MAX_FILE: usize = 1 << 20;

/// A volume file's bytes, in a wiped buffer that never grows (it may hold a client key).
fn read_secret_text(path: &Path) -> Result<SecretBuf, String> {
    let mut buf = SecretBuf::with_capacity(MAX_FILE);
    std::fs::File::open(path)
        .and_then(|mut f| buf.read_to_end(&mut f.by_ref().take(MAX_FILE as u64 + 1)))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format!("cannot read: larger than {MAX_FILE} bytes"),
            _ => format!("cannot read: {e}"),
        })?;
    Ok(buf)
}

/// Every volume under `<dir>/volumes/`, sorted by name; all errors, not just the first.
pub fn load_all(dir: &Path) -> (Vec<Volume>, Vec<ConfigError>) {
    let vdir = dir.join("volumes");
    let mut volumes: Vec<Volume> = Vec::new();
    let mut errors = Vec::new();
    if let Err(e) = std::fs::metadata(dir).and_then(|m| {
        if m.is_dir() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a directory"))
        }
    }) {
        errors.push(ConfigError {
            file: dir.to_owned(),
            line: None,
            message: format!("cannot use the configuration directory: {e}"),
        });
        return (volumes, errors);
    }
    let entries = match std::fs::read_dir(&vdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (volumes, errors),
        Err(e) => {
            errors.push(ConfigError {
                file: vdir,
                line: None,
                message: format!("cannot read the directory: {e}"),
            });
            return (volumes, errors);
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        // A FIFO, a device or a dangling link named *.toml is a mistake to report, not a file
        // to skip (or to block on).
        let kind = std::fs::metadata(&file).map(|m| m.file_type());
        if !kind.as_ref().is_ok_and(std::fs::FileType::is_file) {
            let message = match kind {
                Ok(_) => "not a regular file".to_owned(),
                Err(e) => format!("cannot read: {e}"),
            };
            errors.push(ConfigError {
                file,
                line: None,
                message,
            });
            continue;
        }
        let text = match read_secret_text(&file) {
            Ok(t) => t,
            Err(message) => {
                errors.push(ConfigError {
                    file,
                    line: None,
                    message,
                });
                continue;
            }
        };
        let Ok(text) = std::str::from_utf8(text.as_bytes()) else {
            errors.push(ConfigError {
                file,
                line: None,
                message: "not UTF-8 text".into(),
            });
            continue;
        };
        match parse_volume(&file, text) {
            Ok(v) => {
                if let Some(first) = seen.get(v.name.as_str()) {
                    errors.push(ConfigError {
                        line: line_starting(text, "volume"),
                        message: format!(
                            "field `volume`: '{}' is already defined in {}",
                            v.name,
                            first.display()
                        ),
                        file,
                    });
                    continue;
                }
                seen.insert(v.name.as_str().to_owned(), file.clone());
                volumes.push(v);
            }
            Err(e) => errors.push(e),
        }
    }
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    (volumes, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Volume, String> {
        parse_volume(Path::new("/etc/cryptpilot/volumes/v.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_examples_parse() {
        let v = parse("volume = \"data0\"\ndev = \"/dev/nvme1n1p1\"\nauto_open = true\nmakefs = \"ext4\"\nintegrity = true\n\n[encrypt.otp]\n").unwrap();
        assert_eq!(
            (v.name.as_str(), v.auto_open, v.integrity, v.makefs),
            ("data0", true, true, Some(MakeFs::Ext4))
        );
        assert_eq!(v.provider.name(), "otp");
        let v = parse("volume = \"d\"\ndev = \"/dev/vdb\"\n[encrypt.exec]\ncommand = \"echo\"\nargs = [\"-n\", \"pw\"]\n").unwrap();
        assert!(!v.auto_open && !v.integrity && v.makefs.is_none());
        let ProviderConfig::Exec(e) = v.provider else {
            panic!("exec")
        };
        assert_eq!(e.args, ["-n", "pw"]);
        let v = parse("volume = \"k\"\ndev = \"/dev/vdc\"\n[encrypt.kbs]\nkbs_url = \"http://127.0.0.1:8080\"\nkey_uri = \"kbs:///default/key/data\"\n").unwrap();
        assert_eq!(v.provider.name(), "kbs");
        let v = parse("volume = \"m\"\ndev = \"/dev/vdc\"\n[encrypt.kms]\nkms_instance_id = \"kst-1\"\nsecret_name = \"s\"\nclient_key = \"{}\"\nclient_key_password = \"p\"\n").unwrap();
        assert!(!format!("{:?}", v.provider).contains("\"p\""));
    }

    #[test]
    fn every_error_names_file_line_and_field() {
        let cases = [
            ("volume = \"a\"\ndev = \"/dev/x\"\nauto_opne = true\n[encrypt.otp]\n", ":3:", "auto_opne"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.otp]\n[encrypt.exec]\ncommand = \"x\"\n", ":4:", "more than one key provider (otp, exec)"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n", "v.toml", "missing field `encrypt`"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt]\n", ":3:", "no key provider"),
            ("volume = \"a\"\ndev = \"/dev/x\"\nmakefs = \"btrfs\"\n[encrypt.otp]\n", ":3:", "btrfs"),
            ("volume = \"a/b\"\ndev = \"/dev/x\"\n[encrypt.otp]\n", ":1:", "field `volume`"),
            ("volume = \"a\"\ndev = \"vdb\"\n[encrypt.otp]\n", ":2:", "field `dev`"),
            ("volume = \"a\"\ndev = \"/dev/x\"\nintegrity = \"yes\"\n[encrypt.otp]\n", ":3:", "invalid type"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.otp]\nfoo = 1\n", ":4:", "unknown field `foo`"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.exec]\nargs = []\n", ":3:", "missing field `command`"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.kbs]\nkbs_url = \"http://u\"\nkey_uri = \"kbs://x\"\n", ":5:", "'kbs://x' is not kbs:///<repository>/<type>/<tag>"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.kbs]\nkbs_url = \"u\"\nkey_uri = \"kbs:///a/b/c\"\n", ":4:", "'u' is not http(s)://host[:port]"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.exec]\ncommand = \"\"\n", ":4:", "empty"),
            ("volume = \"a\"\ndev = \"/dev/x\"\n[encrypt.otp\n", ":3:", ""),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with("/etc/cryptpilot/volumes/v.toml"), "{e}");
            assert!(e.contains(line), "{text:?}: wanted {line} in {e}");
            assert!(e.contains(needle), "{text:?}: wanted {needle} in {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    /// Volume files may hold a client key: they are read into a buffer of fixed size, and
    /// one that does not fit is refused, not grown into.
    #[test]
    fn oversized_and_non_text_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("volumes")).unwrap();
        let mut big = "volume = \"big\"\ndev = \"/dev/x\"\n[encrypt.otp]\n".to_owned();
        big += &"#".repeat(MAX_FILE);
        std::fs::write(dir.path().join("volumes/big.toml"), big).unwrap();
        std::fs::write(dir.path().join("volumes/bin.toml"), b"volume = \"\xff\"\n").unwrap();
        let (vols, errs) = load_all(dir.path());
        assert!(vols.is_empty());
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].ends_with("big.toml: cannot read: larger than 1048576 bytes"),
            "{errs:?}"
        );
        assert!(errs[1].ends_with("bin.toml: not UTF-8 text"), "{errs:?}");
    }

    /// A FIFO, a link to a device and a dangling link named *.toml are reported, not skipped
    /// (nor blocked on); a configuration directory that does not exist is an error.
    #[test]
    fn files_that_are_not_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("volumes");
        std::fs::create_dir(&v).unwrap();
        let fifo = std::process::Command::new("mkfifo")
            .arg(v.join("a-fifo.toml"))
            .status()
            .unwrap();
        assert!(fifo.success());
        std::os::unix::fs::symlink("/dev/zero", v.join("b-zero.toml")).unwrap();
        std::os::unix::fs::symlink("nowhere", v.join("c-dangling.toml")).unwrap();
        let (vols, errs) = load_all(dir.path());
        assert!(vols.is_empty());
        let errs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].ends_with("a-fifo.toml: not a regular file"),
            "{errs:?}"
        );
        assert!(
            errs[1].ends_with("b-zero.toml: not a regular file"),
            "{errs:?}"
        );
        assert!(errs[2].contains("c-dangling.toml: cannot read"), "{errs:?}");

        let (vols, errs) = load_all(&dir.path().join("missing"));
        assert!(vols.is_empty());
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .contains("missing: cannot use the configuration directory"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn duplicate_names_across_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("volumes")).unwrap();
        let body = "volume = \"same\"\ndev = \"/dev/x\"\n[encrypt.otp]\n";
        std::fs::write(dir.path().join("volumes/a.toml"), body).unwrap();
        std::fs::write(dir.path().join("volumes/b.toml"), body).unwrap();
        std::fs::write(dir.path().join("volumes/ignored.txt"), "junk").unwrap();
        let (vols, errs) = load_all(dir.path());
        assert_eq!(vols.len(), 1);
        assert_eq!(errs.len(), 1);
        let e = errs[0].to_string();
        assert!(
            e.contains("b.toml:1:") && e.contains("already defined in") && e.contains("a.toml"),
            "{e}"
        );
    }
}
