//! Formatting a device as LUKS2 with cryptsetup's defaults.

use serde_json::Map;

use crate::device::{KeyslotOptions, Luks2};
use crate::digest::KeyDigest;
use crate::header::binary::{BinaryHeader, HDR_SIZES, SALT_LEN};
use crate::header::json::{
    Bytes, ConfigJson, DigestJson, Metadata, ObjId, SegmentJson, SegmentSize, U64Str,
};
use crate::header::{CopyStatus, Header, Loaded};
use crate::io::BlockIo;
use crate::secret::{Passphrase, VolumeKey};
use crate::util::{align_up, random_uuid};
use crate::{Error, HashAlg, Result, SegmentIntegrity};

/// cryptsetup's default data offset for LUKS2: 16 MiB.
pub const DEFAULT_DATA_OFFSET: u64 = 16 << 20;
/// cryptsetup's largest default keyslots area: 128 MiB.
pub(crate) const MAX_DEFAULT_KEYSLOTS_SIZE: u64 = crate::header::validate::MAX_KEYSLOTS_SIZE;
/// Alignment of a computed data offset: 1 MiB.
pub(crate) const DATA_ALIGNMENT: u64 = 1 << 20;

/// Everything `format` can be told; [`FormatOptions::default`] is cryptsetup's defaults.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// Data cipher in dm-crypt notation.
    pub cipher: String,
    /// Volume key size in bytes.
    pub key_size: usize,
    /// Encryption sector size; `None` picks 4096 when the data area allows, as cryptsetup
    /// does for image files and 4K-sector disks.
    pub sector_size: Option<u32>,
    /// One header copy's size (16 KiB to 4 MiB).
    pub metadata_size: u64,
    /// Keyslots area size; `None` fills up to the data offset (at most 128 MiB).
    pub keyslots_size: Option<u64>,
    /// Data offset in bytes; `None` is 16 MiB, or more when the header needs it.
    pub data_offset: Option<u64>,
    /// Label.
    pub label: String,
    /// Subsystem.
    pub subsystem: String,
    /// UUID; `None` makes a random one.
    pub uuid: Option<String>,
    /// The first keyslot.
    pub keyslot: KeyslotOptions,
    /// Its number.
    pub keyslot_id: u32,
    /// The volume key; `None` makes a random one.
    pub volume_key: Option<VolumeKey>,
    /// The volume key digest's PBKDF2 hash (cryptsetup's `--hash` sets it with the keyslot's).
    pub digest_hash: HashAlg,
    /// Digest iterations; `None` calibrates to 125 ms as cryptsetup does.
    pub digest_iterations: Option<u32>,
    /// Persistent flags (`allow-discards`, ...).
    pub flags: Vec<String>,
    /// Authenticated encryption; `key_size` then includes the MAC key after the cipher key.
    /// The dm-integrity superblock at the data offset is the `integrity` crate's to write.
    pub integrity: Option<SegmentIntegrity>,
    /// A detached header (cryptsetup's `--header`): the size of the separate data device.
    /// The device given to [`format`] then holds only the header and keyslots areas
    /// ([`FormatOptions::planned_header_size`] bytes), and the data starts at `data_offset`
    /// on the data device, 0 by default; a non-zero offset also sizes the areas as it would
    /// on one device, as cryptsetup does.
    pub detached_data_size: Option<u64>,
}

impl FormatOptions {
    /// The data offset in bytes these options lead to (for callers that lay out what follows
    /// the header, such as a dm-integrity superblock).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an impossible metadata, keyslots or offset size.
    pub fn planned_data_offset(&self) -> Result<u64> {
        layout(self).map(|l| l.data_offset)
    }

    /// The bytes the header device needs: both header copies and the keyslots area (with a
    /// detached header, what its file is sized to; otherwise the data offset).
    ///
    /// # Errors
    /// As [`FormatOptions::planned_data_offset`].
    pub fn planned_header_size(&self) -> Result<u64> {
        layout(self).map(|l| l.header_size)
    }
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            cipher: "aes-xts-plain64".into(),
            key_size: 64,
            sector_size: None,
            metadata_size: 16 << 10,
            keyslots_size: None,
            data_offset: None,
            label: String::new(),
            subsystem: String::new(),
            uuid: None,
            keyslot: KeyslotOptions::default(),
            keyslot_id: 0,
            volume_key: None,
            digest_hash: HashAlg::Sha256,
            digest_iterations: None,
            flags: Vec::new(),
            integrity: None,
            detached_data_size: None,
        }
    }
}

/// Checks that the cipher, key size and integrity mode go together.
pub(crate) fn check_cipher(opts: &FormatOptions) -> Result<()> {
    let bad_size = |bytes: usize| {
        Error::invalid(
            "key size",
            format!("{} bits is not valid for {}", bytes * 8, opts.cipher),
        )
    };
    match opts.integrity {
        None => {
            let spec = crate::sector::CipherSpec::parse(&opts.cipher)?;
            if !spec.key_len_ok(opts.key_size) {
                return Err(bad_size(opts.key_size));
            }
        }
        Some(i) => {
            i.dm_params(&opts.cipher)?;
            let cipher_key = opts.key_size.saturating_sub(i.mac_key_size());
            let ok = if opts.cipher.starts_with("aes-xts-") {
                matches!(cipher_key, 32 | 64)
            } else {
                matches!(cipher_key, 16 | 24 | 32)
            };
            if !ok {
                return Err(bad_size(cipher_key));
            }
        }
    }
    Ok(())
}

/// The computed on-disk layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    metadata_size: u64,
    keyslots_size: u64,
    /// Where the data starts (on the data device when the header is detached).
    data_offset: u64,
    /// Where the header and keyslots areas end on the header device.
    header_size: u64,
}

fn layout(o: &FormatOptions) -> Result<Layout> {
    let md = o.metadata_size;
    if !HDR_SIZES.contains(&md) {
        return Err(Error::invalid(
            "metadata size",
            format!("{md} is not one of 16384, 32768, ..., 4194304"),
        ));
    }
    if let Some(k) = o.keyslots_size {
        if k % 4096 != 0 || k == 0 {
            return Err(Error::invalid(
                "keyslots size",
                format!("{k} is not a positive multiple of 4096"),
            ));
        }
    }
    let detached = o.detached_data_size.is_some();
    // A detached header with data from sector 0 lays its areas out as for the default offset.
    let areas_offset = o.data_offset.filter(|&off| !(detached && off == 0));
    let data_offset = match (areas_offset, o.keyslots_size) {
        (Some(off), _) => off,
        // As cryptsetup: the areas, rounded up to the alignment (a 4 MiB keyslots area
        // with 64 KiB header copies puts the data at 5 MiB).
        (None, Some(k)) => align_up(2 * md + k, DATA_ALIGNMENT),
        (None, None) => DEFAULT_DATA_OFFSET,
    };
    let keyslots_size = match o.keyslots_size {
        Some(k) => k,
        None => (data_offset.saturating_sub(2 * md) / 4096 * 4096).min(MAX_DEFAULT_KEYSLOTS_SIZE),
    };
    if data_offset % 512 != 0 {
        return Err(Error::invalid(
            "data offset",
            format!("{data_offset} is not a multiple of 512"),
        ));
    }
    if 2 * md + keyslots_size > data_offset {
        return Err(Error::invalid(
            "data offset",
            format!(
                "{data_offset} is inside the header and keyslots area of {} bytes",
                2 * md + keyslots_size
            ),
        ));
    }
    Ok(Layout {
        metadata_size: md,
        keyslots_size,
        data_offset: if detached {
            o.data_offset.unwrap_or(0)
        } else {
            data_offset
        },
        header_size: data_offset,
    })
}

/// The encryption sector size: the one asked for, else 4096 when the data area is a whole
/// number of 4 KiB blocks; checked against the device and the data offset.
fn sector_size(opts: &FormatOptions, lay: &Layout, dev_size: u64) -> Result<u32> {
    let sector_size = match opts.sector_size {
        Some(s @ (512 | 1024 | 2048 | 4096)) => s,
        Some(s) => {
            return Err(Error::invalid(
                "sector size",
                format!("{s} is not 512, 1024, 2048 or 4096"),
            ))
        }
        None if dev_size
            .saturating_sub(lay.data_offset)
            .is_multiple_of(4096) =>
        {
            4096
        }
        None => 512,
    };
    let needed = lay.data_offset + u64::from(sector_size);
    if dev_size < needed {
        return Err(Error::DeviceTooSmall {
            needed,
            size: dev_size,
        });
    }
    if !lay.data_offset.is_multiple_of(u64::from(sector_size)) {
        return Err(Error::invalid(
            "data offset",
            format!("not aligned to the {sector_size}-byte sector"),
        ));
    }
    Ok(sector_size)
}

/// A new volume's one crypt segment: the rest of the device from `offset`.
pub(crate) struct CryptSegment<'a> {
    pub(crate) offset: u64,
    pub(crate) cipher: &'a str,
    pub(crate) sector_size: u32,
    pub(crate) integrity: Option<SegmentIntegrity>,
}

/// The JSON metadata of a volume with one crypt segment and the digest of its key; keyslots
/// are the caller's to add (and to list in the digest).
pub(crate) fn crypt_metadata(
    seg: &CryptSegment<'_>,
    digest: &KeyDigest,
    metadata_size: u64,
    keyslots_size: u64,
    flags: Option<Vec<String>>,
) -> Metadata {
    let mut segments = std::collections::BTreeMap::new();
    segments.insert(
        ObjId(0),
        SegmentJson {
            kind: "crypt".into(),
            offset: U64Str(seg.offset),
            size: SegmentSize::Dynamic,
            iv_tweak: Some(U64Str(0)),
            encryption: Some(seg.cipher.to_owned()),
            sector_size: Some(seg.sector_size),
            integrity: seg.integrity.map(|i| {
                let mut m = Map::new();
                m.insert("type".into(), i.json_type().into());
                m.insert("journal_encryption".into(), "none".into());
                m.insert("journal_integrity".into(), "none".into());
                m
            }),
            flags: None,
            extra: Map::new(),
        },
    );
    let mut digests = std::collections::BTreeMap::new();
    digests.insert(
        ObjId(0),
        DigestJson {
            kind: "pbkdf2".into(),
            keyslots: vec![],
            segments: vec![ObjId(0)],
            hash: Some(digest.hash.name().into()),
            iterations: Some(digest.iterations),
            salt: Bytes(digest.salt.clone()),
            digest: Bytes(digest.digest.clone()),
            extra: Map::new(),
        },
    );
    Metadata {
        keyslots: Default::default(),
        tokens: Default::default(),
        segments,
        digests,
        config: ConfigJson {
            json_size: U64Str(metadata_size - 4096),
            keyslots_size: U64Str(keyslots_size),
            flags,
            requirements: None,
            extra: Map::new(),
        },
        extra: Map::new(),
    }
}

/// Formats `io` as LUKS2 with one keyslot opened by `passphrase`.
/// Returns the opened device and its volume key.
///
/// The caller decides whether the device may be overwritten (see `probe` in the CLI); this
/// function writes unconditionally, but in an order that keeps an older volume on the device
/// openable until the new one is: the KDF runs and the key material is written (outside the
/// old keyslots' areas when there is room) before any header is touched, the new header goes
/// to the secondary copy and then the primary with a higher sequence id than the old one, and
/// only then are the rest of the header and keyslots areas zeroed, so that no stale key
/// material survives a completed format.
///
/// # Errors
/// [`Error::InvalidArgument`] for impossible options, [`Error::DeviceTooSmall`],
/// [`Error::Unsupported`] for an unknown cipher, I/O errors.
pub fn format<D: BlockIo>(
    mut io: D,
    opts: &FormatOptions,
    passphrase: &Passphrase,
) -> Result<(Luks2<D>, VolumeKey)> {
    check_cipher(opts)?;
    let lay = layout(opts)?;
    let dev_size = io
        .size()
        .map_err(|e| Error::io("reading the device size", e))?;
    if opts.detached_data_size.is_some() && dev_size < lay.header_size {
        return Err(Error::DeviceTooSmall {
            needed: lay.header_size,
            size: dev_size,
        });
    }
    let sector_size = sector_size(opts, &lay, opts.detached_data_size.unwrap_or(dev_size))?;
    let hdr = crate::header::binary::LABEL_MAX + 1;
    crate::header::binary::check_field("label", &opts.label, hdr)?;
    crate::header::binary::check_field("subsystem", &opts.subsystem, hdr)?;
    let uuid = match &opts.uuid {
        Some(u) if crate::util::is_uuid(u) => u.to_ascii_lowercase(),
        Some(u) => return Err(Error::invalid("uuid", format!("'{u}' is not a UUID"))),
        None => random_uuid()?,
    };
    let key = match &opts.volume_key {
        Some(k) if k.len() == opts.key_size => k.clone(),
        Some(k) => {
            return Err(Error::invalid(
                "volume key",
                format!("{} bytes given, the key size is {}", k.len(), opts.key_size),
            ))
        }
        None => VolumeKey::random(opts.key_size)?,
    };
    let iterations = opts
        .digest_iterations
        .unwrap_or_else(|| crate::pbkdf::digest_iterations(opts.digest_hash));
    let digest = KeyDigest::compute(key.as_bytes(), opts.digest_hash, iterations)?;
    let meta = crypt_metadata(
        &CryptSegment {
            offset: lay.data_offset,
            cipher: &opts.cipher,
            sector_size,
            integrity: opts.integrity,
        },
        &digest,
        lay.metadata_size,
        lay.keyslots_size,
        (!opts.flags.is_empty()).then(|| opts.flags.clone()),
    );
    let old = OldVolume::read(&mut io);
    let bin = BinaryHeader {
        hdr_size: lay.metadata_size,
        seqid: old.seqid,
        label: opts.label.clone().into_bytes(),
        csum_alg: HashAlg::Sha256,
        salt: [0; SALT_LEN],
        uuid,
        subsystem: opts.subsystem.clone().into_bytes(),
        hdr_offset: 0,
    };
    // Both copies start out invalid, so the first commit gives each a fresh salt.
    let mut dev = Luks2::from_loaded(
        io,
        Loaded {
            header: Header { bin, meta },
            primary: CopyStatus::Invalid(Error::NotLuks2),
            secondary: CopyStatus::Invalid(Error::NotLuks2),
            salts: [[0; SALT_LEN]; 2],
        },
    );
    let (_, (ks_start, ks_end)) = dev.insert_keyslot(
        &key,
        passphrase,
        Some(opts.keyslot_id),
        &opts.keyslot,
        &old.in_use,
    )?;
    // The new header is in place: clear everything else in the header and keyslots areas
    // (an older volume's headers and keyslots) so no stale key material survives.
    let start = 2 * lay.metadata_size;
    let end = start + lay.keyslots_size;
    crate::keyslot::zero_area(dev.io_mut(), start, ks_start - start)?;
    crate::keyslot::zero_area(dev.io_mut(), ks_end, end - ks_end)?;
    Ok((dev, key))
}

/// What a format must not overwrite before its new header is written: an existing volume's
/// header copies and keyslot areas, and the sequence id to outnumber.
struct OldVolume {
    seqid: u64,
    in_use: Vec<(u64, u64)>,
}

impl OldVolume {
    fn read<D: BlockIo>(io: &mut D) -> Self {
        match crate::header::read(io) {
            Ok(l) => {
                let h = l.header;
                let mut in_use = vec![(0, 2 * h.metadata_size())];
                in_use.extend(h.meta.keyslots.values().map(|k| {
                    (
                        k.area.offset.0,
                        k.area.offset.0.saturating_add(k.area.size.0),
                    )
                }));
                Self {
                    seqid: h.bin.seqid,
                    in_use,
                }
            }
            Err(_) => Self {
                seqid: 0,
                in_use: Vec::new(),
            },
        }
    }
}
