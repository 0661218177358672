//! What `status` reports about a mapping: read back from the kernel's table.

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::target::integrity::{Integrity, IntegrityMode};
use dmioctl::target::verity::Verity;
use dmioctl::{DmName, TableKind};
use luks2::SegmentIntegrity;

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
    /// IVs counted in encryption sectors, not 512-byte ones (`iv_large_sectors`).
    pub iv_large_sectors: bool,
    /// Mapping size in 512-byte sectors.
    pub size_sectors: u64,
    /// Read-only mapping.
    pub read_only: bool,
    /// Suspended (`luksSuspend`): I/O waits for the key.
    pub suspended: bool,
    /// How many openers it has.
    pub open_count: i32,
    /// The integrity layer, for authenticated encryption.
    pub integrity: Option<IntegrityStatus>,
    /// The mapping's device numbers.
    pub major: u32,
    /// The mapping's device numbers.
    pub minor: u32,
}

impl Status {
    /// The persistent flags on in this mapping, in cryptsetup's order.
    pub fn persistent_flags(&self) -> Vec<luks2::PersistentFlag> {
        use luks2::PersistentFlag as F;
        let crypt = |word: &str| self.flags.contains(&word);
        let no_journal = self
            .integrity
            .as_ref()
            .and_then(|i| i.mode)
            .is_some_and(|m| m.starts_with("direct"));
        F::ALL
            .into_iter()
            .filter(|f| match f {
                F::AllowDiscards => crypt("discards"),
                F::SameCpuCrypt => crypt("same_cpu_crypt"),
                F::SubmitFromCryptCpus => crypt("submit_from_crypt_cpus"),
                F::NoJournal => no_journal,
                F::NoReadWorkqueue => crypt("no_read_workqueue"),
                F::NoWriteWorkqueue => crypt("no_write_workqueue"),
            })
            .collect()
    }
}

/// The dm-integrity layer under a crypt mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityStatus {
    /// Tag bytes per sector.
    pub tag_size: u32,
    /// The protection as the LUKS2 metadata names it (`hmac(sha256)`, `aead`), from the
    /// crypt target's kernel cipher; the crypt target's integrity type when that is not one
    /// LUKS2 writes.
    pub kind: String,
    /// Bits of MAC key after the cipher key (0 for an AEAD cipher).
    pub key_bits: usize,
    /// `journal`, `direct (no journal)`, `bitmap` or `recovery`, when `NAME_dif` is found.
    pub mode: Option<&'static str>,
}

impl Mapper {
    /// The status of `name`, or `None` when it is not mapped.
    ///
    /// # Errors
    /// [`Error::Dm`] when the kernel cannot be asked, or its table cannot be read.
    pub fn status(&self, name: &DmName) -> Result<Option<Status>> {
        let Some(q) = self.query(name, false)? else {
            return Ok(None);
        };
        let active = q.active();
        let (info, table) = (q.info, q.table);
        let crypt = table
            .iter()
            .find(|t| t.kind == "crypt")
            .map(|t| Crypt::parse(t.params()))
            .transpose()
            .map_err(Error::dm(name.as_str()))?;
        let mut s = Status {
            kind: active.kind,
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
            iv_large_sectors: false,
            size_sectors: active.size_sectors,
            read_only: active.read_only,
            suspended: info.suspended,
            open_count: active.open_count,
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
            s.device = dev_path(&c.device);
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
                    CryptOption::IvLargeSectors => s.iv_large_sectors = true,
                    CryptOption::Integrity(tag, kind) => {
                        let mut i = IntegrityStatus {
                            tag_size: *tag,
                            kind: kind.clone(),
                            key_bits: 0,
                            mode: None,
                        };
                        // cryptsetup names the cipher and protection as the header does.
                        if let Some((cipher, p)) = SegmentIntegrity::from_dm_cipher(&c.cipher) {
                            s.cipher = cipher;
                            i.kind = p.json_type();
                            i.key_bits = p.mac_key_size() * 8;
                        }
                        // The crypt target sits on NAME_dif; the device is the one under
                        // it (where the header is), as cryptsetup reports it.
                        if let Some(dif) = self.dif(name) {
                            i.mode = Some(dif.mode);
                            s.device = dif.device;
                            s.loop_file = loop_file(&s.device);
                        }
                        s.integrity = Some(i);
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(s))
    }

    /// `NAME_dif`, the integrity mapping under `name`: its journalling mode and device.
    fn dif(&self, name: &DmName) -> Option<Dif> {
        let dif = DmName::new(&format!("{name}_dif")).ok()?;
        let t = self.control().table_status(&dif, TableKind::Table).ok()?;
        let i: Integrity = t.first()?.params().parse().ok()?;
        let mode = match i.mode {
            IntegrityMode::Journal => "journal",
            IntegrityMode::Direct => "direct (no journal)",
            IntegrityMode::Bitmap => "bitmap",
            IntegrityMode::Recovery => "recovery",
        };
        Some(Dif {
            mode,
            device: dev_path(&i.device),
        })
    }
}

/// What `status` takes from `NAME_dif`.
struct Dif {
    mode: &'static str,
    device: String,
}

/// What every mapping's `status` starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Active {
    /// The type by UUID, as [`Status::kind`].
    pub kind: &'static str,
    /// How many openers it has.
    pub open_count: i32,
    /// Read-only mapping.
    pub read_only: bool,
    /// Mapping size in 512-byte sectors.
    pub size_sectors: u64,
}

/// An active dm-verity mapping as veritysetup's `status` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerityStatus {
    /// The mapping.
    pub active: Active,
    /// Its table, with the devices as `/dev` paths; `None` when it is not a verity mapping.
    pub table: Option<Verity>,
    /// The kernel found no corrupted block so far (status `V`, not `C`).
    pub verified: bool,
    /// The image file behind the data device, when it is a loop device.
    pub data_loop: Option<String>,
    /// The image file behind the hash device, when it is a loop device.
    pub hash_loop: Option<String>,
}

/// An active standalone dm-integrity mapping as integritysetup's `status` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityMapping {
    /// The mapping.
    pub active: Active,
    /// Its table, with the device as a `/dev` path; `None` when it is not an integrity
    /// mapping.
    pub table: Option<Integrity>,
    /// Sectors whose tags did not match so far (the status line's first field).
    pub failures: u64,
    /// The image file behind the device, when it is a loop device.
    pub loop_file: Option<String>,
}

impl Mapper {
    /// What every status starts with, and the first target of `name` (its type, table
    /// parameters and status line), or `None` when it is not mapped.
    fn first_target(&self, name: &DmName) -> Result<Option<(Active, Option<FirstTarget>)>> {
        let Some(q) = self.query(name, true)? else {
            return Ok(None);
        };
        let active = q.active();
        let (table, status) = (q.table, q.status);
        let first = table.first().map(|t| FirstTarget {
            kind: t.kind.clone(),
            // A crypt table holds the key: it is not copied out.
            params: match t.kind.as_str() {
                "verity" => t.params().to_owned(),
                "integrity" => without_keys(t.params()),
                _ => String::new(),
            },
            status: status
                .first()
                .map(|s| s.params().to_owned())
                .unwrap_or_default(),
        });
        Ok(Some((active, first)))
    }

    /// The status of the dm-verity mapping `name`, or `None` when it is not mapped.
    ///
    /// # Errors
    /// [`Error::Dm`] when the kernel cannot be asked, or its table cannot be read.
    pub fn verity_status(&self, name: &DmName) -> Result<Option<VerityStatus>> {
        let Some((active, first)) = self.first_target(name)? else {
            return Ok(None);
        };
        let mut s = VerityStatus {
            active,
            table: None,
            verified: false,
            data_loop: None,
            hash_loop: None,
        };
        if let Some(first) = first.filter(|t| t.kind == "verity") {
            let mut t: Verity = first.params.parse().map_err(Error::dm(name.as_str()))?;
            t.data_device = dev_path(&t.data_device);
            t.hash_device = dev_path(&t.hash_device);
            s.data_loop = loop_file(&t.data_device);
            s.hash_loop = loop_file(&t.hash_device);
            s.verified = first.status.starts_with('V');
            s.table = Some(t);
        }
        Ok(Some(s))
    }

    /// The status of the dm-integrity mapping `name`, or `None` when it is not mapped.
    ///
    /// # Errors
    /// [`Error::Dm`] when the kernel cannot be asked, or its table cannot be read.
    pub fn integrity_status(&self, name: &DmName) -> Result<Option<IntegrityMapping>> {
        let Some((active, first)) = self.first_target(name)? else {
            return Ok(None);
        };
        let mut s = IntegrityMapping {
            active,
            table: None,
            failures: 0,
            loop_file: None,
        };
        if let Some(first) = first.filter(|t| t.kind == "integrity") {
            let mut t: Integrity = first.params.parse().map_err(Error::dm(name.as_str()))?;
            t.device = dev_path(&t.device);
            s.loop_file = loop_file(&t.device);
            s.failures = first
                .status
                .split_whitespace()
                .next()
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            s.table = Some(t);
        }
        Ok(Some(s))
    }
}

/// A mapping as the kernel reports it: device info, table, and status lines when asked.
struct Queried {
    info: dmioctl::DeviceInfo,
    table: Vec<dmioctl::Target>,
    status: Vec<dmioctl::Target>,
}

impl Queried {
    /// What every status starts with.
    fn active(&self) -> Active {
        Active {
            kind: kind_of(&self.info.uuid),
            open_count: self.info.open_count,
            read_only: self.info.read_only,
            size_sectors: self
                .table
                .iter()
                .try_fold(0u64, |n, t| n.checked_add(t.length))
                .unwrap_or(u64::MAX),
        }
    }
}

impl Mapper {
    /// `name`'s device info and table (and status lines with `with_status`), or `None`
    /// when it is not mapped.
    fn query(&self, name: &DmName, with_status: bool) -> Result<Option<Queried>> {
        let dm = self.control();
        let info = match dm.dev_status(name) {
            Ok(i) => i,
            Err(dmioctl::Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(Error::dm(name.as_str())(e)),
        };
        let table = dm
            .table_status(name, TableKind::Table)
            .map_err(Error::dm(name.as_str()))?;
        let status = match with_status {
            true => dm
                .table_status(name, TableKind::Status)
                .map_err(Error::dm(name.as_str()))?,
            false => Vec::new(),
        };
        Ok(Some(Queried {
            info,
            table,
            status,
        }))
    }
}

/// A mapping's first target; its parameters only for verity and integrity tables (a crypt
/// table's hold the key).
struct FirstTarget {
    kind: String,
    params: String,
    status: String,
}

/// An integrity table's parameters with the keys of keyed hashes and journal protection
/// cut off (`internal_hash:hmac(sha256):KEY` keeps `internal_hash:hmac(sha256)`): what
/// `status` shows needs no key, and the copy is not a secret. Built word by word into a
/// string that never grows past its first size.
fn without_keys(params: &str) -> String {
    let mut out = String::with_capacity(params.len());
    for (i, word) in params.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let keyed = ["internal_hash:", "journal_crypt:", "journal_mac:"]
            .iter()
            .any(|p| word.starts_with(p));
        match word.match_indices(':').nth(1) {
            Some((at, _)) if keyed => out.push_str(&word[..at]),
            _ => out.push_str(word),
        }
    }
    out
}

/// A table's `major:minor` as `/dev/NAME` where sysfs knows it.
fn dev_path(dev: &str) -> String {
    dev.split_once(':')
        .and_then(|(a, b)| Some(device_path(a.parse().ok()?, b.parse().ok()?)))
        .unwrap_or_else(|| dev.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_keys_are_cut_from_status_copies() {
        let t = "254:1 0 32 J 4 block_size:512 internal_hash:hmac(sha256):00112233 journal_mac:hmac(sha1):aabb fix_padding";
        assert_eq!(
            without_keys(t),
            "254:1 0 32 J 4 block_size:512 internal_hash:hmac(sha256) journal_mac:hmac(sha1) fix_padding"
        );
        assert_eq!(
            without_keys("1:2 0 4 J 1 internal_hash:crc32c"),
            "1:2 0 4 J 1 internal_hash:crc32c"
        );
    }
}
