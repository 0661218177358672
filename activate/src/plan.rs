//! Activation plans: the dm tables cryptsetup 2.6 loads for a volume, as typed layers, built
//! without touching the kernel (so they can be checked in unit tests) and carried out by
//! [`crate::Mapper::activate`].

use dmioctl::target::crypt::{Crypt, CryptKey, CryptOption};
use dmioctl::target::integrity::{Integrity, IntegrityMode};
use dmioctl::target::linear::Linear;
use dmioctl::target::verity::Verity;
use dmioctl::{DmName, Target};
use integrity::dm_integrity::{Superblock, FLAG_FIXED_PADDING};
use integrity::verity::VerityParams;
use luks2::{Activation, Bytes, Header, PersistentFlag, Sectors, VolumeKey};
use zeroize::Zeroizing;

use crate::{DataDevice, Error, Result};

/// How a volume is mapped: cryptsetup's `open` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Map read-only.
    pub read_only: bool,
    /// Pass discards through (`--allow-discards`).
    pub allow_discards: bool,
    /// `--perf-same_cpu_crypt`.
    pub same_cpu_crypt: bool,
    /// `--perf-submit_from_crypt_cpus`.
    pub submit_from_crypt_cpus: bool,
    /// `--perf-no_read_workqueue`.
    pub no_read_workqueue: bool,
    /// `--perf-no_write_workqueue`.
    pub no_write_workqueue: bool,
    /// dm-integrity without its journal (`--integrity-no-journal`).
    pub integrity_no_journal: bool,
    /// Put the volume key into the crypt table as hex instead of the kernel keyring
    /// (`--disable-keyring`).
    pub disable_keyring: bool,
    /// The mapping is live already: swap its tables for ones with these options instead of
    /// creating it (cryptsetup's `refresh`).
    pub refresh: bool,
    /// Leave out the header's persistent flags (`config.flags`): only these options count
    /// (cryptsetup's `--persistent`, which then stores them).
    pub ignore_persistent: bool,
}

impl Options {
    /// Whether these options ask for `flag`.
    pub fn wants(&self, flag: PersistentFlag) -> bool {
        match flag {
            PersistentFlag::AllowDiscards => self.allow_discards,
            PersistentFlag::SameCpuCrypt => self.same_cpu_crypt,
            PersistentFlag::SubmitFromCryptCpus => self.submit_from_crypt_cpus,
            PersistentFlag::NoJournal => self.integrity_no_journal,
            PersistentFlag::NoReadWorkqueue => self.no_read_workqueue,
            PersistentFlag::NoWriteWorkqueue => self.no_write_workqueue,
        }
    }
}

/// One target's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Table {
    /// dm-crypt (holds the key).
    Crypt(Crypt),
    /// dm-integrity.
    Integrity(Integrity),
    /// dm-verity.
    Verity(Verity),
    /// linear.
    Linear(Linear),
}

impl Table {
    fn set_device(&mut self, dev: String) {
        match self {
            Table::Crypt(t) => t.device = dev,
            Table::Integrity(t) => t.device = dev,
            Table::Linear(t) => t.device = dev,
            Table::Verity(t) => t.data_device = dev,
        }
    }

    /// The table line for `sectors` from sector 0.
    pub fn target(&self, sectors: Sectors) -> Target {
        let sectors = sectors.0;
        match self {
            Table::Crypt(c) => c.target(0, sectors),
            Table::Integrity(t) => {
                Target::new(0, sectors, "integrity", Zeroizing::new(t.to_string()))
            }
            Table::Verity(t) => Target::new(0, sectors, "verity", Zeroizing::new(t.to_string())),
            Table::Linear(t) => Target::new(0, sectors, "linear", Zeroizing::new(t.to_string())),
        }
    }
}

/// One mapping of a plan.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The mapping's name.
    pub name: DmName,
    /// Its device-mapper UUID.
    pub uuid: Option<String>,
    /// Its size.
    pub sectors: Sectors,
    /// Its one target.
    pub table: Table,
    /// The earlier layer of the plan this one sits on; its device is filled in when that
    /// layer exists.
    pub on: Option<usize>,
}

/// The mappings that make one volume, bottom first; the last is the one users open.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The layers, bottom first.
    pub layers: Vec<Layer>,
    /// Whether every layer is read-only.
    pub read_only: bool,
    /// The key the crypt tables name in the kernel keyring (see [`Plan::key_in_keyring`]),
    /// added for the table loads and revoked after them.
    pub keyring_key: Option<KeyringKey>,
    /// Swap the live mapping's tables for these instead of creating it (see
    /// [`Options::refresh`]).
    pub refresh: bool,
}

/// A volume key that a crypt table names as `:SIZE:logon:DESCRIPTION`.
#[derive(Debug, Clone)]
pub struct KeyringKey {
    /// Its description (`cryptsetup:<uuid>-d<digest>` for LUKS2).
    pub description: String,
    /// The key.
    pub key: VolumeKey,
}

impl Plan {
    /// Takes the volume key out of the crypt tables: they name it as a `logon` key called
    /// `description` in the kernel keyring instead (cryptsetup's default for LUKS2), so that
    /// no table read back from the kernel, even with `--showkeys`, holds key material. The
    /// key is loaded into the keyring only while [`crate::Mapper::activate`] loads the tables.
    /// A plan with no hex-keyed crypt table is left as it is.
    pub fn key_in_keyring(&mut self, description: &str) {
        for layer in &mut self.layers {
            let Table::Crypt(crypt) = &mut layer.table else {
                continue;
            };
            let CryptKey::Hex(key) = &crypt.key else {
                continue;
            };
            self.keyring_key = Some(KeyringKey {
                description: description.to_owned(),
                key: VolumeKey::from_slice(key),
            });
            crypt.key = CryptKey::Keyring {
                size: key.len(),
                key_type: "logon".into(),
                description: description.to_owned(),
            };
        }
    }

    /// A plan of one crypt mapping, mapped as `o` says.
    fn crypt(
        name: &DmName,
        uuid: Option<String>,
        sectors: Sectors,
        crypt: Crypt,
        o: &Options,
    ) -> Plan {
        Plan {
            refresh: o.refresh,
            ..Plan::single(name, uuid, sectors, Table::Crypt(crypt), o.read_only)
        }
    }

    /// A plan of one mapping: `name` with one target, on no other layer.
    fn single(
        name: &DmName,
        uuid: Option<String>,
        sectors: Sectors,
        table: Table,
        read_only: bool,
    ) -> Plan {
        Plan {
            layers: vec![Layer {
                name: name.clone(),
                uuid,
                sectors,
                table,
                on: None,
            }],
            read_only,
            keyring_key: None,
            refresh: false,
        }
    }

    /// The mapping users see (the last layer).
    pub fn top(&self) -> &DmName {
        &self.layers[self.layers.len() - 1].name
    }

    /// The table of layer `i` with `device` as what it sits on (for layers on another).
    pub(crate) fn table_on(&self, i: usize, device: Option<String>) -> Target {
        let layer = &self.layers[i];
        let mut table = layer.table.clone();
        if let Some(d) = device {
            table.set_device(d);
        }
        table.target(layer.sectors)
    }
}

/// An unlocked LUKS2 volume on its data device.
#[derive(Debug)]
pub struct Luks2Volume<'a> {
    /// The header.
    pub header: &'a Header,
    /// The data segment's activation data.
    pub activation: &'a Activation,
    /// The volume key.
    pub key: &'a VolumeKey,
    /// The data device.
    pub data: &'a DataDevice,
    /// The dm-integrity superblock, for a segment with integrity protection.
    pub integrity: Option<&'a Superblock>,
}

impl Plan {
    /// cryptsetup's mappings for `v` as `name`: one crypt target, or with integrity a crypt
    /// target over `name_dif` (UUID `CRYPT-INTEGRITY-<uuid>-name_dif`, as cryptsetup 2.6).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the device has no room for data or the cipher cannot be
    /// mapped; [`Error::Dm`] for a name that becomes too long.
    pub fn luks2(
        v: &Luks2Volume<'_>,
        name: &DmName,
        uuid: Option<String>,
        o: &Options,
    ) -> Result<Plan> {
        let a = v.activation;
        let Some(sb) = v.integrity else {
            let lower = Lower {
                device: v.data.dev_string(),
                offset: Bytes(a.offset).sectors(),
                available: Bytes(v.data.size().saturating_sub(a.offset)),
                tag_size: None,
            };
            let (crypt, sectors) = crypt_table(a, v.key, &lower, o)?;
            return Ok(Plan::crypt(name, uuid, sectors, crypt, o));
        };
        let dif_name = format!("{name}_dif");
        let dif = DmName::new(&dif_name).map_err(Error::dm(&dif_name))?;
        // Always set: `Mapper::close` recognises the integrity mapping by it.
        let dif_uuid = format!("CRYPT-INTEGRITY-{}-{dif}", v.header.uuid().replace('-', ""));
        let sectors = Sectors(sb.provided_data_sectors);
        let lower = Lower {
            device: String::new(),
            offset: Sectors(0),
            available: sectors.bytes().ok_or_else(|| Error::Invalid {
                reason: format!("the integrity superblock's {sectors} do not fit in 64 bits"),
            })?,
            tag_size: Some(u32::from(sb.tag_size)),
        };
        // dm-integrity's tags would not match discarded sectors.
        if o.allow_discards || persistent(a, o, PersistentFlag::AllowDiscards) {
            return Err(Error::DiscardsOverIntegrity);
        }
        let no_journal = o.integrity_no_journal || persistent(a, o, PersistentFlag::NoJournal);
        let (crypt, crypt_sectors) = crypt_table(a, v.key, &lower, o)?;
        Ok(Plan {
            layers: vec![
                Layer {
                    name: dif,
                    uuid: Some(dif_uuid),
                    sectors,
                    table: Table::Integrity(integrity_table(a, sb, v.data, no_journal)),
                    on: None,
                },
                Layer {
                    name: name.clone(),
                    uuid,
                    sectors: crypt_sectors,
                    table: Table::Crypt(crypt),
                    on: Some(0),
                },
            ],
            read_only: o.read_only,
            keyring_key: None,
            refresh: o.refresh,
        })
    }
}

impl Plan {
    /// cryptsetup's mapping of an unlocked LUKS1 volume as `name`: one crypt target with the
    /// hex key (cryptsetup keeps LUKS1 keys out of the keyring), 512-byte sectors, UUID
    /// `CRYPT-LUKS1-<uuid>-<name>`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the device has no room for data.
    pub fn luks1(
        a: &Activation,
        key: &VolumeKey,
        data: &DataDevice,
        name: &DmName,
        uuid: String,
        o: &Options,
    ) -> Result<Plan> {
        let lower = Lower {
            device: data.dev_string(),
            offset: Bytes(a.offset).sectors(),
            available: Bytes(data.size().saturating_sub(a.offset)),
            tag_size: None,
        };
        let (crypt, sectors) = crypt_table(a, key, &lower, o)?;
        Ok(Plan::crypt(name, Some(uuid), sectors, crypt, o))
    }
}

/// Where and how a plain dm-crypt volume (no header) is mapped: cryptsetup's `open --type
/// plain` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainParams {
    /// Cipher in dm-crypt notation (`aes-cbc-essiv:sha256`, `aes-xts-plain64`).
    pub cipher: String,
    /// Start of the data on the device (`--offset`).
    pub offset: Sectors,
    /// IV offset (`--skip`), in 512-byte sectors.
    pub skip: u64,
    /// Mapping size (`--size`), or the rest of the device.
    pub size: Option<Sectors>,
    /// Encryption sector size in bytes (`--sector-size`).
    pub sector_size: u32,
    /// IVs count in sectors of `sector_size` rather than 512 bytes (`--iv-large-sectors`).
    pub iv_large_sectors: bool,
}

impl Plan {
    /// cryptsetup's mapping of a plain volume as `name`: one crypt target with the hex key
    /// (cryptsetup 2.6 keeps plain keys out of the keyring), UUID `CRYPT-PLAIN-<name>`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an offset past the device's end, a size beyond it, a size not
    /// a multiple of the sector size, or a sector size dm-crypt does not take.
    pub fn plain(
        p: &PlainParams,
        key: &VolumeKey,
        data: &DataDevice,
        name: &DmName,
        o: &Options,
    ) -> Result<Plan> {
        let invalid = |reason: String| Err(Error::Invalid { reason });
        if !(512..=4096).contains(&p.sector_size) || !p.sector_size.is_power_of_two() {
            return invalid(format!(
                "unsupported encryption sector size {} (512, 1024, 2048 or 4096)",
                p.sector_size
            ));
        }
        if p.iv_large_sectors && p.sector_size == 512 {
            return invalid("--iv-large-sectors needs a sector size larger than 512 bytes".into());
        }
        let offset = p
            .offset
            .bytes()
            .filter(|&b| b.0 < data.size())
            .ok_or_else(|| Error::Invalid {
                reason: format!(
                    "the requested offset of {} is beyond the device's {} bytes",
                    p.offset,
                    data.size()
                ),
            })?;
        let available = data.size() - offset.0;
        let size = match p.size {
            Some(s) => match s.bytes().filter(|b| b.0 <= available && b.0 > 0) {
                Some(b) => b.0,
                None => {
                    return invalid(format!(
                        "the device is too small: {s} from sector {} need more than its {available} bytes",
                        p.offset.0
                    ))
                }
            },
            None => available,
        };
        if size % u64::from(p.sector_size) != 0 {
            return invalid(format!(
                "the mapping's {size} bytes are not a multiple of the {}-byte sector size",
                p.sector_size
            ));
        }
        let a = Activation {
            cipher: p.cipher.clone(),
            key_size: key.as_bytes().len(),
            iv_tweak: p.skip,
            offset: offset.0,
            size: Some(size),
            sector_size: p.sector_size,
            flags: Vec::new(),
            integrity: None,
        };
        let lower = Lower {
            device: data.dev_string(),
            offset: p.offset,
            available: Bytes(available),
            tag_size: None,
        };
        let (mut crypt, sectors) = crypt_table(&a, key, &lower, o)?;
        if p.iv_large_sectors {
            // Before `sector_size:N`, where cryptsetup puts it.
            let at = crypt
                .options
                .iter()
                .position(|o| matches!(o, CryptOption::SectorSize(_)))
                .unwrap_or(crypt.options.len());
            crypt.options.insert(at, CryptOption::IvLargeSectors);
        }
        Ok(Plan::crypt(
            name,
            Some(format!("CRYPT-PLAIN-{name}")),
            sectors,
            crypt,
            o,
        ))
    }
}

/// integritysetup's `open` flags for a standalone dm-integrity device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityOptions {
    /// Journal (default), direct (`--integrity-no-journal`), bitmap or recovery.
    pub mode: IntegrityMode,
    /// The tags' algorithm (`crc32c`, integritysetup's default; `sha256`, ...). The
    /// superblock does not record it: it must be the one the device was written with.
    pub algorithm: String,
    /// Pass discards through (`--allow-discards`).
    pub allow_discards: bool,
    /// The padding of kernels from 5.4 on (integritysetup's default; off with
    /// `--integrity-legacy-padding`).
    pub fix_padding: bool,
    /// The HMAC fix of kernels from 5.11 on (default; off with `--integrity-legacy-hmac`).
    pub fix_hmac: bool,
}

impl Default for IntegrityOptions {
    fn default() -> Self {
        Self {
            mode: IntegrityMode::Journal,
            algorithm: "crc32c".into(),
            allow_discards: false,
            fix_padding: true,
            fix_hmac: true,
        }
    }
}

impl Plan {
    /// integritysetup's mapping of the standalone dm-integrity device `data` (superblock
    /// `sb` at sector 0) as `name`: its data sectors, UUID `CRYPT-INTEGRITY-<name>`.
    pub fn integrity(
        sb: &Superblock,
        data: &DataDevice,
        name: &DmName,
        o: &IntegrityOptions,
    ) -> Plan {
        let mut options = vec![
            format!("block_size:{}", sb.block_size()),
            format!("internal_hash:{}", o.algorithm),
        ];
        let flags = [
            (o.fix_padding, "fix_padding"),
            (o.fix_hmac, "fix_hmac"),
            (o.allow_discards, "allow_discards"),
        ];
        options.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, f)| (*f).to_owned()),
        );
        let table = Table::Integrity(Integrity {
            device: data.dev_string(),
            offset: 0,
            tag_size: Some(u32::from(sb.tag_size)),
            mode: o.mode,
            options,
        });
        let uuid = Some(format!("CRYPT-INTEGRITY-{name}"));
        // Recovery mode too is mapped read/write, as integritysetup does.
        Plan::single(name, uuid, Sectors(sb.provided_data_sectors), table, false)
    }
}

/// What to do when a verity block does not match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnCorruption {
    /// Fail the read with an I/O error (the kernel's default).
    #[default]
    Fail,
    /// Log it and return the data (`ignore_corruption`).
    Ignore,
    /// Restart the system (`restart_on_corruption`).
    Restart,
    /// Panic the kernel (`panic_on_corruption`).
    Panic,
}

/// veritysetup's `open` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerityOptions {
    /// What a bad block does.
    pub on_corruption: OnCorruption,
    /// `ignore_zero_blocks`.
    pub ignore_zero_blocks: bool,
    /// `check_at_most_once`.
    pub check_at_most_once: bool,
}

impl Plan {
    /// veritysetup's mapping of `data` checked against the tree on `hash` with `root` as
    /// `name` (read-only; UUID `CRYPT-VERITY-<uuid>-name` when the tree has a superblock).
    pub fn verity(
        data: &DataDevice,
        hash: &DataDevice,
        p: &VerityParams,
        root: &[u8],
        name: &DmName,
        o: &VerityOptions,
    ) -> Plan {
        let mut options = Vec::new();
        match o.on_corruption {
            OnCorruption::Fail => {}
            OnCorruption::Ignore => options.push("ignore_corruption".to_owned()),
            OnCorruption::Restart => options.push("restart_on_corruption".to_owned()),
            OnCorruption::Panic => options.push("panic_on_corruption".to_owned()),
        }
        if o.ignore_zero_blocks {
            options.push("ignore_zero_blocks".into());
        }
        if o.check_at_most_once {
            options.push("check_at_most_once".into());
        }
        let salt = if p.salt.is_empty() {
            "-".to_owned()
        } else {
            luks2::hex::encode(&p.salt)
        };
        let table = Verity {
            version: p.hash_type,
            data_device: data.dev_string(),
            hash_device: hash.dev_string(),
            data_block_size: p.data_block_size,
            hash_block_size: p.hash_block_size,
            data_blocks: p.data_blocks,
            hash_start: p.hash_start_block(),
            algorithm: p.hash.name().into(),
            root_digest: luks2::hex::encode(root),
            salt,
            options,
        };
        let uuid = p.superblock.then(|| {
            format!(
                "CRYPT-VERITY-{}-{name}",
                integrity::verity::format_uuid(&p.uuid).replace('-', "")
            )
        });
        let sectors = Bytes(p.data_blocks.saturating_mul(u64::from(p.data_block_size))).sectors();
        Plan::single(name, uuid, sectors, Table::Verity(table), true)
    }
}

/// Where the crypt target reads its sectors: the data device at the segment offset, or the
/// start of an integrity mapping.
struct Lower {
    device: String,
    offset: Sectors,
    /// Available from there.
    available: Bytes,
    /// Tag bytes per sector (`integrity:N:aead`) when the lower device is an integrity mapping.
    tag_size: Option<u32>,
}

/// The crypt table cryptsetup 2.6 would load for this header (with a hex key), and its
/// length in sectors.
fn crypt_table(
    a: &Activation,
    key: &VolumeKey,
    lower: &Lower,
    o: &Options,
) -> Result<(Crypt, Sectors)> {
    let sector = u64::from(a.sector_size);
    let available = lower.available.0;
    let bytes = a.size.unwrap_or(available).min(available) / sector * sector;
    if bytes == 0 {
        return Err(Error::Invalid {
            reason: format!(
                "the device has no room for data after the {}-byte header",
                a.offset
            ),
        });
    }
    let flag = |f| persistent(a, o, f);
    let wanted = [
        (
            o.allow_discards || flag(PersistentFlag::AllowDiscards),
            CryptOption::AllowDiscards,
        ),
        (
            o.same_cpu_crypt || flag(PersistentFlag::SameCpuCrypt),
            CryptOption::SameCpuCrypt,
        ),
        (
            o.submit_from_crypt_cpus || flag(PersistentFlag::SubmitFromCryptCpus),
            CryptOption::SubmitFromCryptCpus,
        ),
        (
            o.no_read_workqueue || flag(PersistentFlag::NoReadWorkqueue),
            CryptOption::NoReadWorkqueue,
        ),
        (
            o.no_write_workqueue || flag(PersistentFlag::NoWriteWorkqueue),
            CryptOption::NoWriteWorkqueue,
        ),
    ];
    let mut options: Vec<CryptOption> = wanted
        .into_iter()
        .filter_map(|(on, opt)| on.then_some(opt))
        .collect();
    if let Some(tag) = lower.tag_size {
        options.push(CryptOption::Integrity(tag, "aead".into()));
    }
    if a.sector_size != 512 {
        options.push(CryptOption::SectorSize(a.sector_size));
    }
    let (cipher, _) = a.dm_cipher().map_err(|e| Error::Invalid {
        reason: e.to_string(),
    })?;
    let crypt = Crypt {
        cipher,
        key: CryptKey::Hex(Zeroizing::new(key.as_bytes().to_vec())),
        iv_offset: a.iv_tweak,
        device: lower.device.clone(),
        offset: lower.offset.0,
        options,
    };
    Ok((crypt, Bytes(bytes).sectors()))
}

/// Whether the header's persistent flag `f` is on and counts.
fn persistent(a: &Activation, o: &Options, f: PersistentFlag) -> bool {
    !o.ignore_persistent && a.flags.iter().any(|x| x == f.as_str())
}

/// The integrity table cryptsetup 2.6 loads under a LUKS2 segment with integrity protection.
fn integrity_table(
    a: &Activation,
    sb: &Superblock,
    dev: &DataDevice,
    no_journal: bool,
) -> Integrity {
    let mut options = Vec::new();
    if sb.block_size() != 512 {
        options.push(format!("block_size:{}", sb.block_size()));
    }
    options.push(format!("journal_sectors:{}", sb.journal_area_sectors()));
    options.push(format!("interleave_sectors:{}", sb.interleave_sectors()));
    options.push("buffer_sectors:128".into());
    if !no_journal {
        options.push("journal_watermark:50".into());
        options.push("commit_time:10000".into());
    }
    if sb.flags & FLAG_FIXED_PADDING != 0 {
        options.push("fix_padding".into());
    }
    Integrity {
        device: dev.dev_string(),
        offset: Bytes(a.offset).sectors().0,
        tag_size: Some(u32::from(sb.tag_size)),
        mode: if no_journal {
            IntegrityMode::Direct
        } else {
            IntegrityMode::Journal
        },
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use luks2::{FormatOptions, HashAlg, MemoryDevice, PbkdfParams, SegmentIntegrity};

    fn options(key: u8, key_size: usize) -> FormatOptions {
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams::insecure_fast();
        opts.digest_iterations = Some(1000);
        opts.sector_size = Some(4096);
        opts.key_size = key_size;
        opts.volume_key = Some(VolumeKey::from_slice(&vec![key; key_size]));
        opts
    }

    /// A LUKS2 volume with hmac-sha256 integrity whose key is 96 bytes of `key`.
    fn hmac_volume(key: u8) -> (Header, VolumeKey, Superblock) {
        let mut opts = options(key, 96);
        opts.integrity = Some(SegmentIntegrity::Hmac(HashAlg::Sha256));
        let (dev, key, sb) = integrity::luks::format_luks2(
            MemoryDevice::new(48 << 20),
            &opts,
            &luks2::Passphrase::from_slice(b"pw"),
            true,
        )
        .expect("format");
        (dev.header().clone(), key, sb)
    }

    /// A 32 MiB LUKS2 volume with AES-XTS and the key `key` repeated.
    fn xts_volume(key: u8) -> (Header, VolumeKey) {
        let (dev, key) = luks2::format(
            MemoryDevice::new(32 << 20),
            &options(key, 64),
            &luks2::Passphrase::from_slice(b"pw"),
        )
        .expect("format");
        (dev.header().clone(), key)
    }

    fn name(n: &str) -> DmName {
        DmName::new(n).expect("name")
    }

    #[test]
    fn plain_luks2_is_one_crypt_layer_as_cryptsetup_loads_it() {
        let (header, key) = xts_volume(0x11);
        let a = header.activation().expect("activation");
        let data = DataDevice::fake(7, 3, 32 << 20);
        let v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: None,
        };
        let o = Options {
            allow_discards: true,
            no_read_workqueue: true,
            ..Options::default()
        };
        let plan = Plan::luks2(&v, &name("data"), Some(header.dm_uuid("data")), &o).expect("plan");
        assert_eq!(plan.layers.len(), 1);
        assert_eq!(plan.top().as_str(), "data");
        assert!(plan.layers[0]
            .uuid
            .as_deref()
            .is_some_and(|u| u.starts_with("CRYPT-LUKS2-")));
        let t = plan.table_on(0, None);
        assert_eq!((t.kind.as_str(), t.start, t.length), ("crypt", 0, 32768));
        let want = format!(
            "aes-xts-plain64 {} 0 7:3 32768 3 allow_discards no_read_workqueue sector_size:4096",
            "11".repeat(64)
        );
        assert_eq!(t.params(), want);
        assert!(!format!("{plan:?}").contains("1111"), "Debug shows the key");
    }

    #[test]
    fn integrity_puts_crypt_over_name_dif() {
        let (header, key, sb) = hmac_volume(0x22);
        let a = header.activation().expect("activation");
        let data = DataDevice::fake(8, 16, 48 << 20);
        let v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: Some(&sb),
        };
        let o = Options {
            integrity_no_journal: true,
            ..Options::default()
        };
        let plan = Plan::luks2(&v, &name("v"), None, &o).expect("plan");
        let [dif, crypt] = &plan.layers[..] else {
            panic!("two layers: {plan:?}")
        };
        assert_eq!(dif.name.as_str(), "v_dif");
        let uuid = dif.uuid.as_deref().expect("dif uuid");
        assert!(
            uuid.starts_with("CRYPT-INTEGRITY-") && uuid.ends_with("-v_dif"),
            "{uuid}"
        );
        assert_eq!((dif.on, crypt.on), (None, Some(0)));
        let t = plan.table_on(0, None);
        assert!(
            t.params().starts_with("8:16 32768 32 D ")
                && t.params().contains("block_size:4096")
                && t.params().ends_with("fix_padding")
                && !t.params().contains("journal_watermark"),
            "{}",
            t.params()
        );
        let t = plan.table_on(1, Some("253:9".into()));
        let want = format!(
            "capi:authenc(hmac(sha256),xts(aes))-plain64 {} 0 253:9 0 2 integrity:32:aead sector_size:4096",
            "22".repeat(96)
        );
        assert_eq!(t.params(), want);
        assert_eq!(t.length, sb.provided_data_sectors / 8 * 8);
    }

    #[test]
    fn stored_flags_apply_unless_ignored_and_no_discards_pass_integrity() {
        let (header, key) = xts_volume(0x11);
        let mut a = header.activation().expect("activation");
        a.flags = vec!["allow-discards".into(), "no-journal".into()];
        let data = DataDevice::fake(7, 3, 32 << 20);
        let v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: None,
        };
        let params = |o: &Options| {
            let plan = Plan::luks2(&v, &name("data"), None, o).expect("plan");
            plan.table_on(0, None).params().to_owned()
        };
        assert!(params(&Options::default()).contains(" allow_discards "));
        let ignoring = Options {
            ignore_persistent: true,
            ..Options::default()
        };
        assert!(!params(&ignoring).contains("allow_discards"));

        let (header, key, sb) = hmac_volume(0x22);
        let mut a = header.activation().expect("activation");
        a.flags = vec!["no-journal".into()];
        let data = DataDevice::fake(8, 16, 48 << 20);
        let mut v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: Some(&sb),
        };
        let mode = |v: &Luks2Volume<'_>, o: &Options| {
            let plan = Plan::luks2(v, &name("v"), None, o).expect("plan");
            plan.table_on(0, None)
                .params()
                .split(' ')
                .nth(3)
                .map(str::to_owned)
        };
        assert_eq!(mode(&v, &Options::default()).as_deref(), Some("D"));
        assert_eq!(mode(&v, &ignoring).as_deref(), Some("J"));
        let discards = Options {
            allow_discards: true,
            ..Options::default()
        };
        assert!(matches!(
            Plan::luks2(&v, &name("v"), None, &discards),
            Err(Error::DiscardsOverIntegrity)
        ));
        let mut stored = a.clone();
        stored.flags = vec!["allow-discards".into()];
        v.activation = &stored;
        assert!(matches!(
            Plan::luks2(&v, &name("v"), None, &Options::default()),
            Err(Error::DiscardsOverIntegrity)
        ));
        assert_eq!(mode(&v, &ignoring).as_deref(), Some("J"));
    }

    #[test]
    fn keyring_plans_name_the_key_as_cryptsetup_does_and_carry_no_key_in_any_table() {
        let (header, key, sb) = hmac_volume(0x44);
        let a = header.activation().expect("activation");
        let data = DataDevice::fake(8, 16, 48 << 20);
        let v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: Some(&sb),
        };
        let mut plan = Plan::luks2(&v, &name("k"), None, &Options::default()).expect("plan");
        let description = header.key_description().expect("description");
        assert_eq!(description, format!("cryptsetup:{}-d0", header.uuid()));
        plan.key_in_keyring(&description);
        let t = plan.table_on(1, Some("253:9".into()));
        let want = format!(
            "capi:authenc(hmac(sha256),xts(aes))-plain64 :96:logon:{description} 0 253:9 0 2 integrity:32:aead sector_size:4096"
        );
        assert_eq!(t.params(), want);
        let held = plan.keyring_key.as_ref().expect("key to load");
        assert_eq!(held.key.as_bytes(), key.as_bytes());
        assert_eq!(held.description, description);
        for i in 0..plan.layers.len() {
            assert!(!plan.table_on(i, None).params().contains("4444"));
        }
        assert!(!format!("{plan:?}").contains("4444"), "Debug shows the key");
    }

    #[test]
    fn no_room_for_data_is_refused_before_any_mapping() {
        let (dev, key) = luks2::format(
            MemoryDevice::new(32 << 20),
            &options(0x33, 64),
            &luks2::Passphrase::from_slice(b"pw"),
        )
        .expect("format");
        let header = dev.header().clone();
        let a = header.activation().expect("activation");
        let data = DataDevice::fake(7, 3, 16 << 20);
        let v = Luks2Volume {
            header: &header,
            activation: &a,
            key: &key,
            data: &data,
            integrity: None,
        };
        let e = Plan::luks2(&v, &name("d"), None, &Options::default()).expect_err("no room");
        assert!(e.to_string().contains("no room for data"), "{e}");
    }

    fn plain(cipher: &str, offset: u64, size: Option<u64>, sector: u32) -> PlainParams {
        PlainParams {
            cipher: cipher.into(),
            offset: Sectors(offset),
            skip: 0,
            size: size.map(Sectors),
            sector_size: sector,
            iv_large_sectors: false,
        }
    }

    #[test]
    fn plain_is_one_hex_keyed_crypt_layer_with_cryptsetups_uuid() {
        let key = VolumeKey::from_slice(&[0x5a; 32]);
        let data = DataDevice::fake(7, 1, 1 << 20);
        let mut p = plain("aes-cbc-essiv:sha256", 8, None, 512);
        p.skip = 3;
        let o = Options {
            allow_discards: true,
            ..Options::default()
        };
        let plan = Plan::plain(&p, &key, &data, &name("swap"), &o).expect("plan");
        assert_eq!(plan.layers[0].uuid.as_deref(), Some("CRYPT-PLAIN-swap"));
        assert!(plan.keyring_key.is_none());
        let t = plan.table_on(0, None);
        assert_eq!((t.start, t.length), (0, 2048 - 8));
        let want = format!(
            "aes-cbc-essiv:sha256 {} 3 7:1 8 1 allow_discards",
            "5a".repeat(32)
        );
        assert_eq!(t.params(), want);
        // 4096-byte sectors with large IVs: iv_large_sectors comes before sector_size.
        let mut p = plain("aes-xts-plain64", 0, Some(1024), 4096);
        p.iv_large_sectors = true;
        let plan = Plan::plain(&p, &key, &data, &name("s"), &Options::default()).expect("plan");
        let t = plan.table_on(0, None);
        assert_eq!(t.length, 1024);
        assert!(t
            .params()
            .ends_with(" 7:1 0 2 iv_large_sectors sector_size:4096"));
    }

    #[test]
    fn plain_refuses_what_does_not_fit() {
        let key = VolumeKey::from_slice(&[1; 32]);
        let data = DataDevice::fake(7, 1, 1 << 20);
        let o = Options::default();
        let n = name("p");
        let refused = |p: PlainParams| {
            Plan::plain(&p, &key, &data, &n, &o)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(plain("aes-xts-plain64", 2048, None, 512)).contains("beyond"));
        assert!(refused(plain("aes-xts-plain64", 8, Some(2041), 512)).contains("too small"));
        assert!(refused(plain("aes-xts-plain64", 1, None, 4096)).contains("multiple"));
        assert!(refused(plain("aes-xts-plain64", 0, None, 3000)).contains("sector size"));
        let mut p = plain("aes-xts-plain64", 0, None, 512);
        p.iv_large_sectors = true;
        assert!(refused(p).contains("iv-large-sectors"));
    }

    #[test]
    fn standalone_integrity_is_integritysetups_table() {
        let params = integrity::dm_integrity::IntegrityParams::new(4);
        let sb = Superblock::new(&params, 32768, 0).expect("superblock");
        let data = DataDevice::fake(254, 16, 16 << 20);
        let plan = Plan::integrity(&sb, &data, &name("i"), &IntegrityOptions::default());
        assert_eq!(plan.layers[0].uuid.as_deref(), Some("CRYPT-INTEGRITY-i"));
        let t = plan.table_on(0, None);
        assert_eq!(
            (t.kind.as_str(), t.length),
            ("integrity", sb.provided_data_sectors)
        );
        assert_eq!(
            t.params(),
            "254:16 0 4 J 4 block_size:512 internal_hash:crc32c fix_padding fix_hmac"
        );
        let o = IntegrityOptions {
            mode: IntegrityMode::Bitmap,
            algorithm: "sha256".into(),
            allow_discards: true,
            fix_padding: false,
            fix_hmac: false,
        };
        let t = Plan::integrity(&sb, &data, &name("i"), &o).table_on(0, None);
        assert_eq!(
            t.params(),
            "254:16 0 4 B 3 block_size:512 internal_hash:sha256 allow_discards"
        );
    }
}
