# The drop-in names on a real kernel: the same cryptsetup/veritysetup command lines for
# activation, status, resize and close, run with the real tools and with our binary under
# their names, give the same exit codes, the same `status` text and the same tables.
mkdir -p /tmp/dropin
for t in cryptsetup veritysetup integritysetup; do ln -sf "$(command -v cryptpilot)" /tmp/dropin/$t; done
REAL=$(command -v cryptsetup)
REALV=$(command -v veritysetup)
n=0
# same CODE_ONLY|OUT "ARGS": the real tool and ours, each on a fresh mapping state set up
# by the caller; compares exit codes (and standard output with OUT).
same() {
    mode=$1; shift
    set +e
    "$REAL" "$@" > /tmp/real.out 2>/tmp/real.err; r=$?
    cleanup_real
    /tmp/dropin/cryptsetup "$@" > /tmp/ours.out 2>/tmp/ours.err; o=$?
    set -e
    [ "$r" -eq "$o" ] || fail "cryptsetup $*: exit $o, real $r ($(cat /tmp/ours.err))"
    if [ "$mode" = OUT ]; then
        cmp -s /tmp/real.out /tmp/ours.out || fail "cryptsetup $*: output differs: $(diff /tmp/real.out /tmp/ours.out | head -5)"
    fi
    n=$((n + 1))
}
cleanup_real() { :; }

"$REAL" luksFormat -q $FAST --key-file /tmp/k1 $D1
printf wrong > /tmp/kw

# open: the same table either way, and `status` prints the same text for both mappings.
"$REAL" open --key-file /tmp/k1 $D1 real0
/tmp/dropin/cryptsetup open --key-file /tmp/k1 $D1 ours0 2>/tmp/err || fail "open: $(cat /tmp/err)"
[ "$(table_nokey real0)" = "$(table_nokey ours0)" ] || fail "tables: $(table_nokey real0) / $(table_nokey ours0)"
"$REAL" status real0 | sed 's/real0/NAME/' > /tmp/s.real
/tmp/dropin/cryptsetup status ours0 | sed 's/ours0/NAME/' > /tmp/s.ours
cmp -s /tmp/s.real /tmp/s.ours || fail "status differs: $(diff /tmp/s.real /tmp/s.ours | head -6)"
n=$((n + 2))
# status of an inactive name, close of a missing one, open under a name in use.
same OUT status nothere
same CODE close nothere
same CODE open --key-file /tmp/k1 $D1 real0
same CODE open --key-file /tmp/kw $D1 wrongkey
same CODE open --key-file /tmp/k1 /dev/nonexistent x
same CODE luksClose nothere
# A mounted mapping is busy: both refuse to close it (exit 5).
mkfs.ext4 -q /dev/mapper/ours0
mount -t ext4 /dev/mapper/ours0 /mnt
same CODE close ours0
umount /mnt
/tmp/dropin/cryptsetup close ours0 || fail "close"
"$REAL" close real0
# read-only, and the old luksOpen; resize to a size and back.
/tmp/dropin/cryptsetup luksOpen --readonly -d /tmp/k1 $D1 ro0 || fail "luksOpen --readonly"
/tmp/dropin/cryptsetup status ro0 | grep -q 'mode:.*readonly' || fail "status: $(/tmp/dropin/cryptsetup status ro0)"
/tmp/dropin/cryptsetup remove ro0
/tmp/dropin/cryptsetup open -d /tmp/k1 --disable-keyring $D1 rs0
/tmp/dropin/cryptsetup resize --size 2048 rs0 || fail "resize"
[ "$(blockdev --getsz /dev/mapper/rs0)" = 2048 ] || fail "resize: $(blockdev --getsz /dev/mapper/rs0) sectors"
"$REAL" status rs0 | grep -q 'size:  *2048 sectors' || fail "real status after our resize: $("$REAL" status rs0)"
/tmp/dropin/cryptsetup -v close rs0 | grep -qx 'Command successful.' || fail "-v close"
n=$((n + 4))
# open --test-passphrase -v reports the slot as cryptsetup does.
same OUT open --test-passphrase -v -d /tmp/k1 $D1
# Plain mode is refused by name.
set +e; /tmp/dropin/cryptsetup open --type plain -d /tmp/k1 $D1 p0 2>/tmp/err; c=$?; set -e
[ "$c" = 1 ] && grep -q -- '--type plain' /tmp/err || fail "plain: exit $c: $(cat /tmp/err)"
n=$((n + 1))

# veritysetup: open with ours, the real status agrees; close with ours.
dd if=/dev/urandom of=$D2 bs=1M count=8 2>/dev/null
root=$("$REALV" format $D2 /tmp/hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555 | awk '/Root hash/ {print $3}')
/tmp/dropin/veritysetup open $D2 v0 /tmp/hash.img "$root" 2>/tmp/err || fail "veritysetup open: $(cat /tmp/err)"
"$REALV" status v0 | grep -q 'status:.*verified\|is active' || fail "veritysetup status: $("$REALV" status v0)"
set +e; /tmp/dropin/veritysetup open $D2 v1 /tmp/hash.img 00$root 2>/dev/null; c=$?; "$REALV" open $D2 v1 /tmp/hash.img 00$root 2>/dev/null; r=$?; set -e
[ "$c" = "$r" ] || fail "veritysetup open with a wrong root hash: exit $c, real $r"
/tmp/dropin/veritysetup close v0 || fail "veritysetup close"
n=$((n + 3))
[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] || fail "stray mapping: $(dmsetup ls)"
echo "drop-in: $n command lines agree with the real tools on the kernel"
