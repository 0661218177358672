#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 20), after seeding the corpora from headers
# that cryptsetup and cryptpilot write. A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/; make it a regression test before fixing.
#
#   bash fuzz/run.sh            # the short bounded run the test command does
#   bash fuzz/run.sh 600        # ten minutes per target
set -euo pipefail
secs=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages cryptsetup-bin python3
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
python3 fuzz/seed.py fuzz/corpus "$seeds"/*.img
cd fuzz
log=$(mktemp)
for t in header metadata unlock dm_table token superblocks volume_toml http_response; do
    echo "fuzzing $t for ${secs}s" >&2
    if ! cargo +nightly fuzz run "$t" --release -- -max_total_time="$secs" -max_len=200000 \
        -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $t failed (a crash leaves its input in fuzz/artifacts/$t)" >&2
        exit 1
    fi
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|DONE +cov:.*|Done [0-9]+ runs" "$log" | sed "s/^/$t: /" >&2 || true
done
rm -f "$log"
