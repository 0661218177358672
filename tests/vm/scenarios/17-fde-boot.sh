# The full-disk boot stage before sysroot on a layout lvm2 and veritysetup made: the volume
# group comes up natively, the rootfs is checked by dm-verity against metadata.toml's root
# hash, the delta LV is made from the free extents and LUKS2-encrypted, and /dev/mapper/rootfs
# (a dm-snapshot over the verity device) mounts and takes writes. disk-persist keeps them
# across a "reboot", disk does not; the rootfs LV never changes; the delta holds no plaintext;
# a wrong root hash stops the stage with one line; a flipped rootfs byte fails the read.
export LVM_SUPPRESS_FD_WARNINGS=1
# A clean disk: an earlier scenario may have left a volume group on it.
dd if=/dev/zero of=$D2 bs=1M count=4 conv=fsync 2>/dev/null
rm -rf /dev/cryptpilot
lvm pvcreate -q $D2
lvm vgcreate -q cryptpilot $D2
lvm lvcreate -q -Zn -n rootfs -L 16M cryptpilot
lvm lvcreate -q -Zn -n rootfs_hash -L 4M cryptpilot
# 4 KiB blocks: the delta has 4096-byte sectors, so the snapshot device does too.
mkfs.ext4 -q -F -b 4096 /dev/mapper/cryptpilot-rootfs
mount /dev/mapper/cryptpilot-rootfs /mnt
echo root-marker > /mnt/marker
umount /mnt
root=$(veritysetup format /dev/mapper/cryptpilot-rootfs /dev/mapper/cryptpilot-rootfs_hash | awk '/Root hash/ {print $3}')
lvsum=$(md5sum < /dev/mapper/cryptpilot-rootfs)
lvm vgchange -q -an cryptpilot
mkdir -p /tmp/fde
conf() {
    printf '[rootfs]\ndelta_location = "%s"\n\n[delta.encrypt.exec]\ncommand = "/bin/echo"\nargs = ["-n", "delta passphrase"]\n' "$1" > /tmp/fde/fde.toml
}
printf 'type = 1\nroot_hash = "%s"\n' "$root" > /tmp/fde/metadata.toml
down() {
    umount /mnt 2>/dev/null || true
    for n in rootfs rootfs_extended delta rootfs_verity; do dmsetup remove $n 2>/dev/null || true; done
    cryptpilot fde vg deactivate $D2
}
boot() {
    t0=$(now)
    cryptpilot fde boot-service --stage initrd-fde-before-sysroot -c /tmp/fde --pv $D2 > /tmp/root 2>/tmp/steps \
        || { cat /tmp/steps; fail "boot-service: $(tail -n 1 /tmp/steps)"; }
    echo "stage took $(elapsed $t0) s: $(tr '\n' ';' < /tmp/steps)"
    [ "$(cat /tmp/root)" = /dev/mapper/rootfs ] || fail "root device $(cat /tmp/root)"
}

conf disk-persist
boot
lvm vgck cryptpilot || fail "vgck after the delta was created"
lvm lvs --noheadings -o lv_name cryptpilot | grep -q delta || fail "lvm2 sees no delta"
mount /dev/mapper/rootfs /mnt
[ "$(cat /mnt/marker)" = root-marker ] || fail "marker: $(cat /mnt/marker)"
echo "secret-delta-plaintext-1234567890" > /mnt/written
sync
umount /mnt
grep -q secret-delta-plaintext /dev/cryptpilot/delta && fail "plaintext on the delta LV"
grep -q secret-delta-plaintext /dev/mapper/delta || fail "the write did not reach the delta (test broken)"
[ "$(md5sum < /dev/cryptpilot/rootfs)" = "$lvsum" ] || fail "the rootfs LV changed"
down

# disk-persist: the write survives a reboot.
boot
mount /dev/mapper/rootfs /mnt
[ "$(cat /mnt/written 2>/dev/null)" = secret-delta-plaintext-1234567890 ] || fail "disk-persist lost the write"
umount /mnt
# after-sysroot: the sysroot must be mounted from /dev/mapper/rootfs.
mkdir -p /sysroot
mount -t tmpfs tmpfs /sysroot
expect_code 1 cryptpilot fde boot-service --stage initrd-fde-after-sysroot -c /tmp/fde
grep -q "not from /dev/mapper/rootfs" /tmp/out || fail "after-sysroot over tmpfs: $(cat /tmp/out)"
umount /sysroot
mount /dev/mapper/rootfs /sysroot
cryptpilot fde boot-service --stage initrd-fde-after-sysroot -c /tmp/fde 2>/tmp/steps || fail "after-sysroot: $(cat /tmp/steps)"
umount /sysroot
down

# disk: wiped every boot.
conf disk
boot
mount /dev/mapper/rootfs /mnt
[ -e /mnt/written ] && fail "disk kept the write"
[ "$(cat /mnt/marker)" = root-marker ] || fail "marker after a disk boot"
down

# A wrong root hash stops the stage: one line, no rootfs.
rest=${root#?}
case $root in f*) bad=0$rest ;; *) bad=f$rest ;; esac
[ "$bad" != "$root" ] || fail "the wrong root hash is the right one (test broken)"
printf 'type = 1\nroot_hash = "%s"\n' "$bad" > /tmp/fde/metadata.toml
expect_code 1 cryptpilot fde boot-service --stage initrd-fde-before-sysroot -c /tmp/fde --pv $D2
tail -n 1 /tmp/out | grep -q "root hash" || fail "wrong root hash: $(cat /tmp/out)"
dmsetup info rootfs >/dev/null 2>&1 && fail "a rootfs was mapped with a wrong root hash"
down
printf 'type = 1\nroot_hash = "%s"\n' "$root" > /tmp/fde/metadata.toml

# One flipped byte of the rootfs LV (its ext4 superblock): the stage reads that block and
# stops with one line, leaving no rootfs mapped; never silently.
lvm vgchange -q -ay cryptpilot
flip_byte /dev/mapper/cryptpilot-rootfs 1100
lvm vgchange -q -an cryptpilot
expect_code 1 cryptpilot fde boot-service --stage initrd-fde-before-sysroot -c /tmp/fde --pv $D2
tail -n 1 /tmp/out | grep -q "Input/output error" || fail "tampered rootfs: $(cat /tmp/out)"
dmsetup info rootfs >/dev/null 2>&1 && fail "a rootfs was left mapped over a tampered LV"
down
echo "before-sysroot: verity rootfs, encrypted delta (persist, wiped), tamper and wrong hash stop it"
