//! Disk image files read without mounting: the partition table, and the FAT and ext4 file
//! systems in partitions, through pure-Rust readers (no loop device, no root).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use luks2::BlockIo;

use crate::gpt::{self, Partition};
use crate::{Error, Result};

/// Image files are addressed in 512-byte sectors.
pub const SECTOR: u64 = 512;

/// A byte range of a file (a partition of a disk image, an LV inside it) seen as a device of
/// its own: reads and writes are bounded to the range.
#[derive(Debug)]
pub struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    /// `len` bytes of `file` from `start`.
    pub fn new(file: File, start: u64, len: u64) -> Self {
        Window {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// Where it starts in the file.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bound(&self, offset: u64, n: usize) -> io::Result<u64> {
        match offset.checked_add(n as u64) {
            Some(end) if end <= self.len => Ok(self.start + offset),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{n} bytes at {offset} lie past the end of a {}-byte area",
                    self.len
                ),
            )),
        }
    }
}

impl BlockIo for Window {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let at = self.bound(offset, buf.len())?;
        self.file.read_exact_at(buf, at)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let at = self.bound(offset, buf.len())?;
        self.file.write_all_at(buf, at)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.len)
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let got = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl Write for Window {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the area",
            ));
        }
        let put = self.file.write_at(&buf[..n], self.start + self.pos)?;
        self.pos += put as u64;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl ext4_view::Ext4Read for Window {
    fn read(
        &mut self,
        start_byte: u64,
        dst: &mut [u8],
    ) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(self.read_exact_at(dst, start_byte)?)
    }
}

/// A disk image file opened read-only, with its GPT read.
#[derive(Debug)]
pub struct DiskImage {
    file: File,
    path: PathBuf,
    partitions: Vec<Partition>,
}

impl DiskImage {
    /// Opens a raw image (or a block device) read-only and reads its partition table.
    ///
    /// # Errors
    /// [`Error::Image`] for an image in a container format (qcow2, VHD: convert it to raw
    /// with `qemu-img convert -O raw`), a missing or damaged GPT; I/O errors.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(Error::io(path, "open"))?;
        let mut head = [0u8; 8];
        let n = file
            .read_at(&mut head, 0)
            .map_err(Error::io(path, "read"))?;
        if n >= 4 && &head[..4] == b"QFI\xfb" {
            return Err(image_err(
                path,
                "is a qcow2 image; convert it with `qemu-img convert -O raw`",
            ));
        }
        let size = file.size().map_err(Error::io(path, "read the size of"))?;
        if size >= 512 {
            let mut tail = [0u8; 8];
            file.read_exact_at(&mut tail, size - 512)
                .map_err(Error::io(path, "read"))?;
            if &tail == b"conectix" {
                return Err(image_err(
                    path,
                    "is a VHD image; convert it with `qemu-img convert -O raw`",
                ));
            }
        }
        let partitions =
            gpt::partitions(&mut file, SECTOR).map_err(|e| image_err(path, &e.to_string()))?;
        Ok(DiskImage {
            file,
            path: path.to_owned(),
            partitions,
        })
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The used partition entries, in table order.
    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    /// Partition `number` (1-based).
    pub fn partition(&self, number: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == number)
    }

    /// A bounded reader over one partition.
    ///
    /// # Errors
    /// I/O errors duplicating the file handle.
    pub fn window(&self, p: &Partition) -> Result<Window> {
        let f = self
            .file
            .try_clone()
            .map_err(Error::io(&self.path, "reopen"))?;
        Ok(Window::new(f, p.offset(SECTOR), p.len(SECTOR)))
    }

    /// The ext4 (or ext2/3) file system in partition `p`, or `None` when it holds none.
    ///
    /// # Errors
    /// [`Error::Image`] when the superblock says ext4 but the file system cannot be read.
    pub fn ext4(&self, p: &Partition) -> Result<Option<ext4_view::Ext4>> {
        let mut w = self.window(p)?;
        let mut magic = [0u8; 2];
        if w.read_exact_at(&mut magic, 1024 + 0x38).is_err() || magic != [0x53, 0xef] {
            return Ok(None);
        }
        ext4_view::Ext4::load(Box::new(w))
            .map(Some)
            .map_err(|e| self.part_err(p, &format!("ext4: {e}")))
    }

    /// The FAT file system in partition `p`, or `None` when it holds none.
    ///
    /// # Errors
    /// [`Error::Image`] when the boot sector says FAT but the file system cannot be read.
    pub fn fat(&self, p: &Partition) -> Result<Option<fatfs::FileSystem<ReadOnly<Window>>>> {
        let mut w = self.window(p)?;
        let mut bs = [0u8; 512];
        if w.read_exact_at(&mut bs, 0).is_err() || bs[510..] != [0x55, 0xaa] {
            return Ok(None);
        }
        let fat_label = &bs[0x36..0x3b] == b"FAT12"
            || &bs[0x36..0x3b] == b"FAT16"
            || &bs[0x52..0x57] == b"FAT32";
        if !fat_label {
            return Ok(None);
        }
        fatfs::FileSystem::new(ReadOnly(w), fatfs::FsOptions::new())
            .map(Some)
            .map_err(|e| self.part_err(p, &format!("FAT: {e}")))
    }

    /// The EFI system partition, as the existing tool finds it: the first FAT partition with
    /// an `EFI` directory (its type GUID is not required), with its file system.
    ///
    /// # Errors
    /// As [`DiskImage::fat`].
    pub fn esp(&self) -> Result<Option<(Partition, fatfs::FileSystem<ReadOnly<Window>>)>> {
        for p in &self.partitions {
            if let Some(fs) = self.fat(p)? {
                if fs.root_dir().open_dir("EFI").is_ok() {
                    return Ok(Some((p.clone(), fs)));
                }
            }
        }
        Ok(None)
    }

    fn part_err(&self, p: &Partition, why: &str) -> Error {
        image_err(&self.path, &format!("partition {}: {why}", p.number))
    }
}

fn image_err(path: &Path, why: &str) -> Error {
    Error::Image {
        path: path.to_owned(),
        why: why.to_owned(),
    }
}

/// A reader that refuses every write: the FAT library needs a writable handle type even to
/// read, and a reference-value or dump command must not change the image.
#[derive(Debug)]
pub struct ReadOnly<T>(pub T);

impl<T: Read> Read for ReadOnly<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: Seek> Seek for ReadOnly<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.0.seek(to)
    }
}

impl<T> Write for ReadOnly<T> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the image is opened read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The largest file read from an image into memory (kernels, initrds, UKIs, configuration):
/// a hostile directory entry must not make a reader allocate gigabytes.
pub const MAX_FILE: u64 = 512 << 20;
/// How deep directory walks of an image go, and how many entries they visit at most (a
/// hostile file system can hold directory cycles).
const MAX_DEPTH: usize = 16;
const MAX_ENTRIES: usize = 100_000;

fn too_big(path: &str, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path} claims {len} bytes, more than the {MAX_FILE} read from an image"),
    )
}

/// Every entry under the FAT file system's root, as (`/EFI/BOOT/BOOTX64.EFI`, is a
/// directory), depth-first; at most 16 levels and 100000 entries.
///
/// # Errors
/// Read errors; a walk past those limits (a directory cycle).
pub fn fat_walk<T: fatfs::ReadWriteSeek>(
    fs: &fatfs::FileSystem<T>,
) -> io::Result<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut dirs = vec![(String::new(), fs.root_dir(), 0usize)];
    while let Some((prefix, dir, depth)) = dirs.pop() {
        for e in dir.iter() {
            let e = e?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "more than 100000 directory entries: a directory cycle?",
                ));
            }
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            let path = format!("{prefix}/{name}");
            if e.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{path}: directories nested more than {MAX_DEPTH} deep"),
                    ));
                }
                dirs.push((path.clone(), e.to_dir(), depth + 1));
            }
            out.push((path, e.is_dir()));
        }
    }
    Ok(out)
}

/// Reads a whole file from a FAT file system (path with `/` separators, case-insensitive as
/// FAT is), or `None` when it does not exist.
///
/// # Errors
/// I/O errors other than a missing file.
pub fn fat_read<T: fatfs::ReadWriteSeek>(
    fs: &fatfs::FileSystem<T>,
    path: &str,
) -> io::Result<Option<Vec<u8>>> {
    let path = path.trim_start_matches('/');
    let mut f = match fs.root_dir().open_file(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The directory entry's size: a file system cut short must not yield a shorter file.
    let want = f.seek(SeekFrom::End(0))?;
    if want > MAX_FILE {
        return Err(too_big(path, want));
    }
    f.seek(SeekFrom::Start(0))?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    if v.len() as u64 != want {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{path}: {} of its {want} bytes can be read", v.len()),
        ));
    }
    Ok(Some(v))
}

/// Reads a whole file from an ext4 file system, or `None` when it does not exist.
///
/// # Errors
/// Read errors other than a missing file, as text.
pub fn ext4_read(fs: &ext4_view::Ext4, path: &str) -> std::result::Result<Option<Vec<u8>>, String> {
    match fs.metadata(path) {
        Ok(m) if m.len() > MAX_FILE => return Err(too_big(path, m.len()).to_string()),
        Ok(_) => {}
        Err(ext4_view::Ext4Error::NotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    }
    match fs.read(path) {
        Ok(v) => Ok(Some(v)),
        Err(ext4_view::Ext4Error::NotFound) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
