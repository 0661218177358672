//! In-place conversion of a LUKS2 volume to LUKS1, as `cryptsetup convert --type luks1`: the
//! way back for boot loaders and systems that read LUKS1 only.

use super::format::{field, keyslot_area};
use super::{Luks1, Luks1Header, Luks1Keyslot, CONVERT_SHIFT, KEY_ENABLED, NUM_KEYSLOTS};
use crate::device::{free_area, Luks2};
use crate::error::Luks1Incompatibility as Why;
use crate::header::json::{KeyslotJson, ObjId};
use crate::header::validate::{digest_params, kdf_from_json, AREA_SECTOR};
use crate::header::Header;
use crate::io::BlockIo;
use crate::kdf::Kdf;
use crate::keyslot::af::AF_STRIPES;
use crate::{Error, HashAlg, Result};

/// Where cryptsetup starts moving the keyslot areas from: right after two 16 KiB headers.
const MOVE_FROM: u64 = 2 * 16384;

impl<D: BlockIo> Luks2<D> {
    /// Converts the volume in place to LUKS1, as `cryptsetup convert --type luks1`: each
    /// keyslot keeps its salt, iterations and key material, which move 28 KiB down (where
    /// LUKS1 keeps them), the volume key digest keeps its first 20 bytes, the data does not
    /// move. Disabled LUKS1 keyslots get the first free areas, as cryptsetup gives them.
    ///
    /// Everything is checked before the first write; what LUKS1 cannot express is refused
    /// with [`Error::NotLuks1Compatible`]: Argon2 keyslots, tokens, sectors other than 512
    /// bytes, integrity, keyslots above 7 or with another cipher, key size or hash than the
    /// volume's (where cryptsetup would write a keyslot that no longer opens).
    ///
    /// The keyslots area is read whole before anything is written; moving it then overwrites
    /// the LUKS2 header before the LUKS1 header is written: between the two writes, neither
    /// format opens. Take a header backup first (cryptsetup has the same window).
    ///
    /// # Errors
    /// [`Error::NotLuks1Compatible`]; [`Error::UnmetRequirements`]; [`Error::DeviceTooSmall`]
    /// when the device ends inside the keyslots area; I/O errors.
    pub fn convert_to_luks1(self) -> Result<Luks1<D>> {
        self.header().ensure_writable()?;
        let header = luks1_header(self.header())?;
        let move_end = 2 * self.header().metadata_size() + self.header().keyslots_size();
        let mut io = self.into_inner();
        let size = io
            .size()
            .map_err(|e| Error::io("reading the device size", e))?;
        let needed = header.keyslots_end() + CONVERT_SHIFT;
        if size < needed {
            return Err(Error::DeviceTooSmall { needed, size });
        }
        let move_end = move_end.min(size);
        super::convert::move_area(
            &mut io,
            MOVE_FROM,
            MOVE_FROM - CONVERT_SHIFT,
            move_end - MOVE_FROM,
        )?;
        // cryptsetup zeroes the first 4 KiB, then writes the 592-byte header.
        let mut first = [0u8; 4096];
        first[..super::HEADER_SIZE].copy_from_slice(&header.to_bytes());
        io.write_all_at(&first, 0)
            .map_err(|e| Error::io("writing the LUKS1 header", e))?;
        io.sync()
            .map_err(|e| Error::io("syncing the LUKS1 header", e))?;
        Luks1::open(io)
    }
}

fn no(why: Why) -> Error {
    Error::NotLuks1Compatible(why)
}

/// The LUKS1 header `h` becomes, checked as cryptsetup checks it, in cryptsetup's order (so
/// the first refusal is the one it names).
fn luks1_header(h: &Header) -> Result<Luks1Header> {
    let m = &h.meta;
    let layout = |r: String| no(Why::Layout(r));
    let (_, seg) = h
        .data_segment()
        .ok_or_else(|| layout("the header has no data segment".into()))?;
    let sector = seg.sector_size.unwrap_or(512);
    if sector != 512 {
        return Err(no(Why::SectorSize(sector)));
    }
    let (&digest_id, d) = m
        .digests
        .iter()
        .next()
        .filter(|_| m.digests.len() == 1)
        .ok_or(no(Why::Digests))?;
    if d.kind != "pbkdf2" {
        return Err(no(Why::Digests));
    }
    let digest = digest_params(m, digest_id)?;
    if m.segments.len() != 1 || seg.kind != "crypt" {
        return Err(layout(format!(
            "LUKS1 has one crypt data segment; this header has {} (reencryption?)",
            m.segments.len()
        )));
    }
    if seg.integrity.is_some() {
        return Err(layout(
            "the data is authenticated (dm-integrity), which LUKS1 cannot describe".into(),
        ));
    }
    let cipher = seg.encryption.clone().unwrap_or_default();
    let (name, mode) = cipher
        .split_once('-')
        .ok_or_else(|| layout(format!("cipher '{cipher}' has no mode")))?;
    if !m.tokens.is_empty() {
        return Err(no(Why::Tokens(m.tokens.len())));
    }
    let key_bytes = d
        .keyslots
        .iter()
        .find_map(|id| m.keyslots.get(id))
        .map(|k| k.key_size)
        .ok_or_else(|| layout("no keyslot holds the volume key, so its size is unknown".into()))?;
    let area = keyslot_area(key_bytes);
    let mut keyslots = [Luks1Keyslot::DISABLED; NUM_KEYSLOTS as usize];
    for (&id, ks) in &m.keyslots {
        if !d.keyslots.contains(&id) {
            return Err(no(Why::InvalidKeyslot(id.0)));
        }
        if id.0 >= NUM_KEYSLOTS {
            return Err(no(Why::SlotOverMax(id.0)));
        }
        let (iterations, salt) = compatible(id, ks, key_bytes, &cipher, area, digest.hash)
            .map_err(|reason| no(Why::Keyslot { id: id.0, reason }))?;
        let k = &mut keyslots[id.0 as usize];
        k.state = KEY_ENABLED;
        k.iterations = iterations;
        k.salt = salt;
        k.offset = luks1_offset(ks.area.offset.0)?;
    }
    // Disabled LUKS1 keyslots still name an area: the first free ones, each taken before the
    // next is sought (cryptsetup's placeholders).
    let mut taken = Vec::new();
    for (i, k) in keyslots.iter_mut().enumerate() {
        if k.state == KEY_ENABLED {
            continue;
        }
        let at = free_area(h, area, &taken).map_err(|_| {
            layout(format!(
                "the {}-byte keyslots area has no room for keyslot {i}'s {area}-byte LUKS1 area",
                h.keyslots_size()
            ))
        })?;
        taken.push((at, at + area));
        k.offset = luks1_offset(at)?;
    }
    let payload = seg.offset.0;
    if payload % AREA_SECTOR != 0 {
        return Err(layout(format!(
            "the data offset {payload} is not whole sectors"
        )));
    }
    let mk_digest: [u8; 20] = digest
        .digest
        .get(..20)
        .and_then(|d| d.try_into().ok())
        .ok_or(no(Why::Digests))?;
    let mut uuid = [0u8; 40];
    let u = h.uuid().as_bytes();
    uuid[..u.len().min(39)].copy_from_slice(&u[..u.len().min(39)]);
    let header = Luks1Header {
        cipher_name: field("cipher", name)?,
        cipher_mode: field("cipher mode", mode)?,
        hash_spec: field("hash", digest.hash.name())?,
        payload_offset: u32::try_from(payload / AREA_SECTOR)
            .map_err(|_| layout(format!("the data offset {payload} is beyond LUKS1's 2 TiB")))?,
        key_bytes,
        mk_digest,
        mk_digest_salt: digest
            .salt
            .as_slice()
            .try_into()
            .map_err(|_| no(Why::Digests))?,
        mk_digest_iterations: digest.iterations,
        uuid,
        keyslots,
    };
    // The result passes LUKS1's own checks before anything is written.
    Luks1Header::parse(&header.to_bytes()).map_err(|e| layout(e.to_string()))
}

/// A LUKS2 keyslot area offset as LUKS1's sector number, after the move.
fn luks1_offset(offset: u64) -> Result<u32> {
    offset
        .checked_sub(CONVERT_SHIFT)
        .filter(|o| o % AREA_SECTOR == 0)
        .and_then(|o| u32::try_from(o / AREA_SECTOR).ok())
        .ok_or_else(|| {
            no(Why::Layout(format!(
                "keyslot area at byte {offset} has no LUKS1 sector number"
            )))
        })
}

/// The keyslot's PBKDF2 iterations and salt, if LUKS1 can hold it as it is; else why not.
fn compatible(
    id: ObjId,
    ks: &KeyslotJson,
    key_bytes: u32,
    cipher: &str,
    area: u64,
    hash: HashAlg,
) -> std::result::Result<(u32, [u8; 32]), String> {
    if ks.kind != "luks2" {
        return Err(format!("its type is {}", ks.kind));
    }
    let kdf = ks.kdf.as_ref().ok_or("it has no KDF")?;
    let kdf = kdf_from_json(&format!("keyslots.{id}.kdf"), kdf).map_err(|e| e.to_string())?;
    let Kdf::Pbkdf2 {
        hash: kdf_hash,
        iterations,
        salt,
    } = kdf
    else {
        return Err(format!(
            "it uses {}, and LUKS1 keyslots use PBKDF2 (luksConvertKey --pbkdf pbkdf2 changes it)",
            ks.kdf.as_ref().map_or("", |k| k.kind.as_str())
        ));
    };
    let af = ks.af.as_ref().ok_or("it has no AF")?;
    if af.kind != "luks1" || af.stripes != Some(AF_STRIPES) {
        return Err("its AF is not LUKS1's 4000 stripes".into());
    }
    let af_hash = af.hash.as_deref().unwrap_or("");
    if kdf_hash != hash || af_hash != hash.name() {
        return Err(format!(
            "its hashes ({}, AF {af_hash}) differ from the digest's {}, and LUKS1 has one hash",
            kdf_hash.name(),
            hash.name()
        ));
    }
    let ks_cipher = ks.area.encryption.as_deref().unwrap_or("");
    if ks.key_size != key_bytes
        || ks.area.key_size != Some(key_bytes)
        || ks_cipher != cipher
        || ks.area.kind != "raw"
    {
        return Err(format!(
            "its key material is encrypted with {ks_cipher} ({} bits), not as the data \
             ({cipher}, {} bits)",
            ks.area.key_size.unwrap_or(0) * 8,
            key_bytes * 8
        ));
    }
    if ks.area.size.0 != area {
        return Err(format!(
            "its area is {} bytes, LUKS1's {area}",
            ks.area.size.0
        ));
    }
    let salt = salt
        .as_slice()
        .try_into()
        .map_err(|_| "its salt is not 32 bytes".to_string())?;
    Ok((iterations, salt))
}
