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
