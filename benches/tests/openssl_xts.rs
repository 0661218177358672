//! Our AES-XTS (whatever kernel this CPU picks) against OpenSSL's, sector by sector: both key
//! sizes, every sector size, IVs that carry into high bytes.

use luks2::sector::{CipherSpec, SectorCipher};
use openssl::cipher::Cipher;
use openssl::cipher_ctx::CipherCtx;

fn openssl_xts(key: &[u8], first: u64, sector: usize, data: &[u8], encrypt: bool) -> Vec<u8> {
    let cipher = if key.len() == 32 {
        Cipher::aes_128_xts()
    } else {
        Cipher::aes_256_xts()
    };
    let mut ctx = CipherCtx::new().expect("ctx");
    let mut out = vec![0u8; data.len() + 16];
    let mut n = 0;
    for (i, s) in data.chunks(sector).enumerate() {
        let mut iv = [0u8; 16];
        iv[..8].copy_from_slice(&first.wrapping_add(i as u64).to_le_bytes());
        if encrypt {
            ctx.encrypt_init(Some(cipher), Some(key), Some(&iv))
                .expect("init");
        } else {
            ctx.decrypt_init(Some(cipher), Some(key), Some(&iv))
                .expect("init");
        }
        n += ctx.cipher_update(s, Some(&mut out[n..])).expect("update");
    }
    out.truncate(n);
    out
}

#[test]
fn xts_equals_openssl() {
    let spec = CipherSpec::parse("aes-xts-plain64").expect("spec");
    for key_len in [32, 64] {
        let key = cryptpilot_benches::key(key_len);
        let ours = SectorCipher::new(&spec, &key).expect("key");
        for sector in [512usize, 1024, 2048, 4096] {
            for first in [0u64, 255, 1 << 40, u64::MAX - 3] {
                let plain = cryptpilot_benches::data(sector * 4);
                let mut got = plain.clone();
                ours.encrypt(first, sector, &mut got).expect("encrypt");
                let want = openssl_xts(&key, first, sector, &plain, true);
                assert_eq!(
                    got,
                    want,
                    "{} key {key_len} sector {sector} first {first}",
                    ours.implementation()
                );
                assert_eq!(openssl_xts(&key, first, sector, &got, false), plain);
            }
        }
    }
}

/// Our AES-CBC (the AES-NI kernel where the CPU has it) against OpenSSL's, with the
/// `plain64` IV (the sector number) so that OpenSSL can be given the same IVs.
#[test]
fn cbc_equals_openssl() {
    let spec = CipherSpec::parse("aes-cbc-plain64").expect("spec");
    for key_len in [16, 32] {
        let key = cryptpilot_benches::key(key_len);
        let ours = SectorCipher::new(&spec, &key).expect("key");
        let cipher = if key_len == 16 {
            Cipher::aes_128_cbc()
        } else {
            Cipher::aes_256_cbc()
        };
        for sector in [512usize, 4096] {
            let plain = cryptpilot_benches::data(sector * 3);
            let mut got = plain.clone();
            ours.encrypt(9, sector, &mut got).expect("encrypt");
            let mut want = Vec::new();
            for (i, s) in plain.chunks(sector).enumerate() {
                let mut iv = [0u8; 16];
                iv[..8].copy_from_slice(&(9 + i as u64).to_le_bytes());
                let mut ctx = CipherCtx::new().expect("ctx");
                ctx.encrypt_init(Some(cipher), Some(&key), Some(&iv))
                    .expect("init");
                ctx.set_padding(false);
                let mut out = vec![0u8; sector + 16];
                let n = ctx.cipher_update(s, Some(&mut out)).expect("update");
                want.extend_from_slice(&out[..n]);
            }
            assert_eq!(got, want, "key {key_len} sector {sector}");
            ours.decrypt(9, sector, &mut got).expect("decrypt");
            assert_eq!(got, plain);
        }
    }
}
