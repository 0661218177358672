//! The terminal, read as cryptsetup reads it: a passphrase with echo off, into a buffer that
//! never grows (at most [`PASSPHRASE_MAX`] bytes; the rest of the line is dropped), and a
//! question's answer. `--timeout` bounds the wait for a passphrase. SIGINT (^C) and SIGTERM
//! end a read as they end cryptsetup's, with the terminal's modes put back, instead of
//! killing the process and leaving echo off.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use luks2::Passphrase;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};
use zeroize::Zeroizing;

/// cryptsetup's longest passphrase typed on a terminal (`DEFAULT_PASSPHRASE_SIZE_MAX`): a
/// longer line is cut there, so a volume made with a longer one opens with its first 512
/// bytes, in both tools.
pub(crate) const PASSPHRASE_MAX: usize = 512;

/// The longest answer to a question that is read (a terminal's line is at most 4095 bytes).
const ANSWER_MAX: usize = 4096;

/// Why a read from the terminal gave no line.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The input ended (^D at the start of the line).
    End,
    /// Nothing was typed within `--timeout`.
    TimedOut(Duration),
    /// SIGINT (^C) or SIGTERM came.
    Interrupted(Signal),
    /// The terminal could not be set up or read.
    Failed(io::Error),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::End => f.write_str("the input ended"),
            Stop::TimedOut(t) => write!(f, "nothing was typed within {} s", t.as_secs()),
            Stop::Interrupted(s) => write!(f, "interrupted by {}", s.as_str()),
            Stop::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<Errno> for Stop {
    fn from(e: Errno) -> Self {
        Stop::Failed(e.into())
    }
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Failed(e)
    }
}

/// Asks for a passphrase as cryptsetup does: on `/dev/tty` when it opens (else standard
/// input, with the prompt on standard error), echo off, one line of at most
/// [`PASSPHRASE_MAX`] bytes without its newline. An empty line is an empty passphrase. A
/// newline is written after the line only when one was read.
pub(crate) fn passphrase(prompt: &str, timeout: Option<Duration>) -> Result<Passphrase, Stop> {
    let signals = Signals::hold()?;
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty");
    let stdin = io::stdin();
    let (input, mut output): (BorrowedFd<'_>, Box<dyn Write>) = match &tty {
        Ok(t) => (t.as_fd(), Box::new(t)),
        Err(_) => (stdin.as_fd(), Box::new(io::stderr())),
    };
    let saved = tcgetattr(input)?;
    output.write_all(prompt.as_bytes())?;
    output.flush()?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    let mut buf = Zeroizing::new(vec![0u8; PASSPHRASE_MAX]);
    let read = {
        // Whatever was typed ahead is dropped, now and (the rest of a long line) after.
        let _restore = Modes::set(input, &quiet, saved)?;
        read_line(input, &mut buf, timeout, &signals)
    };
    let n = read?;
    let _ = output.write_all(b"\n");
    let n = n - usize::from(buf[n - 1] == b'\n');
    // cryptsetup's passphrase is a C string: a typed NUL (^@) ends it.
    let n = buf[..n].iter().position(|&b| b == 0).unwrap_or(n);
    Ok(Passphrase::from_slice(&buf[..n]))
}

/// Prints `question` (on standard output when `on_stdout`, else standard error) and reads
/// the answer's line from standard input, a terminal, echo on. True for `YES` alone.
pub(crate) fn answer_is_yes(question: &str, on_stdout: bool) -> Result<bool, Stop> {
    let signals = Signals::hold()?;
    if on_stdout {
        let mut out = io::stdout().lock();
        out.write_all(question.as_bytes())?;
        out.flush()?;
    } else {
        io::stderr().write_all(question.as_bytes())?;
    }
    let mut buf = vec![0u8; ANSWER_MAX];
    let n = read_line(io::stdin().as_fd(), &mut buf, None, &signals)?;
    Ok(&buf[..n] == b"YES\n")
}

/// Reads from `input` into `buf` until a newline (kept), the end of the input or a full
/// buffer, within `timeout`; returns how many bytes were read.
fn read_line(
    input: BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Option<Duration>,
    signals: &Signals,
) -> Result<usize, Stop> {
    let deadline = timeout.map(|t| (t, Instant::now() + t));
    let mut len = 0;
    loop {
        let wait = match deadline {
            None => PollTimeout::NONE,
            Some((_, at)) => {
                let left = at.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [
            PollFd::new(input, PollFlags::POLLIN),
            PollFd::new(signals.fd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, wait) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            // (A wait longer than poll's longest is taken in turns.)
            Ok(0) => match deadline {
                Some((t, at)) if Instant::now() >= at => return Err(Stop::TimedOut(t)),
                _ => continue,
            },
            Ok(_) => {}
        }
        if fds[1].any().unwrap_or(false) {
            if let Some(info) = signals.fd.read_signal()? {
                let signal = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGINT);
                return Err(Stop::Interrupted(signal));
            }
        }
        if !fds[0].any().unwrap_or(false) {
            continue;
        }
        match nix::unistd::read(input, &mut buf[len..]) {
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(e.into()),
            Ok(0) if len == 0 => return Err(Stop::End),
            Ok(0) => return Ok(len),
            Ok(n) => {
                len += n;
                if buf[len - 1] == b'\n' || len == buf.len() {
                    return Ok(len);
                }
            }
        }
    }
}

/// SIGINT and SIGTERM held back from delivery while this lives, and readable from `fd`
/// instead, so that a read can end on them and clean up. The mask is the calling thread's:
/// prompts are asked from the main thread while no other thread runs.
struct Signals {
    fd: SignalFd,
    old: SigSet,
}

impl Signals {
    fn hold() -> Result<Self, Stop> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))?;
        match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
            Ok(fd) => Ok(Self { fd, old }),
            Err(e) => {
                let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(e.into())
            }
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// A terminal's modes, set until this is dropped; then the saved ones come back, with
/// anything typed but not read dropped (as cryptsetup's `TCSAFLUSH`).
struct Modes<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> Modes<'fd> {
    fn set(fd: BorrowedFd<'fd>, modes: &Termios, saved: Termios) -> Result<Self, Stop> {
        tcsetattr(fd, SetArg::TCSAFLUSH, modes)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for Modes<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, SetArg::TCSAFLUSH, &self.saved);
    }
}
