//! LUKS1, cryptsetup's first on-disk format, still on many volumes: the 592-byte header with
//! eight PBKDF2 keyslots, read and changed as cryptsetup 2.6 does, and converted in place to
//! LUKS2 as `cryptsetup convert --type luks2` does.
//!
//! Layout (all numbers big-endian, strings NUL-padded): magic `LUKS\xba\xbe`, version 1,
//! cipher name, cipher mode and hash (32 bytes each), payload offset (sectors), key bytes,
//! the volume key's PBKDF2 digest (20 bytes) with its 32-byte salt and iterations, the UUID
//! (40 bytes), then eight keyslots of 48 bytes: state (`0x00AC71F3` enabled, `0x0000DEAD`
//! disabled), PBKDF2 iterations and salt, key material offset (sectors) and AF stripes (4000).
//! A keyslot's material is the volume key AF-split into 4000 stripes with the header's hash,
//! encrypted with the volume's cipher under a key PBKDF2-derived from the passphrase, in
//! 512-byte sectors numbered from 0 at the start of the keyslot.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::digest::KeyDigest;
use crate::header::validate::{af_sectors_bytes, KeyslotParams, AREA_SECTOR};

use crate::io::BlockIo;
use crate::kdf::{Kdf, KdfLimits};
use crate::keyslot::af::AF_STRIPES;
use crate::pbkdf::{PbkdfKind, PbkdfParams};
use crate::secret::{Passphrase, VolumeKey};
use crate::sector::CipherSpec;
use crate::util::align_up;
use crate::{Activation, Error, HashAlg, Result};

mod convert;
mod to_luks1;

/// The LUKS magic, shared by both versions.
pub const MAGIC: [u8; 6] = *b"LUKS\xba\xbe";
/// Bytes of a LUKS1 header.
pub const HEADER_SIZE: usize = 592;
/// Keyslots in a LUKS1 header.
pub const NUM_KEYSLOTS: u32 = 8;
const KEY_ENABLED: u32 = 0x00AC_71F3;
const KEY_DISABLED: u32 = 0x0000_DEAD;
const DIGEST_SIZE: usize = 20;
const SALT_SIZE: usize = 32;
/// Where keyslots move when converting: the room LUKS2's two 16 KiB header copies need.
pub(crate) const CONVERT_SHIFT: u64 = 2 * 16384 - 4096;
/// The largest volume key accepted (as LUKS2).
const MAX_KEY_BYTES: u32 = 512;

/// Whether `head` (the first bytes of a device) starts a LUKS1 header.
pub fn is_luks1(head: &[u8]) -> bool {
    head.len() >= 8 && head[..6] == MAGIC && head[6..8] == [0, 1]
}

/// One keyslot record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Luks1Keyslot {
    /// The raw state word: enabled, disabled, or (damaged) anything else.
    pub state: u32,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// PBKDF2 salt.
    pub salt: [u8; SALT_SIZE],
    /// Key material offset in 512-byte sectors.
    pub offset: u32,
    /// AF stripes (always 4000 in a valid header).
    pub stripes: u32,
}

impl Luks1Keyslot {
    /// A disabled keyslot (its area still to be placed).
    pub(crate) const DISABLED: Self = Self {
        state: KEY_DISABLED,
        iterations: 0,
        salt: [0; SALT_SIZE],
        offset: 0,
        stripes: AF_STRIPES,
    };

    /// Whether the slot holds a key.
    pub fn is_enabled(&self) -> bool {
        self.state == KEY_ENABLED
    }
}

/// A parsed, checked LUKS1 header. Strings are kept as stored (NUL-padded bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Luks1Header {
    cipher_name: [u8; 32],
    cipher_mode: [u8; 32],
    hash_spec: [u8; 32],
    /// Data offset in 512-byte sectors (0 for a detached header).
    pub payload_offset: u32,
    /// Volume key bytes.
    pub key_bytes: u32,
    /// PBKDF2 digest of the volume key.
    pub mk_digest: [u8; DIGEST_SIZE],
    /// Its salt.
    pub mk_digest_salt: [u8; SALT_SIZE],
    /// Its iterations.
    pub mk_digest_iterations: u32,
    uuid: [u8; 40],
    /// The eight keyslots.
    pub keyslots: [Luks1Keyslot; NUM_KEYSLOTS as usize],
}

fn text(field: &[u8]) -> Cow<'_, str> {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Metadata {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Luks1Header {
    /// Parses and checks a header as cryptsetup 2.6's LUKS1 loader does: magic and version 1,
    /// a key size of 1-512 bytes, every keyslot with 4000 stripes, its material after the
    /// header and (unless the header is detached, payload offset 0) before the data, no two
    /// keyslot areas overlapping.
    ///
    /// # Errors
    /// [`Error::NotLuks2`] without the LUKS1 magic and version; [`Error::Metadata`] naming the
    /// field that breaks a rule.
    pub fn parse(b: &[u8]) -> Result<Self> {
        if b.len() < HEADER_SIZE || !is_luks1(b) {
            return Err(Error::NotLuks2);
        }
        let arr32 = |at: usize| -> [u8; 32] { b[at..at + 32].try_into().unwrap_or([0; 32]) };
        let mut keyslots = [Luks1Keyslot {
            state: KEY_DISABLED,
            iterations: 0,
            salt: [0; SALT_SIZE],
            offset: 0,
            stripes: 0,
        }; NUM_KEYSLOTS as usize];
        for (i, k) in keyslots.iter_mut().enumerate() {
            let at = 208 + 48 * i;
            *k = Luks1Keyslot {
                state: be32(b, at),
                iterations: be32(b, at + 4),
                salt: arr32(at + 8),
                offset: be32(b, at + 40),
                stripes: be32(b, at + 44),
            };
        }
        let h = Luks1Header {
            cipher_name: arr32(8),
            cipher_mode: arr32(40),
            hash_spec: arr32(72),
            payload_offset: be32(b, 104),
            key_bytes: be32(b, 108),
            mk_digest: b[112..132].try_into().unwrap_or([0; DIGEST_SIZE]),
            mk_digest_salt: arr32(132),
            mk_digest_iterations: be32(b, 164),
            uuid: b[168..208].try_into().unwrap_or([0; 40]),
            keyslots,
        };
        h.check()?;
        Ok(h)
    }

    fn check(&self) -> Result<()> {
        if self.key_bytes == 0 || self.key_bytes > MAX_KEY_BYTES {
            return Err(bad(
                "key bytes",
                format!("{} is not 1 to {MAX_KEY_BYTES}", self.key_bytes),
            ));
        }
        let af = af_sectors_bytes(self.key_bytes, AF_STRIPES) / AREA_SECTOR;
        let payload = u64::from(self.payload_offset);
        let mut areas = Vec::new();
        for (i, k) in self.keyslots.iter().enumerate() {
            let f = format!("keyslot {i}");
            if k.stripes != AF_STRIPES {
                return Err(bad(f, format!("{} AF stripes, not 4000", k.stripes)));
            }
            let start = u64::from(k.offset);
            if start * AREA_SECTOR < HEADER_SIZE as u64 {
                return Err(bad(f, "its key material overlaps the header"));
            }
            if payload != 0 && start + af > payload {
                return Err(bad(f, "its key material reaches into the data"));
            }
            areas.push((start, start + af, i));
        }
        areas.sort_unstable();
        for w in areas.windows(2) {
            if w[1].0 < w[0].1 {
                return Err(bad(
                    format!("keyslot {}", w[1].2),
                    format!("its key material overlaps keyslot {}", w[0].2),
                ));
            }
        }
        Ok(())
    }

    /// The 592 bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[..6].copy_from_slice(&MAGIC);
        b[6..8].copy_from_slice(&1u16.to_be_bytes());
        b[8..40].copy_from_slice(&self.cipher_name);
        b[40..72].copy_from_slice(&self.cipher_mode);
        b[72..104].copy_from_slice(&self.hash_spec);
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_digest_salt);
        b[164..168].copy_from_slice(&self.mk_digest_iterations.to_be_bytes());
        b[168..208].copy_from_slice(&self.uuid);
        for (i, k) in self.keyslots.iter().enumerate() {
            let at = 208 + 48 * i;
            b[at..at + 4].copy_from_slice(&k.state.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&k.iterations.to_be_bytes());
            b[at + 8..at + 40].copy_from_slice(&k.salt);
            b[at + 40..at + 44].copy_from_slice(&k.offset.to_be_bytes());
            b[at + 44..at + 48].copy_from_slice(&k.stripes.to_be_bytes());
        }
        b
    }

    /// The cipher name (`aes`).
    pub fn cipher_name(&self) -> Cow<'_, str> {
        text(&self.cipher_name)
    }

    /// The cipher mode (`xts-plain64`, `cbc-essiv:sha256`).
    pub fn cipher_mode(&self) -> Cow<'_, str> {
        text(&self.cipher_mode)
    }

    /// The cipher in dm-crypt notation (`aes-xts-plain64`).
    pub fn cipher(&self) -> String {
        format!("{}-{}", self.cipher_name(), self.cipher_mode())
    }

    /// The hash as stored (`sha256`).
    pub fn hash_spec(&self) -> Cow<'_, str> {
        text(&self.hash_spec)
    }

    /// The hash, as cryptsetup reads it (lower case).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a hash not implemented here (ripemd160, whirlpool, ...).
    pub fn hash(&self) -> Result<HashAlg> {
        HashAlg::parse(&self.hash_spec().to_ascii_lowercase())
    }

    /// The UUID as stored.
    pub fn uuid(&self) -> Cow<'_, str> {
        text(&self.uuid)
    }

    /// The device-mapper UUID cryptsetup gives a mapping: `CRYPT-LUKS1-<uuid>-<name>`.
    pub fn dm_uuid(&self, name: &str) -> String {
        format!("CRYPT-LUKS1-{}-{name}", self.uuid().replace('-', ""))
    }

    /// Bytes of key material in one keyslot (whole sectors).
    pub fn keyslot_bytes(&self) -> u64 {
        af_sectors_bytes(self.key_bytes, AF_STRIPES)
    }

    /// The numbers of the enabled keyslots.
    pub fn keyslot_ids(&self) -> Vec<u32> {
        (0..NUM_KEYSLOTS)
            .filter(|&i| self.keyslots[i as usize].is_enabled())
            .collect()
    }

    /// The parameters to map the data: 512-byte sectors, IV from 0, the payload offset.
    pub fn activation(&self) -> Activation {
        Activation {
            cipher: self.cipher(),
            key_size: self.key_bytes as usize,
            iv_tweak: 0,
            offset: u64::from(self.payload_offset) * AREA_SECTOR,
            size: None,
            sector_size: AREA_SECTOR as u32,
            flags: Vec::new(),
            integrity: None,
        }
    }

    fn digest(&self) -> Result<KeyDigest> {
        Ok(KeyDigest {
            hash: self.hash()?,
            iterations: self.mk_digest_iterations,
            salt: self.mk_digest_salt.to_vec(),
            digest: self.mk_digest.to_vec(),
        })
    }

    fn keyslot_params(&self, slot: u32) -> Result<KeyslotParams> {
        let k = &self.keyslots[slot as usize];
        let hash = self.hash()?;
        let cipher = CipherSpec::parse(&self.cipher())?;
        if !cipher.key_len_ok(self.key_bytes as usize) {
            return Err(Error::unsupported(
                "key size",
                format!("{} bits for {}", self.key_bytes * 8, self.cipher()),
            ));
        }
        Ok(KeyslotParams {
            key_size: self.key_bytes as usize,
            cipher,
            cipher_key_size: self.key_bytes as usize,
            offset: u64::from(k.offset) * AREA_SECTOR,
            size: self.keyslot_bytes(),
            stripes: AF_STRIPES,
            af_hash: hash,
            kdf: Kdf::Pbkdf2 {
                hash,
                iterations: k.iterations,
                salt: k.salt.to_vec(),
            },
        })
    }

    /// cryptsetup's `luksDump --dump-volume-key` text for a LUKS1 device called `device`.
    pub fn dump_volume_key_text(
        &self,
        device: &str,
        key: &VolumeKey,
    ) -> zeroize::Zeroizing<String> {
        crate::dump::volume_key_text(
            device,
            (&self.cipher_name(), &self.cipher_mode()),
            u64::from(self.payload_offset),
            &self.uuid(),
            key,
        )
    }

    /// cryptsetup's `luksDump --dump-volume-key --volume-key-file FILE` text for a LUKS1
    /// device called `device`, once its key went to `file`.
    pub fn dump_volume_key_stored_text(&self, device: &str, file: &str) -> String {
        crate::dump::volume_key_stored_text(
            device,
            (&self.cipher_name(), &self.cipher_mode()),
            u64::from(self.payload_offset),
            &self.uuid(),
            self.key_bytes as usize,
            file,
        )
    }

    /// cryptsetup's `luksDump` text for a LUKS1 device called `device`.
    pub fn dump_text(&self, device: &str) -> String {
        fn hex_line(out: &mut String, bytes: &[u8]) {
            for b in bytes {
                let _ = write!(out, "{b:02x} ");
            }
            out.push('\n');
        }
        let mut o = format!("LUKS header information for {device}\n\n");
        let _ = writeln!(o, "Version:       \t1");
        let _ = writeln!(o, "Cipher name:   \t{}", self.cipher_name());
        let _ = writeln!(o, "Cipher mode:   \t{}", self.cipher_mode());
        let _ = writeln!(o, "Hash spec:     \t{}", self.hash_spec());
        let _ = writeln!(o, "Payload offset:\t{}", self.payload_offset);
        let _ = writeln!(o, "MK bits:       \t{}", self.key_bytes * 8);
        o.push_str("MK digest:     \t");
        hex_line(&mut o, &self.mk_digest);
        o.push_str("MK salt:       \t");
        hex_line(&mut o, &self.mk_digest_salt[..16]);
        o.push_str("               \t");
        hex_line(&mut o, &self.mk_digest_salt[16..]);
        let _ = writeln!(o, "MK iterations: \t{}", self.mk_digest_iterations);
        let _ = writeln!(o, "UUID:          \t{}\n", self.uuid());
        for (i, k) in self.keyslots.iter().enumerate() {
            if !k.is_enabled() {
                let _ = writeln!(o, "Key Slot {i}: DISABLED");
                continue;
            }
            let _ = writeln!(o, "Key Slot {i}: ENABLED");
            let _ = writeln!(o, "\tIterations:         \t{}", k.iterations);
            o.push_str("\tSalt:               \t");
            hex_line(&mut o, &k.salt[..16]);
            o.push_str("\t                      \t");
            hex_line(&mut o, &k.salt[16..]);
            let _ = writeln!(o, "\tKey material offset:\t{}", k.offset);
            let _ = writeln!(o, "\tAF stripes:            \t{}", k.stripes);
        }
        o
    }
}

/// An open LUKS1 device.
#[derive(Debug)]
pub struct Luks1<D: BlockIo> {
    io: D,
    header: Luks1Header,
}

impl<D: BlockIo> Luks1<D> {
    /// Reads and checks the header of `io`, and that the device holds its keyslot areas.
    ///
    /// # Errors
    /// As [`Luks1Header::parse`]; [`Error::DeviceTooSmall`]; I/O errors.
    pub fn open(mut io: D) -> Result<Self> {
        let mut b = [0u8; HEADER_SIZE];
        io.read_exact_at(&mut b, 0)
            .map_err(|e| Error::io("reading the LUKS1 header", e))?;
        let header = Luks1Header::parse(&b)?;
        let size = io
            .size()
            .map_err(|e| Error::io("reading the device size", e))?;
        let needed = header.keyslots_end();
        if size < needed {
            return Err(Error::DeviceTooSmall { needed, size });
        }
        Ok(Self { io, header })
    }

    /// The header.
    pub fn header(&self) -> &Luks1Header {
        &self.header
    }

    /// Gives back the device.
    pub fn into_inner(self) -> D {
        self.io
    }

    /// Finds the keyslot `passphrase` opens (keyslots in order, or only `slot`) and returns
    /// its number and the volume key.
    ///
    /// # Errors
    /// [`Error::WrongPassphrase`]; [`Error::KeyslotNotFound`] for a named slot that is not
    /// enabled; [`Error::UnusableKeyslot`] when nothing opens and a keyslot could not be tried
    /// (an unsupported cipher or hash, a cost over `limits`).
    pub fn unlock(
        &mut self,
        passphrase: &Passphrase,
        slot: Option<u32>,
        limits: &KdfLimits,
    ) -> Result<(u32, VolumeKey)> {
        let candidates = match slot {
            Some(s) if s < NUM_KEYSLOTS && self.header.keyslots[s as usize].is_enabled() => {
                vec![s]
            }
            Some(s) => return Err(Error::KeyslotNotFound(s)),
            None => self.header.keyslot_ids(),
        };
        let digest = self.header.digest()?;
        crate::kdf::check_pbkdf2_work("mk digest", digest.hash, digest.iterations, limits)?;
        if candidates.is_empty() {
            return Err(Error::NoUsableKeyslot);
        }
        let mut unusable = None;
        for id in candidates {
            let tried = self.header.keyslot_params(id).and_then(|p| {
                crate::keyslot::recover_key(
                    &mut self.io,
                    &format!("keyslot {id}"),
                    &p,
                    passphrase.as_bytes(),
                    limits,
                )
            });
            match tried {
                Ok(key) if digest.verify(&key) => {
                    return Ok((id, VolumeKey::new(key.to_vec())));
                }
                Ok(_) => {}
                Err(e) => {
                    unusable.get_or_insert(Error::UnusableKeyslot {
                        id,
                        source: Box::new(e),
                    });
                }
            }
        }
        Err(unusable.unwrap_or(Error::WrongPassphrase))
    }

    /// Checks `key` against the header's digest.
    ///
    /// # Errors
    /// [`Error::WrongVolumeKey`].
    pub fn verify_volume_key(&self, key: &VolumeKey) -> Result<()> {
        if key.len() == self.header.key_bytes as usize
            && self.header.digest()?.verify(key.as_bytes())
        {
            Ok(())
        } else {
            Err(Error::WrongVolumeKey)
        }
    }

    /// Stores `key` under `passphrase` in keyslot `slot` or the first disabled one, with
    /// PBKDF2 over the header's hash (LUKS1 has no other KDF). The key material is written
    /// before the header names it. Returns the keyslot number.
    ///
    /// # Errors
    /// [`Error::KeyslotInUse`], [`Error::NoFreeKeyslot`], [`Error::InvalidArgument`] for an
    /// Argon2 KDF or a slot above 7, [`Error::WrongVolumeKey`], I/O errors.
    pub fn add_keyslot(
        &mut self,
        key: &VolumeKey,
        passphrase: &Passphrase,
        slot: Option<u32>,
        pbkdf: &PbkdfParams,
    ) -> Result<u32> {
        self.verify_volume_key(key)?;
        let id = match slot {
            Some(s) if s >= NUM_KEYSLOTS => {
                return Err(Error::invalid("key slot", format!("{s} is above 7")))
            }
            Some(s) if self.header.keyslots[s as usize].is_enabled() => {
                return Err(Error::KeyslotInUse(s))
            }
            Some(s) => s,
            None => (0..NUM_KEYSLOTS)
                .find(|&i| !self.header.keyslots[i as usize].is_enabled())
                .ok_or(Error::NoFreeKeyslot)?,
        };
        self.store(id, key, passphrase, pbkdf)?;
        Ok(id)
    }

    fn store(
        &mut self,
        id: u32,
        key: &VolumeKey,
        passphrase: &Passphrase,
        pbkdf: &PbkdfParams,
    ) -> Result<()> {
        if pbkdf.kind != PbkdfKind::Pbkdf2 {
            return Err(Error::invalid(
                "pbkdf",
                "LUKS1 keyslots use pbkdf2 only (argon2 needs LUKS2)",
            ));
        }
        let hash = self.header.hash()?;
        let mut p = pbkdf.clone();
        p.hash = hash;
        let Kdf::Pbkdf2 {
            iterations, salt, ..
        } = p.resolve_for_key(self.header.key_bytes as usize)?
        else {
            return Err(Error::invalid("pbkdf", "not pbkdf2"));
        };
        let mut params = self.header.keyslot_params(id)?;
        params.kdf = Kdf::Pbkdf2 {
            hash,
            iterations,
            salt: salt.clone(),
        };
        crate::keyslot::store_key(&mut self.io, &params, passphrase.as_bytes(), key.as_bytes())?;
        let mut h = self.header.clone();
        let k = &mut h.keyslots[id as usize];
        k.state = KEY_ENABLED;
        k.iterations = iterations;
        k.salt.copy_from_slice(&salt);
        self.write_header(h)
    }

    /// Gives keyslot `slot` a new passphrase: in the first disabled keyslot when there is one
    /// and `in_place` is false (then `slot` is wiped; the key moves, as with cryptsetup when no
    /// slot was named), else in place. Returns the keyslot that now holds it.
    ///
    /// # Errors
    /// As [`Luks1::add_keyslot`] and [`Luks1::kill_keyslot`].
    pub fn change_keyslot(
        &mut self,
        slot: u32,
        key: &VolumeKey,
        passphrase: &Passphrase,
        pbkdf: &PbkdfParams,
        in_place: bool,
    ) -> Result<u32> {
        if slot >= NUM_KEYSLOTS || !self.header.keyslots[slot as usize].is_enabled() {
            return Err(Error::KeyslotNotFound(slot));
        }
        self.verify_volume_key(key)?;
        let free = (0..NUM_KEYSLOTS).find(|&i| !self.header.keyslots[i as usize].is_enabled());
        match free.filter(|_| !in_place) {
            Some(free) => {
                self.store(free, key, passphrase, pbkdf)?;
                self.kill_keyslot(slot)?;
                Ok(free)
            }
            None => {
                self.store(slot, key, passphrase, pbkdf)?;
                Ok(slot)
            }
        }
    }

    /// Wipes keyslot `slot`: its key material is overwritten with random bytes, then the
    /// header marks it disabled with its salt and iterations cleared (cryptsetup's order).
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`]; I/O errors.
    pub fn kill_keyslot(&mut self, slot: u32) -> Result<()> {
        if slot >= NUM_KEYSLOTS || !self.header.keyslots[slot as usize].is_enabled() {
            return Err(Error::KeyslotNotFound(slot));
        }
        let offset = u64::from(self.header.keyslots[slot as usize].offset) * AREA_SECTOR;
        crate::keyslot::wipe_area(&mut self.io, offset, self.header.keyslot_bytes())?;
        let mut h = self.header.clone();
        let k = &mut h.keyslots[slot as usize];
        k.state = KEY_DISABLED;
        k.iterations = 0;
        k.salt = [0; SALT_SIZE];
        self.write_header(h)
    }

    /// Sets the UUID.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a string that is not a UUID; I/O errors.
    pub fn set_uuid(&mut self, uuid: &str) -> Result<()> {
        if !crate::util::is_uuid(uuid) {
            return Err(Error::invalid("uuid", format!("'{uuid}' is not a UUID")));
        }
        let mut h = self.header.clone();
        h.uuid = [0; 40];
        h.uuid[..uuid.len()].copy_from_slice(uuid.to_ascii_lowercase().as_bytes());
        self.write_header(h)
    }

    /// cryptsetup's LUKS1 header backup: the header and every keyslot area (the bytes between
    /// them zeroed), padded to 4 KiB.
    ///
    /// # Errors
    /// I/O errors.
    pub fn backup(&mut self) -> Result<Vec<u8>> {
        let len = self.header.keyslots_end();
        let mut b = vec![0u8; align_up(len, 4096) as usize];
        self.io
            .read_exact_at(&mut b[..len as usize], 0)
            .map_err(|e| Error::io("reading the LUKS1 header and keyslots", e))?;
        b[HEADER_SIZE..4096].fill(0);
        Ok(b)
    }

    fn write_header(&mut self, h: Luks1Header) -> Result<()> {
        self.io
            .write_all_at(&h.to_bytes(), 0)
            .map_err(|e| Error::io("writing the LUKS1 header", e))?;
        self.io
            .sync()
            .map_err(|e| Error::io("syncing the LUKS1 header", e))?;
        self.header = h;
        Ok(())
    }
}

/// Checks a LUKS1 header backup ([`Luks1::backup`], or cryptsetup's) and returns its
/// header.
///
/// # Errors
/// [`Error::NotLuks2`] without a LUKS1 header; [`Error::Metadata`]; [`Error::DeviceTooSmall`]
/// when the backup does not hold every keyslot area.
pub fn check_backup(bytes: &[u8]) -> Result<Luks1Header> {
    let h = Luks1Header::parse(bytes)?;
    let needed = h.keyslots_end();
    if (bytes.len() as u64) < needed {
        return Err(Error::DeviceTooSmall {
            needed,
            size: bytes.len() as u64,
        });
    }
    Ok(h)
}

/// Writes a checked LUKS1 backup's header and keyslot areas back to `io` (the data after
/// them is not touched), synced.
///
/// # Errors
/// As [`check_backup`]; [`Error::DeviceTooSmall`]; I/O errors.
pub fn restore_backup<D: BlockIo>(io: &mut D, bytes: &[u8]) -> Result<Luks1Header> {
    let h = check_backup(bytes)?;
    let len = h.keyslots_end();
    let size = io
        .size()
        .map_err(|e| Error::io("reading the device size", e))?;
    if size < len {
        return Err(Error::DeviceTooSmall { needed: len, size });
    }
    io.write_all_at(&bytes[..len as usize], 0)
        .map_err(|e| Error::io("writing the LUKS1 header and keyslots", e))?;
    io.sync()
        .map_err(|e| Error::io("syncing the restored header", e))?;
    Ok(h)
}

impl Luks1Header {
    /// Where the last keyslot area ends: the header device must be at least this long (the
    /// data may lie on another device, or start later).
    pub fn keyslots_end(&self) -> u64 {
        self.keyslots
            .iter()
            .map(|k| u64::from(k.offset) * AREA_SECTOR + self.keyslot_bytes())
            .max()
            .unwrap_or(0)
    }
}

mod format;
pub use format::{check, format, planned_header_size};

#[cfg(test)]
mod tests;
