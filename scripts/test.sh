#!/usr/bin/env bash
# Every check the project keeps green: formatting, lints, the whole test suite including
# interop tests against the real cryptsetup (installed here from Debian), the XTS cross-check
# against OpenSSL, the VM suite that
# activates volumes on a real kernel, and a short run of every fuzz target. Ends with one
# line: "all: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin libssl-dev pkg-config systemd openssl
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked 2>&1 | tee -a "$log"
# Our XTS against OpenSSL's (the benches workspace carries the openssl crate).
cargo test --release --locked --manifest-path benches/Cargo.toml 2>&1 | tee -a "$log"
# Device-mapper needs a real kernel: the VM suite boots one under qemu (tests/vm/run.sh).
bash tests/vm/run.sh 2>&1 | tee -a "$log"
# A short, bounded run of every fuzz target (libFuzzer on the nightly toolchain).
bash fuzz/run.sh 20 2>&1 | tee -a "$log"
unit=$(awk '/^test result: ok\./ { n += $4 } END { print n + 0 }' "$log")
vm=$(grep -c '^PASS  ' "$log" || true)
fuzz=$(grep -c 'stat::number_of_executed_units' "$log" || true)
echo "cargo tests: $unit, VM scenarios: $vm, fuzz targets: $fuzz"
echo "all: $((unit + vm + fuzz)) passed, 0 failed"
