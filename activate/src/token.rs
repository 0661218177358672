//! Unlocking through cryptsetup's built-in `luks2-keyring` tokens: a keyslot's passphrase
//! kept in the kernel keyring as a `user` key, tried before anyone is asked for one (as
//! `cryptsetup open` tries tokens first).

use luks2::{BlockIo, KdfLimits, Luks2, Passphrase, VolumeKey};

/// What the keyring tokens gave.
#[derive(Debug)]
pub enum TokenUnlock {
    /// A token's passphrase opened a keyslot.
    Unlocked {
        /// The token.
        token: u32,
        /// The keyslot it opened.
        slot: u32,
        /// The volume key.
        key: VolumeKey,
    },
    /// No token applies (cryptsetup: "No usable token is available.").
    NoUsableToken,
    /// Tokens apply, but none's key is in the keyring.
    KeyMissing {
        /// The first such token.
        token: u32,
    },
    /// A token's key is in the keyring, but opens none of its keyslots.
    WrongPassphrase {
        /// The first such token.
        token: u32,
    },
    /// A token's keyslots could not be tried (an I/O error, a cost over the limits).
    Failed {
        /// The first such token.
        token: u32,
        /// Why.
        error: luks2::Error,
    },
}

/// Tries the header's `luks2-keyring` tokens in order (only `token` if given, and only
/// their keyslot `slot` if given): each one's `user` key, where the calling thread finds it,
/// as the passphrase of the keyslots it is assigned to.
pub fn unlock_by_keyring_token<D: BlockIo>(
    dev: &mut Luks2<D>,
    slot: Option<u32>,
    token: Option<u32>,
    limits: &KdfLimits,
) -> TokenUnlock {
    let (mut missing, mut wrong, mut failed) = (None, None, None);
    for t in dev.header().keyring_tokens() {
        if token.is_some_and(|id| id != t.id) {
            continue;
        }
        let slots: Vec<u32> = t
            .keyslots
            .iter()
            .copied()
            .filter(|s| slot.is_none_or(|want| want == *s))
            .collect();
        if slots.is_empty() {
            continue;
        }
        // Keyslots set to be ignored open through a token only when it or they were named.
        let named = slot.is_some() || token.is_some();
        // A key that cannot be read is as good as absent: the passphrase is asked for next.
        let Ok(Some(secret)) = dmioctl::keyring::read_user_key(&t.description) else {
            missing.get_or_insert(t.id);
            continue;
        };
        let pass = Passphrase::from_slice(&secret);
        match dev.unlock_among(&pass, &slots, named, limits) {
            Ok((slot, key)) => {
                return TokenUnlock::Unlocked {
                    token: t.id,
                    slot,
                    key,
                }
            }
            Err(luks2::Error::WrongPassphrase | luks2::Error::NoUsableKeyslot) => {
                wrong.get_or_insert(t.id);
            }
            Err(e) => {
                failed.get_or_insert((t.id, e));
            }
        }
    }
    match (failed, wrong, missing) {
        (Some((token, error)), _, _) => TokenUnlock::Failed { token, error },
        (None, Some(token), _) => TokenUnlock::WrongPassphrase { token },
        (None, None, Some(token)) => TokenUnlock::KeyMissing { token },
        (None, None, None) => TokenUnlock::NoUsableToken,
    }
}
