# Lays out the two disks of the whole-system boot test (tests/vm/fde/boot.sh) with the real
# lvm2, cryptsetup and veritysetup, as the existing tool's converter does: on each disk's
# second GPT partition a PV with VG cryptpilot, LV rootfs (a tiny root file system whose
# /sbin/init prints a marker and writes a file; ext4 with the read-only feature) and LV rootfs_hash (its dm-verity tree). The
# first disk's rootfs is plain, the second's LUKS2 (subsystem cryptpilot). Each disk's first
# partition gets what the host needs: the root hash and where the two LVs start on the PV.
export LVM_SUPPRESS_FD_WARNINGS=1
# tiny_root DIR: the root file system's content.
tiny_root() {
    mkdir -p "$1/bin" "$1/sbin" "$1/dev" "$1/proc" "$1/sys" "$1/run" "$1/tmp" "$1/etc"
    # systemd's initrd switches only to an operating system tree.
    printf 'ID=tiny\nNAME="tiny test root"\n' > "$1/etc/os-release"
    cp /bin/busybox "$1/bin/busybox"
    # The written text is put together at run time, so that it is on no disk unless written.
    cat > "$1/sbin/init" <<'INIT'
#!/bin/busybox sh
B=/bin/busybox
echo "TINY-ROOT-MARKER"
# As a system's init does: the initrd may hand over the root read-only (systemd's does).
$B mount -o remount,rw /
dev=$($B awk '$5 == "/" { d = $3 } END { print d }' /proc/self/mountinfo)
echo "ROOT-FS $($B awk '$5 == "/" { for (i = 6; i < NF; i++) if ($i == "-") t = $(i + 1) } END { print t }' /proc/self/mountinfo)"
for d in /sys/block/dm-*; do
    [ "$($B cat $d/dev)" = "$dev" ] && echo "ROOT-DEV $($B cat $d/dm/name)"
done
echo "ROOT-KIB $($B df -k / | $B awk 'NR == 2 { print $2 }')"
echo "BINDS $($B awk '$5 ~ "^/var/lib/(docker|containers|containerd/.*/snapshots)$"' /proc/self/mountinfo | $B wc -l)"
if [ -e /persisted ]; then echo "PERSISTED $($B cat /persisted)"; else echo "PERSISTED none"; fi
echo "delta-$((6 * 7))-plaintext-$((1000 + 234))" > /persisted && $B sync && echo "WRITE-OK"
$B poweroff -f
INIT
    chmod 755 "$1/sbin/init"
}
layout() {
    disk=$1 encrypt=$2
    # Both disks carry a group named cryptpilot: each command sees only its own.
    only="--devices ${disk}2"
    lvm pvcreate -q $only ${disk}2
    lvm vgcreate -q $only cryptpilot ${disk}2
    lvm lvcreate -q $only -Zn -n rootfs -L 24M cryptpilot
    lvm lvcreate -q $only -Zn -n rootfs_hash -L 4M cryptpilot
    fs=/dev/mapper/cryptpilot-rootfs
    if [ "$encrypt" = yes ]; then
        printf 'rootfs passphrase' > /tmp/rk
        cryptsetup luksFormat -q $FAST --subsystem cryptpilot --key-file /tmp/rk $fs
        cryptsetup open --key-file /tmp/rk $fs plainroot
        fs=/dev/mapper/plainroot
    fi
    # Made from a directory and marked read-only, as the converter leaves the rootfs.
    rm -rf /tmp/tiny
    tiny_root /tmp/tiny
    mkfs.ext4 -q -F -b 4096 -d /tmp/tiny $fs
    tune2fs -O read-only $fs >/dev/null
    root=$(veritysetup format $fs /dev/mapper/cryptpilot-rootfs_hash | awk '/Root hash/ {print $3}')
    [ -n "$root" ] || fail "veritysetup format gave no root hash"
    [ "$encrypt" = yes ] && cryptsetup close plainroot
    # The LVs' first sectors on the PV (linear tables: "0 LEN linear MAJ:MIN OFFSET").
    r=$(dmsetup table cryptpilot-rootfs | awk '{print $5}')
    h=$(dmsetup table cryptpilot-rootfs_hash | awk '{print $5}')
    lvm vgchange -q $only -an cryptpilot
    printf 'root_hash=%s\nrootfs_sector=%s\nhash_sector=%s\nEND\n' "$root" "$r" "$h" \
        | dd of=${disk}1 bs=4096 conv=sync,fsync 2>/dev/null
    echo "$disk: root hash $root, rootfs at $r, hash at $h"
}
[ -b ${D1}2 ] && [ -b ${D2}2 ] || fail "the disks have no second partition"
layout $D1 no
layout $D2 yes
