#!/usr/bin/env bash
# The main job on a demo image: format a 64 MiB image as LUKS2 with cryptpilot (Argon2id,
# calibrated), manage its keys, encrypt an image offline, build a verity tree, and show that
# the real cryptsetup and veritysetup agree at every step.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin
cargo build --release --locked -q
cp=$PWD/target/release/cryptpilot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
truncate -s 64M demo.img
printf 'demo passphrase' > pass1
printf 'second passphrase' > pass2
step() { printf '\n== %s\n' "$*"; }

step "cryptpilot luks format (argon2id, calibrated to 1 s)"
time "$cp" luks format -q --iter-time 1000 --label demo --key-file pass1 demo.img
step "cryptpilot luks dump"
"$cp" luks dump demo.img
step "cryptsetup accepts our header and passphrase"
cryptsetup open --test-passphrase --key-file pass1 demo.img && echo "cryptsetup: passphrase OK"
step "cryptpilot luks add-key; cryptsetup opens with the new key"
"$cp" luks add-key --key-file pass1 --pbkdf pbkdf2 --iter-time 200 demo.img pass2
cryptsetup open --test-passphrase --key-file pass2 demo.img && echo "cryptsetup: second passphrase OK"
step "both tools recover the same volume key"
cryptsetup luksDump -q --dump-volume-key --volume-key-file cs.key --key-file pass2 demo.img >/dev/null
"$cp" luks dump -q --dump-volume-key --volume-key-file our.key --key-file pass2 demo.img >/dev/null
cmp cs.key our.key && echo "volume keys match ($(stat -c %s our.key) bytes)"
step "a damaged primary header still opens, and repair restores it"
printf 'garbage!' | dd of=demo.img bs=1 seek=64 conv=notrunc status=none
"$cp" luks open --test-passphrase --key-file pass1 demo.img && echo "cryptpilot: opened from the secondary copy"
"$cp" luks repair demo.img
step "a wrong passphrase: exit code 2, nothing changed"
sum=$(sha256sum demo.img)
printf 'wrong' > wrong
set +e; "$cp" luks open --test-passphrase --key-file wrong demo.img; rc=$?; set -e
echo "exit code $rc"; [ "$rc" -eq 2 ] && [ "$sum" = "$(sha256sum demo.img)" ] && echo "image unchanged"
step "cryptpilot luks remove-key; cryptsetup no longer opens with it"
"$cp" luks remove-key -q demo.img pass2
if cryptsetup open --test-passphrase --key-file pass2 demo.img 2>/dev/null; then exit 1; fi
echo "cryptsetup: second passphrase rejected, as it should be"
step "encrypt-image: a plain image into a LUKS2 image, no root; decrypt-image restores it"
head -c 8M /dev/urandom > plain.img
"$cp" luks encrypt-image -q --pbkdf pbkdf2 --iter-time 200 --key-file pass1 --in plain.img --out enc.img
cryptsetup open --test-passphrase --key-file pass1 enc.img && echo "cryptsetup: encrypted image opens"
"$cp" luks decrypt-image -q --key-file pass1 --in enc.img --out back.img
cmp plain.img back.img && echo "decrypted image equals the input"
step "dm-verity: a hash tree veritysetup verifies"
"$cp" verity format --root-hash-file root.hex plain.img plain.hash
veritysetup verify plain.img plain.hash "$(cat root.hex)" && echo "veritysetup: tree verified"
step "cryptpilot benchmark (short)"
"$cp" benchmark --pbkdf-memory 65536 --seconds 0.2
printf '\ndemo done\n'
