//! `linear`: `DEVICE OFFSET`.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Parameters of a linear target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Linear {
    /// Backing device (`MAJOR:MINOR` or a path).
    pub device: String,
    /// Start on the backing device, in sectors.
    pub offset: u64,
}

impl fmt::Display for Linear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.device, self.offset)
    }
}

impl FromStr for Linear {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut it = s.split_whitespace();
        match (it.next(), it.next().map(str::parse), it.next()) {
            (Some(d), Some(Ok(offset)), None) => Ok(Self {
                device: d.to_owned(),
                offset,
            }),
            _ => Err(Error::invalid(
                "linear table",
                format!("'{s}' is not 'DEVICE OFFSET'"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let l: Linear = "254:0 2048".parse().expect("parse");
        assert_eq!(l.to_string(), "254:0 2048");
        assert!("254:0".parse::<Linear>().is_err());
        assert!("254:0 x".parse::<Linear>().is_err());
    }
}
