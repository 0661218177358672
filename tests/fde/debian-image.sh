#!/usr/bin/env bash
# A Debian bookworm cloud-style disk image built from Debian's packages (nothing prebuilt can
# be downloaded here): mmdebstrap makes the root (systemd, the cloud kernel, signed shim and
# GRUB, initramfs-tools), then the GPT image is assembled without mounting, in the layout of
# Debian's cloud images: p14 BIOS boot, p15 ESP (shim as EFI/BOOT/BOOTX64.EFI, GRUB beside it,
# EFI/debian/grub.cfg searching the root by UUID), p1 ext4 root with /boot and GRUB's
# configuration. A oneshot unit prints where / comes from to the console and powers off.
#
# usage: debian-image.sh OUT.img   (cached: rebuilt only when this script changes)
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(sha256sum "$0" | cut -c1-16)
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "building a Debian bookworm root with mmdebstrap from $mirror" >&2
mmdebstrap --quiet --mode=root --variant=minbase \
    --include=systemd-sysv,udev,linux-image-cloud-amd64,grub-efi-amd64-signed,shim-signed,e2fsprogs,initramfs-tools,zstd,kmod \
    bookworm "$root" "deb $mirror bookworm main" >&2
kver=$(ls "$root/lib/modules" | head -1)
root_uuid=$(cat /proc/sys/kernel/random/uuid)
root_partuuid=$(cat /proc/sys/kernel/random/uuid)
esp_partuuid=$(cat /proc/sys/kernel/random/uuid)
cat > "$root/etc/fstab" <<FSTAB
PARTUUID=$root_partuuid / ext4 rw,discard,errors=remount-ro,x-systemd.growfs 0 1
PARTUUID=$esp_partuuid /boot/efi vfat defaults 0 0
FSTAB
mkdir -p "$root/boot/efi" "$root/boot/grub"
echo debian-fde > "$root/etc/hostname"
cat > "$root/etc/systemd/system/fde-check.service" <<'UNIT'
[Unit]
Description=Report the root file system and power off
After=multi-user.target local-fs.target

[Service]
Type=oneshot
# Also through the kernel log (level 2: shown on the serial console even with `quiet`): the
# serial getty starting at the same time hangs up /dev/ttyS0, and a report written there in
# that moment alone is lost.
ExecStart=/bin/sh -c 'r() { echo "FDE-CHECK $*" > /dev/ttyS0; echo "<2>FDE-CHECK $*" > /dev/kmsg; }; r "root=$(findmnt -n -o SOURCE /) fstype=$(findmnt -n -o FSTYPE /) dm=$(ls /dev/mapper | tr "\\n" " ")"; echo written > /var/fde-written && r "write ok"; r "boot=$(findmnt -n -o SOURCE /boot)"; systemctl poweroff'

[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/fde-check.service "$root/etc/systemd/system/multi-user.target.wants/fde-check.service"
# Debian's grub.cfg shape, as grub-mkconfig writes it (it cannot probe devices here).
cat > "$root/boot/grub/grub.cfg" <<CFG
function load_video {
  insmod all_video
}
set default="0"
set timeout=1
insmod part_gpt
insmod ext2
search --no-floppy --fs-uuid --set=root $root_uuid
menuentry 'Debian GNU/Linux' --class debian \$menuentry_id_option 'gnulinux-simple-$root_uuid' {
	load_video
	insmod gzio
	insmod part_gpt
	insmod ext2
	search --no-floppy --fs-uuid --set=root $root_uuid
	echo	'Loading Linux $kver ...'
	linux	/boot/vmlinuz-$kver root=UUID=$root_uuid ro  console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0
	echo	'Loading initial ramdisk ...'
	initrd	/boot/initrd.img-$kver
}
CFG
printf '# GRUB Environment Block\n%s\n' "$(head -c 998 /dev/zero | tr '\0' '#')" | head -c 1024 > "$root/boot/grub/grubenv"
# The ESP, as grub-install --uefi-secure-boot lays it out.
esp=$work/esp.img
mkfs.vfat -C "$esp" $((254 * 1024 / 2)) >/dev/null
mmd -i "$esp" ::EFI ::EFI/debian ::EFI/BOOT
printf 'search.fs_uuid %s root hd0,gpt1 \nset prefix=($root)'"'"'/boot/grub'"'"'\nconfigfile $prefix/grub.cfg\n' "$root_uuid" > "$work/esp-grub.cfg"
mcopy -i "$esp" "$root/usr/lib/shim/shimx64.efi.signed" ::EFI/debian/shimx64.efi
mcopy -i "$esp" "$root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::EFI/debian/grubx64.efi
mcopy -i "$esp" "$work/esp-grub.cfg" ::EFI/debian/grub.cfg
mcopy -i "$esp" "$root/usr/lib/shim/shimx64.efi.signed" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$root/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" ::EFI/BOOT/grubx64.efi
# The disk: 2 GiB, Debian cloud numbering.
img=$work/disk.img
truncate -s 2G "$img"
sgdisk -n 14:2048:8191 -t 14:ef02 -n 15:8192:262143 -t 15:ef00 -u 15:"$esp_partuuid" \
       -n 1:262144:0 -t 1:8300 -u 1:"$root_partuuid" "$img" >/dev/null
rootsize=$(( ($(stat -c %s "$img") / 512 - 34 - 262144) / 2 ))
mkfs.ext4 -q -F -U "$root_uuid" -L root -d "$root" "$work/root.img" "${rootsize}k"
dd if="$esp" of="$img" bs=512 seek=8192 conv=notrunc,sparse status=none
dd if="$work/root.img" of="$img" bs=512 seek=262144 conv=notrunc,sparse status=none
mv "$img" "$out"
echo "$stamp" > "$out.stamp"
echo "$out: Debian bookworm, kernel $kver" >&2
