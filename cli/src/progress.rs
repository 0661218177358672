//! Progress of long work on standard error: a line rewritten in place on a terminal, nothing
//! when standard error is a file or pipe (logs stay clean).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Reports `done` of `total` bytes at most a few times a second.
pub(crate) struct Progress {
    label: &'static str,
    total: u64,
    start: Instant,
    last: Option<Instant>,
    enabled: bool,
    /// Whether any work was reported (a finish without work prints nothing).
    started: bool,
}

impl Progress {
    pub(crate) fn new(label: &'static str) -> Self {
        Self {
            label,
            total: 0,
            start: Instant::now(),
            last: None,
            enabled: std::io::stderr().is_terminal(),
            started: false,
        }
    }

    /// `done` of `total` bytes are finished.
    pub(crate) fn update(&mut self, done: u64, total: u64) {
        self.total = total;
        self.started = true;
        let now = Instant::now();
        if !self.enabled
            || self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(now);
        self.print(done, now);
    }

    fn print(&self, done: u64, now: Instant) {
        let secs = (now - self.start).as_secs_f64().max(1e-3);
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let pct = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: {pct:5.1}% ({:.0} of {:.0} MiB, {:.1} MiB/s)  ",
            self.label,
            mib(done),
            mib(self.total),
            mib(done) / secs
        );
        let _ = err.flush();
    }

    /// Prints the final line (on a terminal) and returns the elapsed time.
    pub(crate) fn finish(self) -> Duration {
        let elapsed = self.start.elapsed();
        if self.enabled && self.started {
            self.print(self.total, Instant::now());
            eprintln!();
        }
        elapsed
    }
}
