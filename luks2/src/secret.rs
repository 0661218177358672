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

/// A byte buffer for secrets that never reallocates: its capacity is fixed when it is made,
/// and an append that does not fit is refused instead of growing it, so no unwiped copy is
/// ever left behind by the allocator. Wiped on drop; prints nothing.
pub struct SecretBuf(Zeroizing<Vec<u8>>);

/// An append to a [`SecretBuf`] that would exceed its capacity (nothing was appended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretBufFull {
    /// The buffer's fixed capacity.
    pub capacity: usize,
}

impl fmt::Display for SecretBufFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {} bytes", self.capacity)
    }
}

impl std::error::Error for SecretBufFull {}

impl SecretBuf {
    /// An empty buffer that holds at most `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Appends `bytes`.
    ///
    /// # Errors
    /// [`SecretBufFull`] when they do not fit; the buffer is unchanged.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), SecretBufFull> {
        if bytes.len() > self.0.capacity() - self.0.len() {
            return Err(SecretBufFull {
                capacity: self.0.capacity(),
            });
        }
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends one byte.
    ///
    /// # Errors
    /// [`SecretBufFull`] when the buffer is full.
    pub fn push(&mut self, byte: u8) -> Result<(), SecretBufFull> {
        self.extend_from_slice(&[byte])
    }

    /// Reads `r` to its end into the buffer, through a small wiped bounce buffer.
    ///
    /// # Errors
    /// `InvalidData` (with [`SecretBufFull`] inside) when `r` holds more than fits; read
    /// errors as they come. What was read stays in the buffer either way.
    pub fn read_to_end(&mut self, r: &mut impl std::io::Read) -> std::io::Result<usize> {
        let mut chunk = Zeroizing::new([0u8; 4096]);
        let start = self.0.len();
        loop {
            let n = match r.read(&mut chunk[..]) {
                Ok(0) => return Ok(self.0.len() - start),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.extend_from_slice(&chunk[..n])
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        }
    }

    /// Shortens the buffer (capacity unchanged; the cut bytes are wiped).
    pub fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            self.0[len..].zeroize();
            self.0.truncate(len);
        }
    }

    /// Removes the first `n` bytes (capacity unchanged; the tail is wiped after the move).
    pub fn drain_front(&mut self, n: usize) {
        let n = n.min(self.0.len());
        self.0.copy_within(n.., 0);
        let len = self.0.len() - n;
        self.truncate(len);
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBuf([REDACTED; {} bytes])", self.0.len())
    }
}

impl From<SecretBuf> for Passphrase {
    /// Moves the bytes without copying them.
    fn from(b: SecretBuf) -> Self {
        Passphrase(b.0)
    }
}

impl From<SecretBuf> for VolumeKey {
    /// Moves the bytes without copying them.
    fn from(b: SecretBuf) -> Self {
        VolumeKey(b.0)
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

    #[test]
    fn secret_buf_never_grows() {
        let mut b = SecretBuf::with_capacity(8);
        let start = b.as_bytes().as_ptr();
        b.extend_from_slice(b"12345").expect("fits");
        assert_eq!(
            b.extend_from_slice(b"6789"),
            Err(SecretBufFull { capacity: 8 })
        );
        assert_eq!(b.as_bytes(), b"12345");
        b.push(b'6').expect("fits");
        let mut r: &[u8] = b"78";
        b.read_to_end(&mut r).expect("fits");
        assert_eq!(b.as_bytes(), b"12345678");
        let mut r: &[u8] = b"9";
        let e = b.read_to_end(&mut r).expect_err("full");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        b.drain_front(2);
        assert_eq!(b.as_bytes(), b"345678");
        b.truncate(3);
        assert_eq!((b.as_bytes(), b.capacity()), (&b"345"[..], 8));
        assert_eq!(b.as_bytes().as_ptr(), start, "the buffer moved");
        assert!(!format!("{b:?}").contains("345"));
        let p = Passphrase::from(b);
        assert_eq!(p.as_bytes(), b"345");
    }
}
