//! Offline images: LUKS2 data encrypted and decrypted in userspace through the segment
//! cipher, streaming in bounded chunks on all CPUs, sparse-aware. No root and no
//! device-mapper needed; what is written opens with cryptsetup and the kernel.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use luks2::{
    Activation, BlockIo, FormatOptions, KdfLimits, Luks2, Passphrase, SegmentCipher, VolumeKey,
};

use crate::{Error, Result};

/// Bytes encrypted per step: memory stays bounded whatever the image size.
const CHUNK: usize = 16 << 20;

/// How a whole image is streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    /// Threads for the cipher (at least one).
    pub threads: usize,
    /// Holes stay holes: input holes are not encrypted (encrypt), image holes are not
    /// decrypted (decrypt).
    pub sparse: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sparse: false,
        }
    }
}

/// A LUKS2 image whose header was read and checked, not yet unlocked: parse first, unlock
/// second.
#[derive(Debug)]
pub struct Segment<'f> {
    path: PathBuf,
    dev: Luks2<&'f mut File>,
    activation: Activation,
    /// The data device's size when the header is detached from it.
    data_size: Option<u64>,
}

/// A data segment keyed for userspace crypto, and its length in bytes.
#[derive(Debug)]
pub struct Unlocked {
    /// The keyed cipher (it knows the segment's offset and sector size).
    pub cipher: SegmentCipher,
    /// Bytes of data in the segment (whole sectors that fit on the device).
    pub size: u64,
}

impl<'f> Segment<'f> {
    /// Reads the header of the image at `path`, opened as `file`.
    ///
    /// # Errors
    /// [`Error::Luks`] for an image that is not a usable LUKS2 volume.
    pub fn open(path: &Path, file: &'f mut File) -> Result<Self> {
        let dev = Luks2::open(file).map_err(Error::luks(path))?;
        let activation = dev.header().activation().map_err(Error::luks(path))?;
        Ok(Segment {
            path: path.to_owned(),
            dev,
            activation,
            data_size: None,
        })
    }

    /// For a detached header (`file` held only the header): the data lies on another device
    /// of `size` bytes, which the segment's offset and length refer to.
    pub fn detached(mut self, size: u64) -> Self {
        self.data_size = Some(size);
        self
    }

    /// Unlocks with a passphrase (any keyslot, or `slot`).
    ///
    /// # Errors
    /// [`Error::Luks`] with `WrongPassphrase` when no keyslot opens.
    pub fn unlock(
        mut self,
        passphrase: &Passphrase,
        slot: Option<u32>,
        limits: &KdfLimits,
    ) -> Result<Unlocked> {
        let (_, key) = self
            .dev
            .unlock(passphrase, slot, limits)
            .map_err(Error::luks(&self.path))?;
        self.keyed(&key)
    }

    /// The volume key's size in bytes.
    pub fn key_size(&self) -> usize {
        self.activation.key_size
    }

    /// Unlocks with the volume key itself, checked against the header's digest.
    ///
    /// # Errors
    /// [`Error::Luks`] with `WrongVolumeKey` when it is not this volume's key.
    pub fn unlock_with_key(self, key: &VolumeKey) -> Result<Unlocked> {
        self.dev
            .verify_volume_key(key)
            .map_err(Error::luks(&self.path))?;
        self.keyed(key)
    }

    fn keyed(self, key: &VolumeKey) -> Result<Unlocked> {
        let a = &self.activation;
        let cipher = SegmentCipher::new(a, key).map_err(Error::luks(&self.path))?;
        let size = match self.data_size {
            Some(size) => size,
            None => self
                .dev
                .into_inner()
                .size()
                .map_err(Error::device(&self.path, "read the size of"))?,
        };
        let avail = size.saturating_sub(a.offset);
        let sector = u64::from(a.sector_size);
        let size = a.size.unwrap_or(avail).min(avail) / sector * sector;
        Ok(Unlocked { cipher, size })
    }
}

/// Whether `[pos, pos + len)` of `f` is entirely a hole (no data before `pos + len`).
fn is_hole(f: &File, pos: u64, len: u64) -> bool {
    use nix::unistd::{lseek, Whence};
    let Ok(pos_off) = i64::try_from(pos) else {
        return false;
    };
    match lseek(f, pos_off, Whence::SeekData) {
        Ok(next) => next as u64 >= pos + len,
        // ENXIO: no data at or after `pos`.
        Err(nix::Error::ENXIO) => true,
        Err(_) => false,
    }
}

/// A plain image and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// Its path, for errors.
    pub path: &'a Path,
    /// The open file.
    pub file: &'a File,
}

/// Formats `out` (an empty or truncated file) as LUKS2 with `opts` and `passphrase` and
/// encrypts `input` into its data segment, reporting `(done, total)` bytes to `progress`.
/// Without a sector size in `opts`, 4096 is used when the input is a whole number of 4 KiB
/// blocks, else 512.
///
/// # Errors
/// [`Error::Luks`] for options the format refuses; [`Error::Device`] for I/O on either file.
pub fn encrypt_image(
    input: Source<'_>,
    out: (&Path, &mut File),
    opts: &FormatOptions,
    passphrase: &Passphrase,
    stream: Stream,
    progress: crate::ProgressFn<'_>,
) -> Result<()> {
    let (out_path, f) = out;
    // Seeking works for block devices too (their metadata length is 0).
    let in_size = std::io::Seek::seek(&mut { input.file }, std::io::SeekFrom::End(0))
        .map_err(Error::device(input.path, "read the size of"))?;
    let mut opts = opts.clone();
    let sector =
        u64::from(
            opts.sector_size
                .unwrap_or(if in_size % 4096 == 0 { 4096 } else { 512 }),
        );
    opts.sector_size = Some(sector as u32);
    let offset = opts.planned_data_offset().map_err(Error::luks(out_path))?;
    let data_len = in_size.div_ceil(sector) * sector;
    f.set_len(offset + data_len)
        .map_err(Error::device(out_path, "size"))?;
    let (dev, key) = luks2::format(&mut *f, &opts, passphrase).map_err(Error::luks(out_path))?;
    let a = dev.header().activation().map_err(Error::luks(out_path))?;
    drop(dev);
    let cipher = SegmentCipher::new(&a, &key).map_err(Error::luks(out_path))?;
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < data_len {
        let len = (data_len - pos).min(CHUNK as u64) as usize;
        let hole = is_hole(input.file, pos, len as u64);
        if !(stream.sparse && hole) {
            let chunk = &mut buf[..len];
            let have = (in_size - pos).min(len as u64) as usize;
            if hole {
                chunk.fill(0);
            } else {
                input
                    .file
                    .read_exact_at(&mut chunk[..have], pos)
                    .map_err(Error::device(input.path, "read"))?;
                chunk[have..].fill(0);
            }
            cipher
                .encrypt(pos, chunk, stream.threads.max(1))
                .map_err(Error::luks(out_path))?;
            f.write_all_at(chunk, offset + pos)
                .map_err(Error::device(out_path, "write"))?;
        }
        pos += len as u64;
        progress(pos, data_len);
    }
    f.sync_all().map_err(Error::device(out_path, "flush"))
}

/// Decrypts the data segment of the image `input` (unlocked as `seg`) into `out`; sectors
/// that decrypt to zeros are left as holes. Reports `(done, total)` bytes to `progress`.
///
/// # Errors
/// [`Error::Device`] for I/O on either file.
pub fn decrypt_image(
    input: Source<'_>,
    seg: &Unlocked,
    out: (&Path, &mut File),
    stream: Stream,
    progress: crate::ProgressFn<'_>,
) -> Result<()> {
    let (out_path, f) = out;
    let offset = seg.cipher.offset();
    let ss = seg.cipher.sector_size();
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < seg.size {
        let len = (seg.size - pos).min(CHUNK as u64) as usize;
        if !(stream.sparse && is_hole(input.file, offset + pos, len as u64)) {
            let chunk = &mut buf[..len];
            input
                .file
                .read_exact_at(chunk, offset + pos)
                .map_err(Error::device(input.path, "read"))?;
            seg.cipher
                .decrypt(pos, chunk, stream.threads.max(1))
                .map_err(Error::luks(input.path))?;
            for (i, s) in chunk.chunks(ss).enumerate() {
                if s.iter().any(|&b| b != 0) {
                    f.write_all_at(s, pos + (i * ss) as u64)
                        .map_err(Error::device(out_path, "write"))?;
                }
            }
        }
        pos += len as u64;
        progress(pos, seg.size);
    }
    f.set_len(seg.size)
        .map_err(Error::device(out_path, "size"))?;
    f.sync_all().map_err(Error::device(out_path, "flush"))
}

/// Checks that `len` bytes at `offset` lie inside the segment.
fn check_range(seg: &Unlocked, offset: u64, len: u64) -> Result<()> {
    if offset.checked_add(len).is_none_or(|end| end > seg.size) {
        return Err(Error::Invalid {
            reason: format!(
                "{len} bytes at {offset} go past the {}-byte data segment",
                seg.size
            ),
        });
    }
    Ok(())
}

/// Decrypts `len` bytes of the data segment from `offset` (whole sectors) into `sink`.
///
/// # Errors
/// [`Error::Invalid`] for a range past the segment; [`Error::Device`] for I/O.
pub fn read_range(
    input: Source<'_>,
    seg: &Unlocked,
    offset: u64,
    len: u64,
    sink: &mut dyn Write,
) -> Result<()> {
    check_range(seg, offset, len)?;
    let output = Path::new("the output");
    let threads = Stream::default().threads;
    let mut pos = offset;
    let mut buf = vec![0u8; CHUNK];
    while pos < offset + len {
        let n = (offset + len - pos).min(CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        input
            .file
            .read_exact_at(chunk, seg.cipher.offset() + pos)
            .map_err(Error::device(input.path, "read"))?;
        seg.cipher
            .decrypt(pos, chunk, threads)
            .map_err(Error::luks(input.path))?;
        sink.write_all(chunk)
            .map_err(Error::device(output, "write to"))?;
        pos += n as u64;
    }
    sink.flush().map_err(Error::device(output, "write to"))
}

/// Encrypts `data` (whole sectors) into the data segment at `offset` of the image opened
/// as `file`.
///
/// # Errors
/// [`Error::Invalid`] for a range past the segment; [`Error::Device`] for I/O.
pub fn write_range(
    path: &Path,
    file: &File,
    seg: &Unlocked,
    offset: u64,
    data: &mut [u8],
) -> Result<()> {
    check_range(seg, offset, data.len() as u64)?;
    seg.cipher
        .encrypt(offset, data, Stream::default().threads)
        .map_err(Error::luks(path))?;
    file.write_all_at(data, seg.cipher.offset() + offset)
        .and_then(|()| file.sync_all())
        .map_err(Error::device(path, "write"))
}
