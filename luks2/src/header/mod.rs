//! The LUKS2 header: both copies of the binary header and JSON area.
//!
//! Reading checks each copy's magic, version, size, offset and checksum over the raw
//! on-disk bytes, then parses and validates its JSON. The copy with the higher sequence id
//! wins; a damaged or older copy is reported so it can be repaired.

pub(crate) mod binary;
pub(crate) mod json;
pub(crate) mod validate;

use binary::{BinaryHeader, SALT_LEN};
use json::{Metadata, ObjId, SegmentJson};

use crate::error::Copy;
use crate::io::BlockIo;
use crate::{Error, Result};

pub use binary::{BINARY_SIZE, HDR_SIZES, LABEL_MAX};
pub use validate::{KeyslotParams, MAX_OBJECTS};

/// Largest JSON metadata read or written (the largest JSON area).
pub const MAX_JSON_SIZE: u64 = HDR_SIZES[HDR_SIZES.len() - 1] - BINARY_SIZE as u64;

/// A validated, immutable view of a LUKS2 header.
#[derive(Clone, Debug)]
pub struct Header {
    pub(crate) bin: BinaryHeader,
    pub(crate) meta: Metadata,
}

impl Header {
    /// The volume UUID.
    pub fn uuid(&self) -> &str {
        &self.bin.uuid
    }

    /// The label (empty if none); bytes that are not UTF-8 show as U+FFFD.
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bin.label)
    }

    /// The subsystem label (empty if none); bytes that are not UTF-8 show as U+FFFD.
    pub fn subsystem(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bin.subsystem)
    }

    /// The label's bytes as stored.
    pub fn label_bytes(&self) -> &[u8] {
        &self.bin.label
    }

    /// The subsystem's bytes as stored.
    pub fn subsystem_bytes(&self) -> &[u8] {
        &self.bin.subsystem
    }

    /// The sequence id ("epoch") of this header.
    pub fn seqid(&self) -> u64 {
        self.bin.seqid
    }

    /// Size of one header copy (binary header plus JSON area) in bytes.
    pub fn metadata_size(&self) -> u64 {
        self.bin.hdr_size
    }

    /// Size of the keyslots area in bytes.
    pub fn keyslots_size(&self) -> u64 {
        self.meta.config.keyslots_size.0
    }

    /// Bytes taken by both header copies and the keyslots area (what a backup holds).
    pub fn header_area_size(&self) -> u64 {
        2 * self.bin.hdr_size + self.keyslots_size()
    }

    /// The checksum algorithm's name.
    pub fn checksum_algorithm(&self) -> &'static str {
        self.bin.csum_alg.name()
    }

    /// The typed JSON metadata.
    pub(crate) fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The metadata as pretty-printed JSON.
    pub fn metadata_json_pretty(&self) -> String {
        let v = serde_json::to_value(&self.meta).unwrap_or_default();
        let mut out = String::new();
        json_c_pretty(&v, 0, &mut out);
        out
    }

    /// The metadata as compact JSON, as it is written to disk.
    pub fn metadata_json(&self) -> String {
        String::from_utf8_lossy(&self.meta.to_json()).into_owned()
    }

    /// Whether the metadata, written out as JSON and parsed again, is the same (the fuzz
    /// targets' round-trip invariant).
    #[doc(hidden)]
    pub fn metadata_round_trips(&self) -> bool {
        Metadata::from_json(&self.meta.to_json()).is_ok_and(|m| m == self.meta)
    }

    /// The first data segment (the one normal volumes have).
    pub(crate) fn data_segment(&self) -> Option<(ObjId, &SegmentJson)> {
        self.meta.segments.iter().next().map(|(k, v)| (*k, v))
    }

    /// Numbers of all keyslots.
    pub fn keyslot_ids(&self) -> Vec<u32> {
        self.meta.keyslots.keys().map(|k| k.0).collect()
    }

    /// Unlock parameters of one `luks2` keyslot.
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`], or [`Error::Unsupported`]/[`Error::Metadata`] when the
    /// keyslot uses an algorithm this crate does not implement.
    pub fn keyslot(&self, id: u32) -> Result<KeyslotParams> {
        let ks = self
            .meta
            .keyslots
            .get(&ObjId(id))
            .ok_or(Error::KeyslotNotFound(id))?;
        validate::keyslot_params(ObjId(id), ks)
    }

    /// The digest a keyslot is assigned to.
    pub(crate) fn digest_of_keyslot(&self, id: u32) -> Option<ObjId> {
        self.meta
            .digests
            .iter()
            .find(|(_, d)| d.keyslots.contains(&ObjId(id)))
            .map(|(k, _)| *k)
    }

    /// Mandatory requirements this implementation does not understand. Volumes with any
    /// may be read and dumped, but not changed or activated.
    pub fn unmet_requirements(&self) -> Vec<String> {
        self.meta.requirements().to_vec()
    }

    /// Fails unless the header may be changed or activated.
    ///
    /// # Errors
    /// [`Error::UnmetRequirements`].
    pub fn ensure_writable(&self) -> Result<()> {
        let unmet = self.unmet_requirements();
        if unmet.is_empty() {
            Ok(())
        } else {
            Err(Error::UnmetRequirements(unmet))
        }
    }
}

/// What was found in one header copy when reading.
#[derive(Debug)]
pub enum CopyStatus {
    /// Valid, with this sequence id.
    Valid(u64),
    /// Damaged or missing.
    Invalid(Error),
}

impl CopyStatus {
    /// Whether the copy is valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, CopyStatus::Valid(_))
    }
}

/// The result of reading both copies.
#[derive(Debug)]
pub struct Loaded {
    /// The newest valid header.
    pub header: Header,
    /// State of the primary copy.
    pub primary: CopyStatus,
    /// State of the secondary copy.
    pub secondary: CopyStatus,
    pub(crate) salts: [[u8; SALT_LEN]; 2],
}

/// The copy that is damaged or older than the other, if any: the one a repair rewrites.
pub(crate) fn stale_copy(primary: &CopyStatus, secondary: &CopyStatus) -> Option<Copy> {
    match (primary, secondary) {
        (CopyStatus::Valid(a), CopyStatus::Valid(b)) if a == b => None,
        (CopyStatus::Valid(a), CopyStatus::Valid(b)) if a > b => Some(Copy::Secondary),
        (CopyStatus::Valid(_), _) => Some(Copy::Secondary),
        _ => Some(Copy::Primary),
    }
}

struct CopyRead {
    bin: BinaryHeader,
    meta: Metadata,
}

fn read_copy<D: BlockIo>(io: &mut D, copy: Copy, offset: u64) -> Result<CopyRead> {
    let bad = |reason: String| Error::BadBinaryHeader { copy, reason };
    let mut first = vec![0u8; BINARY_SIZE];
    io.read_exact_at(&mut first, offset)
        .map_err(|e| bad(format!("cannot read at {offset}: {e}")))?;
    let bin = BinaryHeader::parse(&first, copy, offset)?;
    let mut area = vec![0u8; bin.hdr_size as usize];
    io.read_exact_at(&mut area, offset)
        .map_err(|e| bad(format!("cannot read the JSON area: {e}")))?;
    if !binary::verify_checksum(bin.csum_alg, &area) {
        return Err(bad("checksum mismatch".into()));
    }
    let json = &area[BINARY_SIZE..];
    let end = json
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad("JSON area is not NUL-terminated".into()))?;
    // cryptsetup's JSON area rules: the text starts with `{` (the parser allows whitespace
    // after the object, as json-c does, and nothing else), and every byte after its
    // terminating NUL up to the end of the area is NUL.
    if json.first() != Some(&b'{') {
        return Err(Error::metadata(
            "json",
            "the JSON area does not start with '{'",
        ));
    }
    if let Some(i) = json[end..].iter().position(|&c| c != 0) {
        return Err(Error::metadata(
            "json",
            format!(
                "byte {:#x} at offset {} of the JSON area, after its terminating NUL",
                json[end + i],
                end + i
            ),
        ));
    }
    let meta = Metadata::from_json(&json[..end])?;
    validate::validate(&meta, bin.hdr_size)?;
    Ok(CopyRead { bin, meta })
}

fn has_magic<D: BlockIo>(io: &mut D, offset: u64, magic: &[u8; 6]) -> bool {
    let mut m = [0u8; 6];
    io.read_exact_at(&mut m, offset).is_ok() && &m == magic
}

/// Reads and validates both header copies.
///
/// # Errors
/// [`Error::NotLuks2`] if no LUKS2 magic is present at all, [`Error::Overwritten`] if the
/// primary copy is gone and its area holds another signature (what lives there now is not
/// LUKS, whatever stale secondary copy remains), [`Error::NoValidHeader`] if both copies are
/// damaged (with both reasons).
pub fn read<D: BlockIo>(io: &mut D) -> Result<Loaded> {
    read_as(io, false)
}

/// [`read`], taking a stale secondary copy even over another signature in the primary area:
/// only for a repair the user insisted on.
///
/// # Errors
/// As [`read`], without [`Error::Overwritten`].
pub fn read_over_foreign<D: BlockIo>(io: &mut D) -> Result<Loaded> {
    read_as(io, true)
}

fn read_as<D: BlockIo>(io: &mut D, over_foreign: bool) -> Result<Loaded> {
    let mut head = [0u8; 8];
    if io.read_exact_at(&mut head, 0).is_ok() && crate::luks1::is_luks1(&head) {
        return Err(Error::IsLuks1);
    }
    let primary = read_copy(io, Copy::Primary, 0);
    let secondary = match &primary {
        Ok(p) => read_copy(io, Copy::Secondary, p.bin.hdr_size),
        Err(_) => find_secondary(io),
    };
    let (header, primary, secondary, salts) = match (primary, secondary) {
        (Err(p), Err(s)) => {
            let any_magic = has_magic(io, 0, &binary::MAGIC_1ST)
                || HDR_SIZES
                    .iter()
                    .any(|&o| has_magic(io, o, &binary::MAGIC_2ND));
            if !any_magic {
                return Err(Error::NotLuks2);
            }
            return Err(Error::NoValidHeader {
                primary: Box::new(p),
                secondary: Box::new(s),
            });
        }
        (Ok(p), Err(e)) => {
            let st = CopyStatus::Valid(p.bin.seqid);
            let salts = [p.bin.salt, [0; SALT_LEN]];
            (p, st, CopyStatus::Invalid(e), salts)
        }
        (Err(e), Ok(s)) => {
            if !over_foreign && !has_magic(io, 0, &binary::MAGIC_1ST) {
                if let Ok(Some(signature)) = crate::probe::foreign(io) {
                    return Err(Error::Overwritten { signature });
                }
            }
            let st = CopyStatus::Valid(s.bin.seqid);
            let salts = [[0; SALT_LEN], s.bin.salt];
            (s, CopyStatus::Invalid(e), st, salts)
        }
        (Ok(p), Ok(s)) => both_valid(p, s),
    };
    // cryptsetup refuses a device that cannot hold the header and keyslots areas it names.
    let needed = 2 * header.bin.hdr_size + header.meta.config.keyslots_size.0;
    let size = io
        .size()
        .map_err(|e| Error::io("reading the device size", e))?;
    if size < needed {
        return Err(Error::DeviceTooSmall { needed, size });
    }
    let mut bin = header.bin;
    bin.hdr_offset = 0;
    Ok(Loaded {
        header: Header {
            bin,
            meta: header.meta,
        },
        primary,
        secondary,
        salts,
    })
}

/// The secondary copy when the primary cannot tell where it is: tried at every allowed
/// offset that carries its magic.
fn find_secondary<D: BlockIo>(io: &mut D) -> Result<CopyRead> {
    let mut first_err = None;
    for off in HDR_SIZES {
        if !has_magic(io, off, &binary::MAGIC_2ND) {
            continue;
        }
        match read_copy(io, Copy::Secondary, off) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or(Error::BadBinaryHeader {
        copy: Copy::Secondary,
        reason: "not found".into(),
    }))
}

/// Two valid copies: the newer one is the header; equal sequence ids with different
/// contents count as the secondary being stale.
fn both_valid(p: CopyRead, s: CopyRead) -> (CopyRead, CopyStatus, CopyStatus, [[u8; SALT_LEN]; 2]) {
    let (ps, ss) = (
        CopyStatus::Valid(p.bin.seqid),
        CopyStatus::Valid(s.bin.seqid),
    );
    let salts = [p.bin.salt, s.bin.salt];
    let same = p.bin.seqid == s.bin.seqid
        && p.meta == s.meta
        && p.bin.label == s.bin.label
        && p.bin.subsystem == s.bin.subsystem
        && p.bin.uuid == s.bin.uuid;
    let ss = if same || p.bin.seqid != s.bin.seqid {
        ss
    } else {
        CopyStatus::Invalid(Error::BadBinaryHeader {
            copy: Copy::Secondary,
            reason: "differs from the primary with the same sequence id".into(),
        })
    };
    if s.bin.seqid > p.bin.seqid {
        (s, ps, ss, salts)
    } else {
        (p, ps, ss, salts)
    }
}

/// Writes one copy of the header described by `bin` and `meta`.
pub(crate) fn write_copy<D: BlockIo>(
    io: &mut D,
    bin: &BinaryHeader,
    json: &[u8],
    copy: Copy,
    salt: [u8; SALT_LEN],
) -> Result<()> {
    let mut b = bin.clone();
    b.salt = salt;
    b.hdr_offset = match copy {
        Copy::Primary => 0,
        Copy::Secondary => bin.hdr_size,
    };
    let mut area = vec![0u8; bin.hdr_size as usize];
    area[..BINARY_SIZE].copy_from_slice(&b.encode(copy));
    area[BINARY_SIZE..BINARY_SIZE + json.len()].copy_from_slice(json);
    binary::seal(bin.csum_alg, &mut area);
    io.write_all_at(&area, b.hdr_offset)
        .map_err(|e| Error::io("writing the LUKS2 header", e))?;
    io.sync()
        .map_err(|e| Error::io("syncing the LUKS2 header", e))
}

/// Serialises `meta` and checks it fits the JSON area of `hdr_size`.
pub(crate) fn encode_json(meta: &Metadata, hdr_size: u64) -> Result<Vec<u8>> {
    validate::validate(meta, hdr_size)?;
    let json = meta.to_json();
    let max = hdr_size - BINARY_SIZE as u64;
    // The JSON text must be followed by at least one NUL byte.
    if json.len() as u64 + 1 > max {
        return Err(Error::MetadataTooLarge {
            size: json.len() as u64 + 1,
            max,
        });
    }
    Ok(json)
}

/// A persistent activation flag of `config.flags` that cryptsetup 2.6 knows (its
/// `--persistent`): dm-crypt's `--allow-discards` and `--perf-*` options, dm-integrity's
/// `--integrity-no-journal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PersistentFlag {
    /// `allow-discards` (`--allow-discards`).
    AllowDiscards,
    /// `same-cpu-crypt` (`--perf-same_cpu_crypt`).
    SameCpuCrypt,
    /// `submit-from-crypt-cpus` (`--perf-submit_from_crypt_cpus`).
    SubmitFromCryptCpus,
    /// `no-journal` (`--integrity-no-journal`).
    NoJournal,
    /// `no-read-workqueue` (`--perf-no_read_workqueue`).
    NoReadWorkqueue,
    /// `no-write-workqueue` (`--perf-no_write_workqueue`).
    NoWriteWorkqueue,
}

impl PersistentFlag {
    /// Every flag, in the order cryptsetup writes them.
    pub const ALL: [PersistentFlag; 6] = [
        PersistentFlag::AllowDiscards,
        PersistentFlag::SameCpuCrypt,
        PersistentFlag::SubmitFromCryptCpus,
        PersistentFlag::NoJournal,
        PersistentFlag::NoReadWorkqueue,
        PersistentFlag::NoWriteWorkqueue,
    ];

    /// Its name in `config.flags`.
    pub fn as_str(self) -> &'static str {
        match self {
            PersistentFlag::AllowDiscards => "allow-discards",
            PersistentFlag::SameCpuCrypt => "same-cpu-crypt",
            PersistentFlag::SubmitFromCryptCpus => "submit-from-crypt-cpus",
            PersistentFlag::NoJournal => "no-journal",
            PersistentFlag::NoReadWorkqueue => "no-read-workqueue",
            PersistentFlag::NoWriteWorkqueue => "no-write-workqueue",
        }
    }
}

/// What activating the data segment needs, read from the header (no key in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// Cipher in dm-crypt notation.
    pub cipher: String,
    /// Volume key size in bytes.
    pub key_size: usize,
    /// IV offset for dm-crypt.
    pub iv_tweak: u64,
    /// Data offset in bytes.
    pub offset: u64,
    /// Data size in bytes, or `None` for the rest of the device.
    pub size: Option<u64>,
    /// Encryption sector size in bytes.
    pub sector_size: u32,
    /// Persistent activation flags from `config.flags` (`allow-discards`, ...; see
    /// [`PersistentFlag`]; names it does not know are kept too).
    pub flags: Vec<String>,
    /// Authenticated encryption over a dm-integrity device, if the segment has it.
    pub integrity: Option<crate::SegmentIntegrity>,
}

impl Activation {
    /// dm-crypt's cipher string and, with integrity, the tag bytes per sector.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a cipher that cannot be combined with the integrity mode.
    pub fn dm_cipher(&self) -> Result<(String, Option<u32>)> {
        match self.integrity {
            None => Ok((self.cipher.clone(), None)),
            Some(i) => i.dm_params(&self.cipher).map(|(c, t)| (c, Some(t))),
        }
    }
}

impl Header {
    /// The parameters to map the data segment, refusing what cannot be activated here.
    ///
    /// # Errors
    /// [`Error::UnmetRequirements`]; [`Error::Unsupported`] for a header without exactly one
    /// crypt segment, or with an integrity mode or journal protection not supported here.
    pub fn activation(&self) -> Result<Activation> {
        self.ensure_writable()?;
        if self.meta.segments.len() != 1 {
            return Err(Error::unsupported(
                "segment layout",
                format!("{} segments", self.meta.segments.len()),
            ));
        }
        let Some((id, seg)) = self.data_segment() else {
            return Err(Error::unsupported("segment layout", "no data segment"));
        };
        if seg.kind != "crypt" {
            return Err(Error::unsupported("segment type", seg.kind.clone()));
        }
        let integrity = match &seg.integrity {
            None => None,
            Some(i) => {
                let field = |k: &str| i.get(k).and_then(|v| v.as_str()).unwrap_or("none");
                for k in ["journal_encryption", "journal_integrity"] {
                    if field(k) != "none" {
                        return Err(Error::unsupported("integrity journal protection", field(k)));
                    }
                }
                let kind = crate::SegmentIntegrity::parse(field("type"))?;
                kind.dm_params(seg.encryption.as_deref().unwrap_or_default())?;
                Some(kind)
            }
        };
        let key_size = self
            .meta
            .digests
            .values()
            .find(|d| d.segments.contains(&id))
            .and_then(|d| d.keyslots.first())
            .and_then(|k| self.meta.keyslots.get(k))
            .map(|k| k.key_size as usize)
            .ok_or_else(|| Error::metadata(format!("segments.{id}"), "no keyslot holds its key"))?;
        Ok(Activation {
            cipher: seg.encryption.clone().unwrap_or_default(),
            key_size,
            iv_tweak: seg.iv_tweak.map_or(0, |v| v.0),
            offset: seg.offset.0,
            size: match seg.size {
                json::SegmentSize::Dynamic => None,
                json::SegmentSize::Bytes(n) => Some(n),
            },
            sector_size: seg.sector_size.unwrap_or(512),
            flags: self.meta.config.flags.clone().unwrap_or_default(),
            integrity,
        })
    }

    /// The kernel keyring description cryptsetup 2.6 gives the data segment's volume key
    /// (`cryptsetup:<uuid>-d<digest>`, a `logon` key named in the crypt table), or `None`
    /// when no digest covers the segment.
    pub fn key_description(&self) -> Option<String> {
        let (id, _) = self.data_segment()?;
        let (digest, _) = self
            .meta
            .digests
            .iter()
            .find(|(_, d)| d.segments.contains(&id))?;
        Some(format!("cryptsetup:{}-d{}", self.uuid(), digest.0))
    }

    /// The device-mapper UUID cryptsetup gives a mapping of this volume:
    /// `CRYPT-LUKS2-<uuid without dashes>-<name>`.
    pub fn dm_uuid(&self, name: &str) -> String {
        format!("CRYPT-LUKS2-{}-{name}", self.uuid().replace('-', ""))
    }
}

/// JSON as json-c's `JSON_C_TO_STRING_PRETTY` writes it, which `cryptsetup luksDump
/// --dump-json-metadata` prints: two-space indents, no space after a colon, an empty object
/// or array on two lines.
fn json_c_pretty(v: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let pad = |n: usize, out: &mut String| out.extend(std::iter::repeat_n("  ", n));
    match v {
        Value::Object(m) => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                pad(depth + 1, out);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                json_c_pretty(x, depth + 1, out);
                if i + 1 < m.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push('}');
        }
        Value::Array(a) => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                pad(depth + 1, out);
                json_c_pretty(x, depth + 1, out);
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            pad(depth, out);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
