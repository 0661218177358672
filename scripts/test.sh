#!/usr/bin/env bash
# Every check the project keeps green: formatting, lints, the whole test suite including
# interop tests against the real cryptsetup (installed here from Debian), the XTS cross-check
# against OpenSSL, the VM suite that activates volumes on a real kernel, and a replay of every
# fuzz target's seed corpus and saved crash inputs. Every stage runs even when an earlier one
# fails; ends with one line, "all: N passed, N failed", counted from the stages' own reports,
# and exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin keyutils libssl-dev pkg-config systemd openssl e2fsprogs util-linux lvm2 gdisk cpio pesign sbsigntool systemd-boot-efi \
    dosfstools mtools qemu-utils binutils zstd python3
# One pass over a clean tree gains nothing from incremental state, which would double the
# debug target's size on disk; the whole run needs about 8 GiB free (a full disk fails every
# stage at once, so say how much there is).
export CARGO_INCREMENTAL=0
echo "disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free under $PWD" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
broken=0
stage() {
    echo "== $*" >&2
    if ! "$@" 2>&1 | tee -a "$log"; then
        echo "STAGE FAILED: $*" | tee -a "$log"
        broken=$((broken + 1))
    fi
}
stage cargo fmt --all --check
stage cargo clippy --locked --all-targets -- -D warnings
# Debian's shim, GRUB and cloud kernel, unpacked for the reference-value tests.
stage bash scripts/fixtures.sh
stage cargo test --locked --no-fail-fast
# Our XTS against OpenSSL's (the benches workspace carries the openssl crate).
stage cargo test --release --locked --manifest-path benches/Cargo.toml
# Device-mapper needs a real kernel: the VM suite boots one under qemu (tests/vm/run.sh).
stage bash tests/vm/run.sh
# The whole system: our initrd boots a verity-protected root with an encrypted delta.
stage bash tests/vm/fde/boot.sh
# Conversion of a Debian image built from packages, as an unprivileged user; boots under OVMF.
stage bash tests/fde/convert.sh
# The install step (make install/uninstall, man pages, completions) and the Debian package,
# on the static binary.
stage bash tests/install.sh
# Every fuzz target over its seeds and saved crashes (exploratory fuzzing: fuzz/run.sh SECONDS).
stage bash fuzz/run.sh replay
count() { awk -v re="$1" -v f="$2" '$0 ~ re { n += $f } END { print n + 0 }' "$log"; }
unit_ok=$(count '^test result: ' 4)
unit_failed=$(count '^test result: ' 6)
vm_ok=$(grep -c '^PASS  ' "$log" || true)
vm_failed=$(grep -c '^FAIL  ' "$log" || true)
fuzz_ok=$(grep -cE '^[a-z0-9_]+: replayed [0-9]+ inputs' "$log" || true)
passed=$((unit_ok + vm_ok + fuzz_ok))
failed=$((unit_failed + vm_failed + broken))
echo "cargo tests: $unit_ok passed, $unit_failed failed; VM scenarios: $vm_ok passed, $vm_failed failed; fuzz targets replayed: $fuzz_ok; failed stages: $broken"
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
