//! New LUKS1 headers, laid out as cryptsetup 2.6's `luksFormat --type luks1` lays them out
//! (for boot loaders and systems that read LUKS1 only).

use super::{Luks1, Luks1Header, Luks1Keyslot, MAX_KEY_BYTES};
use crate::header::validate::{af_sectors_bytes, AREA_SECTOR};
use crate::io::BlockIo;
use crate::keyslot::af::AF_STRIPES;
use crate::pbkdf::PbkdfKind;
use crate::secret::{Passphrase, VolumeKey};
use crate::util::align_up;
use crate::{Error, FormatOptions, Result};

/// Keyslot areas start, and are each rounded up to, 4 KiB.
const AREA_ALIGN: u64 = 4096;
/// The data is aligned to 1 MiB after the keyslots (cryptsetup's default alignment).
const DATA_ALIGN: u64 = 1 << 20;
/// cryptsetup zeroes the header area up to the data only when the data starts within 8
/// keyslots of its largest size (16 MiB each).
const WIPE_LIMIT: u64 = 8 * (16 << 20);
/// The digest of the volume key is 20 bytes in LUKS1, whatever the hash.
const DIGEST_BYTES: usize = 20;

/// Copies `text` into a fixed, NUL-padded header field of 32 bytes (at most 31 used).
pub(super) fn field(name: &'static str, text: &str) -> Result<[u8; 32]> {
    let mut f = [0u8; 32];
    if text.is_empty() || text.len() > 31 || !text.is_ascii() {
        return Err(Error::invalid(
            name,
            format!("'{text}' does not fit LUKS1's 31-byte field"),
        ));
    }
    f[..text.len()].copy_from_slice(text.as_bytes());
    Ok(f)
}

/// The bytes a LUKS1 header with `opts.key_size`-byte keys takes: the header's 4 KiB and
/// eight keyslot areas (what a detached header file holds).
///
/// # Errors
/// [`Error::InvalidArgument`] for a key size LUKS1 cannot hold.
pub fn planned_header_size(opts: &FormatOptions) -> Result<u64> {
    Ok(keyslots_end(key_bytes(opts)?))
}

fn key_bytes(opts: &FormatOptions) -> Result<u32> {
    u32::try_from(opts.key_size)
        .ok()
        .filter(|&k| (1..=MAX_KEY_BYTES).contains(&k))
        .ok_or_else(|| Error::invalid("key size", format!("{} bytes (1 to 512)", opts.key_size)))
}

/// Where the eighth keyslot area ends.
fn keyslots_end(key_bytes: u32) -> u64 {
    AREA_ALIGN + u64::from(super::NUM_KEYSLOTS) * keyslot_area(key_bytes)
}

/// One keyslot area's bytes: the split key, rounded up to 4 KiB.
pub(super) fn keyslot_area(key_bytes: u32) -> u64 {
    align_up(af_sectors_bytes(key_bytes, AF_STRIPES), AREA_ALIGN)
}

/// Refuses options a LUKS1 header cannot hold, as [`format`] would, without touching any
/// device: callers check before they create or grow a detached header file.
///
/// # Errors
/// As [`format`]'s [`Error::InvalidArgument`]s.
pub fn check(opts: &FormatOptions) -> Result<()> {
    let refuse = |name, why: &str| Err(Error::invalid(name, format!("{why} (LUKS1)")));
    if opts.keyslot.pbkdf.kind != PbkdfKind::Pbkdf2 {
        return refuse("pbkdf", "keyslots use pbkdf2 only; argon2 needs LUKS2");
    }
    if opts.integrity.is_some() {
        return refuse("integrity", "authenticated encryption needs LUKS2");
    }
    if !opts.label.is_empty() || !opts.subsystem.is_empty() {
        return refuse("label", "labels need LUKS2");
    }
    if opts.sector_size.is_some_and(|s| s != 512) {
        return refuse("sector size", "encryption sectors are 512 bytes");
    }
    if opts.keyslot_id >= super::NUM_KEYSLOTS {
        return refuse("key slot", "keyslots are 0 to 7");
    }
    // The keyslot is encrypted with the volume's cipher: one this library cannot compute
    // (or a key size it does not take) is refused before anything is written.
    crate::format::check_cipher(opts)?;
    let key_bytes = key_bytes(opts)?;
    if !opts.cipher.contains('-') {
        return Err(Error::invalid(
            "cipher",
            format!("'{}' has no mode", opts.cipher),
        ));
    }
    // cryptsetup: "Data offset for LUKS header must be either 0 or higher than header size."
    let end = keyslots_end(key_bytes);
    match (opts.detached_data_size, opts.data_offset) {
        (Some(_), Some(off)) if off != 0 && off < end => Err(Error::invalid(
            "data offset",
            format!(
                "{off} bytes: with a detached header it must be 0 or at least the header's \
                 {end} bytes"
            ),
        )),
        _ => Ok(()),
    }
}

/// Writes a LUKS1 header to `io` with `passphrase` in keyslot `opts.keyslot_id`, as cryptsetup
/// 2.6 does: keyslot areas from 4 KiB, each rounded up to 4 KiB; the data at `data_offset`
/// or aligned to 1 MiB after them (with a detached header, `detached_data_size` set: at
/// `data_offset` on the data device, 0 by default). The header area is zeroed and the
/// keyslot areas filled with random bytes first. One hash (`digest_hash`) serves the volume
/// key digest, the AF splitter and the keyslots' PBKDF2, as LUKS1 has one.
///
/// # Errors
/// [`Error::InvalidArgument`] for what LUKS1 cannot hold (a KDF other than PBKDF2, integrity,
/// labels, a sector size other than 512, a key over 512 bytes, a cipher without a mode, a
/// keyslot above 7, a data offset inside the keyslots); [`Error::DeviceTooSmall`] when no
/// data would fit; I/O errors.
pub fn format<D: BlockIo>(
    mut io: D,
    opts: &FormatOptions,
    passphrase: &Passphrase,
) -> Result<(Luks1<D>, VolumeKey)> {
    check(opts)?;
    let key_bytes = key_bytes(opts)?;
    let (name, mode) = opts
        .cipher
        .split_once('-')
        .ok_or_else(|| Error::invalid("cipher", format!("'{}' has no mode", opts.cipher)))?;
    let hash = opts.digest_hash;
    let area = keyslot_area(key_bytes);
    let keyslots_end = keyslots_end(key_bytes);
    let size = io
        .size()
        .map_err(|e| Error::io("reading the device size", e))?;
    let payload = match (opts.detached_data_size, opts.data_offset) {
        (Some(_), off) => off.unwrap_or(0),
        (None, Some(off)) if off < keyslots_end => {
            return Err(Error::invalid(
                "data offset",
                format!("{off} bytes is inside the keyslots, which end at {keyslots_end}"),
            ))
        }
        (None, Some(off)) => off,
        (None, None) => align_up(keyslots_end, DATA_ALIGN),
    };
    if payload % AREA_SECTOR != 0 {
        return Err(Error::invalid(
            "data offset",
            format!("{payload} bytes is not whole sectors"),
        ));
    }
    let needed = match opts.detached_data_size {
        Some(_) => keyslots_end,
        None => payload + AREA_SECTOR,
    };
    if size < needed {
        return Err(Error::DeviceTooSmall { needed, size });
    }
    let key = match &opts.volume_key {
        Some(k) if k.len() != opts.key_size => {
            return Err(Error::invalid(
                "volume key",
                format!("{} bytes, the key size is {}", k.len(), opts.key_size),
            ))
        }
        Some(k) => k.clone(),
        None => VolumeKey::random(opts.key_size)?,
    };
    let uuid = match &opts.uuid {
        Some(u) if !crate::util::is_uuid(u) => {
            return Err(Error::invalid("uuid", format!("'{u}' is not a UUID")))
        }
        Some(u) => u.to_ascii_lowercase(),
        None => crate::util::random_uuid()?,
    };
    let iterations = opts
        .digest_iterations
        .unwrap_or_else(|| crate::pbkdf::digest_iterations(hash));
    let mut salt = [0u8; 32];
    crate::util::fill_random(&mut salt)?;
    let mut digest = [0u8; DIGEST_BYTES];
    hash.pbkdf2(key.as_bytes(), &salt, iterations, &mut digest);
    let mut uuid_field = [0u8; 40];
    uuid_field[..uuid.len()].copy_from_slice(uuid.as_bytes());
    let mut keyslots = [Luks1Keyslot::DISABLED; super::NUM_KEYSLOTS as usize];
    for (i, k) in (0u64..).zip(keyslots.iter_mut()) {
        k.offset = u32::try_from((AREA_ALIGN + i * area) / AREA_SECTOR)
            .map_err(|_| Error::invalid("key size", "keyslots beyond 2 TiB"))?;
    }
    let header = Luks1Header {
        cipher_name: field("cipher", name)?,
        cipher_mode: field("cipher mode", mode)?,
        hash_spec: field("hash", hash.name())?,
        payload_offset: u32::try_from(payload / AREA_SECTOR)
            .map_err(|_| Error::invalid("data offset", "beyond 2 TiB"))?,
        key_bytes,
        mk_digest: digest,
        mk_digest_salt: salt,
        mk_digest_iterations: iterations,
        uuid: uuid_field,
        keyslots,
    };
    // cryptsetup's wipe: zeros up to the data, then random bytes in every keyslot area; only
    // the first 4 KiB for a detached header or data beyond 8 of the largest keyslots (128
    // MiB), which must not zero what lies before a far data offset.
    let zeros_end = match opts.detached_data_size {
        Some(_) => AREA_ALIGN,
        None if payload > WIPE_LIMIT => AREA_ALIGN,
        None => payload,
    };
    let chunk = 1 << 20;
    let zeros = vec![0u8; chunk];
    let mut at = 0;
    while at < zeros_end {
        let n = (zeros_end - at).min(chunk as u64) as usize;
        io.write_all_at(&zeros[..n], at)
            .map_err(|e| Error::io("wiping the LUKS1 header area", e))?;
        at += n as u64;
    }
    for k in &header.keyslots {
        let noise = crate::util::random_bytes(area as usize)?;
        io.write_all_at(&noise, u64::from(k.offset) * AREA_SECTOR)
            .map_err(|e| Error::io("wiping the LUKS1 keyslot areas", e))?;
    }
    // The layout passes cryptsetup's own checks before anything names it.
    let checked = Luks1Header::parse(&header.to_bytes())?;
    let mut dev = Luks1 {
        io,
        header: checked.clone(),
    };
    dev.write_header(checked)?;
    dev.add_keyslot(&key, passphrase, Some(opts.keyslot_id), &opts.keyslot.pbkdf)?;
    Ok((dev, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KdfLimits, MemoryDevice, PbkdfParams};

    fn opts(key_size: usize) -> FormatOptions {
        let mut o = FormatOptions {
            key_size,
            digest_iterations: Some(1000),
            ..FormatOptions::default()
        };
        o.keyslot.pbkdf = PbkdfParams::insecure_fast();
        o.keyslot.pbkdf.kind = PbkdfKind::Pbkdf2;
        o
    }

    #[test]
    fn lays_out_as_cryptsetup_and_opens_with_the_passphrase() {
        let pass = Passphrase::from_slice(b"pw");
        for (key_size, area_sectors) in [(64usize, 504u32), (32, 256)] {
            let (d, key) =
                format(MemoryDevice::new(8 << 20), &opts(key_size), &pass).expect("format");
            let h = d.header().clone();
            assert_eq!(h.payload_offset, 4096, "data at 2 MiB");
            let offsets: Vec<u32> = h.keyslots.iter().map(|k| k.offset).collect();
            let want: Vec<u32> = (0..8).map(|i| 8 + i * area_sectors).collect();
            assert_eq!(offsets, want);
            assert_eq!(
                (h.cipher(), h.hash_spec().into_owned()),
                ("aes-xts-plain64".into(), "sha256".into())
            );
            assert_eq!(h.keyslot_ids(), vec![0]);
            let bytes = d.into_inner().into_vec();
            let mut d = Luks1::open(MemoryDevice::from_vec(bytes)).expect("reopen");
            let (slot, got) = d
                .unlock(&pass, None, &KdfLimits::default())
                .expect("unlock");
            assert_eq!((slot, got.as_bytes()), (0, key.as_bytes()));
        }
    }

    /// A detached header file's size as cryptsetup 2.6 creates it (2068480 bytes for a
    /// 512-bit key); the data starts at 0 and the header is all the file holds.
    #[test]
    fn detached_header_size_is_cryptsetups() {
        assert_eq!(planned_header_size(&opts(64)).unwrap(), 2_068_480);
        assert_eq!(planned_header_size(&opts(32)).unwrap(), 4096 + 8 * 131_072);
        let pass = Passphrase::from_slice(b"pw");
        let mut o = opts(64);
        o.detached_data_size = Some(8 << 20);
        let (d, _) = format(MemoryDevice::new(2_068_480), &o, &pass).expect("format");
        assert_eq!(d.header().payload_offset, 0);
        o.data_offset = Some(4 << 20);
        let (d, _) = format(MemoryDevice::new(2_068_480), &o, &pass).expect("format");
        assert_eq!(d.header().payload_offset, 8192);
    }

    #[test]
    fn refuses_what_luks1_cannot_hold() {
        let pass = Passphrase::from_slice(b"pw");
        let mut argon = opts(64);
        argon.keyslot.pbkdf.kind = PbkdfKind::Argon2id;
        let mut label = opts(64);
        label.label = "x".into();
        let mut sector = opts(64);
        sector.sector_size = Some(4096);
        let mut inside = opts(64);
        inside.data_offset = Some(8192);
        let mut key_size = opts(48);
        key_size.cipher = "aes-xts-plain64".into();
        let mut serpent = opts(64);
        serpent.cipher = "serpent-xts-plain64".into();
        // A detached header's data offset: 0, or past the header (2068480 bytes here).
        let mut detached_inside = opts(64);
        detached_inside.detached_data_size = Some(8 << 20);
        detached_inside.data_offset = Some(1 << 20);
        for o in [
            argon,
            label,
            sector,
            inside,
            detached_inside,
            key_size,
            serpent,
        ] {
            let mut dev = MemoryDevice::new(8 << 20);
            assert!(format(&mut dev, &o, &pass).is_err());
            // Refused before anything is written.
            assert!(dev.into_vec().iter().all(|&b| b == 0), "{}", o.cipher);
        }
        // No room for data.
        assert!(matches!(
            format(MemoryDevice::new(2 << 20), &opts(64), &pass),
            Err(Error::DeviceTooSmall { .. })
        ));
    }
}
