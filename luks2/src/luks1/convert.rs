//! In-place conversion of a LUKS1 volume to LUKS2, as `cryptsetup convert --type luks2`.

use serde_json::Map;

use super::{Luks1, CONVERT_SHIFT};
use crate::device::Luks2;
use crate::digest::KeyDigest;
use crate::format::{crypt_metadata, CryptSegment};
use crate::header::binary::{BinaryHeader, SALT_LEN as LUKS2_SALT_LEN};
use crate::header::json::{AfJson, AreaJson, KeyslotJson, Metadata, ObjId, U64Str};
use crate::header::validate::{kdf_to_json, AREA_SECTOR};
use crate::header::{CopyStatus, Header, Loaded};
use crate::io::BlockIo;
use crate::kdf::Kdf;
use crate::keyslot::af::AF_STRIPES;
use crate::sector::CipherSpec;
use crate::util::align_up;
use crate::{Error, HashAlg, Result};

impl<D: BlockIo> Luks1<D> {
    /// Converts the volume in place to LUKS2, as `cryptsetup convert --type luks2`: the
    /// keyslot areas move 28 KiB up to make room for the two 16 KiB LUKS2 header copies, each
    /// enabled keyslot becomes a LUKS2 pbkdf2 keyslot with the same salt, iterations and
    /// material, the volume key digest is kept, and the data does not move. Everything is
    /// checked before the first byte is written.
    ///
    /// The new header's primary copy is written first, so the window in which neither format
    /// opens is the move of the areas and that one write; take a header backup first
    /// (`luks header-backup` works on LUKS1; cryptsetup has the same window).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layout or algorithm LUKS2 cannot take here (the first
    /// keyslot not at 4 KiB, an unsupported cipher or hash, moved areas that would reach the
    /// data); I/O errors.
    pub fn convert_to_luks2(mut self) -> Result<Luks2<D>> {
        let h = &self.header;
        let hash = h.hash()?;
        CipherSpec::parse(&h.cipher())?;
        let first = h.keyslots.iter().map(|k| k.offset).min().unwrap_or(0);
        if u64::from(first) * AREA_SECTOR != 4096 {
            return Err(Error::unsupported(
                "LUKS1 layout",
                format!("the first keyslot at sector {first}, not 8"),
            ));
        }
        // The UUID moves into LUKS2's 40-byte field as text: anything else (bytes that are not
        // UTF-8 would grow when made text) is refused before any write.
        let end = h.uuid.iter().position(|&c| c == 0).unwrap_or(h.uuid.len());
        let uuid = std::str::from_utf8(&h.uuid[..end])
            .ok()
            .filter(|u| u.len() < h.uuid.len())
            .ok_or_else(|| {
                Error::unsupported(
                    "LUKS1 UUID for conversion",
                    format!(
                        "{:?} is not UUID text",
                        String::from_utf8_lossy(&h.uuid[..end])
                    ),
                )
            })?
            .to_owned();
        let src_end = align_up(h.keyslots_end(), 4096);
        // The luksmeta package (clevis) keeps its own metadata right after the keyslots,
        // where the moved keyslots would land: cryptsetup refuses, so do we.
        let mut magic = [0u8; 8];
        if self.io.read_exact_at(&mut magic, src_end).is_ok() && &magic == b"LUKSMETA" {
            return Err(Error::unsupported(
                "LUKS1 layout for conversion",
                "LUKSMETA metadata after the keyslots (clevis bindings); it would be overwritten",
            ));
        }
        let data_offset = u64::from(h.payload_offset) * AREA_SECTOR;
        let limit = if data_offset == 0 {
            self.io
                .size()
                .map_err(|e| Error::io("reading the device size", e))?
        } else {
            data_offset
        };
        let needed = src_end + CONVERT_SHIFT;
        if needed > limit {
            return Err(Error::unsupported(
                "LUKS1 layout for conversion",
                format!(
                    "the keyslots would have to move up to byte {needed}, past the data at {limit}"
                ),
            ));
        }
        let keyslots_size = ((limit - 2 * 16384) / 4096 * 4096).min(128 << 20);
        let meta = self.luks2_metadata(hash, keyslots_size, data_offset)?;
        crate::header::validate::validate(&meta, 16384)?;
        // cryptsetup's converted header is at sequence id 2 (epoch 2 in luksDump).
        let bin = BinaryHeader {
            hdr_size: 16384,
            seqid: 1,
            label: Vec::new(),
            csum_alg: HashAlg::Sha256,
            salt: [0; LUKS2_SALT_LEN],
            uuid,
            subsystem: Vec::new(),
            hdr_offset: 0,
        };
        move_area(&mut self.io, 4096, 4096 + CONVERT_SHIFT, src_end - 4096)?;
        let mut dev = Luks2::from_loaded(
            self.io,
            Loaded {
                header: Header {
                    bin: bin.clone(),
                    meta: meta.clone(),
                },
                primary: CopyStatus::Invalid(Error::NotLuks2),
                secondary: CopyStatus::Invalid(Error::NotLuks2),
                salts: [[0; LUKS2_SALT_LEN]; 2],
            },
        );
        dev.commit_converted(bin, meta)?;
        Luks2::open(dev.into_inner())
    }

    fn luks2_metadata(
        &self,
        hash: HashAlg,
        keyslots_size: u64,
        data_offset: u64,
    ) -> Result<Metadata> {
        let h = &self.header;
        let cipher = h.cipher();
        let area = align_up(h.keyslot_bytes(), 4096);
        let mut keyslots = std::collections::BTreeMap::new();
        for id in h.keyslot_ids() {
            let k = &h.keyslots[id as usize];
            let kdf = Kdf::Pbkdf2 {
                hash,
                iterations: k.iterations,
                salt: k.salt.to_vec(),
            };
            keyslots.insert(
                ObjId(id),
                KeyslotJson {
                    kind: "luks2".into(),
                    key_size: h.key_bytes,
                    af: Some(AfJson {
                        kind: "luks1".into(),
                        stripes: Some(AF_STRIPES),
                        hash: Some(hash.name().into()),
                        extra: Map::new(),
                    }),
                    area: AreaJson {
                        kind: "raw".into(),
                        offset: U64Str(u64::from(k.offset) * AREA_SECTOR + CONVERT_SHIFT),
                        size: U64Str(area),
                        encryption: Some(cipher.clone()),
                        key_size: Some(h.key_bytes),
                        extra: Map::new(),
                    },
                    kdf: Some(kdf_to_json(&kdf)),
                    priority: None,
                    extra: Map::new(),
                },
            );
        }
        let digest = KeyDigest {
            hash,
            iterations: h.mk_digest_iterations,
            salt: h.mk_digest_salt.to_vec(),
            digest: h.mk_digest.to_vec(),
        };
        let seg = CryptSegment {
            offset: data_offset,
            cipher: &cipher,
            sector_size: AREA_SECTOR as u32,
            integrity: None,
        };
        let mut meta = crypt_metadata(&seg, &digest, 16384, keyslots_size, None);
        meta.keyslots = keyslots;
        if let Some(d) = meta.digests.get_mut(&ObjId(0)) {
            d.keyslots = h.keyslot_ids().into_iter().map(ObjId).collect();
        }
        Ok(meta)
    }
}

/// Moves the `len` bytes at `from` to `to` (the ranges may overlap): all of them are read
/// first, as cryptsetup does, so that a read error stops the conversion before its first
/// write; then written and synced.
pub(super) fn move_area<D: BlockIo>(io: &mut D, from: u64, to: u64, len: u64) -> Result<()> {
    let len = usize::try_from(len).map_err(|_| Error::limit("keyslot areas", len, u64::MAX))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
    io.read_exact_at(&mut buf, from)
        .map_err(|e| Error::io("reading the keyslot areas", e))?;
    io.write_all_at(&buf, to)
        .map_err(|e| Error::io("moving the keyslot areas", e))?;
    io.sync()
        .map_err(|e| Error::io("syncing the moved keyslot areas", e))
}
