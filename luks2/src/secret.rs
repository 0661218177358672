//! Secret types: they wipe themselves on drop and never print their contents.
//!
//! # Security
//! Wiping on drop cannot reach copies the allocator or the OS made earlier (a reallocated
//! `Vec`, a swapped-out page). Programs that hold keys should lock their memory
//! (`mlockall(2)`), as the `cryptpilot` binary does at start.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<Vec<u8>>);

        impl $name {
            /// Takes ownership of the bytes; they are wiped when this value is dropped.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(Zeroizing::new(bytes))
            }

            /// Copies the bytes; the caller remains responsible for wiping its own copy.
            pub fn from_slice(bytes: &[u8]) -> Self {
                Self::new(bytes.to_vec())
            }

            /// The secret bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// Length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([REDACTED; {} bytes])"), self.0.len())
            }
        }

        impl Zeroize for $name {
            fn zeroize(&mut self) {
                self.0.zeroize();
            }
        }
    };
}

secret_bytes!(
    /// The volume (master) key that encrypts the data segment.
    VolumeKey
);

secret_bytes!(
    /// A passphrase or key-file contents, as raw bytes (no encoding is assumed).
    Passphrase
);

impl VolumeKey {
    /// A fresh random key of `len` bytes from the operating system's generator.
    ///
    /// # Errors
    /// [`crate::Error::Random`] if the generator fails.
    pub fn random(len: usize) -> crate::Result<Self> {
        let mut key = Zeroizing::new(vec![0u8; len]);
        crate::util::fill_random(&mut key)?;
        Ok(Self(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_does_not_print_key() {
        let key = VolumeKey::from_slice(&[0xab; 32]);
        let s = format!("{key:?}");
        assert_eq!(s, "VolumeKey([REDACTED; 32 bytes])");
        assert!(!s.contains("ab"));
        let p = Passphrase::from_slice(b"hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
