//! The LUKS1 anti-forensic information splitter (TKS1), used by LUKS2 `luks1`-type AF objects.
//!
//! A key of `n` bytes is expanded to `n * stripes` bytes such that all of them are needed to
//! recover it: stripes `s_0 .. s_{k-2}` are random, `d` accumulates `H(d ^ s_i)` through
//! the diffusion function `H`, and the last stripe is `d ^ key`.

use zeroize::Zeroizing;

use crate::hash::HashAlg;
use crate::util::fill_random;
use crate::Result;

/// The only stripes value the LUKS2 spec allows; cryptsetup writes it and reads every keyslot
/// with it, whatever the keyslot's `stripes` field says.
pub const AF_STRIPES: u32 = 4000;

/// LUKS1 diffusion: each hash-sized block `i` of `d` becomes `H(be32(i) || block)`, and a short
/// last block keeps the leading bytes of its hash.
fn diffuse(hash: HashAlg, d: &mut [u8]) {
    let ds = hash.output_len();
    for (i, block) in d.chunks_mut(ds).enumerate() {
        let iv = (i as u32).to_be_bytes();
        let h = Zeroizing::new(hash.digest(&[&iv, block]));
        block.copy_from_slice(&h[..block.len()]);
    }
}

fn xor_into(d: &mut [u8], s: &[u8]) {
    for (a, b) in d.iter_mut().zip(s) {
        *a ^= b;
    }
}

/// Splits `key` into `key.len() * stripes` bytes of AF material.
///
/// # Errors
/// [`crate::Error::Random`] if the random generator fails.
pub fn split(key: &[u8], stripes: u32, hash: HashAlg) -> Result<Zeroizing<Vec<u8>>> {
    let n = key.len();
    let stripes = stripes as usize;
    let mut out = Zeroizing::new(vec![0u8; n * stripes]);
    let mut d = Zeroizing::new(vec![0u8; n]);
    let (random, last) = out.split_at_mut(n * (stripes - 1));
    fill_random(random)?;
    for s in random.chunks_exact(n) {
        xor_into(&mut d, s);
        diffuse(hash, &mut d);
    }
    last.copy_from_slice(key);
    xor_into(last, &d);
    Ok(out)
}

/// Recovers a `key_len`-byte key from AF material (which must hold at least
/// `key_len * stripes` bytes; any tail is ignored).
pub fn merge(material: &[u8], key_len: usize, stripes: u32, hash: HashAlg) -> Zeroizing<Vec<u8>> {
    let stripes = stripes as usize;
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    let material = &material[..key_len * stripes];
    let (random, last) = material.split_at(key_len * (stripes - 1));
    for s in random.chunks_exact(key_len) {
        xor_into(&mut d, s);
        diffuse(hash, &mut d);
    }
    xor_into(&mut d, last);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One stripe is the identity; two stripes with a zero first stripe are `H(0) ^ s1`.
    #[test]
    fn hand_computed_values() {
        let key = [0x11u8; 32];
        assert_eq!(&merge(&key, 32, 1, HashAlg::Sha256)[..], &key[..]);

        // s0 = 0, s1 = key: d = H(be32(0) || 0^32), result = d ^ key.
        let mut material = vec![0u8; 32];
        material.extend_from_slice(&key);
        let h = HashAlg::Sha256.digest(&[&[0, 0, 0, 0], &[0u8; 32]]);
        let want: Vec<u8> = h.iter().map(|b| b ^ 0x11).collect();
        assert_eq!(&merge(&material, 32, 2, HashAlg::Sha256)[..], &want[..]);
    }

    /// A 40-byte key with SHA-256 exercises the short last diffusion block (8 bytes).
    #[test]
    fn short_last_block() {
        let mut d = vec![0u8; 40];
        diffuse(HashAlg::Sha256, &mut d);
        let h1 = HashAlg::Sha256.digest(&[&1u32.to_be_bytes(), &[0u8; 8]]);
        assert_eq!(&d[32..], &h1[..8]);
    }

    proptest! {
        #[test]
        fn split_merge_round_trip(key in proptest::collection::vec(any::<u8>(), 1..100),
                                  stripes in 1u32..64,
                                  h in 0usize..4) {
            let hash = [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512][h];
            let m = split(&key, stripes, hash).expect("rng");
            prop_assert_eq!(m.len(), key.len() * stripes as usize);
            prop_assert_eq!(&merge(&m, key.len(), stripes, hash)[..], &key[..]);
        }
    }
}
