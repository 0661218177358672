#!/usr/bin/env bash
# Boot-chain files from Debian's own packages for the reference-value tests (no prebuilt image
# can be downloaded here): shim (shim-signed), GRUB (grub-efi-amd64-signed) and the cloud
# kernel, unpacked (not installed) into target/fixtures/boot/. Idempotent; cargo test reads
# the directory (CRYPTPILOT_FIXTURES overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${CRYPTPILOT_FIXTURES:-$PWD/target/fixtures}
boot=$out/boot
[ -f "$boot/vmlinuz" ] && [ -f "$boot/shimx64.efi" ] && [ -f "$boot/grubx64.efi" ] && exit 0
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$kpkg" ] || { echo "cannot find the cloud kernel package (apt-get update?)" >&2; exit 1; }
mkdir -p "$out/debs" "$boot"
cd "$out/debs"
for p in shim-signed grub-efi-amd64-signed "$kpkg"; do
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get -qq download "$p" >/dev/null 2>&1 \
        || { echo "cannot download $p" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in *.deb; do dpkg -x "$d" "$tmp"; done
cp "$(find "$tmp/usr/lib/shim" -name 'shimx64.efi.signed' | head -1)" "$boot/shimx64.efi"
cp "$(find "$tmp/usr/lib/grub/x86_64-efi-signed" -name 'grubx64.efi.signed' | head -1)" "$boot/grubx64.efi"
cp "$(ls "$tmp"/boot/vmlinuz-* | head -1)" "$boot/vmlinuz"
echo "${kpkg#linux-image-}" > "$boot/kernel-version"
echo "fixtures in $boot" >&2
