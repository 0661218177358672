//! `verity`: `VERSION DATA_DEV HASH_DEV DATA_BLOCK HASH_BLOCK DATA_BLOCKS HASH_START ALG DIGEST SALT [N OPTION...]`.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Parameters of a verity target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verity {
    /// Hash format version (1 for veritysetup's default).
    pub version: u32,
    /// Data device.
    pub data_device: String,
    /// Hash device.
    pub hash_device: String,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// First block of the hash tree on the hash device, in hash blocks.
    pub hash_start: u64,
    /// Hash algorithm (`sha256`).
    pub algorithm: String,
    /// Root digest, hex.
    pub root_digest: String,
    /// Salt, hex (`-` for none).
    pub salt: String,
    /// Options, in order (`ignore_zero_blocks`, `panic_on_corruption`, ...).
    pub options: Vec<String>,
}

impl fmt::Display for Verity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} {} {} {}",
            self.version,
            self.data_device,
            self.hash_device,
            self.data_block_size,
            self.hash_block_size,
            self.data_blocks,
            self.hash_start,
            self.algorithm,
            self.root_digest,
            self.salt
        )?;
        if !self.options.is_empty() {
            write!(f, " {} {}", self.options.len(), self.options.join(" "))?;
        }
        Ok(())
    }
}

impl FromStr for Verity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad =
            |what: &str| Error::invalid("verity table", format!("bad or missing {what} in '{s}'"));
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() < 10 {
            return Err(bad("fields (10 needed)"));
        }
        let num = |i: usize, what: &str| f[i].parse::<u64>().map_err(|_| bad(what));
        let num32 = |i: usize, what: &str| f[i].parse::<u32>().map_err(|_| bad(what));
        let hex = |i: usize, what: &str| {
            if f[i] == "-"
                || (f[i].len().is_multiple_of(2) && f[i].bytes().all(|c| c.is_ascii_hexdigit()))
            {
                Ok(f[i].to_owned())
            } else {
                Err(bad(what))
            }
        };
        let mut options = Vec::new();
        if f.len() > 10 {
            let n: usize = f[10].parse().map_err(|_| bad("option count"))?;
            if n.checked_add(11) != Some(f.len()) {
                return Err(bad("options"));
            }
            options = f[11..].iter().map(|s| (*s).to_owned()).collect();
        }
        Ok(Self {
            version: num32(0, "version")?,
            data_device: f[1].to_owned(),
            hash_device: f[2].to_owned(),
            data_block_size: num32(3, "data block size")?,
            hash_block_size: num32(4, "hash block size")?,
            data_blocks: num(5, "data blocks")?,
            hash_start: num(6, "hash start")?,
            algorithm: f[7].to_owned(),
            root_digest: hex(8, "root digest")?,
            salt: hex(9, "salt")?,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `dm_table` fuzz target (input kept in `fuzz/regressions/dm_table/`): an
    /// option count near `usize::MAX` made `11 + n` overflow.
    #[test]
    fn numbers_that_do_not_fit_are_refused_not_truncated() {
        let t = "1 /dev/a /dev/b 4294971392 4096 1 1 sha256 00 -";
        assert!(t.parse::<Verity>().is_err(), "block size 2^32 + 4096");
        let t = "4294967297 /dev/a /dev/b 4096 4096 1 1 sha256 00 -";
        assert!(t.parse::<Verity>().is_err(), "version 2^32 + 1");
    }

    #[test]
    fn regression_option_count_overflow() {
        let input = include_str!("../../../fuzz/regressions/dm_table/verity-option-count-overflow");
        assert!(input.parse::<Verity>().is_err());
    }

    #[test]
    fn round_trips() {
        for s in [
            "1 254:0 254:16 4096 4096 25600 1 sha256 4392712ba01368efdf14b05c76f9e4df0d53664630b5d48632ed17a137f39076 1234000000000000000000000000000000000000000000000000000000000000",
            "1 /dev/vda /dev/vda 4096 4096 100 101 sha256 00ff - 2 ignore_zero_blocks panic_on_corruption",
        ] {
            let v: Verity = s.parse().expect(s);
            assert_eq!(v.to_string(), s);
        }
        for bad in [
            "",
            "1 a b 4096 4096 1 0 sha256 zz -",
            "1 a b 4096 4096 1 0 sha256 00 - 2 x",
            "x a b 1 1 1 0 s 00 -",
        ] {
            assert!(bad.parse::<Verity>().is_err(), "{bad}");
        }
    }
}
