//! The full-disk boot reads a disk an attacker may have written while the machine was off:
//! the LVM2 label, metadata areas and text (read, mapped, changed and written back: what we
//! write must read back the same) and the GPT the boot grows; and the PE images whose
//! Authenticode digests become reference values. The first input byte picks the part (0
//! LVM2, 1 GPT, 2 PE); the rest is the device's first bytes (zeros up to 4 MiB), or the image.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 3 == 2 {
        if let Ok(d) = fde::authenticode::digest(rest, fde::authenticode::HashAlgo::Sha256) {
            assert_eq!(d.len(), 32);
        }
        return;
    }
    let mut dev = rest.to_vec();
    if which % 3 == 0 {
        dev.resize(dev.len().max(4 << 20), 0);
        lvm(luks2::MemoryDevice::from_vec(dev));
    } else {
        // A 4 MiB disk's table on a disk that grew to 6 MiB: grown to its end, it must then
        // read back with nothing left to grow.
        dev.resize(dev.len().max(6 << 20), 0);
        let mut dev = luks2::MemoryDevice::from_vec(dev);
        if let Ok(g) = fde::gpt::grow_last_partition(&mut dev, 512) {
            let again =
                fde::gpt::grow_last_partition(&mut dev, 512).expect("a grown table re-reads");
            assert_eq!((again.number, again.old_last), (g.number, g.new_last));
        }
    }
});

fn lvm(dev: luks2::MemoryDevice) {
    let Ok(mut pv) = lvm::PhysicalVolume::open(dev) else {
        return;
    };
    let Ok(mut vg) = pv.read_vg() else {
        return;
    };
    for lv in &vg.lvs {
        let _ = vg.dm_name(lv);
        let _ = vg.linear_table(lv);
    }
    let _ = match vg.lv("delta") {
        None => vg.create_lv("delta", None, 1).map(|_| ()),
        Some(_) => vg.extend_lv("delta", None),
    };
    let _ = pv.resize(&mut vg, 8192 * 2);
    if pv.write_vg(&mut vg, 2).is_ok() {
        let back = pv.read_vg().expect("what we wrote reads back");
        assert_eq!(back.lvs.len(), vg.lvs.len());
        assert_eq!(back.seqno, vg.seqno);
        assert_eq!(back.free_extents(), vg.free_extents());
    }
}
