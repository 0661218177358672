//! Userspace sector encryption in dm-crypt's notation (`aes-xts-plain64`, `aes-cbc-essiv:sha256`).
//!
//! Used for keyslot areas (always 512-byte sectors numbered from the area start) and for
//! offline images. Only AES is supported; any other cipher is a clear [`Error::Unsupported`].

use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use zeroize::Zeroizing;

use crate::hash::HashAlg;
use crate::{Error, Result};

const BLOCK: usize = 16;

/// AES with any of its key sizes.
#[derive(Clone)]
enum Aes {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

impl Aes {
    fn new(key: &[u8]) -> Result<Self> {
        let bad = |_| Error::invalid("key", "wrong AES key length");
        Ok(match key.len() {
            16 => Aes::A128(Box::new(Aes128::new_from_slice(key).map_err(bad)?)),
            24 => Aes::A192(Box::new(Aes192::new_from_slice(key).map_err(bad)?)),
            32 => Aes::A256(Box::new(Aes256::new_from_slice(key).map_err(bad)?)),
            n => {
                return Err(Error::invalid(
                    "key",
                    format!("{n} bytes is not an AES key size"),
                ))
            }
        })
    }

    fn encrypt(&self, data: &mut [u8]) {
        let (blocks, rest) = Array::slice_as_chunks_mut(data);
        debug_assert!(rest.is_empty());
        match self {
            Aes::A128(c) => c.encrypt_blocks(blocks),
            Aes::A192(c) => c.encrypt_blocks(blocks),
            Aes::A256(c) => c.encrypt_blocks(blocks),
        }
    }

    fn decrypt(&self, data: &mut [u8]) {
        let (blocks, rest) = Array::slice_as_chunks_mut(data);
        debug_assert!(rest.is_empty());
        match self {
            Aes::A128(c) => c.decrypt_blocks(blocks),
            Aes::A192(c) => c.decrypt_blocks(blocks),
            Aes::A256(c) => c.decrypt_blocks(blocks),
        }
    }
}

/// How the per-sector IV is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IvMode {
    /// Sector number, 64-bit little endian.
    Plain64,
    /// Sector number truncated to 32 bits, little endian.
    Plain,
    /// Sector number encrypted with the hash of the key (CBC only).
    EssivSha256,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Xts,
    Cbc,
}

/// A parsed `cipher-mode-iv` specification in dm-crypt notation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CipherSpec {
    mode: Mode,
    iv: IvMode,
    text: String,
}

impl CipherSpec {
    /// Parses dm-crypt notation, e.g. `aes-xts-plain64` or `aes-cbc-essiv:sha256`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] naming the whole specification when any part is unknown.
    pub fn parse(spec: &str) -> Result<Self> {
        let unsupported = || Error::unsupported("cipher", spec);
        let mut parts = spec.splitn(3, '-');
        let (Some(cipher), Some(mode), Some(iv)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(unsupported());
        };
        if cipher != "aes" {
            return Err(unsupported());
        }
        let mode = match mode {
            "xts" => Mode::Xts,
            "cbc" => Mode::Cbc,
            _ => return Err(unsupported()),
        };
        let iv = match (mode, iv) {
            (_, "plain64") => IvMode::Plain64,
            (_, "plain") => IvMode::Plain,
            (Mode::Cbc, "essiv:sha256") => IvMode::EssivSha256,
            _ => return Err(unsupported()),
        };
        Ok(Self {
            mode,
            iv,
            text: spec.to_owned(),
        })
    }

    /// Whether `key_len` bytes is a valid key for this cipher.
    pub fn key_len_ok(&self, key_len: usize) -> bool {
        match self.mode {
            Mode::Xts => key_len == 32 || key_len == 64,
            Mode::Cbc => matches!(key_len, 16 | 24 | 32),
        }
    }

    /// The specification as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A keyed sector cipher.
///
/// # Security
/// Holds expanded key schedules; they live in boxed cipher states and are dropped, not
/// wiped (the `aes` crate's `zeroize` feature is not enabled for its SIMD states).
pub struct SectorCipher {
    spec: CipherSpec,
    data: Aes,
    /// XTS: the tweak cipher; CBC-ESSIV: the IV cipher keyed by the key's hash.
    aux: Option<Aes>,
    /// XTS on the CPU's AES instructions, when it has them (else the portable path above).
    #[cfg(target_arch = "x86_64")]
    simd: Option<crate::xts_simd::XtsKeys>,
    /// CBC on AES-NI, when the CPU has it and the key is AES-128 or AES-256.
    #[cfg(target_arch = "x86_64")]
    cbc: Option<crate::xts_simd::CbcKeys>,
}

impl std::fmt::Debug for SectorCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SectorCipher({}, [REDACTED])", self.spec.text)
    }
}

impl SectorCipher {
    /// Keys a cipher.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the key length does not fit the cipher.
    pub fn new(spec: &CipherSpec, key: &[u8]) -> Result<Self> {
        if !spec.key_len_ok(key.len()) {
            return Err(Error::invalid(
                "key",
                format!(
                    "{} bytes is not a valid key size for {}",
                    key.len(),
                    spec.text
                ),
            ));
        }
        let (data, aux) = match (spec.mode, spec.iv) {
            (Mode::Xts, _) => {
                let (k1, k2) = key.split_at(key.len() / 2);
                (Aes::new(k1)?, Some(Aes::new(k2)?))
            }
            (Mode::Cbc, IvMode::EssivSha256) => {
                let salt = Zeroizing::new(HashAlg::Sha256.digest(&[key]));
                (Aes::new(key)?, Some(Aes::new(&salt)?))
            }
            (Mode::Cbc, _) => (Aes::new(key)?, None),
        };
        Ok(Self {
            spec: spec.clone(),
            data,
            aux,
            #[cfg(target_arch = "x86_64")]
            simd: match spec.mode {
                Mode::Xts => crate::xts_simd::XtsKeys::new(key, true),
                Mode::Cbc => None,
            },
            #[cfg(target_arch = "x86_64")]
            cbc: match spec.mode {
                Mode::Cbc => crate::xts_simd::CbcKeys::new(key),
                Mode::Xts => None,
            },
        })
    }

    /// The same cipher on the portable path only (tests compare the kernels against it).
    #[cfg(test)]
    fn portable(spec: &CipherSpec, key: &[u8]) -> Self {
        let mut c = Self::new(spec, key).expect("key");
        #[cfg(target_arch = "x86_64")]
        {
            c.simd = None;
            c.cbc = None;
        }
        c
    }

    /// Which data path this cipher takes here: `vaes` or `aes-ni` (XTS), `aes-ni` (CBC), or
    /// `portable`.
    pub fn implementation(&self) -> &'static str {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(k) = &self.simd {
                return match k.kernel_name() {
                    crate::xts_simd::Kernel::Vaes => "vaes",
                    crate::xts_simd::Kernel::AesNi => "aes-ni",
                };
            }
            if self.cbc.is_some() {
                return "aes-ni";
            }
        }
        "portable"
    }

    /// Like [`SectorCipher::encrypt`] or [`SectorCipher::decrypt`], with the sectors spread
    /// over `threads` threads (at least one sector each).
    ///
    /// # Errors
    /// As [`SectorCipher::encrypt`].
    pub fn run_parallel(
        &self,
        first_sector: u64,
        sector_size: usize,
        data: &mut [u8],
        encrypt: bool,
        threads: usize,
    ) -> Result<()> {
        self.crypt_parallel(first_sector, 1, sector_size, data, encrypt, threads)
    }

    /// [`SectorCipher::crypt`] with the sectors spread over `threads` threads.
    ///
    /// # Errors
    /// As [`SectorCipher::encrypt`].
    pub fn crypt_parallel(
        &self,
        first_iv: u64,
        iv_step: u64,
        sector_size: usize,
        data: &mut [u8],
        encrypt: bool,
        threads: usize,
    ) -> Result<()> {
        if sector_size == 0 || !data.len().is_multiple_of(sector_size) || threads <= 1 {
            return self.run(first_iv, iv_step, sector_size, data, encrypt);
        }
        let sectors = data.len() / sector_size;
        let per = sectors.div_ceil(threads.min(sectors).max(1));
        std::thread::scope(|s| {
            let handles: Vec<_> = data
                .chunks_mut(per * sector_size)
                .enumerate()
                .map(|(i, chunk)| {
                    let first = first_iv.wrapping_add(((i * per) as u64).wrapping_mul(iv_step));
                    s.spawn(move || self.run(first, iv_step, sector_size, chunk, encrypt))
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })
    }

    fn iv(&self, sector: u64) -> [u8; BLOCK] {
        let mut iv = [0u8; BLOCK];
        match self.spec.iv {
            IvMode::Plain64 | IvMode::EssivSha256 => iv[..8].copy_from_slice(&sector.to_le_bytes()),
            IvMode::Plain => iv[..4].copy_from_slice(&(sector as u32).to_le_bytes()),
        }
        if self.spec.mode == Mode::Cbc && self.spec.iv == IvMode::EssivSha256 {
            if let Some(ivc) = &self.aux {
                ivc.encrypt(&mut iv);
            }
        }
        iv
    }

    /// Encrypts `data` in place as consecutive sectors of `sector_size` bytes, the first
    /// numbered `first_sector` (IV units are `sector_size` too, as dm-crypt with `iv_large_sectors`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the sector size is not a multiple of 16 or `data` is not
    /// a whole number of sectors.
    pub fn encrypt(&self, first_sector: u64, sector_size: usize, data: &mut [u8]) -> Result<()> {
        self.run(first_sector, 1, sector_size, data, true)
    }

    /// Decrypts in place; see [`SectorCipher::encrypt`].
    ///
    /// # Errors
    /// As [`SectorCipher::encrypt`].
    pub fn decrypt(&self, first_sector: u64, sector_size: usize, data: &mut [u8]) -> Result<()> {
        self.run(first_sector, 1, sector_size, data, false)
    }

    /// Encrypts or decrypts sectors whose IVs are `first_iv`, `first_iv + iv_step`, ...: dm-crypt
    /// counts IVs in 512-byte units, so a LUKS2 segment with 4096-byte sectors steps by 8.
    ///
    /// # Errors
    /// As [`SectorCipher::encrypt`].
    pub fn crypt(
        &self,
        first_iv: u64,
        iv_step: u64,
        sector_size: usize,
        data: &mut [u8],
        encrypt: bool,
    ) -> Result<()> {
        self.run(first_iv, iv_step, sector_size, data, encrypt)
    }

    fn run(
        &self,
        first: u64,
        step: u64,
        sector_size: usize,
        data: &mut [u8],
        enc: bool,
    ) -> Result<()> {
        if sector_size == 0
            || !sector_size.is_multiple_of(BLOCK)
            || !data.len().is_multiple_of(sector_size)
        {
            return Err(Error::invalid(
                "sector size",
                format!("{} bytes in sectors of {sector_size}", data.len()),
            ));
        }
        #[cfg(target_arch = "x86_64")]
        {
            let iv = |i: usize| self.iv(first.wrapping_add((i as u64).wrapping_mul(step)));
            if let Some(k) = &self.simd {
                k.run(data, sector_size, iv, enc);
                return Ok(());
            }
            if let Some(k) = &self.cbc {
                k.run(data, sector_size, iv, enc);
                return Ok(());
            }
        }
        for (i, sector) in data.chunks_exact_mut(sector_size).enumerate() {
            let iv = self.iv(first.wrapping_add((i as u64).wrapping_mul(step)));
            match self.spec.mode {
                Mode::Xts => self.xts_sector(iv, sector, enc),
                Mode::Cbc if enc => self.cbc_encrypt(iv, sector),
                Mode::Cbc => self.cbc_decrypt(iv, sector),
            }
        }
        Ok(())
    }

    fn xts_sector(&self, mut tweak_block: [u8; BLOCK], sector: &mut [u8], enc: bool) {
        if let Some(t) = &self.aux {
            t.encrypt(&mut tweak_block);
        }
        let mut tweak = u128::from_le_bytes(tweak_block);
        // Tweaks for a whole chunk at once, so the block cipher sees many blocks per call.
        let mut tweaks = [0u8; 512];
        for chunk in sector.chunks_mut(tweaks.len()) {
            for t in tweaks[..chunk.len()].chunks_exact_mut(BLOCK) {
                t.copy_from_slice(&tweak.to_le_bytes());
                tweak = (tweak << 1) ^ ((tweak >> 127) * 0x87);
            }
            xor_in_place(chunk, &tweaks[..chunk.len()]);
            if enc {
                self.data.encrypt(chunk);
            } else {
                self.data.decrypt(chunk);
            }
            xor_in_place(chunk, &tweaks[..chunk.len()]);
        }
    }

    fn cbc_encrypt(&self, iv: [u8; BLOCK], sector: &mut [u8]) {
        let mut prev = iv;
        for block in sector.chunks_exact_mut(BLOCK) {
            xor_in_place(block, &prev);
            self.data.encrypt(block);
            prev.copy_from_slice(block);
        }
    }

    fn cbc_decrypt(&self, iv: [u8; BLOCK], sector: &mut [u8]) {
        let cipher = sector.to_vec();
        self.data.decrypt(sector);
        xor_in_place(&mut sector[..BLOCK], &iv);
        for (block, prev) in sector[BLOCK..]
            .chunks_exact_mut(BLOCK)
            .zip(cipher.chunks_exact(BLOCK))
        {
            xor_in_place(block, prev);
        }
    }
}

/// The AES-XTS data path this CPU gets: `vaes`, `aes-ni` or `portable`.
pub fn xts_implementation() -> &'static str {
    let spec = CipherSpec::parse("aes-xts-plain64").expect("a valid built-in spec");
    SectorCipher::new(&spec, &[0u8; 64]).map_or("portable", |c| c.implementation())
}

/// Encryption and decryption speed of `cipher` with a `key_len`-byte key, in bytes per second:
/// a 1 MiB buffer per thread of `sector_size`-byte sectors processed repeatedly for about `duration`
/// each way, on `threads` threads (memory only, no storage).
///
/// # Errors
/// [`Error::Unsupported`] or a key size error for the cipher.
pub fn throughput(
    cipher: &str,
    key_len: usize,
    sector_size: usize,
    threads: usize,
    duration: std::time::Duration,
) -> Result<(f64, f64)> {
    let spec = CipherSpec::parse(cipher)?;
    let key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5c).collect();
    let c = SectorCipher::new(&spec, &key)?;
    let rate = |encrypt: bool| -> Result<f64> {
        // Each thread works on its own buffer for the whole run, as `openssl speed -multi`.
        let start = std::time::Instant::now();
        let bytes = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|_| {
                    s.spawn(|| -> Result<u64> {
                        let mut buf = vec![0u8; 1 << 20];
                        let mut done = 0u64;
                        // One untimed pass warms caches and frequency.
                        c.run(0, 1, sector_size, &mut buf, encrypt)?;
                        while start.elapsed() < duration {
                            c.run(0, 1, sector_size, &mut buf, encrypt)?;
                            done += buf.len() as u64;
                        }
                        Ok(done)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .sum::<Result<u64>>()
        })?;
        Ok(bytes as f64 / start.elapsed().as_secs_f64())
    };
    Ok((rate(true)?, rate(false)?))
}

fn xor_in_place(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::decode(s).expect("hex")
    }

    /// The AES key schedules wipe themselves on drop (the `aes` crate's `zeroize` feature):
    /// without it this does not compile.
    #[test]
    fn key_schedules_are_wiped_on_drop() {
        fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wipes_on_drop::<Aes128>();
        wipes_on_drop::<Aes192>();
        wipes_on_drop::<Aes256>();
    }

    /// IEEE 1619-2007 XTS-AES-128 vector 1: zero key, data unit 0, 32 zero bytes.
    #[test]
    fn ieee1619_vector1() {
        let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
        let c = SectorCipher::new(&spec, &[0u8; 32]).expect("key");
        let mut data = [0u8; 32];
        c.encrypt(0, 32, &mut data).expect("enc");
        assert_eq!(
            data.to_vec(),
            hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e")
        );
    }

    /// IEEE 1619-2007 XTS-AES-128 vector 4 (data unit 0, 512 bytes of 0..=255 twice):
    /// the first 32 bytes of the published ciphertext.
    #[test]
    fn ieee1619_vector4() {
        let key = [
            hex("27182818284590452353602874713526"),
            hex("31415926535897932384626433832795"),
        ]
        .concat();
        let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
        let c = SectorCipher::new(&spec, &key).expect("key");
        let plain: Vec<u8> = (0..512).map(|i| (i % 256) as u8).collect();
        let mut data = plain.clone();
        c.encrypt(0, 512, &mut data).expect("enc");
        assert_eq!(
            &data[..32],
            &hex("27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c")[..]
        );
        c.decrypt(0, 512, &mut data).expect("dec");
        assert_eq!(data, plain);
    }

    /// The AES-NI CBC kernel against the portable path: every IV mode, both key sizes it
    /// takes (AES-192 stays portable), sector sizes with and without a tail of fewer than
    /// eight blocks, both directions.
    #[test]
    fn cbc_kernel_equals_the_portable_path() {
        for cipher in ["aes-cbc-essiv:sha256", "aes-cbc-plain64", "aes-cbc-plain"] {
            let spec = CipherSpec::parse(cipher).expect("spec");
            for key_len in [16usize, 24, 32] {
                let key: Vec<u8> = (0..key_len).map(|i| (i * 29 + 3) as u8).collect();
                let portable = SectorCipher::portable(&spec, &key);
                let c = SectorCipher::new(&spec, &key).expect("key");
                #[cfg(target_arch = "x86_64")]
                assert_eq!(
                    c.cbc.is_some(),
                    key_len != 24 && std::is_x86_feature_detected!("aes")
                );
                for sector_size in [48usize, 512, 4096] {
                    let plain: Vec<u8> = (0..sector_size * 3).map(|i| (i * 11 + 5) as u8).collect();
                    let mut want = plain.clone();
                    portable.encrypt(7, sector_size, &mut want).expect("enc");
                    let mut got = plain.clone();
                    c.encrypt(7, sector_size, &mut got).expect("enc");
                    assert!(
                        got == want,
                        "{cipher} {key_len} {sector_size}: encryption differs"
                    );
                    c.decrypt(7, sector_size, &mut got).expect("dec");
                    assert!(
                        got == plain,
                        "{cipher} {key_len} {sector_size}: decryption differs"
                    );
                }
            }
        }
    }

    /// Every sector of a multi-sector buffer equals the reference `xts-mode` crate's output.
    /// Every kernel this CPU has (VAES, AES-NI) against the portable path: both key sizes,
    /// every sector size (and a 48-byte one, which leaves a tail of blocks), sector numbers
    /// whose tweak carries, encryption and decryption, one thread and several.
    #[test]
    fn kernels_equal_the_portable_path() {
        let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
        for key_len in [32usize, 64] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 31 + 7) as u8).collect();
            let portable = SectorCipher::portable(&spec, &key);
            let mut kernels = vec![SectorCipher::new(&spec, &key).expect("key")];
            #[cfg(target_arch = "x86_64")]
            {
                let mut ni = SectorCipher::new(&spec, &key).expect("key");
                ni.simd = crate::xts_simd::XtsKeys::new(&key, false);
                kernels.push(ni);
            }
            for c in &kernels {
                for sector_size in [48usize, 512, 1024, 2048, 4096] {
                    for first in [0u64, 1, u64::MAX - 2, 0x8000_0000_0000_0000] {
                        let plain: Vec<u8> =
                            (0..sector_size * 5).map(|i| (i * 13 + 1) as u8).collect();
                        let mut want = plain.clone();
                        portable
                            .encrypt(first, sector_size, &mut want)
                            .expect("enc");
                        let mut got = plain.clone();
                        c.encrypt(first, sector_size, &mut got).expect("enc");
                        let what = format!(
                            "{} key {key_len} sector {sector_size} first {first}",
                            c.implementation()
                        );
                        assert_eq!(got, want, "{what}");
                        let mut par = plain.clone();
                        c.run_parallel(first, sector_size, &mut par, true, 3)
                            .expect("par");
                        assert_eq!(par, want, "parallel {what}");
                        c.decrypt(first, sector_size, &mut got).expect("dec");
                        assert_eq!(got, plain, "decrypt {what}");
                    }
                }
            }
        }
    }

    #[test]
    fn xts_matches_reference_implementation() {
        use aes::cipher::KeyInit as _;
        for key_len in [32usize, 64] {
            for sector_size in [512usize, 4096] {
                let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
                let plain: Vec<u8> = (0..sector_size * 3).map(|i| (i * 13 + 1) as u8).collect();
                let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
                let ours = SectorCipher::new(&spec, &key).expect("key");
                let mut got = plain.clone();
                ours.encrypt(1000, sector_size, &mut got).expect("enc");
                let mut want = plain.clone();
                let (k1, k2) = key.split_at(key_len / 2);
                if key_len == 32 {
                    let x = xts_mode::Xts128::new(
                        aes::Aes128::new_from_slice(k1).expect("k1"),
                        aes::Aes128::new_from_slice(k2).expect("k2"),
                    );
                    x.encrypt_area(&mut want, sector_size, 1000, xts_mode::get_tweak_default);
                } else {
                    let x = xts_mode::Xts128::new(
                        aes::Aes256::new_from_slice(k1).expect("k1"),
                        aes::Aes256::new_from_slice(k2).expect("k2"),
                    );
                    x.encrypt_area(&mut want, sector_size, 1000, xts_mode::get_tweak_default);
                }
                assert_eq!(got, want, "key {key_len} sector {sector_size}");
                ours.decrypt(1000, sector_size, &mut got).expect("dec");
                assert_eq!(got, plain);
            }
        }
    }

    #[test]
    fn cbc_essiv_round_trip_and_iv_depends_on_sector() {
        let spec = CipherSpec::parse("aes-cbc-essiv:sha256").expect("spec");
        let c = SectorCipher::new(&spec, &[7u8; 32]).expect("key");
        let plain = vec![0x5au8; 1024];
        let mut data = plain.clone();
        c.encrypt(5, 512, &mut data).expect("enc");
        assert_ne!(data[..512], data[512..], "sectors 5 and 6 must differ");
        c.decrypt(5, 512, &mut data).expect("dec");
        assert_eq!(data, plain);
    }

    #[test]
    fn rejects_unknown_ciphers() {
        for s in [
            "serpent-xts-plain64",
            "aes-ecb",
            "aes-xts-essiv:sha256",
            "aes",
            "twofish-cbc-plain",
        ] {
            assert!(
                matches!(CipherSpec::parse(s), Err(Error::Unsupported { .. })),
                "{s}"
            );
        }
    }
}
