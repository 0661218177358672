//! cryptsetup's built-in token type, `luks2-keyring`: a keyslot's passphrase kept in the
//! kernel keyring as a `user` key, which `open` looks up before it asks for one.

use serde_json::{Map, Value};

use crate::device::Luks2;
use crate::header::json::ObjId;
use crate::io::BlockIo;
use crate::{Error, Header, Result};

/// The token type.
pub const KEYRING_TOKEN: &str = "luks2-keyring";

/// A `luks2-keyring` token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringToken {
    /// The token number.
    pub id: u32,
    /// The `user` key's description in the kernel keyring.
    pub description: String,
    /// The keyslots its passphrase opens.
    pub keyslots: Vec<u32>,
}

/// cryptsetup's check of a keyring token: exactly `type`, `keyslots` and a non-empty string
/// `key_description`. A token that fails it is not imported, and not used to open.
pub(crate) fn keyring_token_valid(t: &Map<String, Value>) -> bool {
    t.len() == 3
        && t.get("key_description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty())
}

impl Header {
    /// The header's valid `luks2-keyring` tokens, by number.
    pub fn keyring_tokens(&self) -> Vec<KeyringToken> {
        self.meta
            .tokens
            .iter()
            .filter(|(_, t)| t.get("type").and_then(Value::as_str) == Some(KEYRING_TOKEN))
            .filter(|(_, t)| keyring_token_valid(t))
            .filter_map(|(id, t)| {
                let description = t.get("key_description")?.as_str()?.to_owned();
                let keyslots = t
                    .get("keyslots")?
                    .as_array()?
                    .iter()
                    .filter_map(|s| s.as_str()?.parse().ok())
                    .collect();
                Some(KeyringToken {
                    id: id.0,
                    description,
                    keyslots,
                })
            })
            .collect()
    }
}

impl<D: BlockIo> Luks2<D> {
    /// Adds a `luks2-keyring` token for the passphrase in the kernel keyring's `user` key
    /// `description`, assigned to keyslot `slot` or (as cryptsetup's `token add` without
    /// `--key-slot`) every keyslot; as number `id` or the first free one (an existing token
    /// of that number is replaced only with `replace`). Returns the number.
    ///
    /// # Errors
    /// [`Error::KeyslotNotFound`] for a `slot` that is not active; [`Error::InvalidArgument`]
    /// for an empty description; as [`Luks2::import_token_json`] otherwise.
    pub fn add_keyring_token(
        &mut self,
        description: &str,
        slot: Option<u32>,
        id: Option<u32>,
        replace: bool,
    ) -> Result<u32> {
        if description.is_empty() {
            return Err(Error::invalid("key description", "it is empty"));
        }
        let keyslots: Vec<u32> = match slot {
            Some(s) if !self.header().meta.keyslots.contains_key(&ObjId(s)) => {
                return Err(Error::KeyslotNotFound(s))
            }
            Some(s) => vec![s],
            None => self.header().keyslot_ids(),
        };
        let mut token = Map::new();
        token.insert("type".into(), KEYRING_TOKEN.into());
        token.insert(
            "keyslots".into(),
            keyslots
                .iter()
                .map(|s| Value::from(s.to_string()))
                .collect(),
        );
        token.insert("key_description".into(), description.into());
        self.import_token(token, id, replace)
    }
}

#[cfg(test)]
mod tests {
    use crate::{FormatOptions, MemoryDevice, Passphrase, PbkdfParams};

    #[test]
    fn keyring_tokens_are_added_for_every_or_one_keyslot_and_listed() {
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams::insecure_fast();
        let (mut d, _) = crate::format(
            MemoryDevice::new(32 << 20),
            &opts,
            &Passphrase::from_slice(b"p"),
        )
        .expect("format");
        assert_eq!(
            d.add_keyring_token("all", None, None, false).expect("add"),
            0
        );
        assert_eq!(
            d.add_keyring_token("one", Some(0), Some(4), false)
                .expect("add"),
            4
        );
        assert!(matches!(
            d.add_keyring_token("x", Some(3), None, false),
            Err(crate::Error::KeyslotNotFound(3))
        ));
        assert!(matches!(
            d.add_keyring_token("x", None, Some(4), false),
            Err(crate::Error::TokenInUse(4))
        ));
        assert!(d.add_keyring_token("", None, None, false).is_err());
        // A keyring token names its key, and holds nothing else.
        for bad in [
            r#"{"type":"luks2-keyring","keyslots":[]}"#,
            r#"{"type":"luks2-keyring","keyslots":[],"key_description":""}"#,
            r#"{"type":"luks2-keyring","keyslots":[],"key_description":"k","x":1}"#,
        ] {
            assert!(d.import_token_json(bad, None, false).is_err(), "{bad}");
        }
        let listed: Vec<_> = d
            .header()
            .keyring_tokens()
            .into_iter()
            .map(|t| (t.id, t.description, t.keyslots))
            .collect();
        assert_eq!(
            listed,
            vec![(0, "all".into(), vec![0]), (4, "one".into(), vec![0])]
        );
        assert!(crate::dump_text(d.header()).contains("\tKey description: one\n"));
    }

    #[test]
    fn an_imported_token_takes_the_named_keyslot_once_and_only_an_active_one() {
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams::insecure_fast();
        let pass = Passphrase::from_slice(b"p");
        let (mut d, _) = crate::format(MemoryDevice::new(32 << 20), &opts, &pass).expect("format");
        let seq = d.header().seqid();
        assert!(matches!(
            d.import_token_json_for(r#"{"type":"x","keyslots":[]}"#, None, false, Some(1)),
            Err(crate::Error::KeyslotNotFound(1))
        ));
        assert_eq!(d.header().seqid(), seq, "a refused import writes nothing");
        for (json, id) in [
            (r#"{"type":"x","keyslots":[]}"#, 0),
            (r#"{"type":"x","keyslots":["0"]}"#, 1),
        ] {
            assert_eq!(
                d.import_token_json_for(json, None, false, Some(0))
                    .expect("import"),
                id
            );
            assert_eq!(
                d.token_json(id).expect("token"),
                r#"{"type":"x","keyslots":["0"]}"#
            );
        }
    }

    #[test]
    fn a_tokens_keyslots_open_by_priority_and_ignored_ones_only_when_named() {
        let mut opts = FormatOptions::default();
        opts.keyslot.pbkdf = PbkdfParams::insecure_fast();
        let pass = Passphrase::from_slice(b"p");
        let (mut d, _) = crate::format(MemoryDevice::new(32 << 20), &opts, &pass).expect("format");
        let limits = crate::KdfLimits::default();
        assert_eq!(
            d.unlock_among(&pass, &[0], false, &limits).expect("open").0,
            0
        );
        d.set_keyslot_priority(0, 0).expect("ignore");
        assert!(matches!(
            d.unlock_among(&pass, &[0], false, &limits),
            Err(crate::Error::NoUsableKeyslot)
        ));
        assert_eq!(
            d.unlock_among(&pass, &[0], true, &limits).expect("named").0,
            0
        );
        assert!(matches!(
            d.unlock_among(&Passphrase::from_slice(b"x"), &[0], true, &limits),
            Err(crate::Error::WrongPassphrase)
        ));
    }
}
