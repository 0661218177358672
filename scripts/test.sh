#!/usr/bin/env bash
# Every check the project keeps green: formatting, lints, and the whole test suite,
# including interop tests against the real cryptsetup (installed here from Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
