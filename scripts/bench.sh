#!/usr/bin/env bash
# Performance side by side with the C anchors, in one run: `cryptpilot benchmark` and
# `openssl speed`, then the criterion suite in benches/ (XTS against OpenSSL, thread scaling,
# Argon2 unlock against cryptsetup, 1 GiB encrypt-image against a dd copy, verity format
# against veritysetup, fde convert of a 2 GiB Debian image against cp --sparse=always).
#   bash scripts/bench.sh [CRITERION-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin libssl-dev pkg-config openssl
cargo build --release --locked -q -p cryptpilot
# The conversion benchmark's source and initrd /init (a static build).
build_static >/dev/null
need_packages mmdebstrap e2fsprogs gdisk dosfstools mtools
bash tests/fde/debian-image.sh target/fixtures/debian.img
echo "== cryptpilot benchmark"
target/release/cryptpilot benchmark --pbkdf-memory 65536 --seconds 1
echo "== openssl speed (one thread, then -multi $(nproc))"
openssl speed -evp aes-256-xts -bytes 4096 -seconds 2 2>/dev/null | tail -1
openssl speed -evp aes-256-xts -bytes 512 -seconds 2 2>/dev/null | tail -1
openssl speed -evp aes-256-xts -bytes 4096 -seconds 2 -multi "$(nproc)" 2>/dev/null | tail -1
echo "== criterion"
CRYPTPILOT_BIN=$PWD/target/release/cryptpilot cargo bench --manifest-path benches/Cargo.toml -- "$@"
