//! `integrity`: `DEVICE OFFSET TAG_SIZE MODE [N OPTION...]` (dm-integrity's table format).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// dm-integrity's journalling mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityMode {
    /// `J`: journalled writes.
    Journal,
    /// `D`: direct writes, no journal (a crash may leave mismatching tags).
    Direct,
    /// `B`: bitmap mode.
    Bitmap,
    /// `R`: recovery, read-only without tag checks.
    Recovery,
}

impl IntegrityMode {
    fn letter(self) -> char {
        match self {
            IntegrityMode::Journal => 'J',
            IntegrityMode::Direct => 'D',
            IntegrityMode::Bitmap => 'B',
            IntegrityMode::Recovery => 'R',
        }
    }
}

/// Parameters of an integrity target. Options are `key:value` or bare words, in order
/// (`journal_sectors:968`, `interleave_sectors:32768`, `fix_padding`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integrity {
    /// Backing device.
    pub device: String,
    /// Start of the integrity superblock on the device, in sectors.
    pub offset: u64,
    /// Tag bytes per sector (`-` in the table means the internal hash decides).
    pub tag_size: Option<u32>,
    /// Mode.
    pub mode: IntegrityMode,
    /// Options.
    pub options: Vec<String>,
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.device, self.offset)?;
        match self.tag_size {
            Some(n) => write!(f, "{n}")?,
            None => f.write_str("-")?,
        }
        write!(f, " {}", self.mode.letter())?;
        if !self.options.is_empty() {
            write!(f, " {} {}", self.options.len(), self.options.join(" "))?;
        }
        Ok(())
    }
}

impl FromStr for Integrity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |what: &str| {
            Error::invalid("integrity table", format!("bad or missing {what} in '{s}'"))
        };
        let mut it = s.split_whitespace();
        let device = it.next().ok_or_else(|| bad("device"))?.to_owned();
        let offset = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("offset"))?;
        let tag_size = match it.next().ok_or_else(|| bad("tag size"))? {
            "-" => None,
            v => Some(v.parse().map_err(|_| bad("tag size"))?),
        };
        let mode = match it.next() {
            Some("J") => IntegrityMode::Journal,
            Some("D") => IntegrityMode::Direct,
            Some("B") => IntegrityMode::Bitmap,
            Some("R") => IntegrityMode::Recovery,
            _ => return Err(bad("mode")),
        };
        let mut options = Vec::new();
        if let Some(n) = it.next() {
            let n: usize = n.parse().map_err(|_| bad("option count"))?;
            for _ in 0..n {
                options.push(it.next().ok_or_else(|| bad("option"))?.to_owned());
            }
        }
        if it.next().is_some() {
            return Err(bad("end (trailing fields)"));
        }
        Ok(Self {
            device,
            offset,
            tag_size,
            mode,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_cryptsetups_table() {
        let s = "254:16 32768 32 J 6 journal_sectors:968 interleave_sectors:32768 buffer_sectors:128 journal_watermark:50 commit_time:10000 fix_padding";
        let t: Integrity = s.parse().expect("parse");
        assert_eq!(
            (t.tag_size, t.mode, t.options.len()),
            (Some(32), IntegrityMode::Journal, 6)
        );
        assert_eq!(t.to_string(), s);
        assert_eq!(
            "1:2 0 - D".parse::<Integrity>().expect("p").to_string(),
            "1:2 0 - D"
        );
        for bad in [
            "",
            "1:2",
            "1:2 0 x J",
            "1:2 0 4 Q",
            "1:2 0 4 J 2 a",
            "1:2 0 4 J 1 a b",
        ] {
            assert!(bad.parse::<Integrity>().is_err(), "{bad}");
        }
    }
}
