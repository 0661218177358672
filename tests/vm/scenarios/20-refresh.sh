# cryptsetup's refresh (and open/refresh --persistent) on the kernel: from the same mapping,
# the real tool and ours under its name swap in the same tables (LUKS2 with the key in the
# keyring or in the table, LUKS1, LUKS2 with integrity and both its layers, plain), with the
# same exit codes and messages, the data and a mounted file system intact, read-only kept; a
# header or passphrase for another key is refused by both; the flags --persistent stores are
# the real tool's, and later opens apply them.
mkdir -p /tmp/dropin
for t in cryptsetup veritysetup integritysetup; do ln -sf "$(command -v cryptpilot)" /tmp/dropin/$t; done
REAL=$(command -v cryptsetup)
OURS=/tmp/dropin/cryptsetup
n=0
# tables NAME: the tables of NAME (and NAME_dif), keys masked.
tables() {
    dmsetup table "$1" | awk '$3 == "crypt" { $5 = "<key>" } { print }'
    dmsetup table "$1_dif" 2>/dev/null || true
}
flags_line() { "$REAL" luksDump "$1" | grep '^Flags:'; }
printf wrong > /tmp/kw
"$REAL" luksFormat -q $FAST --key-file /tmp/k1 $D1
dd if=/dev/urandom of=/tmp/rf.data bs=4k count=4 2>/dev/null
"$REAL" open -d /tmp/k1 $D1 rf
dd if=/tmp/rf.data of=/dev/mapper/rf bs=4k count=4 oflag=direct 2>/dev/null
# both_refresh ARGS: the real tool refreshes rf with ARGS, then ours (each from the start
# `refresh $reset < $reset_in` gives; standard input from $in); the tables, the exit codes
# and the messages agree, and the data reads back.
in=/dev/null
reset="-d /tmp/k1"
reset_in=/dev/null
both_refresh() {
    "$REAL" refresh $reset rf < "$reset_in"
    set +e
    "$REAL" refresh "$@" rf < "$in" > /tmp/real.out 2>/tmp/real.err; r=$?
    set -e
    tables rf > /tmp/t.real
    "$REAL" refresh $reset rf < "$reset_in"
    set +e
    "$OURS" refresh "$@" rf < "$in" > /tmp/ours.out 2>/tmp/ours.err; o=$?
    set -e
    tables rf > /tmp/t.ours
    [ "$r" -eq "$o" ] || fail "refresh $*: exit $o, real $r ($(cat /tmp/ours.err))"
    cmp -s /tmp/real.err /tmp/ours.err || fail "refresh $*: standard error: $(cat /tmp/ours.err) / real $(cat /tmp/real.err)"
    cmp -s /tmp/real.out /tmp/ours.out || fail "refresh $*: output: $(cat /tmp/ours.out) / real $(cat /tmp/real.out)"
    cmp -s /tmp/t.real /tmp/t.ours || fail "refresh $*: tables: $(cat /tmp/t.ours) / real $(cat /tmp/t.real)"
    dd if=/dev/mapper/rf bs=4k count=4 iflag=direct 2>/dev/null | cmp -s - /tmp/rf.data || fail "refresh $*: data"
    n=$((n + 1))
}
both_refresh -d /tmp/k1 --allow-discards --perf-no_read_workqueue
both_refresh -d /tmp/k1
both_refresh -v -d /tmp/k1 --perf-same_cpu_crypt --perf-submit_from_crypt_cpus --perf-no_write_workqueue
both_refresh -d /tmp/kw --allow-discards
both_refresh -d /tmp/k1 --disable-keyring --allow-discards
both_refresh --type plain -d /tmp/k1 --allow-discards
"$REAL" close rf
# Plain: the live cipher, key size, offsets and size are kept (options for them are
# ignored); the passphrase and --hash must give the live key.
printf 'plain passphrase' > /tmp/pp
"$REAL" open --type plain -c aes-xts-plain64 -s 512 --hash sha256 -o 40960 -p 2 $D1 rf < /tmp/pp
dd if=/tmp/rf.data of=/dev/mapper/rf bs=4k count=4 oflag=direct 2>/dev/null
in=/tmp/pp; reset="--hash sha256"; reset_in=/tmp/pp
both_refresh --hash sha256 --allow-discards
both_refresh -v --hash sha256 --perf-no_write_workqueue -c aes-cbc-essiv:sha256 -s 256
both_refresh --allow-discards
in=/tmp/kw
both_refresh --hash sha256 --allow-discards
"$REAL" close rf
# With a key file (its bytes are the key), the real tool 2.6.1 cannot refresh a plain
# mapping (it exits 1 without a word: the mapping has no hash to give the key file to); ours
# does. Both print the warnings for --hash and --keyfile-size.
head -c 64 /dev/urandom > /tmp/pk
"$REAL" open --type plain -c aes-xts-plain64 -s 512 -o 40960 -d /tmp/pk $D1 rf
dd if=/tmp/rf.data of=/dev/mapper/rf bs=4k count=4 oflag=direct 2>/dev/null
set +e
"$REAL" refresh -d /tmp/pk --hash sha256 --keyfile-size 64 --allow-discards rf > /tmp/real.out 2>&1; r=$?
"$OURS" refresh -d /tmp/pk --hash sha256 --keyfile-size 64 --allow-discards rf > /tmp/ours.out 2>&1; o=$?
set -e
[ $r -eq 1 ] && [ $o -eq 0 ] || fail "plain refresh with a key file: exit $o, real $r ($(cat /tmp/ours.out))"
cmp -s /tmp/real.out /tmp/ours.out || fail "plain refresh with a key file: $(cat /tmp/ours.out) / real $(cat /tmp/real.out)"
dmsetup table rf | grep -q allow_discards || fail "plain refresh with a key file: $(table_nokey rf)"
dd if=/dev/mapper/rf bs=4k count=4 iflag=direct 2>/dev/null | cmp -s - /tmp/rf.data || fail "plain refresh with a key file: data"
head -c 64 /dev/urandom > /tmp/pk2
"$OURS" refresh -d /tmp/pk2 --allow-discards rf 2>/tmp/ours.err && fail "refresh with another key file went ahead"
grep -qx 'Mismatching parameters on device rf.' /tmp/ours.err || fail "another key file: $(cat /tmp/ours.err)"
n=$((n + 2))
in=/dev/null; reset="-d /tmp/k1"; reset_in=/dev/null
"$REAL" close rf
"$REAL" open -d /tmp/k1 $D1 rf
# A mounted file system stays mounted and usable through a refresh.
mkfs.ext4 -q /dev/mapper/rf
mount -t ext4 /dev/mapper/rf /mnt
echo hello > /mnt/f
"$OURS" refresh -d /tmp/k1 --allow-discards rf || fail "refresh of a mounted mapping"
[ "$(cat /mnt/f)" = hello ] || fail "file after refresh"
umount /mnt
dd if=/dev/mapper/rf of=/tmp/rf.data bs=4k count=4 iflag=direct 2>/dev/null
# --persistent: the flags go to the header as the real tool writes them; --persistent
# without flags clears them; a later open applies them.
for side in real ours; do
    tool=$REAL; [ $side = ours ] && tool=$OURS
    "$tool" refresh -d /tmp/k1 --persistent --perf-no_write_workqueue --allow-discards rf || fail "$side refresh --persistent"
    "$REAL" luksDump --dump-json-metadata $D1 | tr -d ' \n' | grep -o '"config":{[^}]*}' > /tmp/cfg.$side
    flags_line $D1 > /tmp/flags.$side
    "$tool" refresh -d /tmp/k1 --persistent rf
    flags_line $D1 | grep -qx 'Flags:       	(no flags)' || fail "$side: flags not cleared: $(flags_line $D1)"
done
cmp -s /tmp/cfg.real /tmp/cfg.ours || fail "config after --persistent: $(cat /tmp/cfg.ours) / real $(cat /tmp/cfg.real)"
cmp -s /tmp/flags.real /tmp/flags.ours || fail "luksDump flags after --persistent: $(cat /tmp/flags.ours) / real $(cat /tmp/flags.real)"
"$OURS" refresh -d /tmp/k1 --persistent --allow-discards rf
"$REAL" close rf
"$OURS" open -d /tmp/k1 $D1 rf
dmsetup table rf | grep -q allow_discards || fail "stored flag not applied by open: $(table_nokey rf)"
"$OURS" refresh -d /tmp/k1 rf
dmsetup table rf | grep -q allow_discards || fail "stored flag not applied by refresh: $(table_nokey rf)"
"$OURS" close rf
"$REAL" open -d /tmp/k1 --persistent $D1 rf
"$REAL" close rf
flags_line $D1 | grep -qx 'Flags:       	(no flags)' || fail "open --persistent did not clear: $(flags_line $D1)"
"$OURS" open -d /tmp/k1 --persistent --perf-same_cpu_crypt $D1 rf
flags_line $D1 > /tmp/f.ours; "$REAL" close rf
"$REAL" open -d /tmp/k1 --persistent --perf-same_cpu_crypt $D1 rf
flags_line $D1 > /tmp/f.real; "$REAL" close rf
cmp -s /tmp/f.real /tmp/f.ours || fail "open --persistent: $(cat /tmp/f.ours) / real $(cat /tmp/f.real)"
n=$((n + 3))
# A read-only mapping stays read-only.
"$REAL" open -r -d /tmp/k1 $D1 rf
both_refresh -d /tmp/k1 --allow-discards
"$OURS" status rf | grep -q 'mode:    readonly' || fail "refresh made it writable: $("$OURS" status rf)"
"$REAL" close rf
# Names that are not a LUKS mapping.
same_err() {
    set +e
    "$REAL" "$@" > /tmp/real.out 2>/tmp/real.err; r=$?
    "$OURS" "$@" > /tmp/ours.out 2>/tmp/ours.err; o=$?
    set -e
    [ "$r" -eq "$o" ] || fail "$*: exit $o, real $r ($(cat /tmp/ours.err))"
    cmp -s /tmp/real.err /tmp/ours.err || fail "$*: standard error: $(cat /tmp/ours.err) / real $(cat /tmp/real.err)"
    n=$((n + 1))
}
same_err refresh -d /tmp/k1 nothere
# A header with the mapping's UUID but another volume key (a stale backup, a luksFormat
# --uuid): with the key in the table both tools see it differs, and nothing changes.
"$REAL" open -d /tmp/k1 --disable-keyring $D1 rf
truncate -s 32M /tmp/other.img
"$REAL" luksFormat -q $FAST --key-file /tmp/k1 --uuid "$("$REAL" luksUUID $D1)" /tmp/other.img
tables rf > /tmp/t.before
same_err refresh -d /tmp/k1 --disable-keyring --allow-discards --header /tmp/other.img rf
same_err refresh -d /tmp/k1 --allow-discards --header /tmp/other.img rf
tables rf | cmp -s - /tmp/t.before || fail "a refused refresh changed the tables: $(tables rf)"
"$REAL" close rf
dmsetup create lin --table "0 8 linear $D2 0"
same_err refresh -d /tmp/k1 lin
dmsetup remove lin
# LUKS1: refreshed; --persistent cannot store flags there (exit 0, the real tool's lines).
"$REAL" luksFormat -q --type luks1 $FAST --key-file /tmp/k1 $D1
"$REAL" open -d /tmp/k1 $D1 rf
dd if=/tmp/rf.data of=/dev/mapper/rf bs=4k count=4 oflag=direct 2>/dev/null
both_refresh -d /tmp/k1 --allow-discards
both_refresh -d /tmp/k1 --persistent --allow-discards
"$REAL" close rf
# LUKS2 with integrity: both layers reloaded (no journal: mode D); discards refused.
"$REAL" luksFormat -q $FAST --key-file /tmp/k1 --integrity hmac-sha256 --integrity-no-wipe $D2
"$REAL" open -d /tmp/k1 $D2 rf
dd if=/tmp/rf.data of=/dev/mapper/rf bs=4k count=4 oflag=direct 2>/dev/null

both_refresh -d /tmp/k1 --integrity-no-journal
both_refresh -d /tmp/k1
both_refresh -d /tmp/k1 --allow-discards
"$REAL" close rf
echo "refresh: $n command lines agree with the real tool on the kernel"
