//! What `show-reference-value`, `config dump` and `convert` read from a disk image someone
//! else made: GRUB's configuration and environment and BLS snippets, an initrd's cpio
//! archives (plain, gzip, zstd), a GPT (read, then written anew from what was read: it must
//! read back the same), and a PE stub that a UKI is built on (the UKI's sections must read
//! back). The first input byte picks the part (0 grub.cfg, 1 BLS, 2 initrd, 3 GPT, 4 PE).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let _ = fde::reference::fuzzing::grub_cfg_entry(&text, None);
            let _ = fde::reference::fuzzing::grub_cfg_entry(&text, Some("1>0"));
        }
        1 => {
            let text = String::from_utf8_lossy(rest);
            let (bls, env) = text.split_once("\n\n").unwrap_or((&text, ""));
            let _ = fde::reference::fuzzing::bls_entry(bls, env);
        }
        2 => {
            let _ = fde::initrd::read_files(rest, "etc/cryptpilot", std::path::Path::new("fuzz"));
        }
        3 => gpt(rest),
        _ => pe(rest),
    }
});

fn gpt(rest: &[u8]) {
    let mut dev = rest.to_vec();
    dev.resize(dev.len().max(1 << 20), 0);
    let size = dev.len();
    let mut dev = luks2::MemoryDevice::from_vec(dev);
    let Ok(parts) = fde::gpt::partitions(&mut dev, 512) else {
        return;
    };
    let new = parts.clone();
    let mut fresh = luks2::MemoryDevice::from_vec(vec![0u8; size]);
    if fde::gpt::write_table(&mut fresh, 512, [7; 16], &new).is_ok() {
        let back = fde::gpt::partitions(&mut fresh, 512).expect("a table we wrote reads back");
        assert_eq!(back.len(), parts.len());
        for (a, b) in back.iter().zip(&parts) {
            assert_eq!((a.number, a.first_lba, a.last_lba), (b.number, b.first_lba, b.last_lba));
        }
    }
}

fn pe(stub: &[u8]) {
    let _ = fde::authenticode::section(stub, ".linux");
    if let Ok(uki) = fde::uki::build(stub, &[(".cmdline", b"ro\0"), (".linux", b"kernel")]) {
        let linux = fde::authenticode::section(&uki, ".linux").expect("the UKI's headers read back");
        assert_eq!(linux, Some(&b"kernel"[..]));
        let _ = fde::authenticode::digest(&uki, fde::authenticode::HashAlgo::Sha256);
    }
}
