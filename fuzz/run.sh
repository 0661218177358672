#!/usr/bin/env bash
# Replays every fuzz target over its seed corpus (built from headers cryptsetup and
# cryptpilot write) and every saved crash input in fuzz/regressions/<target>/, then, given
# SECONDS, fuzzes each target that long. A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/: save it under fuzz/regressions/<target>/ with a regression test
# in the same commit as the fix.
#
#   bash fuzz/run.sh replay     # what the test command does: deterministic, no new inputs
#   bash fuzz/run.sh 600        # replay, then ten minutes of fuzzing per target
set -euo pipefail
mode=${1:-replay}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin python3 lvm2 gdisk systemd-boot-efi busybox-static cpio zstd
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked -q
cargo build --release --locked -q -p cryptpilot
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
common=(--key-size 256 --luks2-keyslots-size 1m)
printf fuzz > "$seeds/key"
i=0
for extra in "--pbkdf pbkdf2 --pbkdf-force-iterations 1000" \
    "--pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 64 --pbkdf-parallel 1" \
    "--pbkdf pbkdf2 --pbkdf-force-iterations 1000 --label seed --cipher aes-cbc-essiv:sha256"; do
    truncate -s 20M "$seeds/cs$i.img" "$seeds/ours$i.img"
    # shellcheck disable=SC2086
    cryptsetup luksFormat -q --type luks2 "${common[@]}" $extra --key-file "$seeds/key" "$seeds/cs$i.img" 2>/dev/null
    # shellcheck disable=SC2086
    target/release/cryptpilot luks format -q "${common[@]}" $extra --key-file "$seeds/key" "$seeds/ours$i.img"
    i=$((i + 1))
done
for l1 in "--hash sha1 --cipher aes-xts-plain64" "--hash sha256 --cipher aes-cbc-essiv:sha256"; do
    truncate -s 4M "$seeds/l1-$i.img"
    # shellcheck disable=SC2086
    cryptsetup luksFormat -q --type luks1 --key-size 256 --pbkdf-force-iterations 1000 $l1 \
        --key-file "$seeds/key" "$seeds/l1-$i.img"
    i=$((i + 1))
done
python3 fuzz/seed.py fuzz/corpus "$seeds"/*.img
# disk_layout: a PV lvm2 writes (on a loop device, no device-mapper needed) and GPTs sgdisk
# writes, and an EFI binary Debian ships; the first byte picks the part (0 LVM2, 1 GPT, 2 PE).
mkdir -p fuzz/corpus/disk_layout
truncate -s 8M "$seeds/pv.img"
lo=$(losetup -f --show "$seeds/pv.img")
lvmc=(--devices "$lo" --config 'backup { backup = 0 archive = 0 }')
{ LVM_SUPPRESS_FD_WARNINGS=1 lvm pvcreate -q "${lvmc[@]}" "$lo" \
    && LVM_SUPPRESS_FD_WARNINGS=1 lvm vgcreate -q -s 1m "${lvmc[@]}" cpfuzz "$lo" \
    && LVM_SUPPRESS_FD_WARNINGS=1 lvm lvcreate -q "${lvmc[@]}" --driverloaded n -an -Zn -n rootfs -L 2M cpfuzz \
    && LVM_SUPPRESS_FD_WARNINGS=1 lvm lvcreate -q "${lvmc[@]}" --driverloaded n -an -Zn -n rootfs_hash -L 1M cpfuzz
} >/dev/null 2>&1 || echo "lvm2 could not make the disk_layout seed" >&2
losetup -d "$lo"
{ printf '\0'; head -c 64K "$seeds/pv.img"; } > fuzz/corpus/disk_layout/lvm2
truncate -s 128K "$seeds/gpt.img"
sgdisk -a 1 -n 1:40:+30K -t 1:ef00 -n 2:0:0 -t 2:8e00 "$seeds/gpt.img" >/dev/null
{ printf '\1'; cat "$seeds/gpt.img"; } > fuzz/corpus/disk_layout/gpt
{ printf '\2'; cat /usr/lib/systemd/boot/efi/systemd-bootx64.efi; } > fuzz/corpus/disk_layout/pe
# boot_image: Debian-shaped grub.cfg, a BLS snippet with its grubenv, our initrd (gzip) and an
# uncompressed+zstd one, the GPT above, systemd's EFI stub; the first byte picks the part.
mkdir -p fuzz/corpus/boot_image "$seeds/cfg" "$seeds/rd/etc/cryptpilot"
printf '\0function f {\n}\nset default="0"\nmenuentry '"'"'Debian'"'"' --class debian {\n\tlinux\t/boot/vmlinuz-6.1 root=UUID=1 ro  quiet\n\tinitrd\t/boot/initrd.img-6.1\n}\nsubmenu '"'"'Advanced'"'"' {\n\tmenuentry '"'"'r'"'"' {\n\t\tlinux /vmlinuz-6.1 single\n\t\tinitrd /initrd.img-6.1\n\t}\n}\n' \
    > fuzz/corpus/boot_image/grub-cfg
printf '\1title x\nlinux /vmlinuz-5.10\ninitrd /initramfs-5.10.img $tuned_initrd\noptions $kernelopts\n\n# GRUB Environment Block\nsaved_entry=x\nkernelopts=root=/dev/vda3 ro\n' \
    > fuzz/corpus/boot_image/bls
printf '[rootfs]\n[delta.encrypt.otp]\n' > "$seeds/cfg/fde.toml"
printf 'type = 1\nroot_hash = "%064d"\n' 0 > "$seeds/cfg/metadata.toml"
cp "$seeds/cfg/"*.toml "$seeds/rd/etc/cryptpilot/"
target/release/cryptpilot fde initrd -c "$seeds/cfg" --out "$seeds/initrd.img" --init /bin/busybox >/dev/null
{ printf '\2'; cat "$seeds/initrd.img"; } > fuzz/corpus/boot_image/initrd-gzip
{ printf '\2'; (cd "$seeds/rd" && find . | cpio -o -H newc --quiet); (cd "$seeds/rd" && find . | cpio -o -H newc --quiet | zstd -q); } \
    > fuzz/corpus/boot_image/initrd-zstd
{ printf '\3'; cat "$seeds/gpt.img"; } > fuzz/corpus/boot_image/gpt
{ printf '\4'; cat /usr/lib/systemd/boot/efi/linuxx64.efi.stub; } > fuzz/corpus/boot_image/stub
cd fuzz
log=$(mktemp)
targets=(header metadata unlock dm_table token superblocks volume_toml http_response luks1 disk_layout boot_image)
for t in "${targets[@]}"; do
    dirs=("corpus/$t")
    [ -d "regressions/$t" ] && dirs+=("regressions/$t")
    # -runs=0: run every input of the corpus and the saved crashes once, fuzz nothing.
    if ! cargo +nightly fuzz run "$t" --release "${dirs[@]}" -- -runs=0 -max_len=200000 \
        -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed on a saved input" >&2
        exit 1
    fi
    echo "$t: replayed $(grep -m1 -oE 'INITED.*corp: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0) inputs"
    [ "$mode" = replay ] && continue
    echo "fuzzing $t for ${mode}s" >&2
    if ! cargo +nightly fuzz run "$t" --release "corpus/$t" -- -max_total_time="$mode" -max_len=200000 \
        -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed (a crash leaves its input in fuzz/artifacts/$t)" >&2
        exit 1
    fi
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE +cov:.*|Done [0-9]+ runs" "$log" | sed "s/^/$t: /" >&2 || true
done
rm -f "$log"
