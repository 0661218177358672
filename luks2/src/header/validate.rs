//! cryptsetup's rules for LUKS2 metadata, checked before anything is unlocked or written.
//!
//! The rules, as cryptsetup 2.6's loader applies them (`luks2_json_metadata.c`,
//! `luks2_disk_metadata.c`, the luks2 keyslot and pbkdf2 digest handlers). Each one that
//! refuses a header is tested against the real cryptsetup on the same bytes
//! (`cli/tests/strictness.rs`: both tools refuse, or both accept), or in `luks2/tests`.
//!
//! | area | rule | where |
//! |---|---|---|
//! | binary | magic, version 2, offsets, allowed header size, checksum | `binary.rs`, `read_copy` |
//! | binary | the device holds both header copies and the keyslots area | `read_as` |
//! | JSON area | starts with `{`; only whitespace after the object; NUL to the area's end | `read_copy`, `Metadata::from_json` |
//! | JSON | optional members present are not `null`; numbers in strings are decimal u64 | `json.rs` |
//! | config | `json_size` matches the area; `keyslots_size` a multiple of 4096, at most 128 MiB | [`validate`] |
//! | keyslots | non-empty type; area inside the keyslots area, size > 0, no overlaps | `validate_keyslots` |
//! | keyslots | luks2: af (luks1, stripes, hash), raw area (encryption, key_size), kdf fields by type, salt | `validate_luks2_keyslot` |
//! | keyslots | reencrypt: key_size 1, known mode and direction | `validate_reencrypt_keyslot` |
//! | keyslots | each luks2 keyslot in exactly one digest | `validate_digests` |
//! | keyslot use | key size, area size for 4000 stripes, cipher, 32-byte salt (else the keyslot alone is unusable) | [`keyslot_params`], [`kdf_from_json`] |
//! | segments | at least one; numbered 0.. without gaps; backups last, never segment 0 | `validate_segments` |
//! | segments | non-empty type; offset 512-aligned, after the keyslots area; size dynamic (last regular only) or a positive multiple of 512; regular segments do not overlap | `validate_segments`, `validate_segment` |
//! | segments | crypt: non-empty encryption, iv_tweak, sector size, size a multiple of it, complete integrity object, named by a digest | `validate_segment` |
//! | digests | non-empty type; keyslots and segments exist; pbkdf2: hash, iterations (use: 32-byte salt, digest of 20 bytes or the hash's size) | `validate_digests`, [`digest_params`] |
//! | tokens | non-empty type; keyslots exist | [`validate_token`] |
//! | requirements | at most one online-reencrypt, with exactly one reencrypt keyslot | `validate_reencryption` |
//!
//! Stricter than cryptsetup (cryptsetup loads these, nothing here does): object numbers
//! above 31, keyslot priorities above 2, crypt sector sizes other than 512-4096, duplicate
//! known members, numbers with leading spaces in `config`.

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
    validate_reencryption(m)?;
    Ok(())
}

fn validate_keyslots(m: &Metadata, area_start: u64, area_end: u64) -> Result<()> {
    let mut areas: Vec<(u64, u64, ObjId)> = Vec::new();
    for (id, ks) in &m.keyslots {
        let f = |s: &str| format!("keyslots.{id}.{s}");
        non_empty(&f("type"), Some(&ks.kind))?;
        non_empty(&f("area.type"), Some(&ks.area.kind))?;
        let (off, size) = (ks.area.offset.0, ks.area.size.0);
        if size == 0 {
            return Err(Error::metadata(f("area.size"), "must be positive"));
        }
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
        match ks.kind.as_str() {
            "luks2" => validate_luks2_keyslot(ks, &f)?,
            "reencrypt" => validate_reencrypt_keyslot(ks, &f)?,
            _ => {}
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
    non_empty(&f("af.hash"), af.hash.as_ref())?;
    non_empty(&f("area.encryption"), ks.area.encryption.as_ref())?;
    // The KDF's own fields, by type (an unknown type loads and fails only when used).
    let kdf = ks
        .kdf
        .as_ref()
        .ok_or_else(|| Error::metadata(f("kdf"), "missing"))?;
    non_empty(&f("kdf.type"), Some(&kdf.kind))?;
    if kdf.salt.0.is_empty() {
        return Err(Error::metadata(f("kdf.salt"), "missing or empty"));
    }
    let needs: &[(&str, bool)] = match kdf.kind.as_str() {
        "pbkdf2" => &[
            ("hash", kdf.hash.as_ref().is_some_and(|h| !h.is_empty())),
            ("iterations", kdf.iterations.is_some()),
        ],
        "argon2i" | "argon2id" => &[
            ("time", kdf.time.is_some()),
            ("memory", kdf.memory.is_some()),
            ("cpus", kdf.cpus.is_some()),
        ],
        _ => &[],
    };
    if let Some((name, _)) = needs.iter().find(|(_, ok)| !ok) {
        return Err(Error::metadata(f(&format!("kdf.{name}")), "missing"));
    }
    Ok(())
}

/// A reencryption keyslot (cryptsetup's online reencryption state): a key size of 1 and a
/// known mode and direction. This crate never resumes a reencryption; it only reads such
/// headers as cryptsetup does.
fn validate_reencrypt_keyslot(ks: &KeyslotJson, f: &dyn Fn(&str) -> String) -> Result<()> {
    if ks.key_size != 1 {
        return Err(Error::metadata(
            f("key_size"),
            "must be 1 for a reencrypt keyslot",
        ));
    }
    let member = |name: &str, allowed: &[&str]| {
        let v = ks.extra.get(name).and_then(|v| v.as_str());
        if v.is_some_and(|v| allowed.contains(&v)) {
            Ok(())
        } else {
            Err(Error::metadata(
                f(name),
                format!("missing or not one of {}", allowed.join(", ")),
            ))
        }
    };
    member("mode", &["reencrypt", "encrypt", "decrypt"])?;
    member("direction", &["forward", "backward"])
}

/// The `online-reencrypt` requirement and reencrypt keyslots go together: at most one of
/// each, and one only with the other.
fn validate_reencryption(m: &Metadata) -> Result<()> {
    let flags = m
        .requirements()
        .iter()
        .filter(|r| {
            r.strip_prefix("online-reencrypt").is_some_and(|v| {
                v.is_empty()
                    || v.strip_prefix("-v")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
        })
        .count();
    let keyslots = m
        .keyslots
        .values()
        .filter(|k| k.kind == "reencrypt")
        .count();
    if flags > 1 {
        return Err(Error::metadata(
            "config.requirements.mandatory",
            "more than one online-reencrypt requirement",
        ));
    }
    if keyslots > 1 {
        return Err(Error::metadata(
            "keyslots",
            "more than one reencrypt keyslot",
        ));
    }
    if flags != keyslots {
        return Err(Error::metadata(
            "config.requirements.mandatory",
            "an online-reencrypt requirement needs exactly one reencrypt keyslot, and back",
        ));
    }
    Ok(())
}

fn validate_segments(m: &Metadata, area_end: u64) -> Result<()> {
    if m.segments.is_empty() {
        return Err(Error::metadata("segments", "there must be at least one"));
    }
    // Numbered 0, 1, ... without gaps, backup segments after the regular ones.
    let mut seen_backup = false;
    for (i, (id, s)) in m.segments.iter().enumerate() {
        if id.0 as usize != i {
            return Err(Error::metadata(
                format!("segments.{id}"),
                format!("segment {i} is missing (segments are numbered without gaps)"),
            ));
        }
        if is_backup(s) {
            if i == 0 {
                return Err(Error::metadata("segments.0.flags", "segment 0 is a backup"));
            }
            seen_backup = true;
        } else if seen_backup {
            return Err(Error::metadata(
                format!("segments.{id}"),
                "a regular segment after a backup segment",
            ));
        }
    }
    let regular: Vec<_> = m.segments.iter().filter(|(_, s)| !is_backup(s)).collect();
    // The data starts after the header and keyslots areas (an offset of 0 is a detached
    // header's data device, cryptsetup's exception).
    if regular.iter().all(|(_, s)| s.offset.0 != 0) {
        if let Some((id, s)) = regular.iter().min_by_key(|(_, s)| s.offset.0) {
            if s.offset.0 < area_end {
                return Err(Error::metadata(
                    format!("segments.{id}.offset"),
                    format!(
                        "{} overlaps the header and keyslots area ending at {area_end}",
                        s.offset.0
                    ),
                ));
            }
        }
    }
    for (id, s) in &m.segments {
        validate_segment(m, *id, s)?;
    }
    // Only the last regular segment may be dynamic; regular segments do not overlap.
    let mut intervals: Vec<(u64, Option<u64>, ObjId)> = Vec::new();
    for (i, (id, s)) in regular.iter().enumerate() {
        let end = match s.size {
            SegmentSize::Dynamic if i + 1 != regular.len() => {
                return Err(Error::metadata(
                    format!("segments.{id}.size"),
                    "only the last segment may be dynamic",
                ))
            }
            SegmentSize::Dynamic => None,
            SegmentSize::Bytes(n) => Some(s.offset.0.checked_add(n).ok_or_else(|| {
                Error::metadata(format!("segments.{id}.size"), "offset + size overflows")
            })?),
        };
        intervals.push((s.offset.0, end, **id));
    }
    intervals.sort();
    for w in intervals.windows(2) {
        if w[0].1.is_none_or(|end| end > w[1].0) {
            return Err(Error::metadata(
                format!("segments.{}.offset", w[1].2),
                format!("overlaps segment {}", w[0].2),
            ));
        }
    }
    Ok(())
}

/// One segment's own fields: cryptsetup's common checks, and for `crypt` its cipher, IV
/// tweak, sector size, integrity object and digest.
fn validate_segment(m: &Metadata, id: ObjId, s: &super::json::SegmentJson) -> Result<()> {
    let f = |x: &str| format!("segments.{id}.{x}");
    non_empty(&f("type"), Some(&s.kind))?;
    let off = s.offset.0;
    if !off.is_multiple_of(512) {
        return Err(Error::metadata(f("offset"), "not aligned to 512 bytes"));
    }
    if let SegmentSize::Bytes(n) = s.size {
        if n == 0 || !n.is_multiple_of(512) {
            return Err(Error::metadata(
                f("size"),
                format!("{n} is not a positive multiple of 512"),
            ));
        }
    }
    if s.kind != "crypt" {
        return Ok(());
    }
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
    non_empty(&f("encryption"), s.encryption.as_ref())?;
    if s.iv_tweak.is_none() {
        return Err(Error::metadata(f("iv_tweak"), "missing"));
    }
    if let SegmentSize::Bytes(n) = s.size {
        if !n.is_multiple_of(u64::from(sector)) {
            return Err(Error::metadata(
                f("size"),
                "not a multiple of the sector size",
            ));
        }
    }
    if let Some(integrity) = &s.integrity {
        for field in ["type", "journal_encryption", "journal_integrity"] {
            if integrity
                .get(field)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
            {
                return Err(Error::metadata(
                    f(&format!("integrity.{field}")),
                    "missing or not a non-empty string",
                ));
            }
        }
    }
    if !m.digests.values().any(|d| d.segments.contains(&id)) {
        return Err(Error::metadata(
            format!("segments.{id}"),
            "no digest names this crypt segment",
        ));
    }
    Ok(())
}

/// A string member that must be present and non-empty (cryptsetup's `json_contains_string`).
fn non_empty(field: &str, v: Option<&String>) -> Result<()> {
    match v {
        Some(s) if !s.is_empty() => Ok(()),
        Some(_) => Err(Error::metadata(field.to_owned(), "empty")),
        None => Err(Error::metadata(field.to_owned(), "missing")),
    }
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
        non_empty(&f("type"), Some(&d.kind))?;
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
    if t.get("type")
        .and_then(|v| v.as_str())
        .is_none_or(str::is_empty)
    {
        return Err(Error::metadata(
            f("type"),
            "missing or not a non-empty string",
        ));
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
    // cryptsetup reads keyslot KDF salts of exactly 32 bytes.
    if salt.len() != 32 {
        return Err(Error::metadata(
            format!("{field}.salt"),
            format!("{} bytes, not 32", salt.len()),
        ));
    }
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
    let hash = HashAlg::parse(d.hash.as_deref().unwrap_or(""))?;
    // cryptsetup's digest verification: a 32-byte salt and a digest of 20 bytes or the
    // hash's length.
    if d.salt.0.len() != 32 {
        return Err(Error::metadata(
            format!("digests.{id}.salt"),
            format!("{} bytes, not 32", d.salt.0.len()),
        ));
    }
    let n = d.digest.0.len();
    if n != 20 && n != hash.output_len() {
        return Err(Error::metadata(
            format!("digests.{id}.digest"),
            format!("{n} bytes, not 20 or the hash's {}", hash.output_len()),
        ));
    }
    Ok(crate::digest::KeyDigest {
        hash,
        iterations,
        salt: d.salt.0.clone(),
        digest: d.digest.0.clone(),
    })
}
