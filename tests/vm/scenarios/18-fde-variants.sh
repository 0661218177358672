# The before-sysroot stage's other configurations: a LUKS2 rootfs (verity over its
# plaintext) unlocked by its provider, a delta in memory (zram; gone after a reboot), and a
# delta with integrity protection (LUKS2 hmac-sha256 over dm-integrity).
export LVM_SUPPRESS_FD_WARNINGS=1
# A clean disk: an earlier scenario may have left a volume group on it.
dd if=/dev/zero of=$D2 bs=1M count=4 conv=fsync 2>/dev/null
rm -rf /dev/cryptpilot
lvm pvcreate -q $D2
lvm vgcreate -q cryptpilot $D2
lvm lvcreate -q -Zn -n rootfs -L 24M cryptpilot
lvm lvcreate -q -Zn -n rootfs_hash -L 4M cryptpilot
# Leave 48 MiB for the delta (16 of them its LUKS2 header): the integrity wipe is slow
# under emulation.
lvm lvcreate -q -Zn -n filler -l 100%FREE cryptpilot
lvm lvreduce -q -f -L -48M cryptpilot/filler
printf 'rootfs passphrase' > /tmp/rk
cryptsetup luksFormat -q $FAST --subsystem cryptpilot --key-file /tmp/rk /dev/mapper/cryptpilot-rootfs
cryptsetup open --key-file /tmp/rk /dev/mapper/cryptpilot-rootfs plain
mkfs.ext4 -q -F -b 4096 /dev/mapper/plain
mount /dev/mapper/plain /mnt
echo encrypted-root > /mnt/marker
umount /mnt
root=$(veritysetup format /dev/mapper/plain /dev/mapper/cryptpilot-rootfs_hash | awk '/Root hash/ {print $3}')
cryptsetup close plain
lvm vgchange -q -an cryptpilot
mkdir -p /tmp/fde
printf 'type = 1\nroot_hash = "%s"\n' "$root" > /tmp/fde/metadata.toml
conf() {
    printf '[rootfs]\ndelta_location = "%s"\n[rootfs.encrypt.exec]\ncommand = "/bin/echo"\nargs = ["-n", "rootfs passphrase"]\n\n[delta]\nintegrity = %s\n[delta.encrypt.otp]\n' "$1" "$2" > /tmp/fde/fde.toml
}
down() {
    umount /mnt 2>/dev/null || true
    for n in rootfs rootfs_extended delta delta_dif rootfs_verity rootfs_decrypted; do dmsetup remove $n 2>/dev/null || true; done
    cryptpilot fde vg deactivate $D2
    [ -e /sys/block/zram0/reset ] && echo 1 > /sys/block/zram0/reset
    true
}
boot() {
    t0=$(now)
    cryptpilot fde boot-service --stage initrd-fde-before-sysroot -c /tmp/fde --pv $D2 > /tmp/root 2>/tmp/steps \
        || { cat /tmp/steps; fail "boot-service ($1): $(tail -n 1 /tmp/steps)"; }
    echo "$1: stage took $(elapsed $t0) s"
    mount /dev/mapper/rootfs /mnt || fail "$1: mount"
    [ "$(cat /mnt/marker)" = encrypted-root ] || fail "$1: marker $(cat /mnt/marker)"
}

# A stale node of an earlier mapping (dmsetup without udev leaves them) is replaced, never
# followed: here it names the loop device, once it named another LV and made the delta busy.
mknod /dev/mapper/rootfs_decrypted b 7 0 2>/dev/null || true

# Delta in memory: writes work and are gone after a reboot.
conf ram false
boot ram
grep -q "writes go to memory" /tmp/steps || fail "ram: $(cat /tmp/steps)"
node=$(stat -L -c '%t:%T' /dev/mapper/rootfs_decrypted)
want=$(dmsetup info -c --noheadings -o major,minor --separator ' ' rootfs_decrypted | { read ma mi; printf '%x:%x' $ma $mi; })
[ "$node" = "$want" ] || fail "stale node: /dev/mapper/rootfs_decrypted is $node, the device $want"
echo in-ram > /mnt/written
sync
[ "$(cat /mnt/written)" = in-ram ] || fail "ram: write"
down
boot ram-again
[ -e /mnt/written ] && fail "ram kept a write across a reboot"
down

# Delta with integrity: LUKS2 over dm-integrity, otp key, recreated every boot.
conf disk true
boot integrity
dmsetup table delta_dif | grep -q " integrity " || fail "no integrity under the delta: $(dmsetup ls)"
echo with-integrity > /mnt/written
sync
[ "$(cat /mnt/written)" = with-integrity ] || fail "integrity: write"
down
echo "LUKS2 rootfs under verity; ram delta (zram) and integrity delta work"
