#!/usr/bin/env bash
# Conversion of a real Debian bookworm image (tests/fde/debian-image.sh builds it from Debian's
# packages) by `cryptpilot fde convert`, run as an unprivileged user (nobody), checked by the
# real tools and booted:
#  - plain rootfs: sgdisk -v; pvs/lvs/vgck (lvm2 on loop devices over the PV partition);
#    veritysetup verify of LV rootfs against LV rootfs_hash and the root hash in the initrd;
#    show-reference-value equals sha384sum of the kernel and initrd on the boot partition and
#    pesign's Authenticode digests of shim and GRUB on the ESP; the source is unchanged;
#  - it boots under OVMF (shim, GRUB, our initrd, systemd) to / on /dev/mapper/rootfs with a
#    write into the encrypted delta; a flipped byte in LV rootfs stops the boot;
#  - encrypted rootfs (Argon2id at fixed costs): cryptsetup luksDump/--test-passphrase accept
#    LV rootfs with those costs; it boots, the initrd unlocking it with an exec provider;
#  - --uki: systemd's stub with kernel, initrd, command line as EFI/BOOT/BOOTX64.EFI; its
#    value equals pesign's and follows the command line; config dump reads it; it boots;
#  - qcow2 in, qcow2 out;
#  - bad input (no ext4 root, truncated source, a full output disk, a configuration without
#    [delta] or disagreeing with the passphrase option): one line, exit 1, no DST, SRC unchanged.
#
#   bash tests/fde/convert.sh [TEXT]   # only the cases whose name holds TEXT
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages mmdebstrap qemu-system-x86 ovmf qemu-utils gdisk lvm2 cryptsetup-bin e2fsprogs \
    dosfstools mtools pesign util-linux busybox-static python3 systemd-boot-efi binutils
only=${1:-}
fails=0
want() { [ -z "$only" ] || [[ $1 == *"$only"* ]]; }
# newc_file INITRD PATH: PATH's contents in a gzip initrd of one or more newc archives (the
# last copy wins, as when the kernel unpacks them in order).
newc_file() {
    python3 - "$1" "$2" <<'PY'
import gzip, sys
d, want, found, i = gzip.open(sys.argv[1]).read(), sys.argv[2], b"", 0
while i + 110 <= len(d):
    if d[i:i + 6] != b"070701":
        i += 1
        continue
    size, namesize = int(d[i + 54:i + 62], 16), int(d[i + 94:i + 102], 16)
    name = d[i + 110:i + 109 + namesize].decode()
    data = (i + 110 + namesize + 3) & ~3
    if name == want:
        found = d[data:data + size]
    i = (data + size + 3) & ~3
sys.stdout.buffer.write(found)
PY
}
report() { echo "$1"; [ "${1%% *}" = PASS ] || fails=$((fails + 1)); }

src=$root/target/fixtures/debian.img
bash tests/fde/debian-image.sh "$src" || { echo "FAIL  debian image: mmdebstrap failed"; exit 1; }
bin=$(build_static) || exit 1

work=$(mktemp -d /var/tmp/cryptpilot-convert.XXXXXX)
chmod 755 "$work"
mounted=
cleanup() {
    detach_loops
    [ -n "$mounted" ] && umount "$mounted" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# The unprivileged user's side: a directory it owns, the binary and source it can read.
out=$work/nobody
mkdir -p "$out" && chown 65534:65534 "$out"
cp "$bin" "$work/cryptpilot" && chmod 755 "$work/cryptpilot"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$@"; }
src_sum=$(sha256sum "$src" | cut -c1-64)

conf() { # conf DIR FDE_TOML
    mkdir -p "$1" && printf '%s' "$2" > "$1/fde.toml" && chmod -R a+rX "$1"
}
conf "$work/plain-conf" $'[rootfs]\ndelta_location = "disk"\n\n[delta.encrypt.otp]\n'
# The encrypted rootfs's key comes from an exec provider carried in the initrd (busybox cat of
# a file there: a test stand-in for a real attested provider).
conf "$work/luks-conf" $'[rootfs]\ndelta_location = "disk"\n\n[rootfs.encrypt.exec]\ncommand = "/bin/busybox"\nargs = ["cat", "/etc/cryptpilot/rootfs.pass"]\n\n[delta.encrypt.otp]\n'
conf "$work/nodelta-conf" $'[rootfs]\ndelta_location = "disk"\n'

# convert NAME ARGS...: as nobody; stdout in NAME.out, stderr in NAME.err, exit code echoed.
convert() {
    local name=$1
    shift
    as_nobody "$work/cryptpilot" fde convert --init "$work/cryptpilot" "$@" \
        >"$work/$name.out" 2>"$work/$name.err"
    echo $?
}
# part IMG N FIELD: first/last sector of partition N.
part() { sgdisk -i "$2" "$1" | awk -v f="$3" '$0 ~ f" sector" {print $3}'; }
# loop IMG OFFSET SIZE: a read-only loop device over part of IMG. It is called in $(...), a
# subshell, so the device is recorded in a file for detach_loops.
loop() { local l; l=$(losetup -r -f --show -o "$2" --sizelimit "$3" "$1") && echo "$l" >>"$work/loops" && echo "$l"; }
detach_loops() {
    [ -f "$work/loops" ] || return 0
    while read -r l; do losetup -d "$l" 2>/dev/null; done <"$work/loops"
    rm -f "$work/loops"
}
lvm_() { local dev=$1; shift; LVM_SUPPRESS_FD_WARNINGS=1 "$@" --devices "$dev" --config 'backup { backup = 0 archive = 0 }'; }

boot() { # boot IMG LOG: OVMF, shim, GRUB, our initrd, systemd; console in LOG
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/vars.fd"
    timeout 900 qemu-system-x86_64 -machine q35 -m 1024 -smp 2 -cpu max -nographic -nic none \
        -no-reboot -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
        -drive if=pflash,format=raw,file="$work/vars.fd" -drive file="$1",format=raw,if=virtio \
        >"$2" 2>&1 </dev/null
}

if want plain || want boot; then
    img=$out/plain.img
    code=$(convert plain --in "$src" --out "$img" -c "$work/plain-conf" --rootfs-no-encryption)
    if [ "$code" != 0 ]; then
        report "FAIL  plain: convert exit $code: $(tail -1 "$work/plain.err")"
    else
        root_hash=$(sed -n 's/.*root hash \([0-9a-f]*\)$/\1/p' "$work/plain.out")
        why=()
        sgdisk -v "$img" | grep -q "No problems found" || why+=("sgdisk -v")
        pvnum=$(sgdisk -p "$img" | awk '$NF == "primary" {print $1}')
        bootnum=$(sgdisk -p "$img" | awk '$NF == "boot" {print $1}')
        pvoff=$(( $(part "$img" "$pvnum" First) * 512 ))
        pvlen=$(( ($(part "$img" "$pvnum" Last) + 1) * 512 - pvoff ))
        pv=$(loop "$img" "$pvoff" "$pvlen")
        lvm_ "$pv" vgck cryptpilot >/dev/null 2>&1 || why+=("vgck")
        lvs=$(lvm_ "$pv" lvs --noheadings -o lv_name,seg_pe_ranges cryptpilot 2>/dev/null)
        auto=$(lvm_ "$pv" vgs --noheadings -o autoactivation cryptpilot 2>/dev/null | tr -d ' ')
        [ -z "$auto" ] || why+=("autoactivation $auto")
        pe() { echo "$lvs" | awk -v n="$1" '$1 == n {split($2, a, ":"); split(a[2], r, "-"); print r[1]}'; }
        hashdev=$(loop "$img" $((pvoff + (2048 + $(pe rootfs_hash) * 8192) * 512)) $((8 << 20)))
        blocks=$(veritysetup dump "$hashdev" | awk '/Data blocks/ {print $3}')
        datadev=$(loop "$img" $((pvoff + (2048 + $(pe rootfs) * 8192) * 512)) $((blocks * 4096)))
        veritysetup verify "$datadev" "$hashdev" "$root_hash" >/dev/null 2>&1 || why+=("veritysetup verify")
        # The root hash in the initrd is the one veritysetup accepted.
        bootoff=$(( $(part "$img" "$bootnum" First) * 512 ))
        bootlen=$(( ($(part "$img" "$bootnum" Last) + 1) * 512 - bootoff ))
        bootdev=$(loop "$img" "$bootoff" "$bootlen")
        kver=$(debugfs -R "ls -l /" "$bootdev" 2>/dev/null | grep -o 'vmlinuz-[^ ]*' | head -1)
        # Converted by nobody, the boot partition's files are still root's.
        owners=$(debugfs -R "ls -l /" "$bootdev" 2>/dev/null; debugfs -R "ls -l /grub" "$bootdev" 2>/dev/null)
        awk 'NF > 5 && ($4 != 0 || $5 != 0) {bad = 1} END {exit bad}' <<<"$owners" || why+=("boot files not owned by root")
        kver=${kver#vmlinuz-}
        debugfs -R "dump /vmlinuz-$kver $work/vmlinuz" "$bootdev" >/dev/null 2>&1
        debugfs -R "dump /initrd.img-$kver $work/initrd" "$bootdev" >/dev/null 2>&1
        # The initrd is two archives, the second holding metadata.toml (cpio stops at the
        # first trailer; the kernel unpacks both).
        newc_file "$work/initrd" etc/cryptpilot/metadata.toml | grep -q "root_hash = \"$root_hash\"" ||
            why+=("metadata.toml root hash")
        # Reference values against independent digests.
        rv=$(as_nobody "$work/cryptpilot" fde show-reference-value --disk "$img" --hash-algo sha384 --hash-algo sha256)
        val() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]][0])' "$1" <<<"$rv"; }
        [ "$(val measurement.kernel.SHA-384)" = "$(sha384sum "$work/vmlinuz" | cut -d' ' -f1)" ] || why+=("kernel digest")
        [ "$(val measurement.initrd.SHA-384)" = "$(sha384sum "$work/initrd" | cut -d' ' -f1)" ] || why+=("initrd digest")
        espoff=$(( $(part "$img" 15 First) * 512 ))
        mcopy -o -i "$img@@$espoff" ::EFI/debian/shimx64.efi "$work/shim.efi"
        mcopy -o -i "$img@@$espoff" ::EFI/debian/grubx64.efi "$work/grub.efi"
        pes() { pesign -h -d sha256 -i "$1" | sed 's/^hash: //'; }
        [ "$(val measurement.shim.SHA-256)" = "$(pes "$work/shim.efi")" ] || why+=("shim digest")
        [ "$(val measurement.grub.SHA-256)" = "$(pes "$work/grub.efi")" ] || why+=("grub digest")
        cmdline=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["kernel_cmdline"][1])' <<<"$rv")
        [[ $cmdline == "grub_kernel_cmdline (hd0,gpt$bootnum)/boot/vmlinuz-$kver "* ]] || why+=("cmdline $cmdline")
        [ "$(sha256sum "$src" | cut -c1-64)" = "$src_sum" ] || why+=("the source changed")
        detach_loops
        if [ ${#why[@]} -eq 0 ]; then
            report "PASS  plain: as nobody; sgdisk, vgck, veritysetup verify, reference values = sha384sum/pesign; source unchanged"
        else
            report "FAIL  plain: ${why[*]}"
        fi
        if want boot; then
            boot "$img" "$work/boot.log"
            if grep -aq "FDE-CHECK root=/dev/mapper/rootfs fstype=ext4" "$work/boot.log" &&
                grep -aq "FDE-CHECK write ok" "$work/boot.log" &&
                grep -aq "rootfs verified by dm-verity" "$work/boot.log"; then
                report "PASS  boot: OVMF, shim, GRUB, our initrd, systemd: / is /dev/mapper/rootfs, the write went to the delta"
            else
                cp "$work/boot.log" "$root/target/fde-convert-boot.log"
                report "FAIL  boot: see target/fde-convert-boot.log"
            fi
            # A flipped byte in the root file system's superblock block.
            cp --sparse=always "$img" "$work/tamper.img"
            at=$((pvoff + (2048 + $(pe rootfs) * 8192) * 512 + 1024 + 100))
            b=$(dd if="$work/tamper.img" bs=1 skip="$at" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
            printf "$(printf '\\%03o' $(( (b ^ 1) & 255 )))" | dd of="$work/tamper.img" bs=1 seek="$at" conv=notrunc 2>/dev/null
            boot "$work/tamper.img" "$work/tamper.log"
            if grep -aq "boot stopped" "$work/tamper.log" && ! grep -aq "FDE-CHECK" "$work/tamper.log"; then
                report "PASS  tamper: a flipped byte in LV rootfs stops the boot: $(grep -a -o 'boot stopped.*' "$work/tamper.log" | head -1 | cut -c1-100)"
            else
                cp "$work/tamper.log" "$root/target/fde-convert-tamper.log"
                report "FAIL  tamper: the boot went on; see target/fde-convert-tamper.log"
            fi
            rm -f "$work/tamper.img"
        fi
        rm -f "$img"
    fi
fi

if want luks; then
    img=$out/luks.img
    printf 'rootfs-secret-7' > "$work/pass" && chmod 644 "$work/pass"
    cp /bin/busybox "$work/busybox" && chmod 755 "$work/busybox"
    # Fixed Argon2id costs: a keyslot calibrated here to 2 s could take minutes to open under
    # qemu's emulation (the boot's unlock gives up after 120 s).
    code=$(convert luks --in "$src" --out "$img" -c "$work/luks-conf" --rootfs-passphrase-file "$work/pass" \
        --pbkdf-memory 65536 --pbkdf-force-iterations 4 \
        --initrd-include "$work/busybox:/bin/busybox" --initrd-include "$work/pass:/etc/cryptpilot/rootfs.pass")
    if [ "$code" != 0 ]; then
        report "FAIL  luks: convert exit $code: $(tail -1 "$work/luks.err")"
    else
        pvnum=$(sgdisk -p "$img" | awk '$NF == "primary" {print $1}')
        pvoff=$(( $(part "$img" "$pvnum" First) * 512 ))
        pvlen=$(( ($(part "$img" "$pvnum" Last) + 1) * 512 - pvoff ))
        pv=$(loop "$img" "$pvoff" "$pvlen")
        lvs=$(lvm_ "$pv" lvs --noheadings -o lv_name,seg_pe_ranges,lv_size --units b --nosuffix cryptpilot 2>/dev/null)
        start=$(echo "$lvs" | awk '$1 == "rootfs" {split($2, a, ":"); split(a[2], r, "-"); print r[1]}')
        size=$(echo "$lvs" | awk '$1 == "rootfs" {print $3}')
        lv=$(loop "$img" $((pvoff + (2048 + start * 8192) * 512)) "$size")
        dump=$(cryptsetup luksDump "$lv" 2>&1)
        if cryptsetup open --test-passphrase --key-file "$work/pass" "$lv" 2>/dev/null &&
            grep -q 'Subsystem:.*cryptpilot' <<<"$dump" && grep -q 'cipher: aes-xts-plain64' <<<"$dump" &&
            grep -q 'Time cost: *4$' <<<"$dump" && grep -q 'Memory: *65536$' <<<"$dump" &&
            ! cryptsetup open --test-passphrase --key-file /dev/null "$lv" 2>/dev/null; then
            report "PASS  luks: cryptsetup accepts LV rootfs (LUKS2 aes-xts-plain64, subsystem cryptpilot, Argon2id 64 MiB x 4 as asked) with the passphrase"
        else
            report "FAIL  luks: cryptsetup: $(head -3 <<<"$dump" | tr '\n' ' ')"
        fi
        detach_loops
        boot "$img" "$work/luks.log"
        if grep -aq "FDE-CHECK root=/dev/mapper/rootfs fstype=ext4" "$work/luks.log" &&
            grep -aq "FDE-CHECK write ok" "$work/luks.log" && grep -aq "rootfs unlocked" "$work/luks.log"; then
            report "PASS  luks-boot: the LUKS2 rootfs opens with the provider's key in the initrd, verity over it, / writable"
        else
            cp "$work/luks.log" "$root/target/fde-convert-luks.log"
            report "FAIL  luks-boot: see target/fde-convert-luks.log"
        fi
        rm -f "$img"
    fi
fi

if want uki; then
    # UKI boot: systemd's stub (this machine's systemd-boot-efi: the image has none) with
    # the kernel, our initrd and the command line; no boot partition.
    code=$(convert uki --in "$src" --out "$out/uki.img" -c "$work/plain-conf" --rootfs-no-encryption --uki)
    code2=$(convert uki2 --in "$src" --out "$out/uki2.img" -c "$work/plain-conf" --rootfs-no-encryption \
        --uki --uki-append-cmdline "console=ttyS0 quiet")
    if [ "$code" != 0 ] || [ "$code2" != 0 ]; then
        report "FAIL  uki: convert exit $code/$code2: $(tail -1 "$work/uki.err") $(tail -1 "$work/uki2.err")"
    else
        why=()
        sgdisk -v "$out/uki.img" | grep -q "No problems found" || why+=("sgdisk -v")
        sgdisk -p "$out/uki.img" | grep -q ' boot$' && why+=("a boot partition")
        espoff=$(( $(part "$out/uki.img" 15 First) * 512 ))
        mcopy -o -i "$out/uki.img@@$espoff" ::EFI/BOOT/BOOTX64.EFI "$work/uki.efi"
        mdir -i "$out/uki.img@@$espoff" ::EFI/debian >/dev/null 2>&1 && why+=("GRUB left on the ESP")
        rv() { as_nobody "$work/cryptpilot" fde show-reference-value --disk "$1" --hash-algo sha256 |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["measurement.uki.SHA-256"][0])'; }
        v1=$(rv "$out/uki.img")
        v2=$(rv "$out/uki2.img")
        [ "$v1" = "$(pesign -h -d sha256 -i "$work/uki.efi" | sed 's/^hash: //')" ] || why+=("uki digest $v1")
        [ -n "$v2" ] && [ "$v1" != "$v2" ] || why+=("the command line does not change the value")
        objdump -h "$work/uki.efi" | grep -q '\.initrd' || why+=("no .initrd section")
        as_nobody "$work/cryptpilot" fde config dump --disk "$out/uki.img" | grep -q '^\[fde.rootfs\]' ||
            why+=("config dump")
        boot "$out/uki.img" "$work/uki.log"
        grep -aq "FDE-CHECK root=/dev/mapper/rootfs fstype=ext4" "$work/uki.log" &&
            grep -aq "FDE-CHECK write ok" "$work/uki.log" || {
            cp "$work/uki.log" "$root/target/fde-convert-uki.log"
            why+=("boot: see target/fde-convert-uki.log")
        }
        if [ ${#why[@]} -eq 0 ]; then
            report "PASS  uki: no boot partition, BOOTX64.EFI = our UKI (pesign = measurement.uki, follows the command line), config dump reads its .initrd, boots under OVMF to /dev/mapper/rootfs"
        else
            report "FAIL  uki: ${why[*]}"
        fi
    fi
    rm -f "$out/uki.img" "$out/uki2.img"
fi

if want qcow2; then
    qemu-img convert -O qcow2 "$src" "$work/src.qcow2" && chmod 644 "$work/src.qcow2"
    # DST given relative to the current directory.
    code=$(cd "$out" && convert qcow2 --in "$work/src.qcow2" --out out.qcow2 -c "$work/plain-conf" --rootfs-no-encryption)
    fmt=$(qemu-img info --output=json "$out/out.qcow2" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])' 2>/dev/null)
    qemu-img convert -O raw "$out/out.qcow2" "$work/back.raw" 2>/dev/null
    if [ "$code" = 0 ] && [ "$fmt" = qcow2 ] && sgdisk -v "$work/back.raw" | grep -q "No problems found" &&
        sgdisk -p "$work/back.raw" | grep -q primary; then
        report "PASS  qcow2: qcow2 in, qcow2 out (qemu-img) by a relative path, the layout inside verifies"
    else
        report "FAIL  qcow2: exit $code, format '$fmt': $(tail -1 "$work/qcow2.err")"
    fi
    rm -f "$work/src.qcow2" "$out/out.qcow2" "$work/back.raw"
fi

# refused NAME NEEDLE DST ARGS...: exit 1, the error (the last line; step lines come before
# it) naming the problem, no panic, no DST and no work files left.
refused() {
    local name=$1 needle=$2 dst=$3
    shift 3
    local code last
    code=$(convert "$name" --out "$dst" "$@")
    last=$(tail -1 "$work/$name.err")
    if [ "$code" = 1 ] && [[ $last == "cryptpilot: "* ]] && grep -q -- "$needle" <<<"$last" &&
        ! grep -q panicked "$work/$name.err" && [ ! -e "$dst" ] &&
        ! ls -A "$(dirname "$dst")" | grep -q cryptpilot-convert; then
        report "PASS  bad-$name: ${last:0:120}"
    else
        report "FAIL  bad-$name: exit $code: $last"
    fi
}
if want bad; then
    # A GPT image with only an ESP.
    truncate -s 64M "$work/noroot.img" && sgdisk -n 1:2048:0 -t 1:ef00 "$work/noroot.img" >/dev/null
    mkfs.vfat --offset 2048 "$work/noroot.img" >/dev/null 2>&1
    chmod 644 "$work/noroot.img"
    refused noroot "no partition holds an ext4 root" "$out/x.img" --in "$work/noroot.img" -c "$work/plain-conf" --rootfs-no-encryption
    head -c 300M "$src" > "$work/cut.img" && chmod 644 "$work/cut.img"
    refused truncated "cut.img" "$out/x.img" --in "$work/cut.img" -c "$work/plain-conf" --rootfs-no-encryption
    refused nodelta "delta" "$out/x.img" --in "$src" -c "$work/nodelta-conf" --rootfs-no-encryption
    refused mismatch "rootfs.encrypt" "$out/x.img" --in "$src" -c "$work/luks-conf" --rootfs-no-encryption
    # A qcow2 naming a backing file (which could be any file of this machine).
    qemu-img create -q -f qcow2 -b "$src" -F raw "$work/backed.qcow2" && chmod 644 "$work/backed.qcow2"
    refused backing "names a backing or data file" "$out/x.qcow2" --in "$work/backed.qcow2" -c "$work/plain-conf" --rootfs-no-encryption
    # The output naming the source (through another path) is refused before anything.
    ln -s "$src" "$out/same.img"
    code=$(convert same --in "$src" --out "$out/same.img" -c "$work/plain-conf" --rootfs-no-encryption --force)
    if [ "$code" = 2 ] || [ "$code" = 1 ] && grep -q "same file" "$work/same.err"; then
        report "PASS  bad-same: $(tail -1 "$work/same.err")"
    else
        report "FAIL  bad-same: exit $code: $(tail -1 "$work/same.err")"
    fi
    rm -f "$out/same.img"
    # A full output disk: a 400 MiB tmpfs owned by nobody.
    mkdir -p "$work/small" && mount -t tmpfs -o size=400M,uid=65534,gid=65534 tmpfs "$work/small" && mounted=$work/small
    refused full "No space left" "$work/small/x.img" --in "$src" -c "$work/plain-conf" --rootfs-no-encryption
    [ "$(sha256sum "$src" | cut -c1-64)" = "$src_sum" ] && report "PASS  source: unchanged after every case" ||
        report "FAIL  source: changed"
fi
echo "convert: $fails failed" >&2
[ "$fails" -eq 0 ]
