//! AES-XTS (and AES-CBC) sector kernels on x86-64's AES instructions: the crate's one
//! `unsafe` module.
//!
//! Two kernels share one structure: eight blocks in flight per step so that the AES units
//! never wait, tweaks kept in registers and advanced by `x^8` with a carry-less multiply (each
//! of the eight tweaks independently, no serial chain), round keys expanded once per key.
//! - [`Kernel::Vaes`]: VAES + VPCLMULQDQ on 256-bit registers, two blocks per instruction.
//! - [`Kernel::AesNi`]: AES-NI + PCLMULQDQ on 128-bit registers.
//!
//! [`XtsKeys::new`] picks the best kernel the CPU has at run time and returns `None` when it
//! has neither, so the caller falls back to the portable `aes` crate path; [`CbcKeys`] does
//! the same for CBC (LUKS1 and legacy `aes-cbc-essiv` volumes). Every result is
//! checked against that path and the IEEE 1619 vectors in `sector.rs`'s tests.
//!
//! # Safety
//! The `unsafe` here is of two kinds, each stated where it occurs: calling a
//! `#[target_feature]` function, sound because [`XtsKeys::new`] and [`CbcKeys::new`] only
//! select a kernel after `is_x86_feature_detected!` confirmed every feature it enables; and
//! unaligned 16-byte loads and stores through pointers derived from slices whose length was
//! checked to cover them.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use zeroize::Zeroize;

/// Which instruction set the kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// VAES and VPCLMULQDQ with AVX2 (256-bit).
    Vaes,
    /// AES-NI and PCLMULQDQ (128-bit).
    AesNi,
}

/// Expanded AES-128 or AES-256 keys for XTS (data key for both directions, tweak key).
#[derive(Clone)]
pub(crate) struct XtsKeys {
    /// Encryption round keys of the data key.
    enc: [[u8; 16]; 15],
    /// Decryption round keys (equivalent inverse cipher), in the order they are applied.
    dec: [[u8; 16]; 15],
    /// Encryption round keys of the tweak key.
    tweak: [[u8; 16]; 15],
    rounds: usize,
    kernel: Kernel,
}

impl Drop for XtsKeys {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
        self.tweak.zeroize();
    }
}

impl XtsKeys {
    /// Expands an XTS key (32 bytes: AES-128 pair; 64 bytes: AES-256 pair) for the best kernel
    /// this CPU supports; `None` for other key sizes or a CPU without AES instructions.
    pub(crate) fn new(key: &[u8], allow_vaes: bool) -> Option<Self> {
        if !(is_x86_feature_detected!("aes")
            && is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("sse4.1"))
        {
            return None;
        }
        let kernel = if allow_vaes
            && is_x86_feature_detected!("vaes")
            && is_x86_feature_detected!("vpclmulqdq")
            && is_x86_feature_detected!("avx2")
        {
            Kernel::Vaes
        } else {
            Kernel::AesNi
        };
        let (k1, k2) = key.split_at(key.len() / 2);
        let mut keys = XtsKeys {
            enc: [[0; 16]; 15],
            dec: [[0; 16]; 15],
            tweak: [[0; 16]; 15],
            rounds: 0,
            kernel,
        };
        // SAFETY: AES-NI and SSE4.1 were detected above.
        unsafe {
            keys.rounds = match key.len() {
                32 => {
                    expand128(k1, &mut keys.enc);
                    expand128(k2, &mut keys.tweak);
                    10
                }
                64 => {
                    expand256(k1, &mut keys.enc);
                    expand256(k2, &mut keys.tweak);
                    14
                }
                _ => return None,
            };
            inverse_keys(&keys.enc, &mut keys.dec, keys.rounds);
        }
        Some(keys)
    }

    /// The kernel in use.
    pub(crate) fn kernel_name(&self) -> Kernel {
        self.kernel
    }

    /// Encrypts or decrypts `data`, a whole number of `sector_size`-byte sectors (a multiple
    /// of 16), whose IVs are `iv(0)`, `iv(1)`, ... (16-byte little-endian tweak inputs).
    pub(crate) fn run(
        &self,
        data: &mut [u8],
        sector_size: usize,
        iv: impl Fn(usize) -> [u8; 16],
        encrypt: bool,
    ) {
        debug_assert!(sector_size.is_multiple_of(16) && data.len().is_multiple_of(sector_size));
        // SAFETY: `new` selected this kernel only after detecting its features.
        unsafe {
            match (self.kernel, self.rounds, encrypt) {
                (Kernel::Vaes, 14, true) => sectors_vaes::<14, true>(self, data, sector_size, iv),
                (Kernel::Vaes, 14, false) => sectors_vaes::<14, false>(self, data, sector_size, iv),
                (Kernel::Vaes, _, true) => sectors_vaes::<10, true>(self, data, sector_size, iv),
                (Kernel::Vaes, _, false) => sectors_vaes::<10, false>(self, data, sector_size, iv),
                (Kernel::AesNi, 14, true) => sectors_ni::<14, true>(self, data, sector_size, iv),
                (Kernel::AesNi, 14, false) => sectors_ni::<14, false>(self, data, sector_size, iv),
                (Kernel::AesNi, _, true) => sectors_ni::<10, true>(self, data, sector_size, iv),
                (Kernel::AesNi, _, false) => sectors_ni::<10, false>(self, data, sector_size, iv),
            }
        }
    }
}

#[inline(always)]
fn load(b: &[u8; 16]) -> __m128i {
    // SAFETY: `b` is 16 readable bytes; the load is unaligned (SSE2 is baseline on x86-64).
    unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
}

#[inline(always)]
fn store(b: &mut [u8; 16], v: __m128i) {
    // SAFETY: `b` is 16 writable bytes; the store is unaligned.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
}

macro_rules! expand_step {
    ($prev:expr, $assist:expr, $shuffle:literal) => {{
        let mut k = $prev;
        let a = _mm_shuffle_epi32::<$shuffle>($assist);
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        _mm_xor_si128(k, a)
    }};
}

#[target_feature(enable = "aes,sse4.1")]
fn expand128(key: &[u8], out: &mut [[u8; 16]; 15]) {
    let mut k = load(key[..16].try_into().expect("16-byte key"));
    store(&mut out[0], k);
    macro_rules! round {
        ($i:expr, $rcon:literal) => {
            k = expand_step!(k, _mm_aeskeygenassist_si128::<$rcon>(k), 0xff);
            store(&mut out[$i], k);
        };
    }
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
}

#[target_feature(enable = "aes,sse4.1")]
fn expand256(key: &[u8], out: &mut [[u8; 16]; 15]) {
    let mut a = load(key[..16].try_into().expect("32-byte key"));
    let mut b = load(key[16..32].try_into().expect("32-byte key"));
    store(&mut out[0], a);
    store(&mut out[1], b);
    macro_rules! round {
        ($i:expr, $rcon:literal) => {
            a = expand_step!(a, _mm_aeskeygenassist_si128::<$rcon>(b), 0xff);
            store(&mut out[$i], a);
        };
        ($i:expr, $rcon:literal, odd) => {
            round!($i, $rcon);
            b = expand_step!(b, _mm_aeskeygenassist_si128::<0>(a), 0xaa);
            store(&mut out[$i + 1], b);
        };
    }
    round!(2, 0x01, odd);
    round!(4, 0x02, odd);
    round!(6, 0x04, odd);
    round!(8, 0x08, odd);
    round!(10, 0x10, odd);
    round!(12, 0x20, odd);
    round!(14, 0x40);
}

/// Round keys for `aesdec`: the encryption keys reversed, the inner ones through InvMixColumns.
#[target_feature(enable = "aes,sse4.1")]
fn inverse_keys(enc: &[[u8; 16]; 15], dec: &mut [[u8; 16]; 15], rounds: usize) {
    dec[0] = enc[rounds];
    for r in 1..rounds {
        store(&mut dec[r], _mm_aesimc_si128(load(&enc[rounds - r])));
    }
    dec[rounds] = enc[0];
}

#[target_feature(enable = "aes,sse4.1")]
fn encrypt_block(rk: &[[u8; 16]; 15], rounds: usize, block: __m128i) -> __m128i {
    let mut x = _mm_xor_si128(block, load(&rk[0]));
    for k in &rk[1..rounds] {
        x = _mm_aesenc_si128(x, load(k));
    }
    _mm_aesenclast_si128(x, load(&rk[rounds]))
}

/// `t * x` in GF(2^128) with XTS's polynomial (little-endian bit order).
#[target_feature(enable = "sse4.1")]
fn mul_x(t: __m128i) -> __m128i {
    // Sign masks of the two 64-bit halves' top bits, moved to where their carries go:
    // bit 63 into bit 64, bit 127 back into the low byte as 0x87.
    let signs = _mm_srai_epi32::<31>(t);
    let carries = _mm_shuffle_epi32::<0x13>(signs);
    let carries = _mm_and_si128(carries, _mm_set_epi32(0, 1, 0, 0x87));
    _mm_xor_si128(_mm_add_epi64(t, t), carries)
}

/// `t * x^8`: a byte shift, and the byte shifted out reduced by a carry-less multiply.
#[target_feature(enable = "pclmulqdq,sse4.1")]
fn mul_x8(t: __m128i) -> __m128i {
    let top = _mm_srli_si128::<15>(t);
    let reduced = _mm_clmulepi64_si128::<0x00>(top, _mm_set_epi64x(0, 0x87));
    _mm_xor_si128(_mm_slli_si128::<1>(t), reduced)
}

/// The first eight tweaks of a sector: `t, t*x, ..., t*x^7`.
#[target_feature(enable = "sse4.1")]
fn first_tweaks(t: __m128i) -> [__m128i; 8] {
    let mut ts = [t; 8];
    for i in 1..8 {
        ts[i] = mul_x(ts[i - 1]);
    }
    ts
}

/// One block through the cipher (encryption or decryption keys), for the sector's tail.
#[target_feature(enable = "aes,sse4.1")]
fn one_block<const NR: usize, const ENC: bool>(k: &XtsKeys, x: __m128i) -> __m128i {
    let rk = if ENC { &k.enc } else { &k.dec };
    let mut x = _mm_xor_si128(x, load(&rk[0]));
    for key in &rk[1..NR] {
        x = if ENC {
            _mm_aesenc_si128(x, load(key))
        } else {
            _mm_aesdec_si128(x, load(key))
        };
    }
    if ENC {
        _mm_aesenclast_si128(x, load(&rk[NR]))
    } else {
        _mm_aesdeclast_si128(x, load(&rk[NR]))
    }
}

/// Handles blocks past the last multiple of eight, one at a time.
#[target_feature(enable = "aes,sse4.1")]
fn tail<const NR: usize, const ENC: bool>(k: &XtsKeys, rest: &mut [u8], mut t: __m128i) {
    for block in rest.chunks_exact_mut(16) {
        let block: &mut [u8; 16] = block.try_into().expect("16-byte block");
        let x = one_block::<NR, ENC>(k, _mm_xor_si128(load(block), t));
        store(block, _mm_xor_si128(x, t));
        t = mul_x(t);
    }
}

/// AES-NI: eight 128-bit blocks per step.
#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
fn sectors_ni<const NR: usize, const ENC: bool>(
    k: &XtsKeys,
    data: &mut [u8],
    sector_size: usize,
    iv: impl Fn(usize) -> [u8; 16],
) {
    for (n, sector) in data.chunks_exact_mut(sector_size).enumerate() {
        let t0 = encrypt_block(&k.tweak, k.rounds, load(&iv(n)));
        sector_ni::<NR, ENC>(k, sector, t0);
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
#[inline]
fn sector_ni<const NR: usize, const ENC: bool>(k: &XtsKeys, sector: &mut [u8], t0: __m128i) {
    let rk = if ENC { &k.enc } else { &k.dec };
    let mut ts = first_tweaks(t0);
    let mut chunks = sector.chunks_exact_mut(128);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr().cast::<__m128i>();
        let mut x = [_mm_setzero_si128(); 8];
        let k0 = load(&rk[0]);
        for i in 0..8 {
            // SAFETY: `chunk` is 128 bytes, so blocks 0..8 of 16 bytes are in bounds.
            x[i] = _mm_xor_si128(
                unsafe { _mm_loadu_si128(p.add(i)) },
                _mm_xor_si128(ts[i], k0),
            );
        }
        for key in &rk[1..NR] {
            let key = load(key);
            for xi in &mut x {
                *xi = if ENC {
                    _mm_aesenc_si128(*xi, key)
                } else {
                    _mm_aesdec_si128(*xi, key)
                };
            }
        }
        let last = load(&rk[NR]);
        for i in 0..8 {
            // AESENCLAST/AESDECLAST xor their key last: fold the tweak into it.
            let key = _mm_xor_si128(last, ts[i]);
            let y = if ENC {
                _mm_aesenclast_si128(x[i], key)
            } else {
                _mm_aesdeclast_si128(x[i], key)
            };
            // SAFETY: as for the loads above.
            unsafe { _mm_storeu_si128(p.add(i), y) };
            ts[i] = mul_x8(ts[i]);
        }
    }
    tail::<NR, ENC>(k, chunks.into_remainder(), ts[0]);
}

/// VAES: eight blocks per step as four 256-bit pairs; round keys broadcast once per call.
#[target_feature(enable = "aes,pclmulqdq,sse4.1,avx2,vaes,vpclmulqdq")]
fn sectors_vaes<const NR: usize, const ENC: bool>(
    k: &XtsKeys,
    data: &mut [u8],
    sector_size: usize,
    iv: impl Fn(usize) -> [u8; 16],
) {
    let rk = if ENC { &k.enc } else { &k.dec };
    let mut keys = [_mm256_setzero_si256(); 15];
    for (dst, src) in keys.iter_mut().zip(rk.iter()).take(NR + 1) {
        *dst = _mm256_broadcastsi128_si256(load(src));
    }
    for (n, sector) in data.chunks_exact_mut(sector_size).enumerate() {
        let t0 = encrypt_block(&k.tweak, k.rounds, load(&iv(n)));
        sector_vaes::<NR, ENC>(k, &keys, sector, t0);
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse4.1,avx2,vaes,vpclmulqdq")]
#[inline]
fn sector_vaes<const NR: usize, const ENC: bool>(
    k: &XtsKeys,
    keys: &[__m256i; 15],
    sector: &mut [u8],
    t0: __m128i,
) {
    let first = first_tweaks(t0);
    let mut ts = [_mm256_setzero_si256(); 4];
    for (i, t) in ts.iter_mut().enumerate() {
        *t = _mm256_set_m128i(first[2 * i + 1], first[2 * i]);
    }
    let poly = _mm256_set_epi64x(0, 0x87, 0, 0x87);
    let mut chunks = sector.chunks_exact_mut(128);
    for chunk in &mut chunks {
        let p = chunk.as_mut_ptr().cast::<__m256i>();
        let mut x = [_mm256_setzero_si256(); 4];
        for i in 0..4 {
            // SAFETY: `chunk` is 128 bytes, so four 32-byte pairs are in bounds.
            let v = unsafe { _mm256_loadu_si256(p.add(i)) };
            x[i] = _mm256_xor_si256(v, _mm256_xor_si256(ts[i], keys[0]));
        }
        for key in &keys[1..NR] {
            for xi in &mut x {
                *xi = if ENC {
                    _mm256_aesenc_epi128(*xi, *key)
                } else {
                    _mm256_aesdec_epi128(*xi, *key)
                };
            }
        }
        for i in 0..4 {
            let key = _mm256_xor_si256(keys[NR], ts[i]);
            let y = if ENC {
                _mm256_aesenclast_epi128(x[i], key)
            } else {
                _mm256_aesdeclast_epi128(x[i], key)
            };
            // SAFETY: as for the loads above.
            unsafe { _mm256_storeu_si256(p.add(i), y) };
            // Each 128-bit lane times x^8, independently.
            let top = _mm256_srli_si256::<15>(ts[i]);
            let reduced = _mm256_clmulepi64_epi128::<0x00>(top, poly);
            ts[i] = _mm256_xor_si256(_mm256_slli_si256::<1>(ts[i]), reduced);
        }
    }
    tail::<NR, ENC>(k, chunks.into_remainder(), _mm256_castsi256_si128(ts[0]));
}

/// Expanded AES-128 or AES-256 keys for CBC sectors on AES-NI. Encryption is one serial
/// chain per sector (each block needs the previous ciphertext), so it runs one block at a
/// time, its speed the AES latency (as OpenSSL's); decryption has no chain and runs eight
/// blocks in flight, as the XTS kernels do.
#[derive(Clone)]
pub(crate) struct CbcKeys {
    enc: [[u8; 16]; 15],
    dec: [[u8; 16]; 15],
    rounds: usize,
}

impl Drop for CbcKeys {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

impl CbcKeys {
    /// Expands a 16- or 32-byte AES key; `None` for other sizes or a CPU without AES-NI.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        if !(is_x86_feature_detected!("aes") && is_x86_feature_detected!("sse4.1")) {
            return None;
        }
        let mut keys = CbcKeys {
            enc: [[0; 16]; 15],
            dec: [[0; 16]; 15],
            rounds: 0,
        };
        // SAFETY: AES-NI and SSE4.1 were detected above.
        unsafe {
            keys.rounds = match key.len() {
                16 => {
                    expand128(key, &mut keys.enc);
                    10
                }
                32 => {
                    expand256(key, &mut keys.enc);
                    14
                }
                _ => return None,
            };
            inverse_keys(&keys.enc, &mut keys.dec, keys.rounds);
        }
        Some(keys)
    }

    /// Encrypts or decrypts `data`, a whole number of `sector_size`-byte sectors (a multiple
    /// of 16), whose IVs are `iv(0)`, `iv(1)`, ...
    pub(crate) fn run(
        &self,
        data: &mut [u8],
        sector_size: usize,
        iv: impl Fn(usize) -> [u8; 16],
        encrypt: bool,
    ) {
        debug_assert!(sector_size.is_multiple_of(16) && data.len().is_multiple_of(sector_size));
        for (n, sector) in data.chunks_exact_mut(sector_size).enumerate() {
            let iv = iv(n);
            // SAFETY: `new` expanded these keys only after detecting AES-NI and SSE4.1.
            unsafe {
                match (self.rounds, encrypt) {
                    (14, true) => cbc_encrypt::<14>(&self.enc, iv, sector),
                    (_, true) => cbc_encrypt::<10>(&self.enc, iv, sector),
                    (14, false) => cbc_decrypt::<14>(&self.dec, iv, sector),
                    (_, false) => cbc_decrypt::<10>(&self.dec, iv, sector),
                }
            }
        }
    }
}

/// One CBC chain: each block XORed with the previous ciphertext (the IV first), encrypted.
#[target_feature(enable = "aes,sse4.1")]
fn cbc_encrypt<const NR: usize>(rk: &[[u8; 16]; 15], iv: [u8; 16], sector: &mut [u8]) {
    let mut x = load(&iv);
    for block in sector.chunks_exact_mut(16) {
        let block: &mut [u8; 16] = block.try_into().expect("16-byte block");
        // The block and the first round key first: only one XOR waits for the chain.
        x = _mm_xor_si128(x, _mm_xor_si128(load(block), load(&rk[0])));
        for key in &rk[1..NR] {
            x = _mm_aesenc_si128(x, load(key));
        }
        x = _mm_aesenclast_si128(x, load(&rk[NR]));
        store(block, x);
    }
}

/// CBC decryption: eight blocks decrypted at once, each XORed with the ciphertext before it
/// (read before it is overwritten).
#[target_feature(enable = "aes,sse4.1")]
fn cbc_decrypt<const NR: usize>(rk: &[[u8; 16]; 15], iv: [u8; 16], sector: &mut [u8]) {
    let k: [__m128i; 15] = core::array::from_fn(|i| load(&rk[i]));
    let mut prev = load(&iv);
    let mut chunks = sector.chunks_exact_mut(128);
    for chunk in &mut chunks {
        let blocks: &mut [u8; 128] = chunk.try_into().expect("128-byte chunk");
        let c: [__m128i; 8] =
            core::array::from_fn(|i| load(blocks[16 * i..][..16].try_into().expect("block")));
        let mut x: [__m128i; 8] = core::array::from_fn(|i| _mm_xor_si128(c[i], k[0]));
        for key in &k[1..NR] {
            for v in &mut x {
                *v = _mm_aesdec_si128(*v, *key);
            }
        }
        for (i, v) in x.iter().enumerate() {
            let before = if i == 0 { prev } else { c[i - 1] };
            let p = _mm_xor_si128(_mm_aesdeclast_si128(*v, k[NR]), before);
            store((&mut blocks[16 * i..][..16]).try_into().expect("block"), p);
        }
        prev = c[7];
    }
    for block in chunks.into_remainder().chunks_exact_mut(16) {
        let block: &mut [u8; 16] = block.try_into().expect("16-byte block");
        let c = load(block);
        let mut x = _mm_xor_si128(c, k[0]);
        for key in &k[1..NR] {
            x = _mm_aesdec_si128(x, *key);
        }
        store(block, _mm_xor_si128(_mm_aesdeclast_si128(x, k[NR]), prev));
        prev = c;
    }
}
