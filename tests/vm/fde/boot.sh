#!/usr/bin/env bash
# The whole-system boot test of the full-disk protection: Debian's cloud kernel boots from a
# disk laid out as the existing tool's converter does (made by the real lvm2, cryptsetup and
# veritysetup in the VM, tests/vm/fde/layout.sh) with the initrd `cryptpilot fde initrd`
# writes, whose /init is our static binary. For each delta location x rootfs plain/LUKS2 x
# delta integrity it checks that the tiny root's /sbin/init runs from /dev/mapper/rootfs and
# can write, that only disk-persist keeps the write across a reboot, and that the disk holds
# no plaintext of it; then that a flipped byte in the rootfs or its hash tree, a wrong key and
# an unreachable key broker each stop the boot with one line, and that lvm2's vgck accepts the
# volume group after our boot added the delta.
#
#   bash tests/vm/fde/boot.sh [TEXT]   # only the cases whose name holds TEXT; work files in target/vm/fde/
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages qemu-system-x86 busybox-static gdisk lvm2 util-linux dracut-core dracut-network

work=$root/target/vm/fde
rm -rf "$work"
mkdir -p "$work"

# The two layouts: GPT made here (partition 2 from sector 18432 is the PV), the rest in the VM.
part2=18432
for d in plain luks; do
    truncate -s 112M "$work/$d.img"
    sgdisk -n 1:2048:+8M -t 1:8300 -n 2:$part2:0 -t 2:8e00 "$work/$d.img" >/dev/null
done
echo "laying out the disks in the VM (lvm2, cryptsetup, veritysetup)" >&2
VM_DISK1=$work/plain.img VM_DISK2=$work/luks.img bash tests/vm/run.sh tests/vm/fde/layout.sh
# info IMAGE KEY: what the layout wrote on the first partition.
info() { dd if="$1" bs=512 skip=2048 count=8 2>/dev/null | tr -d '\0' | sed -n "s/^$2=//p"; }

kernel=$(ls "$root"/target/vm/kernel/boot/vmlinuz-* | head -n 1)
kver=${kernel##*/vmlinuz-}
modules=$root/target/vm/kernel/lib/modules/$kver
bin=$root/target/x86_64-unknown-linux-gnu/release/cryptpilot
written=delta-42-plaintext-1234
only=${1:-}
fails=0
# want NAME: the case NAME is to run.
want() { [ -z "$only" ] || [[ $1 == *"$only"* ]]; }
report() { echo "$1"; [ "${1%% *}" = PASS ] || fails=$((fails + 1)); }

# mkfs.ext4 and its libraries: the overlayfs backend makes an ext4 on a new delta.
includes=(--include /bin/busybox:/bin/busybox --include "$(command -v mkfs.ext4):/sbin/mkfs.ext4")
for lib in $(ldd "$(command -v mkfs.ext4)" | grep -o '/[^ ]*'); do
    includes+=(--include "$(readlink -f "$lib"):$lib")
done

# boot NAME IMAGE FDE_TOML: writes the configuration and the initrd, boots, leaves the
# console in $work/NAME.log (each reboot of a case appends).
boot() {
    local name=$1 img=$2 conf=$3 cfg=$work/cfg-$1
    mkdir -p "$cfg"
    printf '%s' "$conf" > "$cfg/fde.toml"
    printf 'type = 1\nroot_hash = "%s"\n' "$(info "$img" root_hash)" > "$cfg/metadata.toml"
    printf '[boot]\nverbose = true\n' > "$cfg/global.toml"
    "$bin" fde initrd -c "$cfg" --kernel-modules "$modules" "${includes[@]}" \
        --out "$work/initrd-$name" --force >/dev/null
    timeout 600 qemu-system-x86_64 -m 2048 -smp 2 -nographic -no-reboot -cpu max \
        -kernel "$kernel" -initrd "$work/initrd-$name" \
        -append "console=ttyS0 quiet panic=-1 rootdelay=5" \
        -drive file="$img",format=raw,if=virtio > "$work/$name.log.1" 2>&1 || true
    tr -d '\r' < "$work/$name.log.1" >> "$work/$name.log"
}
# has LOG TEXT: the log of the last boot holds TEXT as a line's start.
has() { tr -d '\r' < "$work/$1.log.1" | grep -aq "^$2"; }
# value LOG KEY: what the root's init printed after KEY in the last boot.
value() { tr -d '\r' < "$work/$1.log.1" | sed -n "s/^$2 //p" | head -n 1; }
exec_provider() { printf '[%s.encrypt.exec]\ncommand = "/bin/busybox"\nargs = ["echo", "-n", "%s"]\n' "$1" "$2"; }

for backend in dm-snapshot overlayfs; do
for location in disk disk-persist ram; do
    for rootfs in plain luks; do
        for integrity in false true; do
            # A memory delta has no volume to protect.
            [ $location = ram ] && [ $integrity = true ] && continue
            name=$backend-$location-$rootfs-integrity-$integrity
            want "$name" || continue
            img=$work/$name.img
            cp --sparse=always "$work/$rootfs.img" "$img"
            conf=$(printf '[rootfs]\ndelta_location = "%s"\ndelta_backend = "%s"\n' $location $backend
                [ $rootfs = luks ] && exec_provider rootfs "rootfs passphrase"
                printf '\n[delta]\nintegrity = %s\n' $integrity
                exec_provider delta "delta passphrase")
            boot "$name" "$img" "$conf"
            why=
            has "$name" TINY-ROOT-MARKER || why="no marker"
            if [ $backend = overlayfs ]; then
                [ -z "$why" ] && { [ "$(value "$name" ROOT-FS)" = overlay ] || why="the root is $(value "$name" ROOT-FS), not an overlay"; }
                [ -z "$why" ] && { has "$name" "cryptpilot-fde: .*/sysroot is the verity-protected rootfs" || why="after-sysroot did not check the root"; }
                [ -z "$why" ] && { [ "$(value "$name" BINDS)" = 3 ] || why="$(value "$name" BINDS) container directories bound from the delta, not 3"; }
            else
                [ -z "$why" ] && { has "$name" "ROOT-DEV rootfs" || why="the root is not /dev/mapper/rootfs"; }
            fi
            [ -z "$why" ] && { has "$name" "cryptpilot-fde: .*   verity: " || why="global.toml's verbose showed no details"; }
            [ -z "$why" ] && { has "$name" "PERSISTED none" || why="a new delta holds a file"; }
            kib=$(value "$name" ROOT-KIB)
            # (An overlay root's size is its upper layer's: only the snapshot root grows.)
            [ -z "$why" ] && [ $backend = dm-snapshot ] && { [ "${kib:-0}" -gt 24576 ] || why="the root has only ${kib:-?} KiB: it did not grow over the delta"; }
            [ -z "$why" ] && { has "$name" WRITE-OK || why="the write failed"; }
            [ -z "$why" ] && grep -aq "$written" "$img" && why="plaintext of the write on the disk"
            t=$(tr -d '\r' < "$work/$name.log.1" | sed -n 's/^cryptpilot-fde: \[ *\([0-9]*\) ms\] switching.*/\1/p')
            note=
            # Persistence does not depend on integrity: one reboot per location and rootfs.
            if [ -z "$why" ] && [ $integrity = false ]; then
                # One disk grows between the boots: partition, PV, delta and file system follow.
                grow=no
                [ $location = disk-persist ] && [ $rootfs = plain ] && grow=yes
                [ $grow = yes ] && truncate -s +32M "$img"
                boot "$name" "$img" "$conf"
                want=none
                [ $location = disk-persist ] && want=$written
                has "$name" "PERSISTED $want" || why="after a reboot: $(value "$name" PERSISTED) (wanted $want)"
                note="; $( [ $location = disk-persist ] && echo kept || echo gone ) after a reboot"
                if [ -z "$why" ] && [ $grow = yes ]; then
                    kib2=$(value "$name" ROOT-KIB)
                    has "$name" "cryptpilot-fde: .* partition 2 of /dev/vda grown to the end of the disk" \
                        && has "$name" "cryptpilot-fde: .* physical volume grown" \
                        && has "$name" "cryptpilot-fde: .* delta volume extended" \
                        || why="the grown disk: $(grep -a 'grown\|extended' "$work/$name.log.1" | tr -d '\r' | tr '\n' ';')"
                    [ -z "$why" ] && [ "${kib2:-0}" -le "$kib" ] \
                        && why="the file system did not grow with the disk ($kib -> $kib2 KiB)"
                    [ -z "$why" ] && { sgdisk -v "$img" | grep -q "No problems found" || why="sgdisk -v: $(sgdisk -v "$img" | head -n 3 | tr '\n' ' ')"; }
                    note="$note; disk grown 32 MiB: root $kib -> ${kib2:-?} KiB"
                fi
            fi
            if [ -n "$why" ]; then
                report "FAIL  $name: $why (see $work/$name.log)"
            else
                report "PASS  $name: boot, write$note; root $kib KiB; stages to switch_root ${t} ms"
            fi
        done
    done
done
done

# lvm2 accepts the volume group after our stage made the delta, grew the PV and extended
# the delta.
img=$work/dm-snapshot-disk-persist-plain-integrity-false.img
if [ -e "$img" ]; then
    loop=$(losetup -f --show -o $((part2 * 512)) "$img")
    lvs=$(lvm lvs --devices "$loop" --noheadings -o lv_name cryptpilot 2>/dev/null || true)
    if lvm vgck --devices "$loop" --config 'backup { backup = 0 archive = 0 }' cryptpilot 2>"$work/vgck.err" \
        && [[ $lvs == *delta* ]]; then
        report "PASS  vgck: lvm2 accepts the group with our delta"
    else
        report "FAIL  vgck: $(tail -n 1 "$work/vgck.err")"
    fi
    losetup -d "$loop"
fi

# stops NAME WHY: the last boot of NAME stopped with one line and never ran the root's init.
stops() {
    local n
    n=$(tr -d '\r' < "$work/$1.log.1" | grep -ac '^cryptpilot-fde: boot stopped: ' || true)
    if [ "$n" = 1 ] && ! has "$1" TINY-ROOT-MARKER; then
        report "PASS  $1: $(tr -d '\r' < "$work/$1.log.1" | grep -a '^cryptpilot-fde: boot stopped: ' | cut -c1-150)"
    else
        report "FAIL  $1: $2 did not stop the boot with one line (see $work/$1.log)"
    fi
}
# flip IMAGE BYTE: inverts the low bit of one byte.
flip() {
    local b
    b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
    printf "\\$(printf %o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}
plain_conf=$(printf '[rootfs]\ndelta_location = "disk"\n\n[delta]\n'; exec_provider delta "delta passphrase")

# One flipped byte in the rootfs LV (its ext4 superblock), then in the hash tree's first leaf
# block (which covers that superblock): the kernel's verity check fails the mount.
# tamper NAME FIELD OFFSET WHAT: boots a copy of the plain disk with one byte flipped at
# OFFSET from the start of the LV the layout recorded as FIELD.
tamper() {
    want "$1" || return 0
    local img=$work/$1.img
    cp --sparse=always "$work/plain.img" "$img"
    flip "$img" $(( (part2 + $(info "$img" "$2")) * 512 + $3 ))
    boot "$1" "$img" "$plain_conf"
    stops "$1" "$4"
}
tamper tamper-rootfs rootfs_sector $((1024 + 100)) "a flipped rootfs byte"
tamper tamper-hash hash_sector $((8192 + 5)) "a flipped hash tree byte"

# A wrong rootfs passphrase from the provider.
if want wrong-key; then
    img=$work/wrong-key.img
    cp --sparse=always "$work/luks.img" "$img"
    boot wrong-key "$img" "$(printf '[rootfs]\n'; exec_provider rootfs "not the passphrase"
        printf '\n[delta]\n'; exec_provider delta "delta passphrase")"
    stops wrong-key "a wrong rootfs key"
fi

# A key broker that cannot be reached (nothing listens; the initrd has no network).
if want no-kbs; then
img=$work/no-kbs.img
cp --sparse=always "$work/plain.img" "$img"
boot no-kbs "$img" "$(printf '[rootfs]\ndelta_location = "disk-persist"\n\n[delta.encrypt.kbs]\nkbs_url = "http://10.0.2.100:8080"\nkey_uri = "kbs:///default/local-resources/vm-disk"\n')"
stops no-kbs "an unreachable key broker"
fi

# The dracut path: the same layout booted by dracut's systemd initrd with the module in
# dist/dracut/91cryptpilot (its units run the stages, systemd mounts the root read-only and
# switches to it). The network comes up by DHCP from qemu (ip=dhcp for systemd-networkd).
if want dracut; then
base=$work/dracut-base
cp -a /usr/lib/dracut "$base"
cp -a dist/dracut/91cryptpilot "$base/modules.d/"
cfg=$work/cfg-dracut
mkdir -p "$cfg"
{ printf '[rootfs]\ndelta_location = "disk-persist"\n\n[delta]\n'; exec_provider delta "delta passphrase"; } > "$cfg/fde.toml"
printf 'type = 1\nroot_hash = "%s"\n' "$(info "$work/plain.img" root_hash)" > "$cfg/metadata.toml"
CRYPTPILOT_BIN=$bin CRYPTPILOT_CONFIG_DIR=$cfg dracutbasedir=$base dracut -q -N --force \
    --kver "$kver" --kmoddir "$modules" --add cryptpilot --install /bin/busybox \
    "$work/initrd-dracut" > "$work/dracut-build.log" 2>&1 || echo "dracut failed: see $work/dracut-build.log" >&2
# dracut_boot NAME IMAGE: one boot with the dracut initrd; the command line carries only
# what a system would (the module adds rd.shell=0 rd.emergency=poweroff itself).
dracut_boot() {
    timeout 600 qemu-system-x86_64 -m 2048 -smp 2 -nographic -no-reboot -cpu max \
        -kernel "$kernel" -initrd "$work/initrd-dracut" \
        -append "console=ttyS0 panic=-1 root=/dev/mapper/rootfs ip=dhcp" \
        -drive file="$2",format=raw,if=virtio \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 > "$work/$1.log.1" 2>&1 || true
    tr -d '\r' < "$work/$1.log.1" >> "$work/$1.log"
}
img=$work/dracut.img
cp --sparse=always "$work/plain.img" "$img"
why=
for n in 1 2; do
    [ -z "$why" ] || break
    dracut_boot dracut "$img"
    has dracut TINY-ROOT-MARKER || why="boot $n: no marker"
    [ -z "$why" ] && { has dracut "ROOT-DEV rootfs" || why="boot $n: the root is not /dev/mapper/rootfs"; }
    [ -z "$why" ] && { grep -aq "cryptpilot-fde: /sysroot is the verity-protected rootfs" "$work/dracut.log.1" || why="boot $n: after-sysroot did not run"; }
    [ -z "$why" ] && [ $n = 1 ] && { has dracut WRITE-OK || why="the write failed"; }
    [ -z "$why" ] && [ $n = 2 ] && { has dracut "PERSISTED $written" || why="the write was lost across the reboot"; }
done
dkib=$(value dracut ROOT-KIB)
[ -z "$why" ] && { [ "${dkib:-0}" -gt 24576 ] || why="the root did not grow (${dkib:-?} KiB)"; }
if [ -n "$why" ]; then
    report "FAIL  dracut: $why (see $work/dracut.log)"
else
    report "PASS  dracut: 91cryptpilot's units booted the root (${dkib} KiB), the write kept across a reboot"
fi
# A tampered rootfs under dracut: the stage fails, nothing mounts, and the machine powers
# off; no emergency shell (its root shell could ask for keys with this measurement).
img=$work/dracut-tamper.img
cp --sparse=always "$work/plain.img" "$img"
flip "$img" $(( (part2 + $(info "$img" rootfs_sector)) * 512 + 1024 + 100 ))
: > "$work/dracut-tamper.log"
dracut_boot dracut-tamper "$img"
t=$work/dracut-tamper.log.1
if has dracut-tamper TINY-ROOT-MARKER || grep -aqi "emergency mode\|root password\|maintenance" "$t" \
    || grep -aq "Mounted .*sysroot.mount" "$t" || ! grep -aq "reboot: Power down" "$t"; then
    report "FAIL  dracut-tamper: the boot was not stopped by a power-off (see $t)"
else
    report "PASS  dracut-tamper: $(grep -a 'cryptpilot-fde-guest.*cryptpilot: ' "$t" | tr -d '\r' | head -n 1 | sed 's/^.*cryptpilot: /cryptpilot: /' | cut -c1-120); powered off"
fi
fi

[ "$fails" -eq 0 ] || { echo "$fails whole-system boot check(s) failed" >&2; exit 1; }
