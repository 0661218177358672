//! Keyslots: unlocking a key from its area and storing a key into a new area.

pub mod af;

use zeroize::Zeroizing;

use crate::header::validate::{af_sectors_bytes, AREA_SECTOR};
use crate::header::KeyslotParams;
use crate::io::BlockIo;
use crate::kdf::KdfLimits;
use crate::sector::SectorCipher;
use crate::{Error, Result};

/// Decrypts a keyslot with `passphrase` and merges its AF material into a candidate key.
/// Whether the candidate is right is for the digest to say.
///
/// # Errors
/// [`Error::Limit`] if a KDF cost is above `limits`; I/O errors reading the area.
pub(crate) fn recover_key<D: BlockIo>(
    io: &mut D,
    field: &str,
    p: &KeyslotParams,
    passphrase: &[u8],
    limits: &KdfLimits,
) -> Result<Zeroizing<Vec<u8>>> {
    p.kdf.check(field, limits)?;
    let len = af_sectors_bytes(p.key_size as u32, p.stripes);
    let mut material = Zeroizing::new(vec![0u8; len as usize]);
    // cryptsetup reads keyslot areas in whole 512-byte sectors from the sector the offset
    // falls in; an offset that is not sector-aligned reads the same bytes here.
    io.read_exact_at(&mut material, p.offset - p.offset % AREA_SECTOR)
        .map_err(|e| Error::io("reading the keyslot area", e))?;
    let derived = p.kdf.derive(passphrase, p.cipher_key_size)?;
    SectorCipher::new(&p.cipher, &derived)?.decrypt(0, AREA_SECTOR as usize, &mut material)?;
    Ok(af::merge(&material, p.key_size, p.stripes, p.af_hash))
}

/// Splits `key`, encrypts it with a key derived from `passphrase` and writes it to the area
/// (all of it: what follows the key material is zeroed).
///
/// # Errors
/// I/O errors, or an invalid cipher key size.
pub(crate) fn store_key<D: BlockIo>(
    io: &mut D,
    p: &KeyslotParams,
    passphrase: &[u8],
    key: &[u8],
) -> Result<()> {
    let split = af::split(key, p.stripes, p.af_hash)?;
    let len = af_sectors_bytes(p.key_size as u32, p.stripes) as usize;
    // The whole area is written, its tail zeroed, so nothing older survives in it.
    let mut material = Zeroizing::new(vec![0u8; len.max(p.size as usize)]);
    material[..split.len()].copy_from_slice(&split);
    let derived = p.kdf.derive(passphrase, p.cipher_key_size)?;
    SectorCipher::new(&p.cipher, &derived)?.encrypt(
        0,
        AREA_SECTOR as usize,
        &mut material[..len],
    )?;
    io.write_all_at(&material, p.offset)
        .map_err(|e| Error::io("writing the keyslot area", e))?;
    io.sync()
        .map_err(|e| Error::io("syncing the keyslot area", e))
}

/// Overwrites `[offset, offset + size)` with random bytes and syncs (freed keyslot areas).
///
/// # Errors
/// I/O errors.
pub(crate) fn wipe_area<D: BlockIo>(io: &mut D, offset: u64, size: u64) -> Result<()> {
    overwrite(io, offset, size, true)
}

/// Overwrites `[offset, offset + size)` with zeros and syncs (a header area being formatted).
///
/// # Errors
/// I/O errors.
pub(crate) fn zero_area<D: BlockIo>(io: &mut D, offset: u64, size: u64) -> Result<()> {
    overwrite(io, offset, size, false)
}

fn overwrite<D: BlockIo>(io: &mut D, offset: u64, size: u64, random: bool) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let mut buf = vec![0u8; CHUNK.min(size) as usize];
    let mut done = 0;
    while done < size {
        let n = CHUNK.min(size - done) as usize;
        if random {
            crate::util::fill_random(&mut buf[..n])?;
        }
        io.write_all_at(&buf[..n], offset + done)
            .map_err(|e| Error::io("overwriting a keyslot area", e))?;
        done += n as u64;
    }
    io.sync()
        .map_err(|e| Error::io("syncing an overwritten area", e))
}
