//! Header backups: the header area (both copies and the keyslots area) as one blob.

use crate::header::{self, Header};
use crate::io::BlockIo;
use crate::{Error, Result};

/// Reads a header backup file's bytes and checks they hold a valid LUKS2 header.
///
/// # Errors
/// As [`header::read`].
pub fn check_backup(bytes: &[u8]) -> Result<Header> {
    let mut mem = crate::io::MemoryDevice::from_vec(bytes.to_vec());
    let l = header::read(&mut mem)?;
    if (bytes.len() as u64) < l.header.header_area_size() {
        return Err(Error::invalid(
            "header backup",
            format!(
                "{} bytes is shorter than its header area of {}",
                bytes.len(),
                l.header.header_area_size()
            ),
        ));
    }
    Ok(l.header)
}

/// Writes a header backup (checked by [`check_backup`]) to the start of `io`.
/// Refuses when the device already holds a LUKS2 header whose data offset or header area
/// differs from the backup's, since restoring would then misplace the data.
///
/// # Errors
/// [`Error::InvalidArgument`] for an incompatible device, [`Error::DeviceTooSmall`], I/O errors.
pub fn restore_backup<D: BlockIo>(io: &mut D, bytes: &[u8]) -> Result<Header> {
    let backup = check_backup(bytes)?;
    let area = backup.header_area_size();
    let size = io
        .size()
        .map_err(|e| Error::io("reading the device size", e))?;
    if size < area {
        return Err(Error::DeviceTooSmall { needed: area, size });
    }
    if let Ok(current) = header::read(io) {
        let off = |h: &Header| h.data_segment().map(|(_, s)| s.offset.0);
        if off(&current.header) != off(&backup) || current.header.header_area_size() != area {
            return Err(Error::invalid(
                "header backup",
                "its data offset or header area size differs from the device's header",
            ));
        }
    }
    io.write_all_at(&bytes[..area as usize], 0)
        .map_err(|e| Error::io("writing the header backup", e))?;
    io.sync()
        .map_err(|e| Error::io("syncing the restored header", e))?;
    Ok(backup)
}
