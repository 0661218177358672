//! Where passphrases come from: key files, the terminal, or standard input.

use std::io::{self, BufRead, IsTerminal, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use luks2::{Passphrase, SecretBuf};

use crate::args::KeyOpts;
use crate::error::{CliError, CliResult, Reading};
use crate::terminal;

/// cryptsetup's default maximum key-file size: 8 MiB.
const KEYFILE_MAX: u64 = 8 << 20;

/// Passphrase input for one command run. Standard input, when it is not a terminal, is read
/// line by line across prompts (the first line for the first passphrase, and so on): the
/// lock is taken for each read only (what was read ahead stays in std's buffer), so that a
/// key file `-` read later does not wait on a lock held here.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// How long to wait for each passphrase typed on a terminal (`--timeout`).
    timeout: Option<Duration>,
}

impl Keys {
    /// Passphrase input that waits at most `timeout` for each passphrase typed on a terminal.
    pub(crate) fn new(timeout: Option<Duration>) -> Self {
        Keys { timeout }
    }

    /// Reads a key file as cryptsetup does: all of it (or `size` bytes after `offset`; a size
    /// of 0 means all), at most 8 MiB, into a buffer that never grows. An offset past the end
    /// is an error, as in cryptsetup.
    pub(crate) fn from_file(path: &Path, offset: u64, size: Option<u64>) -> CliResult<Passphrase> {
        let size = size.filter(|&n| n > 0);
        if size.is_some_and(|n| n > KEYFILE_MAX) {
            return Err(CliError::Usage(format!(
                "a key file size of {} bytes is larger than the {KEYFILE_MAX}-byte maximum",
                size.unwrap_or(0)
            )));
        }
        let limit = size.unwrap_or(KEYFILE_MAX);
        // One byte more than allowed tells a file that is too long from one that fits.
        let mut buf = SecretBuf::with_capacity(limit as usize + 1);
        let read_err = || CliError::file(path, "read key file");
        let past_end = || {
            CliError::Usage(format!(
                "cannot seek to the requested keyfile offset {offset} in {}: the file is shorter",
                path.display()
            ))
        };
        if path == Path::new("-") {
            let mut stdin = io::stdin().lock();
            let skipped =
                io::copy(&mut (&mut stdin).take(offset), &mut io::sink()).map_err(read_err())?;
            if skipped < offset {
                return Err(past_end());
            }
            buf.read_to_end(&mut stdin.take(limit + 1))
                .map_err(read_err())?;
        } else {
            let mut f = std::fs::File::open(path).map_err(CliError::file(path, "open key file"))?;
            let meta = f.metadata().map_err(read_err())?;
            if meta.is_file() && offset > meta.len() {
                return Err(past_end());
            }
            if meta.is_file() {
                f.seek(SeekFrom::Start(offset)).map_err(read_err())?;
            } else {
                // A pipe or FIFO (`<(...)`) cannot seek: skip by reading, as for stdin.
                let skipped =
                    io::copy(&mut (&mut f).take(offset), &mut io::sink()).map_err(read_err())?;
                if skipped < offset {
                    return Err(past_end());
                }
            }
            buf.read_to_end(&mut f.take(limit + 1))
                .map_err(read_err())?;
        }
        if size.is_none() && buf.len() as u64 > KEYFILE_MAX {
            return Err(CliError::Usage(format!(
                "key file {} is larger than the {KEYFILE_MAX}-byte maximum; use --keyfile-size",
                path.display()
            )));
        }
        if let Some(n) = size {
            if (buf.len() as u64) < n {
                return Err(CliError::Usage(format!(
                    "key file {} holds fewer than the {n} bytes to read",
                    path.display()
                )));
            }
            buf.truncate(n as usize);
        }
        Ok(Passphrase::from(buf))
    }

    /// A key file's passphrase for a new keyslot: as [`Keys::from_file`], and never empty
    /// (an empty file, or an offset at its end, is a mistake, not a passphrase).
    pub(crate) fn new_from_file(
        path: &Path,
        offset: u64,
        size: Option<u64>,
    ) -> CliResult<Passphrase> {
        let pass = Self::from_file(path, offset, size)?;
        if pass.as_bytes().is_empty() {
            return Err(CliError::Usage(format!(
                "key file {} gives an empty passphrase (nothing after offset {offset}); refusing to use it for a new keyslot",
                path.display()
            )));
        }
        Ok(pass)
    }

    /// The existing passphrase: `--key-file` if given, else asked with `prompt` (from
    /// standard input, --keyfile-offset and --keyfile-size apply to it as to a key file).
    pub(crate) fn existing(&mut self, opts: &KeyOpts, prompt: &str) -> CliResult<Passphrase> {
        let Some(f) = &opts.key_file else {
            // An empty line typed on a terminal is an empty passphrase, tried as cryptsetup
            // tries it; standard input's empty line is refused by `ask`.
            return self.ask(prompt, false, opts.keyfile_offset, opts.keyfile_size);
        };
        let pass = Self::from_file(f, opts.keyfile_offset, opts.keyfile_size)?;
        // Nothing from standard input, a pipe or a device is "Nothing to read on input." in
        // cryptsetup; an empty regular file is an empty passphrase (a wrong one, mostly).
        let stdin = f == Path::new("-");
        let regular_file = !stdin && std::fs::metadata(f).is_ok_and(|m| m.is_file());
        if pass.as_bytes().is_empty() && !regular_file {
            let what = match stdin {
                true => "standard input".into(),
                false => format!("the key file {}", f.display()),
            };
            return Err(CliError::NothingToRead(what));
        }
        Ok(pass)
    }

    /// A new passphrase: from `file` if given, else asked (twice on a terminal); `offset`
    /// bytes skipped and at most `size` read, from the file or standard input.
    pub(crate) fn new_passphrase(
        &mut self,
        file: Option<&Path>,
        offset: u64,
        size: Option<u64>,
        prompt: &str,
    ) -> CliResult<Passphrase> {
        match file {
            Some(f) => Self::new_from_file(f, offset, size),
            None => self.ask(prompt, true, offset, size),
        }
    }

    /// A passphrase typed on the terminal, or standard input's next line (after `offset`
    /// bytes, at most `size` bytes of it), as cryptsetup reads them.
    fn ask(
        &mut self,
        prompt: &str,
        verify: bool,
        offset: u64,
        size: Option<u64>,
    ) -> CliResult<Passphrase> {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            if offset > 0 {
                return Err(CliError::Stated(
                    "Cannot use offset with terminal input.".into(),
                ));
            }
            // An empty line is an empty passphrase, as cryptsetup takes it.
            let read = |p: &str| {
                terminal::passphrase(p, self.timeout).map_err(|stop| CliError::Terminal {
                    reading: Reading::Passphrase,
                    stop,
                })
            };
            let first = read(prompt)?;
            if verify && read("Verify passphrase: ")?.as_bytes() != first.as_bytes() {
                return Err(CliError::PassphraseMismatch);
            }
            return Ok(first);
        }
        let mut lines = stdin.lock();
        if skip(&mut lines, offset)? < offset {
            return Err(CliError::Stated(
                "Cannot seek to requested keyfile offset.".into(),
            ));
        }
        let size = size.filter(|&n| n > 0);
        let line = read_line(&mut lines, size)?;
        // As cryptsetup: --keyfile-size bytes, no fewer (a newline or the end comes first).
        if size.is_some_and(|n| (line.len() as u64) < n) {
            return Err(CliError::Stated(
                "Cannot read requested amount of data.".into(),
            ));
        }
        if line.is_empty() {
            return Err(CliError::NothingToRead("standard input".into()));
        }
        Ok(Passphrase::from(line))
    }
}

fn stdin_failure(e: &dyn std::fmt::Display) -> CliError {
    CliError::Usage(format!(
        "cannot read the passphrase from standard input: {e}"
    ))
}

/// Skips `n` bytes (fewer at the end of input); returns how many were skipped.
fn skip(r: &mut impl BufRead, n: u64) -> CliResult<u64> {
    let mut done = 0;
    while done < n {
        let chunk = r.fill_buf().map_err(|e| stdin_failure(&e))?;
        if chunk.is_empty() {
            break;
        }
        let k = chunk
            .len()
            .min(usize::try_from(n - done).unwrap_or(usize::MAX));
        r.consume(k);
        done += k as u64;
    }
    Ok(done)
}

/// One line (without its newline) into a buffer that never grows: at most `max` bytes of
/// it (the rest stays unread), or at most 8 MiB.
fn read_line(r: &mut impl BufRead, max: Option<u64>) -> CliResult<SecretBuf> {
    let fail = |e: &dyn std::fmt::Display| stdin_failure(e);
    let cap = max.map_or(KEYFILE_MAX, |m| m.min(KEYFILE_MAX)) as usize;
    let mut line = SecretBuf::with_capacity(cap);
    loop {
        let chunk = r.fill_buf().map_err(|e| fail(&e))?;
        if chunk.is_empty() || (max.is_some() && line.len() == cap) {
            return Ok(line);
        }
        let (mut part, mut done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if max.is_some() && line.len() + part.len() >= cap {
            // --keyfile-size reached: what follows, a newline too, stays unread (as
            // cryptsetup reads it, however the input arrives).
            part = &part[..cap - line.len()];
            done = None;
        }
        line.extend_from_slice(part).map_err(|e| fail(&e))?;
        let used = done.unwrap_or(part.len());
        r.consume(used);
        if done.is_some() {
            return Ok(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_one_at_a_time_without_growing() {
        let mut input: &[u8] = b"first\nsecond\n\nlast";
        let mut r = io::BufReader::with_capacity(3, &mut input);
        for want in [&b"first"[..], b"second", b"", b"last", b""] {
            let line = read_line(&mut r, None).expect("line");
            assert_eq!(line.as_bytes(), want);
            assert_eq!(line.capacity(), KEYFILE_MAX as usize);
        }
    }

    #[test]
    fn an_offset_and_a_size_cut_a_line_as_cryptsetup_reads_it() {
        let mut input: &[u8] = b"XXXXpass1YYY\nZZpass2\n";
        let mut r = io::BufReader::with_capacity(3, &mut input);
        assert_eq!(skip(&mut r, 4).expect("skip"), 4);
        assert_eq!(
            read_line(&mut r, Some(5)).expect("line").as_bytes(),
            b"pass1"
        );
        // The rest of a line cut short is read next.
        assert_eq!(read_line(&mut r, None).expect("line").as_bytes(), b"YYY");
        assert_eq!(skip(&mut r, 2).expect("skip"), 2);
        assert_eq!(
            read_line(&mut r, Some(64)).expect("line").as_bytes(),
            b"pass2"
        );
        assert_eq!(skip(&mut r, 9).expect("skip past the end"), 0);
        assert_eq!(read_line(&mut r, None).expect("line").as_bytes(), b"");
    }

    #[test]
    fn a_line_of_exactly_the_size_leaves_its_newline_however_it_arrives() {
        for capacity in [3, 5, 6, 64] {
            let mut input: &[u8] = b"pass1\nnext\n";
            let mut r = io::BufReader::with_capacity(capacity, &mut input);
            assert_eq!(
                read_line(&mut r, Some(5)).expect("line").as_bytes(),
                b"pass1"
            );
            assert_eq!(
                read_line(&mut r, None).expect("line").as_bytes(),
                b"",
                "{capacity}"
            );
            assert_eq!(read_line(&mut r, None).expect("line").as_bytes(), b"next");
        }
    }
}
