# A volume group the real lvm2 made (vgcreate/lvcreate/lvextend, a two-segment LV) comes up
# through ours (`cryptpilot fde vg activate`, no lvm2) with lvm2's exact tables, dm names and
# UUIDs, and the data lvm2's mapping wrote; deactivate unmaps it; lvm2's vgck still passes.
export LVM_SUPPRESS_FD_WARNINGS=1
# A clean disk: an earlier scenario may have left a volume group on it.
dd if=/dev/zero of=$D2 bs=1M count=4 conv=fsync 2>/dev/null
rm -rf /dev/cryptpilot
lvm pvcreate -q $D2
lvm vgcreate -q cryptpilot $D2
lvm lvcreate -q -an -Zn -n rootfs -L 8M cryptpilot
lvm lvcreate -q -an -Zn -n rootfs_hash -L 4M cryptpilot
lvm lvextend -q -L +4M cryptpilot/rootfs
lvm vgchange -q -ay cryptpilot
tables() {
    for lv in rootfs rootfs_hash; do
        echo "$lv: $(dmsetup table cryptpilot-$lv | tr '\n' '|') $(dmsetup info -c --noheadings -o uuid cryptpilot-$lv)"
    done
}
theirs=$(tables)
dmsetup table cryptpilot-rootfs | grep -c linear | grep -qx 2 || fail "lvm2 made no two-segment LV: $theirs"
dd if=/dev/urandom of=/tmp/p6 bs=1M count=12 2>/dev/null
dd if=/tmp/p6 of=/dev/mapper/cryptpilot-rootfs bs=1M conv=fsync 2>/dev/null
lvm vgchange -q -an cryptpilot
dmsetup info cryptpilot-rootfs >/dev/null 2>&1 && fail "lvm2 left rootfs mapped"

cryptpilot fde vg show $D2 | grep -q "LV rootfs " || fail "show: $(cryptpilot fde vg show $D2)"
cryptpilot fde vg activate $D2 > /tmp/paths
grep -qx /dev/cryptpilot/rootfs /tmp/paths || fail "paths: $(cat /tmp/paths)"
ours=$(tables)
[ "$ours" = "$theirs" ] || fail "ours '$ours' theirs '$theirs'"
dd if=/dev/cryptpilot/rootfs bs=1M count=12 2>/dev/null | cmp - /tmp/p6 || fail "our mapping reads other data"
# Activating again changes nothing; deactivating unmaps and unlinks.
cryptpilot fde vg activate $D2 >/dev/null
cryptpilot fde vg deactivate $D2
dmsetup info cryptpilot-rootfs >/dev/null 2>&1 && fail "deactivate left rootfs mapped"
[ -e /dev/cryptpilot/rootfs ] && fail "deactivate left the link"
lvm vgck cryptpilot || fail "vgck"
# Not a PV: one line, exit 1.
expect_code 1 cryptpilot fde vg show $D1
grep -q "not an LVM2 physical volume" /tmp/out || fail "$(cat /tmp/out)"
echo "lvm2's VG (a two-segment LV) maps through ours with lvm2's tables and UUIDs"
