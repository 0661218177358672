//! A LUKS2 device: its header plus the I/O to change it.
//!
//! Every change follows one rule that keeps the volume openable across a crash: new key
//! material is written to a free area *before* the metadata that points to it, old material is
//! wiped only *after* the metadata no longer points to it (or, when a keyslot is killed, before
//! the metadata drops it, as the spec asks), and the two header copies are written one after
//! the other, the stale or secondary copy first, each synced.

use serde_json::{Map, Value};

use crate::error::Copy;
use crate::header::binary::{self, BinaryHeader, SALT_LEN};
use crate::header::json::{AfJson, AreaJson, KeyslotJson, Metadata, ObjId, U64Str};
use crate::header::validate::{af_sectors_bytes, kdf_to_json, MAX_OBJECTS};
use crate::header::{self, CopyStatus, Header, KeyslotParams, Loaded, PersistentFlag};
use crate::io::BlockIo;
use crate::kdf::KdfLimits;
use crate::keyslot;
use crate::pbkdf::PbkdfParams;
use crate::secret::VolumeKey;
use crate::util::{align_up, random_bytes};
use crate::Passphrase;
use crate::{Error, HashAlg, Result};

/// An open LUKS2 device.
#[derive(Debug)]
pub struct Luks2<D: BlockIo> {
    io: D,
    header: Header,
    salts: [[u8; SALT_LEN]; 2],
    primary: CopyStatus,
    secondary: CopyStatus,
}

/// How a new keyslot is made.
#[derive(Clone, Debug)]
pub struct KeyslotOptions {
    /// KDF costs.
    pub pbkdf: PbkdfParams,
    /// Area cipher; `None` takes the data segment's cipher when usable, else `aes-xts-plain64`.
    pub cipher: Option<(String, usize)>,
    /// AF hash (the stripes are always [`AF_STRIPES`](crate::keyslot::af::AF_STRIPES)).
    pub af_hash: HashAlg,
    /// Priority (`None` leaves the field out: normal).
    pub priority: Option<u32>,
}

impl Default for KeyslotOptions {
    fn default() -> Self {
        Self {
            pbkdf: PbkdfParams::default(),
            cipher: None,
            af_hash: HashAlg::Sha256,
            priority: None,
        }
    }
}

impl<D: BlockIo> Luks2<D> {
    /// Reads and validates the header of `io`.
    ///
    /// # Errors
    /// See [`header::read`].
    pub fn open(mut io: D) -> Result<Self> {
        let loaded = header::read(&mut io)?;
        Ok(Self::from_loaded(io, loaded))
    }

    /// [`Luks2::open`] for a repair the user insisted on: a stale secondary copy is taken
    /// even when the primary area now holds another signature, which a repair overwrites.
    ///
    /// # Errors
    /// See [`header::read_over_foreign`].
    pub fn open_over_foreign(mut io: D) -> Result<Self> {
        let loaded = header::read_over_foreign(&mut io)?;
        Ok(Self::from_loaded(io, loaded))
    }

    pub(crate) fn from_loaded(io: D, l: Loaded) -> Self {
        Self {
            io,
            header: l.header,
            salts: l.salts,
            primary: l.primary,
            secondary: l.secondary,
        }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// State of the primary and secondary header copies as read.
    pub fn copy_status(&self) -> (&CopyStatus, &CopyStatus) {
        (&self.primary, &self.secondary)
    }

    /// The copy that a repair would rewrite, if any.
    pub fn stale_copy(&self) -> Option<Copy> {
        header::stale_copy(&self.primary, &self.secondary)
    }

    /// The device, for what lives after the header (a dm-integrity superblock, data).
    /// Writing inside the header area through it bypasses every check.
    pub fn io_mut(&mut self) -> &mut D {
        &mut self.io
    }

    /// Gives back the device.
    pub fn into_inner(self) -> D {
        self.io
    }

    /// Finds the keyslot `passphrase` opens and returns its number and the volume key.
    /// Keyslots are tried by priority (high, then normal); priority-0 slots only when named.
    ///
    /// # Errors
    /// [`Error::WrongPassphrase`] if no keyslot opens; [`Error::KeyslotNotFound`] for a named
    /// slot that does not exist; [`Error::UnusableKeyslot`] when nothing opens and a keyslot
    /// could not be tried (an unsupported algorithm, a cost over `limits`, a read error), or
    /// when the slot asked for is damaged.
    pub fn unlock(
        &mut self,
        passphrase: &Passphrase,
        slot: Option<u32>,
        limits: &KdfLimits,
    ) -> Result<(u32, VolumeKey)> {
        let candidates: Vec<u32> = match slot {
            Some(s) => {
                if !self.header.meta.keyslots.contains_key(&ObjId(s)) {
                    return Err(Error::KeyslotNotFound(s));
                }
                vec![s]
            }
            None => self.by_priority(|_| true, false),
        };
        self.unlock_candidates(passphrase, candidates, slot.is_some(), limits)
    }

    /// As [`Luks2::unlock`] without a named slot, over the keyslots in `among` only (a
    /// token's): by priority, and priority-0 ("ignore") slots only when `named` (the token
    /// or keyslot was asked for by number).
    ///
    /// # Errors
    /// As [`Luks2::unlock`]; [`Error::NoUsableKeyslot`] when none of `among` may be tried.
    pub fn unlock_among(
        &mut self,
        passphrase: &Passphrase,
        among: &[u32],
        named: bool,
        limits: &KdfLimits,
    ) -> Result<(u32, VolumeKey)> {
        let candidates = self.by_priority(|id| among.contains(&id), named);
        self.unlock_candidates(passphrase, candidates, false, limits)
    }

    /// The keyslots `keep` accepts, high priority first (then by number); priority-0 slots
    /// only with `with_ignored`.
    fn by_priority(&self, keep: impl Fn(u32) -> bool, with_ignored: bool) -> Vec<u32> {
        let mut v: Vec<(u32, u32)> = self
            .header
            .meta
            .keyslots
            .iter()
            .map(|(k, ks)| (ks.priority.unwrap_or(1), k.0))
            .filter(|&(p, id)| (p > 0 || with_ignored) && keep(id))
            .collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v.into_iter().map(|(_, k)| k).collect()
    }

    fn unlock_candidates(
        &mut self,
        passphrase: &Passphrase,
        candidates: Vec<u32>,
        named: bool,
        limits: &KdfLimits,
    ) -> Result<(u32, VolumeKey)> {
        let passphrase = passphrase.as_bytes();
        if candidates.is_empty() {
            return Err(Error::NoUsableKeyslot);
        }
        // A keyslot that cannot be tried (an algorithm we lack, a cost over the caps, an
        // unreadable area) may be the one the passphrase is for: its error is the answer
        // when nothing opens, as cryptsetup's "cannot use cipher". A damaged keyslot (sizes
        // that do not fit) is only unusable: the answer stays "no key", as in cryptsetup,
        // unless it was the keyslot asked for.
        let mut blocked = None;
        let mut damaged = None;
        for id in candidates {
            match self.try_slot(id, passphrase, limits) {
                Ok(Some(key)) => return Ok((id, key)),
                Ok(None) => {}
                Err(e @ Error::Metadata { .. }) => {
                    damaged.get_or_insert((id, e));
                }
                Err(e) => {
                    blocked.get_or_insert((id, e));
                }
            }
        }
        let unusable = |(id, e): (u32, Error)| Error::UnusableKeyslot {
            id,
            source: Box::new(e),
        };
        match (blocked, damaged) {
            (Some(b), _) => Err(unusable(b)),
            (None, Some(d)) if named => Err(unusable(d)),
            _ => Err(Error::WrongPassphrase),
        }
    }

    fn try_slot(
        &mut self,
        id: u32,
        passphrase: &[u8],
        limits: &KdfLimits,
    ) -> Result<Option<VolumeKey>> {
        let params = self.header.keyslot(id)?;
        let digest_id = self
            .header
            .digest_of_keyslot(id)
            .ok_or_else(|| Error::metadata(format!("keyslots.{id}"), "has no digest"))?;
        let digest = crate::header::validate::digest_params(&self.header.meta, digest_id)?;
        crate::kdf::check_pbkdf2_work(
            &format!("digests.{digest_id}"),
            digest.hash,
            digest.iterations,
            limits,
        )?;
        let field = format!("keyslots.{id}.kdf");
        let key = keyslot::recover_key(&mut self.io, &field, &params, passphrase, limits)?;
        Ok(digest.verify(&key).then(|| VolumeKey::from_slice(&key)))
    }

    /// Checks a volume key against the data segment's digest.
    ///
    /// # Errors
    /// [`Error::WrongVolumeKey`].
    pub fn verify_volume_key(&self, key: &VolumeKey) -> Result<()> {
        self.digest_for_key(key).map(|_| ())
    }

    /// Adds a keyslot holding `key` (which must match the volume's digest) under `passphrase`.
    /// Returns the keyslot number.
    ///
    /// # Errors
    /// [`Error::WrongVolumeKey`], [`Error::KeyslotInUse`], [`Error::NoFreeKeyslot`],
    /// [`Error::NoKeyslotSpace`], [`Error::UnmetRequirements`], I/O errors.
    pub fn add_keyslot(
        &mut self,
        key: &VolumeKey,
        passphrase: &Passphrase,
        slot: Option<u32>,
        opts: &KeyslotOptions,
    ) -> Result<u32> {
        self.insert_keyslot(key, passphrase, slot, opts, &[])
            .map(|(id, _)| id)
    }

    /// [`Luks2::add_keyslot`], placing the new area outside the byte ranges in `avoid` when
    /// there is room (a format keeps the old volume's keyslots intact until its new header is
    /// written). Returns the keyslot number and the area's byte range.
    pub(crate) fn insert_keyslot(
        &mut self,
        key: &VolumeKey,
        passphrase: &Passphrase,
        slot: Option<u32>,
        opts: &KeyslotOptions,
        avoid: &[(u64, u64)],
    ) -> Result<(u32, (u64, u64))> {
        let passphrase = passphrase.as_bytes();
        self.header.ensure_writable()?;
        let digest_id = self.digest_for_key(key)?;
        let id = self.pick_keyslot_id(slot)?;
        let (ks_json, params) = self.new_keyslot(key.len(), opts, avoid)?;
        let area = (params.offset, params.offset + params.size);
        keyslot::store_key(&mut self.io, &params, passphrase, key.as_bytes())?;
        let mut meta = self.header.meta.clone();
        meta.keyslots.insert(ObjId(id), ks_json);
        if let Some(d) = meta.digests.get_mut(&digest_id) {
            d.keyslots.push(ObjId(id));
            d.keyslots.sort();
        }
        self.commit(self.header.bin.clone(), meta)?;
        Ok((id, area))
    }

    /// Re-encrypts keyslot `slot`'s key (`key`, already unlocked) under `new_passphrase` in a
    /// fresh area, then wipes the old area. The keyslot keeps its number.
    ///
    /// # Errors
    /// As [`Luks2::add_keyslot`]; [`Error::WrongVolumeKey`] if `key` is not that slot's key.
    pub fn change_keyslot(
        &mut self,
        slot: u32,
        key: &VolumeKey,
        new_passphrase: &Passphrase,
        opts: &KeyslotOptions,
    ) -> Result<()> {
        let new_passphrase = new_passphrase.as_bytes();
        self.header.ensure_writable()?;
        let digest = self
            .header
            .digest_of_keyslot(slot)
            .ok_or(Error::KeyslotNotFound(slot))?;
        if !crate::header::validate::digest_params(&self.header.meta, digest)?
            .verify(key.as_bytes())
        {
            return Err(Error::WrongVolumeKey);
        }
        let old = self
            .header
            .meta
            .keyslots
            .get(&ObjId(slot))
            .cloned()
            .ok_or(Error::KeyslotNotFound(slot))?;
        let mut o = opts.clone();
        if o.priority.is_none() {
            o.priority = old.priority;
        }
        let (ks_json, params) = self.new_keyslot(key.len(), &o, &[])?;
        keyslot::store_key(&mut self.io, &params, new_passphrase, key.as_bytes())?;
        let mut meta = self.header.meta.clone();
        meta.keyslots.insert(ObjId(slot), ks_json);
        self.commit(self.header.bin.clone(), meta)?;
        keyslot::wipe_area(&mut self.io, old.area.offset.0, old.area.size.0)
    }

    /// Destroys keyslot `slot`: its area is overwritten, then it is dropped from the metadata
    /// (and from the digests and tokens that named it).
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`], [`Error::UnmetRequirements`], I/O errors.
    pub fn kill_keyslot(&mut self, slot: u32) -> Result<()> {
        self.header.ensure_writable()?;
        let ks = self
            .header
            .meta
            .keyslots
            .get(&ObjId(slot))
            .cloned()
            .ok_or(Error::KeyslotNotFound(slot))?;
        keyslot::wipe_area(&mut self.io, ks.area.offset.0, ks.area.size.0)?;
        let mut meta = self.header.meta.clone();
        meta.keyslots.remove(&ObjId(slot));
        for d in meta.digests.values_mut() {
            d.keyslots.retain(|k| k.0 != slot);
        }
        let name = Value::String(slot.to_string());
        for t in meta.tokens.values_mut() {
            if let Some(Value::Array(a)) = t.get_mut("keyslots") {
                a.retain(|v| v != &name);
            }
        }
        self.commit(self.header.bin.clone(), meta)
    }

    /// Sets the label and/or subsystem (at most 47 bytes each).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if too long; I/O errors.
    pub fn set_labels(&mut self, label: Option<&str>, subsystem: Option<&str>) -> Result<()> {
        let mut bin = self.header.bin.clone();
        if let Some(l) = label {
            binary::check_field("label", l, binary::LABEL_MAX + 1)?;
            bin.label = l.as_bytes().to_vec();
        }
        if let Some(s) = subsystem {
            binary::check_field("subsystem", s, binary::LABEL_MAX + 1)?;
            bin.subsystem = s.as_bytes().to_vec();
        }
        self.commit(bin, self.header.meta.clone())
    }

    /// Sets keyslot `slot`'s priority, as cryptsetup's `config --priority`: 0 (ignore:
    /// tried only when named), 1 (normal: the metadata leaves the field out, as cryptsetup
    /// writes it) or 2 (prefer: tried first).
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`], [`Error::InvalidArgument`] for another priority; I/O
    /// errors.
    pub fn set_keyslot_priority(&mut self, slot: u32, priority: u32) -> Result<()> {
        if priority > 2 {
            return Err(Error::invalid(
                "priority",
                format!("{priority} (0 ignore, 1 normal, 2 prefer)"),
            ));
        }
        self.header.ensure_writable()?;
        let mut meta = self.header.meta.clone();
        let ks = meta
            .keyslots
            .get_mut(&ObjId(slot))
            .ok_or(Error::KeyslotNotFound(slot))?;
        ks.priority = (priority != 1).then_some(priority);
        self.commit(self.header.bin.clone(), meta)
    }

    /// Replaces the persistent activation flags (`config.flags`, applied by every `open`)
    /// with `flags`, written in cryptsetup's order whatever theirs, as its `--persistent`
    /// does: an empty list clears them.
    ///
    /// # Errors
    /// I/O errors.
    pub fn set_persistent_flags(&mut self, flags: &[PersistentFlag]) -> Result<()> {
        self.header.ensure_writable()?;
        let mut meta = self.header.meta.clone();
        meta.config.flags = Some(
            PersistentFlag::ALL
                .into_iter()
                .filter(|f| flags.contains(f))
                .map(|f| f.as_str().to_owned())
                .collect(),
        );
        self.commit(self.header.bin.clone(), meta)
    }

    /// Sets the UUID (canonical text form).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `uuid` is not a UUID; I/O errors.
    pub fn set_uuid(&mut self, uuid: &str) -> Result<()> {
        if !crate::util::is_uuid(uuid) {
            return Err(Error::invalid("uuid", format!("'{uuid}' is not a UUID")));
        }
        let mut bin = self.header.bin.clone();
        bin.uuid = uuid.to_ascii_lowercase();
        self.commit(bin, self.header.meta.clone())
    }

    /// A token's JSON object, as compact JSON text.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`].
    pub fn token_json(&self, id: u32) -> Result<String> {
        let token = self
            .header
            .meta
            .tokens
            .get(&ObjId(id))
            .ok_or(Error::TokenNotFound(id))?;
        Ok(Value::Object(token.clone()).to_string())
    }

    /// Imports a token given as JSON text (an object with `type` and `keyslots`), as
    /// [`Luks2::import_token`] does with the parsed object.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for text that is not a JSON object; as `import_token`
    /// otherwise.
    pub fn import_token_json(&mut self, json: &str, id: Option<u32>, replace: bool) -> Result<u32> {
        self.import_token_json_for(json, id, replace, None)
    }

    /// [`Luks2::import_token_json`], with keyslot `slot` added to the token's `keyslots`
    /// (cryptsetup's `token import --key-slot`), in the same header write.
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`] if `slot` is not an active keyslot; as `import_token_json`
    /// otherwise.
    pub fn import_token_json_for(
        &mut self,
        json: &str,
        id: Option<u32>,
        replace: bool,
        slot: Option<u32>,
    ) -> Result<u32> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid("token", format!("not valid JSON: {e}")))?;
        let Value::Object(mut token) = value else {
            return Err(Error::invalid("token", "the JSON is not an object"));
        };
        if let Some(s) = slot {
            if !self.header.meta.keyslots.contains_key(&ObjId(s)) {
                return Err(Error::KeyslotNotFound(s));
            }
            // A token without a keyslots array is refused by the validation below.
            if let Some(Value::Array(slots)) = token.get_mut("keyslots") {
                let name = Value::from(s.to_string());
                if !slots.contains(&name) {
                    slots.push(name);
                }
            }
        }
        self.import_token(token, id, replace)
    }

    /// Stores a token (a JSON object with `type` and `keyslots`) as number `id`, or the first
    /// free number. Returns the number.
    ///
    /// # Errors
    /// [`Error::Metadata`] for a malformed token, [`Error::TokenInUse`] unless `replace`.
    pub(crate) fn import_token(
        &mut self,
        token: Map<String, Value>,
        id: Option<u32>,
        replace: bool,
    ) -> Result<u32> {
        self.header.ensure_writable()?;
        let tokens = &self.header.meta.tokens;
        let id = match id {
            Some(i) if i >= MAX_OBJECTS => {
                return Err(Error::invalid(
                    "token id",
                    format!("{i} is above {}", MAX_OBJECTS - 1),
                ))
            }
            Some(i) if tokens.contains_key(&ObjId(i)) && !replace => {
                return Err(Error::TokenInUse(i))
            }
            Some(i) => i,
            None => (0..MAX_OBJECTS)
                .find(|i| !tokens.contains_key(&ObjId(*i)))
                .ok_or_else(|| Error::limit("tokens", MAX_OBJECTS.into(), MAX_OBJECTS.into()))?,
        };
        let mut meta = self.header.meta.clone();
        crate::header::validate::validate_token(&meta, ObjId(id), &token)?;
        // cryptsetup checks its built-in token type on import (not on load).
        if token.get("type").and_then(Value::as_str) == Some(crate::KEYRING_TOKEN)
            && !crate::token::keyring_token_valid(&token)
        {
            return Err(Error::metadata(
                format!("tokens.{id}"),
                "a luks2-keyring token holds type, keyslots and a non-empty key_description only",
            ));
        }
        meta.tokens.insert(ObjId(id), token);
        self.commit(self.header.bin.clone(), meta)?;
        Ok(id)
    }

    /// Removes token `id`.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`].
    pub fn remove_token(&mut self, id: u32) -> Result<()> {
        self.header.ensure_writable()?;
        let mut meta = self.header.meta.clone();
        meta.tokens
            .remove(&ObjId(id))
            .ok_or(Error::TokenNotFound(id))?;
        self.commit(self.header.bin.clone(), meta)
    }

    /// Rewrites the damaged or older header copy from the good one (with a fresh salt).
    /// Returns the copy that was rewritten, or `None` when both were fine.
    ///
    /// # Errors
    /// I/O errors.
    pub fn repair(&mut self) -> Result<Option<Copy>> {
        let Some(stale) = self.stale_copy() else {
            return Ok(None);
        };
        let json = header::encode_json(&self.header.meta, self.header.bin.hdr_size)?;
        let idx = usize::from(stale == Copy::Secondary);
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&random_bytes(SALT_LEN)?);
        self.salts[idx] = salt;
        header::write_copy(&mut self.io, &self.header.bin, &json, stale, salt)?;
        let seq = CopyStatus::Valid(self.header.bin.seqid);
        match stale {
            Copy::Primary => self.primary = seq,
            Copy::Secondary => self.secondary = seq,
        }
        Ok(Some(stale))
    }

    /// The header area (both copies and the keyslots area) as bytes, for a backup file.
    ///
    /// # Errors
    /// I/O errors.
    pub fn backup(&mut self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; self.header.header_area_size() as usize];
        self.io
            .read_exact_at(&mut buf, 0)
            .map_err(|e| Error::io("reading the header area", e))?;
        Ok(buf)
    }

    /// Writes `metadata` and `bin` (with the next sequence id) to both copies: the stale or
    /// secondary copy first, so that one valid copy survives an interruption at any point.
    fn commit(&mut self, bin: BinaryHeader, meta: Metadata) -> Result<()> {
        self.commit_ordered(bin, meta, None)
    }

    fn commit_ordered(
        &mut self,
        mut bin: BinaryHeader,
        meta: Metadata,
        first: Option<Copy>,
    ) -> Result<()> {
        self.header.ensure_writable()?;
        let json = header::encode_json(&meta, bin.hdr_size)?;
        bin.seqid = self.header.bin.seqid.saturating_add(1);
        // A new header (both copies invalid) goes to the secondary first too: while the
        // primary area still holds an older volume's header, that one stays readable.
        let first = first.unwrap_or(match (&self.primary, &self.secondary) {
            (CopyStatus::Invalid(_), CopyStatus::Invalid(_)) => Copy::Secondary,
            _ => self.stale_copy().unwrap_or(Copy::Secondary),
        });
        let second = match first {
            Copy::Primary => Copy::Secondary,
            Copy::Secondary => Copy::Primary,
        };
        for copy in [first, second] {
            let idx = usize::from(copy == Copy::Secondary);
            let status = if idx == 0 {
                &self.primary
            } else {
                &self.secondary
            };
            if !status.is_valid() {
                self.salts[idx].copy_from_slice(&random_bytes(SALT_LEN)?);
            }
            header::write_copy(&mut self.io, &bin, &json, copy, self.salts[idx])?;
            let st = CopyStatus::Valid(bin.seqid);
            if idx == 0 {
                self.primary = st;
            } else {
                self.secondary = st;
            }
        }
        self.header = Header { bin, meta };
        Ok(())
    }

    /// Writes a conversion's new header, the primary copy first: until it is written, offset
    /// 0 still holds the old format's header, which readers would take for the volume.
    pub(crate) fn commit_converted(&mut self, bin: BinaryHeader, meta: Metadata) -> Result<()> {
        self.commit_ordered(bin, meta, Some(Copy::Primary))
    }

    /// The digest of a data segment that `key` matches.
    fn digest_for_key(&self, key: &VolumeKey) -> Result<ObjId> {
        for (id, d) in &self.header.meta.digests {
            if d.segments.is_empty() {
                continue;
            }
            if crate::header::validate::digest_params(&self.header.meta, *id)?
                .verify(key.as_bytes())
            {
                return Ok(*id);
            }
        }
        Err(Error::WrongVolumeKey)
    }

    fn pick_keyslot_id(&self, slot: Option<u32>) -> Result<u32> {
        let used = &self.header.meta.keyslots;
        match slot {
            Some(s) if s >= MAX_OBJECTS => Err(Error::invalid(
                "key slot",
                format!("{s} is above {}", MAX_OBJECTS - 1),
            )),
            Some(s) if used.contains_key(&ObjId(s)) => Err(Error::KeyslotInUse(s)),
            Some(s) => Ok(s),
            None => (0..MAX_OBJECTS)
                .find(|i| !used.contains_key(&ObjId(*i)))
                .ok_or(Error::NoFreeKeyslot),
        }
    }

    /// Builds the metadata for a new keyslot in the first free gap of the keyslots area.
    fn new_keyslot(
        &self,
        key_size: usize,
        opts: &KeyslotOptions,
        avoid: &[(u64, u64)],
    ) -> Result<(KeyslotJson, KeyslotParams)> {
        let (cipher, cipher_key) = match &opts.cipher {
            Some(c) => c.clone(),
            None => default_area_cipher(&self.header, key_size),
        };
        let spec = crate::sector::CipherSpec::parse(&cipher)?;
        if !spec.key_len_ok(cipher_key) {
            return Err(Error::invalid(
                "keyslot cipher key size",
                format!("{cipher_key} bytes for {cipher}"),
            ));
        }
        let stripes = crate::keyslot::af::AF_STRIPES;
        let size = align_up(af_sectors_bytes(key_size as u32, stripes), 4096);
        let offset =
            free_area(&self.header, size, avoid).or_else(|_| free_area(&self.header, size, &[]))?;
        let kdf = opts.pbkdf.resolve_for_key(cipher_key)?;
        let json = KeyslotJson {
            kind: "luks2".into(),
            key_size: key_size as u32,
            af: Some(AfJson {
                kind: "luks1".into(),
                stripes: Some(stripes),
                hash: Some(opts.af_hash.name().into()),
                extra: Map::new(),
            }),
            area: AreaJson {
                kind: "raw".into(),
                offset: U64Str(offset),
                size: U64Str(size),
                encryption: Some(cipher),
                key_size: Some(cipher_key as u32),
                extra: Map::new(),
            },
            kdf: Some(kdf_to_json(&kdf)),
            priority: opts.priority,
            extra: Map::new(),
        };
        let params = KeyslotParams {
            key_size,
            cipher: spec,
            cipher_key_size: cipher_key,
            offset,
            size,
            stripes,
            af_hash: opts.af_hash,
            kdf,
        };
        Ok((json, params))
    }
}

/// The keyslot area cipher cryptsetup picks: the segment's own when it can encrypt keyslots,
/// else `aes-xts-plain64` with a 512-bit key.
fn default_area_cipher(h: &Header, key_size: usize) -> (String, usize) {
    if let Some((_, seg)) = h.data_segment() {
        if let Some(enc) = &seg.encryption {
            if seg.integrity.is_none() {
                if let Ok(spec) = crate::sector::CipherSpec::parse(enc) {
                    if spec.key_len_ok(key_size) {
                        return (enc.clone(), key_size);
                    }
                }
            }
        }
    }
    ("aes-xts-plain64".into(), 64)
}

/// First 4 KiB-aligned gap of `size` bytes in the keyslots area, outside the keyslots' areas
/// and the byte ranges in `avoid`.
pub(crate) fn free_area(h: &Header, size: u64, avoid: &[(u64, u64)]) -> Result<u64> {
    let start = 2 * h.metadata_size();
    let end = start + h.keyslots_size();
    let mut used: Vec<(u64, u64)> = h
        .meta
        .keyslots
        .values()
        .map(|k| {
            (
                k.area.offset.0,
                k.area.offset.0.saturating_add(k.area.size.0),
            )
        })
        .chain(avoid.iter().copied())
        .collect();
    used.sort();
    let fits_before = |pos: u64, limit: u64| pos.checked_add(size).is_some_and(|e| e <= limit);
    let mut pos = start;
    for (a, b) in used {
        if fits_before(pos, a) {
            return Ok(pos);
        }
        pos = pos.max(b.checked_next_multiple_of(4096).unwrap_or(u64::MAX));
    }
    if fits_before(pos, end) {
        Ok(pos)
    } else {
        Err(Error::NoKeyslotSpace { needed: size })
    }
}
