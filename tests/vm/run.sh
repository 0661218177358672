#!/usr/bin/env bash
# The VM test harness: boots Debian's cloud kernel under qemu with a busybox initramfs that
# carries our static binary (and cryptsetup, dmsetup, mkfs.ext4 as peers), runs every
# scenario in tests/vm/scenarios/, and fails with a readable report if any did not pass.
#
#   bash tests/vm/run.sh [SCENARIO...]     # default: all scenarios (a name, or a script's path)
#
# It installs what it needs from Debian's packages. Work files go to target/vm/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages qemu-system-x86 busybox-static cpio kmod cryptsetup-bin dmsetup e2fsprogs socat mount util-linux lvm2 keyutils

work=$root/target/vm
mkdir -p "$work/cache"

# start_broker DIR: runs shared/tools/trustee's kbs from DIR on a free port (broker_port),
# with the allow-all resource policy; it is stopped when this script exits.
start_broker() {
    local dir=$1 tools=${TRUSTEE_TOOLS:-$root/../shared/tools/trustee}
    [ -x "$tools/kbs" ] || { echo "no Trustee key broker at $tools (shared/ belongs beside the repository)" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir/storage/repository" "$dir/storage/kbs"
    cp "$tools/allow_all.rego" "$dir/storage/kbs/resource-policy.rego"
    broker_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    sed "s/127.0.0.1:8080/127.0.0.1:$broker_port/" "$tools/kbs-config-insecure-admin.toml" > "$dir/kbs-config.toml"
    (cd "$dir" && exec "$tools/kbs" -c kbs-config.toml > kbs.log 2>&1) &
    broker_pid=$!
    trap 'kill $broker_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "the key broker did not start; see $dir/kbs.log" >&2
    exit 1
}
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$kpkg" ] || { echo "cannot find the cloud kernel package (apt-get update?)" >&2; exit 1; }
if ! ls "$work/cache/$kpkg"_*.deb >/dev/null 2>&1; then
    (cd "$work/cache" && apt-get -qq download "$kpkg" >/dev/null 2>&1) || { echo "cannot download $kpkg" >&2; exit 1; }
fi
kver=${kpkg#linux-image-}
kdir=$work/kernel
if [ ! -f "$kdir/lib/modules/$kver/modules.dep" ]; then
    rm -rf "$kdir"
    dpkg -x "$work/cache/$kpkg"_*.deb "$kdir"
    depmod -b "$kdir" "$kver"
fi

bin=$(build_static) || exit 1

# The initramfs.
rd=$work/initrd
rm -rf "$rd"
mkdir -p "$rd"/{bin,sbin,dev,proc,sys,tmp,run/cryptsetup,etc,lib/modules,scenarios,mnt}
cp /bin/busybox "$rd/bin/busybox"
for a in $(/bin/busybox --list); do
    [ -e "$rd/bin/$a" ] || ln -s busybox "$rd/bin/$a"
done
cp "$bin" "$rd/bin/cryptpilot"
copy_with_libs() {
    local exe=$1
    cp "$exe" "$rd/sbin/"
    for lib in $(ldd "$exe" | grep -o '/[^ ]*'); do
        mkdir -p "$rd$(dirname "$lib")"
        cp -nL "$lib" "$rd$lib"
    done
}
for t in cryptsetup integritysetup veritysetup dmsetup mkfs.ext4 e2fsck tune2fs losetup blockdev lvm keyctl; do
    copy_with_libs "$(command -v $t)"
done
# glibc loads libgcc_s when a thread exits (cryptsetup's Argon2 threads): ldd does not list it.
gcc_s=$(gcc -print-file-name=libgcc_s.so.1 2>/dev/null || true)
[ -f "$gcc_s" ] || gcc_s=/lib/x86_64-linux-gnu/libgcc_s.so.1
mkdir -p "$rd/lib/x86_64-linux-gnu"
cp -L "$gcc_s" "$rd/lib/x86_64-linux-gnu/libgcc_s.so.1"
modules="virtio_pci virtio_blk virtio_net dm-mod dm-crypt dm-integrity dm-verity dm-snapshot dm-zero zram lzo lzo-rle aesni-intel xts cbc essiv sha256_generic gcm authenc algif_skcipher algif_aead algif_hash loop ext4"
mkdir -p "$rd/lib/modules/$kver"
for m in $modules; do
    modprobe -d "$kdir" -S "$kver" --show-depends "$m" || echo "warning: module $m not found" >&2
done | awk '/^insmod/{print $2}' | sort -u | while read -r ko; do
    rel=${ko#"$kdir"}
    mkdir -p "$rd$(dirname "$rel")"
    cp "$ko" "$rd$rel"
done
cp "$kdir/lib/modules/$kver"/modules.* "$rd/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$rd" "$kver"
# lvm2 without udev or daemons (the VG scenarios compare its mappings with ours).
mkdir -p "$rd/etc/lvm"
cat > "$rd/etc/lvm/lvm.conf" <<'LVMCONF'
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 }
devices { obtain_device_list_from_udev = 0 }
global { use_lvmpolld = 0 }
LVMCONF
echo "$modules" > "$rd/etc/modules"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=($(cd tests/vm/scenarios && ls *.sh | sed 's/\.sh$//'))
# A scenario is a name in tests/vm/scenarios/, or a path to a script (its base name is its name).
for i in "${!scenarios[@]}"; do
    s=${scenarios[$i]}
    case $s in
        */*) cp "$s" "$rd/scenarios/"; scenarios[$i]=$(basename "$s" .sh) ;;
        *) cp "tests/vm/scenarios/$s.sh" "$rd/scenarios/" ;;
    esac
done
cp tests/vm/lib.sh "$rd/scenarios/lib.sh"

# The real Trustee key broker on a free loopback port, releasing one resource to the sample
# TEE; the guest reaches it at 10.0.2.100:8080 through qemu's restricted user network (one
# forwarded port, nothing else). The scenario gets the resource's bytes to check them with
# cryptsetup.
start_broker "$work/broker"
head -c 48 /dev/urandom > "$rd/scenarios/kbs-secret"
cp "$rd/scenarios/kbs-secret" "$work/broker/storage/repository/default\x2Flocal-resources\x2Fvm-disk"
cp tests/vm/init.sh "$rd/init"
chmod +x "$rd/init"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

# Two scratch disks per run.
fwd=$work/broker-fwd.sh
printf '#!/bin/sh\nexec socat - TCP:127.0.0.1:%s\n' "$broker_port" > "$fwd"
chmod +x "$fwd"
# A caller may hand in its own disks (VM_DISK1/VM_DISK2: image files, used as they are).
rm -f "$work"/disk{1,2}.img
truncate -s 256M "$work/disk1.img" "$work/disk2.img"
disk1=${VM_DISK1:-$work/disk1.img}
disk2=${VM_DISK2:-$work/disk2.img}

echo "booting ${#scenarios[@]} scenario(s)" >&2
log=$work/console.log
start=$(date +%s)
timeout 1500 qemu-system-x86_64 -m 2048 -smp 2 -nographic -no-reboot -cpu max \
    -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1" \
    -drive file="$disk1",format=raw,if=virtio \
    -drive file="$disk2",format=raw,if=virtio \
    -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:$fwd" \
    -device virtio-net-pci,netdev=n0 > "$log" 2>&1 || true
echo "VM wall time: $(( $(date +%s) - start )) s" >&2

# The report.
fail=0
for s in "${scenarios[@]}"; do
    line=$(grep -a "^RESULT $s " "$log" | tail -n 1 | tr -d '\r' || true)
    case "$line" in
        "RESULT $s PASS"*) echo "PASS  $s" ;;
        "RESULT $s FAIL"*) echo "FAIL  $s: ${line#RESULT $s FAIL }"; fail=1 ;;
        *) echo "FAIL  $s: no result (crashed or timed out; see $log)"; fail=1 ;;
    esac
done
if ! grep -aq "^VM-SCENARIOS-DONE" "$log"; then
    echo "the VM did not finish; last console lines:"; tail -n 30 "$log"; fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "--- console log of failing scenarios ($log):"
    grep -a -E "^(RESULT|LOG|\+)" "$log" | tail -n 80
fi
exit "$fail"
