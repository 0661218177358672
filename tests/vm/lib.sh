# Helpers for VM scenarios (sourced inside the VM). A scenario fails by exiting non-zero;
# its last output line is the reason shown in the report.
set -e
D1=/dev/vda
D2=/dev/vdb
printf 'first passphrase' > /tmp/k1
printf 'second passphrase' > /tmp/k2
FAST="--pbkdf pbkdf2 --pbkdf-force-iterations 1000"
fail() { echo "$*"; exit 1; }
# expect_code N CMD...: runs CMD, fails unless it exits with N.
expect_code() {
    want=$1; shift
    set +e; "$@" > /tmp/out 2>&1; got=$?; set -e
    [ "$got" -eq "$want" ] || { cat /tmp/out; fail "'$*' exited $got, wanted $want"; }
}
# The dm-crypt table of NAME without its key field (field 5).
table_nokey() { dmsetup table "$1" | awk '{ $5 = "<key>"; print }'; }
# now: seconds since boot with centiseconds, for timings.
now() { cut -d' ' -f1 /proc/uptime; }
# elapsed START: seconds since START (a value of now).
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# flip_byte DEV OFFSET: inverts the low bit of one byte on DEV and pushes it to the disk.
flip_byte() {
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | hexdump -e '1/1 "%u"')
    printf "\\$(printf %o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc,fsync 2>/dev/null
    echo 3 > /proc/sys/vm/drop_caches
}
# sb_area DEV SECTOR: the 4 KiB dm-integrity superblock area at SECTOR, in hex.
sb_area() { dd if="$1" bs=512 skip="$2" count=8 2>/dev/null | hexdump -v -e '16/1 "%02x" "\n"'; }
