//! Bounded reads of user input that is not secret: token JSON, header backups, data to
//! write. Every read has a ceiling, so `/dev/zero` on standard input is an error, not
//! an exhausted machine.

use std::io::Read;
use std::path::Path;

use crate::error::{CliError, CliResult};

/// LUKS2 metadata is at most 4 MiB, so no token JSON is larger.
pub(crate) const TOKEN_JSON_MAX: u64 = 4 << 20;
/// A header backup holds two 4 MiB metadata copies and a keyslots area of at most 128 MiB.
pub(crate) const HEADER_BACKUP_MAX: u64 = (2 * 4 + 128) << 20;

/// Reads all of `path` (`None`: standard input), refusing more than `max` bytes with an
/// error that names `what` and the limit.
///
/// # Errors
/// [`CliError::File`] when the file cannot be read, [`CliError::Usage`] when it is too large.
pub(crate) fn read_bounded(path: Option<&Path>, max: u64, what: &str) -> CliResult<Vec<u8>> {
    let mut bytes = Vec::new();
    let stdin = Path::new("standard input");
    let read = match path {
        Some(p) => std::fs::File::open(p)
            .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
            .map_err(CliError::file(p, "read")),
        None => std::io::stdin()
            .lock()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(CliError::file(stdin, "read")),
    };
    read?;
    if bytes.len() as u64 > max {
        return Err(CliError::Usage(format!(
            "{what} from {} is larger than its {max}-byte maximum",
            path.unwrap_or(stdin).display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        let dir = std::env::temp_dir().join(format!("cryptpilot-input-{}", std::process::id()));
        std::fs::write(&dir, b"12345").expect("write");
        assert_eq!(read_bounded(Some(&dir), 5, "x").expect("fits"), b"12345");
        let e = read_bounded(Some(&dir), 4, "token JSON").expect_err("too large");
        assert!(e.to_string().contains("token JSON"), "{e}");
        assert!(e.to_string().contains("4-byte maximum"), "{e}");
        std::fs::remove_file(&dir).expect("remove");
    }
}
