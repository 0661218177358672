#!/usr/bin/env bash
# Every check the project keeps green: formatting, lints, the whole test suite including
# interop tests against the real cryptsetup (installed here from Debian), and the VM suite
# that activates volumes on a real kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
# Device-mapper needs a real kernel: the VM suite boots one under qemu (tests/vm/run.sh).
bash tests/vm/run.sh
# A short, bounded run of every fuzz target (libFuzzer on the nightly toolchain).
bash fuzz/run.sh 20
