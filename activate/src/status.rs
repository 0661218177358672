//! What `status` reports about a mapping: read back from the kernel's table.

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::target::integrity::{Integrity, IntegrityMode};
use dmioctl::{DmName, TableKind};

use crate::{Error, Mapper, Result};

/// An active mapping as cryptsetup's `status` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// `LUKS2`, `LUKS1` or `PLAIN` by the mapping's UUID, as cryptsetup tells them; `n/a`
    /// otherwise.
    pub kind: &'static str,
    /// The device-mapper UUID.
    pub uuid: String,
    /// The crypt target's cipher (empty without one).
    pub cipher: String,
    /// Key size in bits.
    pub key_bits: usize,
    /// Whether the crypt table names a kernel keyring key (cryptsetup's "key location:
    /// keyring") rather than holding the key.
    pub key_in_keyring: bool,
    /// The device under the crypt target (`/dev/...` when known).
    pub device: String,
    /// Encryption sector size.
    pub sector_size: u32,
    /// The image file behind that device, when it is a loop device.
    pub loop_file: Option<String>,
    /// Data offset on that device, in 512-byte sectors.
    pub offset_sectors: u64,
    /// IV offset (plain mode's `--skip`), in 512-byte sectors.
    pub iv_offset: u64,
    /// The crypt target's performance and discard flags, in cryptsetup's words (`discards`,
    /// `same_cpu_crypt`, `submit_from_crypt_cpus`, `no_read_workqueue`, `no_write_workqueue`).
    pub flags: Vec<&'static str>,
    /// Mapping size in 512-byte sectors.
    pub size_sectors: u64,
    /// Read-only mapping.
    pub read_only: bool,
    /// How many openers it has.
    pub open_count: i32,
    /// The integrity layer, for authenticated encryption.
    pub integrity: Option<IntegrityStatus>,
    /// The mapping's device numbers.
    pub major: u32,
    /// The mapping's device numbers.
    pub minor: u32,
}

/// The dm-integrity layer under a crypt mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityStatus {
    /// Tag bytes per sector.
    pub tag_size: u32,
    /// `aead` (the crypt target's integrity type).
    pub kind: String,
    /// `journal`, `direct (no journal)`, `bitmap` or `recovery`, when `NAME_dif` is found.
    pub mode: Option<&'static str>,
}

impl Mapper {
    /// The status of `name`, or `None` when it is not mapped.
    ///
    /// # Errors
    /// [`Error::Dm`] when the kernel cannot be asked, or its table cannot be read.
    pub fn status(&self, name: &DmName) -> Result<Option<Status>> {
        let dm = self.control();
        let info = match dm.dev_status(name) {
            Ok(i) => i,
            Err(dmioctl::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(Error::dm(name.as_str())(e)),
        };
        let table = dm
            .table_status(name, TableKind::Table)
            .map_err(Error::dm(name.as_str()))?;
        let crypt = table
            .iter()
            .find(|t| t.kind == "crypt")
            .map(|t| Crypt::parse(t.params()))
            .transpose()
            .map_err(Error::dm(name.as_str()))?;
        let mut s = Status {
            kind: kind_of(&info.uuid),
            uuid: info.uuid.clone(),
            cipher: String::new(),
            key_bits: 0,
            key_in_keyring: false,
            device: String::new(),
            sector_size: 512,
            loop_file: None,
            offset_sectors: 0,
            iv_offset: 0,
            flags: Vec::new(),
            size_sectors: table
                .iter()
                .try_fold(0u64, |n, t| n.checked_add(t.length))
                .unwrap_or(u64::MAX),
            read_only: info.read_only,
            open_count: info.open_count,
            integrity: None,
            major: info.major,
            minor: info.minor,
        };
        if let Some(c) = &crypt {
            s.cipher = c.cipher.clone();
            s.key_bits = match &c.key {
                CryptKey::Hex(k) => k.len() * 8,
                CryptKey::Keyring { size, .. } => size.saturating_mul(8),
            };
            s.key_in_keyring = matches!(c.key, CryptKey::Keyring { .. });
            s.device = c
                .device
                .split_once(':')
                .and_then(|(a, b)| Some(device_path(a.parse().ok()?, b.parse().ok()?)))
                .unwrap_or_else(|| c.device.clone());
            s.loop_file = loop_file(&s.device);
            s.offset_sectors = c.offset;
            s.iv_offset = c.iv_offset;
            for o in &c.options {
                match o {
                    CryptOption::AllowDiscards => s.flags.push("discards"),
                    CryptOption::SameCpuCrypt => s.flags.push("same_cpu_crypt"),
                    CryptOption::SubmitFromCryptCpus => s.flags.push("submit_from_crypt_cpus"),
                    CryptOption::NoReadWorkqueue => s.flags.push("no_read_workqueue"),
                    CryptOption::NoWriteWorkqueue => s.flags.push("no_write_workqueue"),
                    CryptOption::SectorSize(n) => s.sector_size = *n,
                    CryptOption::Integrity(tag, kind) => {
                        s.integrity = Some(IntegrityStatus {
                            tag_size: *tag,
                            kind: kind.clone(),
                            mode: self.dif_mode(name),
                        })
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(s))
    }

    /// The journalling mode of `NAME_dif`, the integrity mapping under `name`.
    fn dif_mode(&self, name: &DmName) -> Option<&'static str> {
        let dif = DmName::new(&format!("{name}_dif")).ok()?;
        let t = self.control().table_status(&dif, TableKind::Table).ok()?;
        let i: Integrity = t.first()?.params().parse().ok()?;
        Some(match i.mode {
            IntegrityMode::Journal => "journal",
            IntegrityMode::Direct => "direct (no journal)",
            IntegrityMode::Bitmap => "bitmap",
            IntegrityMode::Recovery => "recovery",
        })
    }
}

/// cryptsetup's type name for a mapping with this device-mapper UUID.
fn kind_of(uuid: &str) -> &'static str {
    [
        ("CRYPT-LUKS2-", "LUKS2"),
        ("CRYPT-LUKS1-", "LUKS1"),
        ("CRYPT-PLAIN-", "PLAIN"),
        ("CRYPT-VERITY-", "VERITY"),
        ("CRYPT-INTEGRITY-", "INTEGRITY"),
    ]
    .iter()
    .find(|(prefix, _)| uuid.starts_with(prefix))
    .map_or("n/a", |(_, kind)| kind)
}

/// The file behind `/dev/loopN`, from sysfs.
pub(crate) fn loop_file(device: &str) -> Option<String> {
    let name = device.strip_prefix("/dev/")?;
    if !name.starts_with("loop") {
        return None;
    }
    let f = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(f.trim_end_matches('\n').to_owned())
}

/// `/dev/NAME` of a block device, from sysfs; `major:minor` when sysfs does not say.
fn device_path(major: u32, minor: u32) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|d| format!("/dev/{d}")))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"))
}
