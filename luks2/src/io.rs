//! Positioned block I/O: the one trait the library reads and writes devices through.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

/// A device or image that can be read and written at byte offsets.
///
/// Implemented for [`File`] (image files and block devices) and [`MemoryDevice`].
pub trait BlockIo {
    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// Any I/O error, including reading past the end.
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    /// Any I/O error.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes previous writes durable (`fsync`).
    ///
    /// # Errors
    /// Any I/O error.
    fn sync(&mut self) -> io::Result<()>;

    /// Size in bytes.
    ///
    /// # Errors
    /// Any I/O error.
    fn size(&mut self) -> io::Result<u64>;
}

impl BlockIo for File {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }

    fn size(&mut self) -> io::Result<u64> {
        // Works for both regular files and block devices (whose metadata length is 0).
        self.seek(SeekFrom::End(0))
    }
}

impl<T: BlockIo + ?Sized> BlockIo for &mut T {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        (**self).write_all_at(buf, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }

    fn size(&mut self) -> io::Result<u64> {
        (**self).size()
    }
}

/// A fixed-size device held in memory, for tests, fuzzing and header backups.
#[derive(Clone, Debug, Default)]
pub struct MemoryDevice {
    data: Vec<u8>,
}

impl MemoryDevice {
    /// A zero-filled device of `size` bytes.
    pub fn new(size: usize) -> Self {
        Self {
            data: vec![0; size],
        }
    }

    /// A device holding `data`.
    pub fn from_vec(data: Vec<u8>) -> Self {
        Self { data }
    }

    /// The device contents.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// The device contents, mutably (to corrupt them in tests).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Gives the contents back.
    pub fn into_vec(self) -> Vec<u8> {
        self.data
    }

    fn range(&self, len: usize, offset: u64) -> io::Result<std::ops::Range<usize>> {
        let start = usize::try_from(offset).map_err(|_| past_end())?;
        let end = start.checked_add(len).ok_or_else(past_end)?;
        if end > self.data.len() {
            return Err(past_end());
        }
        Ok(start..end)
    }
}

fn past_end() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "access past the end of the device",
    )
}

impl BlockIo for MemoryDevice {
    fn read_exact_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let r = self.range(buf.len(), offset)?;
        buf.copy_from_slice(&self.data[r]);
        Ok(())
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let r = self.range(buf.len(), offset)?;
        self.data[r].copy_from_slice(buf);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.data.len() as u64)
    }
}
