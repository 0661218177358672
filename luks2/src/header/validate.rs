//! cryptsetup's rules for LUKS2 metadata, checked before anything is unlocked or written.

use std::collections::BTreeSet;

use super::json::{KdfJson, KeyslotJson, Metadata, ObjId, SegmentSize};
use crate::hash::HashAlg;
use crate::kdf::{Argon2Variant, Kdf};
use crate::keyslot::af::AF_STRIPES;
use crate::sector::CipherSpec;
use crate::util::align_up;
use crate::{Error, Result};

/// The most keyslots, tokens, segments or digests a header may hold (cryptsetup's limit).
pub const MAX_OBJECTS: u32 = 32;
/// Largest keyslots area, in bytes (cryptsetup's limit).
pub(crate) const MAX_KEYSLOTS_SIZE: u64 = 128 << 20;
/// Largest key stored in a keyslot, in bytes.
pub(crate) const MAX_KEY_SIZE: u32 = 512;
/// Sector size of keyslot-area encryption.
pub(crate) const AREA_SECTOR: u64 = 512;

/// Bytes of AF material for a key, rounded to whole area-encryption sectors.
pub(crate) fn af_sectors_bytes(key_size: u32, stripes: u32) -> u64 {
    align_up(u64::from(key_size) * u64::from(stripes), AREA_SECTOR)
}

/// Checks the whole document against a header of `hdr_size` bytes.
pub(crate) fn validate(m: &Metadata, hdr_size: u64) -> Result<()> {
    let json_size = hdr_size - super::binary::BINARY_SIZE as u64;
    if m.config.json_size.0 != json_size {
        return Err(Error::metadata(
            "config.json_size",
            format!(
                "{} does not match the header's JSON area of {json_size}",
                m.config.json_size.0
            ),
        ));
    }
    let ks_size = m.config.keyslots_size.0;
    if !ks_size.is_multiple_of(4096) {
        return Err(Error::metadata(
            "config.keyslots_size",
            "not a multiple of 4096",
        ));
    }
    // cryptsetup's LUKS2_MAX_KEYSLOTS_SIZE: a larger area is refused (checked against
    // cryptsetup 2.6.1 luksDump: 128 MiB reads, 128 MiB + 4 KiB is "not a valid LUKS device").
    if ks_size > MAX_KEYSLOTS_SIZE {
        return Err(Error::limit(
            "config.keyslots_size",
            ks_size,
            MAX_KEYSLOTS_SIZE,
        ));
    }
    let area_start = 2 * hdr_size;
    let area_end = area_start + ks_size;
    for (name, n) in [
        ("keyslots", m.keyslots.len()),
        ("tokens", m.tokens.len()),
        ("segments", m.segments.len()),
        ("digests", m.digests.len()),
    ] {
        if n > MAX_OBJECTS as usize {
            return Err(Error::limit(name, n as u64, MAX_OBJECTS.into()));
        }
    }
    for id in m.keyslots.keys().chain(m.tokens.keys()) {
        if id.0 >= MAX_OBJECTS {
            return Err(Error::limit(
                "keyslot or token number",
                id.0.into(),
                (MAX_OBJECTS - 1).into(),
            ));
        }
    }
    validate_keyslots(m, area_start, area_end)?;
    validate_segments(m, area_end)?;
    validate_digests(m)?;
    validate_tokens(m)?;
    Ok(())
}

fn validate_keyslots(m: &Metadata, area_start: u64, area_end: u64) -> Result<()> {
    let mut areas: Vec<(u64, u64, ObjId)> = Vec::new();
    for (id, ks) in &m.keyslots {
        let f = |s: &str| format!("keyslots.{id}.{s}");
        let (off, size) = (ks.area.offset.0, ks.area.size.0);
        let end = off
            .checked_add(size)
            .ok_or_else(|| Error::metadata(f("area.size"), "offset + size overflows"))?;
        if off < area_start || end > area_end {
            return Err(Error::metadata(
                f("area"),
                format!("[{off}, {end}) lies outside the keyslots area [{area_start}, {area_end})"),
            ));
        }
        if let Some(p) = ks.priority {
            if p > 2 {
                return Err(Error::metadata(
                    f("priority"),
                    format!("{p} is not 0, 1 or 2"),
                ));
            }
        }
        if ks.kind == "luks2" {
            validate_luks2_keyslot(ks, &f)?;
        }
        areas.push((off, end, *id));
    }
    areas.sort();
    for w in areas.windows(2) {
        if w[1].0 < w[0].1 {
            return Err(Error::metadata(
                format!("keyslots.{}.area", w[1].2),
                format!("overlaps the area of keyslot {}", w[0].2),
            ));
        }
    }
    Ok(())
}

/// What the header needs of a `luks2` keyslot, as cryptsetup's keyslot validation: the AF,
/// KDF and raw area objects with their fields. Whether the sizes fit (key size, area size)
/// and the algorithms are usable is the keyslot's own business ([`keyslot_params`]): a
/// keyslot that fails there is unusable, and the others still open, as in cryptsetup.
fn validate_luks2_keyslot(ks: &KeyslotJson, f: &dyn Fn(&str) -> String) -> Result<()> {
    let (Some(af), Some(_kdf)) = (&ks.af, &ks.kdf) else {
        return Err(Error::metadata(
            f("af"),
            "luks2 keyslot needs af and kdf objects",
        ));
    };
    if ks.area.kind != "raw" || ks.area.encryption.is_none() || ks.area.key_size.is_none() {
        return Err(Error::metadata(
            f("area"),
            "luks2 keyslot needs a raw area with encryption and key_size",
        ));
    }
    if af.kind != "luks1" {
        return Err(Error::metadata(
            f("af.type"),
            format!("'{}' is not luks1", af.kind),
        ));
    }
    if af.stripes.is_none() {
        return Err(Error::metadata(f("af.stripes"), "missing"));
    }
    if af.hash.is_none() {
        return Err(Error::metadata(f("af.hash"), "missing"));
    }
    Ok(())
}

fn validate_segments(m: &Metadata, area_end: u64) -> Result<()> {
    let count = m.segments.len();
    let mut expected_next: Option<u64> = None;
    for (i, (id, s)) in m.segments.iter().enumerate() {
        let f = |x: &str| format!("segments.{id}.{x}");
        let off = s.offset.0;
        if off % 512 != 0 {
            return Err(Error::metadata(f("offset"), "not aligned to 512 bytes"));
        }
        if off != 0 && off < area_end {
            return Err(Error::metadata(
                f("offset"),
                format!("{off} overlaps the header and keyslots area ending at {area_end}"),
            ));
        }
        if let Some(next) = expected_next {
            if off != next && !is_backup(s) {
                return Err(Error::metadata(
                    f("offset"),
                    "segments leave a gap or overlap",
                ));
            }
        }
        match s.size {
            SegmentSize::Dynamic if i + 1 != count && !is_backup(s) => {
                return Err(Error::metadata(
                    f("size"),
                    "only the last segment may be dynamic",
                ));
            }
            SegmentSize::Bytes(n) => expected_next = off.checked_add(n),
            SegmentSize::Dynamic => expected_next = None,
        }
        if s.kind == "crypt" {
            let sector = s
                .sector_size
                .ok_or_else(|| Error::metadata(f("sector_size"), "missing"))?;
            if !matches!(sector, 512 | 1024 | 2048 | 4096) {
                return Err(Error::metadata(
                    f("sector_size"),
                    format!("{sector} is not 512, 1024, 2048 or 4096"),
                ));
            }
            if s.encryption.is_none() {
                return Err(Error::metadata(f("encryption"), "missing"));
            }
            if s.iv_tweak.is_none() {
                return Err(Error::metadata(f("iv_tweak"), "missing"));
            }
            if let SegmentSize::Bytes(n) = s.size {
                if n % u64::from(sector) != 0 {
                    return Err(Error::metadata(
                        f("size"),
                        "not a multiple of the sector size",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn is_backup(s: &super::json::SegmentJson) -> bool {
    s.flags
        .as_ref()
        .is_some_and(|fl| fl.iter().any(|x| x.starts_with("backup-")))
}

fn validate_digests(m: &Metadata) -> Result<()> {
    let mut bound: BTreeSet<ObjId> = BTreeSet::new();
    for (id, d) in &m.digests {
        let f = |x: &str| format!("digests.{id}.{x}");
        for k in &d.keyslots {
            if !m.keyslots.contains_key(k) {
                return Err(Error::metadata(
                    f("keyslots"),
                    format!("keyslot {k} does not exist"),
                ));
            }
            if !bound.insert(*k) {
                return Err(Error::metadata(
                    f("keyslots"),
                    format!("keyslot {k} has two digests"),
                ));
            }
        }
        for s in &d.segments {
            if !m.segments.contains_key(s) {
                return Err(Error::metadata(
                    f("segments"),
                    format!("segment {s} does not exist"),
                ));
            }
        }
        if d.kind == "pbkdf2" {
            if d.hash.is_none() || d.iterations.is_none() {
                return Err(Error::metadata(
                    f("hash"),
                    "pbkdf2 digest needs hash and iterations",
                ));
            }
            if d.digest.0.is_empty() || d.digest.0.len() > 64 {
                return Err(Error::metadata(f("digest"), "length must be 1 to 64 bytes"));
            }
        }
    }
    for (id, ks) in &m.keyslots {
        if ks.kind == "luks2" && !bound.contains(id) {
            return Err(Error::metadata(
                format!("keyslots.{id}"),
                "not assigned to any digest",
            ));
        }
    }
    Ok(())
}

fn validate_tokens(m: &Metadata) -> Result<()> {
    for (id, t) in &m.tokens {
        validate_token(m, *id, t)?;
    }
    Ok(())
}

/// Checks one token object: a `type` string and a `keyslots` array naming existing keyslots.
pub(crate) fn validate_token(
    m: &Metadata,
    id: ObjId,
    t: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let f = |x: &str| format!("tokens.{id}.{x}");
    if !t.get("type").is_some_and(|v| v.is_string()) {
        return Err(Error::metadata(f("type"), "missing or not a string"));
    }
    let Some(serde_json::Value::Array(slots)) = t.get("keyslots") else {
        return Err(Error::metadata(f("keyslots"), "missing or not an array"));
    };
    for s in slots {
        let k = s
            .as_str()
            .and_then(|s| {
                serde_json::from_value::<ObjId>(serde_json::Value::String(s.to_owned())).ok()
            })
            .ok_or_else(|| {
                Error::metadata(f("keyslots"), "entries must be keyslot numbers as strings")
            })?;
        if !m.keyslots.contains_key(&k) {
            return Err(Error::metadata(
                f("keyslots"),
                format!("keyslot {k} does not exist"),
            ));
        }
    }
    Ok(())
}

/// A `luks2` keyslot's parameters, checked and ready to unlock.
#[derive(Clone, Debug)]
pub struct KeyslotParams {
    /// Stored key size in bytes.
    pub key_size: usize,
    /// Area cipher.
    pub cipher: CipherSpec,
    /// Area cipher key size in bytes.
    pub cipher_key_size: usize,
    /// Area offset in bytes.
    pub offset: u64,
    /// Area size in bytes.
    pub size: u64,
    /// AF stripes.
    pub stripes: u32,
    /// AF hash.
    pub af_hash: HashAlg,
    /// Key derivation.
    pub kdf: Kdf,
}

/// Converts a validated keyslot object into unlock parameters.
pub(crate) fn keyslot_params(id: ObjId, ks: &KeyslotJson) -> Result<KeyslotParams> {
    if ks.kind != "luks2" {
        return Err(Error::unsupported("keyslot type", ks.kind.clone()));
    }
    let f = |x: &str| format!("keyslots.{id}.{x}");
    let af = ks
        .af
        .as_ref()
        .ok_or_else(|| Error::metadata(f("af"), "missing"))?;
    let kdf = ks
        .kdf
        .as_ref()
        .ok_or_else(|| Error::metadata(f("kdf"), "missing"))?;
    if ks.key_size == 0 || ks.key_size > MAX_KEY_SIZE {
        return Err(Error::metadata(
            f("key_size"),
            format!("{} is out of range", ks.key_size),
        ));
    }
    let cipher = CipherSpec::parse(ks.area.encryption.as_deref().unwrap_or(""))?;
    let cipher_key_size = ks.area.key_size.unwrap_or(0) as usize;
    if !cipher.key_len_ok(cipher_key_size) {
        return Err(Error::metadata(
            f("area.key_size"),
            format!("{cipher_key_size} does not fit cipher {}", cipher.as_str()),
        ));
    }
    // The spec allows only 4000 stripes, and cryptsetup reads every keyslot with 4000
    // whatever the field says; so do we.
    let need = af_sectors_bytes(ks.key_size, AF_STRIPES);
    let size = ks.area.size.0;
    if size < need {
        return Err(Error::metadata(
            f("area.size"),
            format!("{size} bytes cannot hold {need} bytes of key material"),
        ));
    }
    Ok(KeyslotParams {
        key_size: ks.key_size as usize,
        cipher,
        cipher_key_size,
        offset: ks.area.offset.0,
        size,
        stripes: AF_STRIPES,
        af_hash: HashAlg::parse(af.hash.as_deref().unwrap_or(""))?,
        kdf: kdf_from_json(&f("kdf"), kdf)?,
    })
}

/// Converts a `kdf` object into a [`Kdf`].
pub(crate) fn kdf_from_json(field: &str, k: &KdfJson) -> Result<Kdf> {
    let need = |v: Option<u32>, name: &str| {
        v.ok_or_else(|| Error::metadata(format!("{field}.{name}"), "missing"))
    };
    let salt = k.salt.0.clone();
    Ok(match k.kind.as_str() {
        "pbkdf2" => Kdf::Pbkdf2 {
            hash: HashAlg::parse(k.hash.as_deref().unwrap_or(""))?,
            iterations: need(k.iterations, "iterations")?,
            salt,
        },
        "argon2i" | "argon2id" => Kdf::Argon2 {
            variant: if k.kind == "argon2i" {
                Argon2Variant::Argon2i
            } else {
                Argon2Variant::Argon2id
            },
            time: need(k.time, "time")?,
            memory_kib: need(k.memory, "memory")?,
            cpus: need(k.cpus, "cpus")?,
            salt,
        },
        other => return Err(Error::unsupported("kdf", other)),
    })
}

/// The JSON object for a [`Kdf`].
pub(crate) fn kdf_to_json(kdf: &Kdf) -> KdfJson {
    match kdf {
        Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => KdfJson {
            kind: "pbkdf2".into(),
            hash: Some(hash.name().into()),
            iterations: Some(*iterations),
            time: None,
            memory: None,
            cpus: None,
            salt: super::json::Bytes(salt.clone()),
            extra: Default::default(),
        },
        Kdf::Argon2 {
            variant,
            time,
            memory_kib,
            cpus,
            salt,
        } => KdfJson {
            kind: variant.name().into(),
            hash: None,
            iterations: None,
            time: Some(*time),
            memory: Some(*memory_kib),
            cpus: Some(*cpus),
            salt: super::json::Bytes(salt.clone()),
            extra: Default::default(),
        },
    }
}

/// The checked parameters of digest `id`.
pub(crate) fn digest_params(m: &Metadata, id: ObjId) -> Result<crate::digest::KeyDigest> {
    let d = m
        .digests
        .get(&id)
        .ok_or_else(|| Error::metadata(format!("digests.{id}"), "does not exist"))?;
    if d.kind != "pbkdf2" {
        return Err(Error::unsupported("digest type", d.kind.clone()));
    }
    let iterations = d.iterations.unwrap_or(0);
    if iterations == 0 {
        return Err(Error::metadata(
            format!("digests.{id}.iterations"),
            "must be positive",
        ));
    }
    Ok(crate::digest::KeyDigest {
        hash: HashAlg::parse(d.hash.as_deref().unwrap_or(""))?,
        iterations,
        salt: d.salt.0.clone(),
        digest: d.digest.0.clone(),
    })
}
