//! LUKS2 volumes with authenticated encryption: the dm-integrity layer under the crypt
//! segment, as cryptsetup formats it (`luksFormat --integrity hmac-sha256`).
//!
//! The LUKS2 header comes first; at the data offset a dm-integrity superblock and journal
//! follow, with the segment's tag size and the encryption sector size as block size. The
//! crypt mapping is later stacked on a `<name>_dif` integrity mapping of the same size.

use luks2::Bytes;
use luks2::{Activation, BlockIo, FormatOptions, Luks2, VolumeKey};

use crate::dm_integrity::{self, IntegrityParams, Superblock};
use crate::{Error, Result};

/// The dm-integrity parameters of a segment with integrity protection.
///
/// # Errors
/// [`Error::Invalid`] if the segment has no integrity protection or an unusable cipher.
pub fn integrity_params(a: &Activation, fix_padding: bool) -> Result<IntegrityParams> {
    let Ok((_, Some(tag))) = a.dm_cipher() else {
        return Err(Error::invalid(
            "segment",
            format!("{} has no usable integrity protection", a.cipher),
        ));
    };
    let mut p = IntegrityParams::new(tag as u16);
    p.block_size = a.sector_size;
    p.fix_padding = fix_padding;
    Ok(p)
}

/// Formats LUKS2 with integrity protection: checks that the device can hold the
/// dm-integrity layout before writing anything, then writes the header and keyslot, then the
/// dm-integrity superblock and journal. `opts.integrity` must be set; with no sector size
/// given, 512-byte sectors are used as cryptsetup does on most disks. Tags are not
/// initialised: the caller writes the whole mapping once (or opens it knowing that unwritten
/// sectors fail to read).
///
/// # Errors
/// [`Error::Invalid`] for a device too small or options without integrity; [`Error::Luks`]
/// from the LUKS2 format; [`Error::Io`].
pub fn format_luks2<D: BlockIo>(
    mut io: D,
    opts: &FormatOptions,
    passphrase: &luks2::Passphrase,
    fix_padding: bool,
) -> Result<(Luks2<D>, VolumeKey, Superblock)> {
    let Some(kind) = opts.integrity else {
        return Err(Error::invalid("options", "no integrity mode given"));
    };
    let (_, tag) = kind.dm_params(&opts.cipher).map_err(Error::Luks)?;
    let mut opts = opts.clone();
    let block = *opts.sector_size.get_or_insert(512);
    let start = Bytes(opts.planned_data_offset().map_err(Error::Luks)?)
        .sectors()
        .0;
    let mut params = IntegrityParams::new(tag as u16);
    params.block_size = block;
    params.fix_padding = fix_padding;
    let size = io
        .size()
        .map_err(|e| Error::io("cannot read the device size", e))?;
    // Fails here, before the first write, if the layout does not fit.
    Superblock::new(&params, Bytes(size).sectors().0, start)?;
    let (mut dev, key) = luks2::format(io, &opts, passphrase).map_err(Error::Luks)?;
    let sb = dm_integrity::format(dev.io_mut(), start, &params)?;
    Ok((dev, key, sb))
}

/// Reads the dm-integrity superblock of a LUKS2 volume and checks it against the segment.
///
/// # Errors
/// [`Error::IntegritySuperblock`] if it is missing or malformed; [`Error::BadSuperblock`] if it
/// does not match the segment's tag or sector size; [`Error::Io`].
pub fn read_luks2_superblock<D: BlockIo>(io: &mut D, a: &Activation) -> Result<Superblock> {
    let want = integrity_params(a, true)?;
    let sb = dm_integrity::read_superblock(io, Bytes(a.offset).sectors().0)?;
    if sb.tag_size != want.tag_size || sb.block_size() != want.block_size {
        return Err(Error::BadSuperblock(format!(
            "tag size {} and block size {} do not match the LUKS2 segment's {} and {}",
            sb.tag_size,
            sb.block_size(),
            want.tag_size,
            want.block_size
        )));
    }
    Ok(sb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use luks2::{MemoryDevice, PbkdfParams, SegmentIntegrity};

    fn opts() -> FormatOptions {
        let mut o = FormatOptions::default();
        o.keyslot.pbkdf = PbkdfParams::insecure_fast();
        o.digest_iterations = Some(1000);
        o.integrity = Some(SegmentIntegrity::parse("hmac-sha256").unwrap());
        o.key_size = 96;
        o
    }

    #[test]
    fn format_and_read_back() {
        let (mut dev, key, sb) = format_luks2(
            MemoryDevice::new(64 << 20),
            &opts(),
            &luks2::Passphrase::from_slice(b"pw"),
            true,
        )
        .unwrap();
        assert_eq!(key.len(), 96);
        let a = dev.header().activation().unwrap();
        assert_eq!(
            a.dm_cipher().unwrap(),
            (
                "capi:authenc(hmac(sha256),xts(aes))-plain64".into(),
                Some(32)
            )
        );
        assert_eq!(a.sector_size, 512);
        assert_eq!(read_luks2_superblock(dev.io_mut(), &a).unwrap(), sb);
        let text = luks2::dump_text(dev.header());
        assert!(text.contains("integrity: hmac(sha256)"), "{text}");
    }

    #[test]
    fn too_small_a_device_is_left_untouched() {
        let mut o = opts();
        o.sector_size = Some(4096);
        // Room for the superblock and journal, not for a tag run and data.
        let mut keep = MemoryDevice::from_vec(vec![0x5a; (16 << 20) + (256 << 10)]);
        assert!(format_luks2(&mut keep, &o, &luks2::Passphrase::from_slice(b"pw"), true).is_err());
        assert!(keep.as_slice().iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn a_mismatching_superblock_is_refused() {
        let (mut dev, _, _) = format_luks2(
            MemoryDevice::new(64 << 20),
            &opts(),
            &luks2::Passphrase::from_slice(b"pw"),
            true,
        )
        .unwrap();
        let mut a = dev.header().activation().unwrap();
        a.sector_size = 4096;
        assert!(read_luks2_superblock(dev.io_mut(), &a).is_err());
    }
}
