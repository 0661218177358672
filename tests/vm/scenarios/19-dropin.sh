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
    if [ "$mode" = ERR ]; then
        cmp -s /tmp/real.err /tmp/ours.err || fail "cryptsetup $*: standard error differs: $(cat /tmp/real.err) / $(cat /tmp/ours.err)"
    fi
    n=$((n + 1))
}
cleanup_real() { :; }

"$REAL" luksFormat -q $FAST --key-file /tmp/k1 $D1
printf wrong > /tmp/kw

# open: the same table either way, and `status` prints the same text for both mappings.
"$REAL" open --key-file /tmp/k1 $D1 real0
table_nokey real0 > /tmp/t.real
"$REAL" status real0 | sed 's/real0/NAME/' > /tmp/s.real
# status of an inactive name, close of a missing one, open under a name in use, open of a
# device in use (by the real tool's mapping).
same OUT status nothere
same ERR close nothere
same ERR open --key-file /tmp/k1 $D1 real0
same ERR open --key-file /tmp/k1 $D1 second
"$REAL" close real0
same ERR open --key-file /tmp/kw $D1 wrongkey
same ERR open --key-file /tmp/k1 /dev/nonexistent x
/tmp/dropin/cryptsetup open --key-file /tmp/k1 $D1 ours0 2>/tmp/err || fail "open: $(cat /tmp/err)"
[ "$(cat /tmp/t.real)" = "$(table_nokey ours0)" ] || fail "tables: $(cat /tmp/t.real) / $(table_nokey ours0)"
/tmp/dropin/cryptsetup status ours0 | sed 's/ours0/NAME/' > /tmp/s.ours
cmp -s /tmp/s.real /tmp/s.ours || fail "status differs: $(diff /tmp/s.real /tmp/s.ours | grep "^[-+] ")"
n=$((n + 2))
same CODE luksClose nothere
# A path for the name, as libcryptsetup takes one: the node under /dev/mapper, or /dev/dm-N;
# a block device that is no mapping is libdevmapper's "not found" (status 1, close 4).
same OUT status /dev/mapper/ours0
same OUT status "/dev/dm-$(dmsetup info -c --noheadings -o minor ours0 | tr -d ' ')"
same ERR status $D2
same ERR close $D2
# A mounted mapping is busy: both refuse to close it (exit 5).
mkfs.ext4 -q /dev/mapper/ours0
mount -t ext4 /dev/mapper/ours0 /mnt
same ERR close ours0
umount /mnt
/tmp/dropin/cryptsetup close /dev/mapper/ours0 || fail "close /dev/mapper/ours0"
dmsetup info ours0 >/dev/null 2>&1 && fail "close /dev/mapper/ours0 left the mapping"
# close --deferred: a mounted mapping stays, scheduled, until it is unmounted (with the real
# tool's line); --cancel-deferred keeps it. Each tool cancels the other's deferral.
/tmp/dropin/cryptsetup open -d /tmp/k1 $D1 df0
mount -t ext4 /dev/mapper/df0 /mnt
"$REAL" close --deferred df0 > /tmp/o.real
/tmp/dropin/cryptsetup close --cancel-deferred df0 || fail "cancel of the real tool's deferred close"
/tmp/dropin/cryptsetup close --deferred df0 > /tmp/o.ours || fail "close --deferred"
cmp -s /tmp/o.real /tmp/o.ours || fail "close --deferred: $(cat /tmp/o.ours) / $(cat /tmp/o.real)"
grep -qx 'Device df0 is still active and scheduled for deferred removal.' /tmp/o.ours || fail "close --deferred said: $(cat /tmp/o.ours)"
dmsetup info df0 | grep -q DEFERRED || fail "not scheduled: $(dmsetup info df0)"
"$REAL" close --cancel-deferred df0 || fail "the real tool cannot cancel our deferred close"
same CODE close --cancel-deferred df0
umount /mnt
dmsetup info df0 >/dev/null 2>&1 || fail "a cancelled deferred close removed the mapping"
# (Without udev, the real tool's deferred close took the node away at once.)
dmsetup mknodes df0
mount -t ext4 /dev/mapper/df0 /mnt
/tmp/dropin/cryptsetup close --deferred /dev/mapper/df0 > /dev/null
umount /mnt
dmsetup info df0 >/dev/null 2>&1 && fail "the deferred close did not remove the mapping at unmount"
# Unused, it goes at once and says nothing; the same for veritysetup's and integritysetup's.
/tmp/dropin/cryptsetup open -d /tmp/k1 $D1 df1
/tmp/dropin/cryptsetup close --deferred df1 > /tmp/o.ours
[ ! -s /tmp/o.ours ] && ! dmsetup info df1 >/dev/null 2>&1 || fail "close --deferred of an unused mapping: $(cat /tmp/o.ours)"
same ERR close --deferred nothere
n=$((n + 6))
# read-only, and the old luksOpen; resize to a size and back.
/tmp/dropin/cryptsetup luksOpen --readonly -d /tmp/k1 $D1 ro0 || fail "luksOpen --readonly"
/tmp/dropin/cryptsetup status ro0 | grep -q 'mode:.*readonly' || fail "status: $(/tmp/dropin/cryptsetup status ro0)"
/tmp/dropin/cryptsetup remove ro0
/tmp/dropin/cryptsetup open -d /tmp/k1 --disable-keyring $D1 rs0
/tmp/dropin/cryptsetup resize --size 2048 /dev/mapper/rs0 || fail "resize"
[ "$(blockdev --getsz /dev/mapper/rs0)" = 2048 ] || fail "resize: $(blockdev --getsz /dev/mapper/rs0) sectors"
"$REAL" status rs0 | grep -q 'size:  *2048 sectors' || fail "real status after our resize: $("$REAL" status rs0)"
/tmp/dropin/cryptsetup -v close rs0 | grep -qx 'Command successful.' || fail "-v close"
n=$((n + 4))
# luksSuspend wipes the key from dm-crypt (the table's key turns to zeros) and `status` says
# so; luksResume gives it back. Ours and the real tool take turns, both ways.
/tmp/dropin/cryptsetup open -d /tmp/k1 --disable-keyring $D1 sus0
key_of() { dmsetup table --showkeys "$1" | awk '{ print $5 }'; }
k_before=$(key_of sus0)
/tmp/dropin/cryptsetup luksSuspend sus0 || fail "luksSuspend"
[ "$(key_of sus0)" = "$(printf '%0128d' 0)" ] || fail "luksSuspend left the key: $(key_of sus0)"
"$REAL" status sus0 > /tmp/s.real; /tmp/dropin/cryptsetup status sus0 > /tmp/s.ours
cmp -s /tmp/s.real /tmp/s.ours || fail "suspended status differs: $(diff /tmp/s.real /tmp/s.ours | grep '^[-+] ')"
grep -q 'mode:    read/write (suspended)' /tmp/s.ours || fail "status: $(cat /tmp/s.ours)"
same ERR luksResume -d /tmp/kw sus0
"$REAL" luksResume -d /tmp/k1 sus0
"$REAL" luksSuspend sus0
/tmp/dropin/cryptsetup luksResume -d /tmp/k1 sus0 || fail "luksResume"
[ "$(key_of sus0)" = "$k_before" ] || fail "luksResume: another key"
dd if=/dev/mapper/sus0 of=/dev/null bs=4k count=1 2>/dev/null || fail "read after luksResume"
same ERR luksResume -d /tmp/k1 sus0
same ERR luksSuspend nothere
/tmp/dropin/cryptsetup close sus0
# Refusals in the real tool's words: suspending a plain mapping (nothing could resume it) or a
# suspended one, resuming with another volume's header (the mapping stays suspended).
printf 'a passphrase\n' | "$REAL" open --type plain $D1 pl0
same ERR luksSuspend pl0
"$REAL" close pl0
truncate -s 20M /tmp/other.img
"$REAL" luksFormat -q $FAST --key-file /tmp/k2 /tmp/other.img
/tmp/dropin/cryptsetup open -d /tmp/k1 $D1 sus2
"$REAL" luksSuspend sus2
same ERR luksSuspend sus2
same ERR luksResume --header /tmp/other.img -d /tmp/k2 sus2
"$REAL" status sus2 | grep -q 'mode:    read/write (suspended)' || fail "resumed with another header: $("$REAL" status sus2)"
/tmp/dropin/cryptsetup luksResume -d /tmp/k1 sus2 || fail "luksResume after refusals"
/tmp/dropin/cryptsetup close sus2
rm -f /tmp/other.img
# A keyring-keyed mapping: the resume loads the key under the table's description.
/tmp/dropin/cryptsetup open -d /tmp/k1 $D1 sus1
/tmp/dropin/cryptsetup luksSuspend sus1
/tmp/dropin/cryptsetup luksResume -d /tmp/k1 sus1 || fail "luksResume (keyring)"
"$REAL" status sus1 | grep -q 'mode:    read/write$' || fail "still suspended: $("$REAL" status sus1)"
dd if=/dev/mapper/sus1 of=/dev/null bs=4k count=1 2>/dev/null || fail "read after luksResume (keyring)"
/tmp/dropin/cryptsetup close sus1
n=$((n + 5))
# LUKS2 with integrity: the crypt target sits on NAME_dif; status names the device under it
# as the real tool does, and luksResume finds the header there without --header.
"$REAL" luksFormat -q $FAST --key-file /tmp/k1 --integrity hmac-sha256 --integrity-no-wipe $D2
"$REAL" open --key-file /tmp/k1 $D2 int0
"$REAL" status int0 > /tmp/s.real; /tmp/dropin/cryptsetup status int0 > /tmp/s.ours
cmp -s /tmp/s.real /tmp/s.ours || fail "integrity status differs: $(diff /tmp/s.real /tmp/s.ours | grep '^[-+] ')"
dd if=/dev/urandom of=/tmp/int.data bs=4k count=4 2>/dev/null
dd if=/tmp/int.data of=/dev/mapper/int0 bs=4k count=4 oflag=direct 2>/dev/null
/tmp/dropin/cryptsetup luksSuspend int0 || fail "luksSuspend (integrity)"
"$REAL" status int0 > /tmp/s.real; /tmp/dropin/cryptsetup status int0 > /tmp/s.ours
cmp -s /tmp/s.real /tmp/s.ours || fail "suspended integrity status differs: $(diff /tmp/s.real /tmp/s.ours | grep '^[-+] ')"
/tmp/dropin/cryptsetup luksResume -d /tmp/k1 int0 2>/tmp/err || fail "luksResume (integrity): $(cat /tmp/err)"
"$REAL" status int0 | grep -q 'mode:    read/write$' || fail "still suspended: $("$REAL" status int0)"
dd if=/dev/mapper/int0 bs=4k count=4 iflag=direct 2>/dev/null | cmp -s - /tmp/int.data || fail "data after luksResume (integrity)"
# A deferred close of it, held open: the integrity layer waits with it, a cancel keeps both,
# and both go when the holder lets go.
deferred() { dmsetup info "$1" | grep -q DEFERRED; }
exec 3< /dev/mapper/int0
/tmp/dropin/cryptsetup close --deferred int0 > /dev/null || fail "close --deferred (integrity)"
deferred int0 && deferred int0_dif || fail "not both deferred: $(dmsetup info int0 int0_dif)"
/tmp/dropin/cryptsetup close --cancel-deferred int0 || fail "cancel (integrity)"
! deferred int0 && ! deferred int0_dif || fail "still deferred: $(dmsetup info int0 int0_dif)"
/tmp/dropin/cryptsetup close --deferred int0 > /dev/null
exec 3<&-
! dmsetup info int0 >/dev/null 2>&1 && ! dmsetup info int0_dif >/dev/null 2>&1 || fail "left after the holder closed: $(dmsetup ls)"
n=$((n + 1))
n=$((n + 3))
# open --test-passphrase -v reports the slot as cryptsetup does.
same OUT open --test-passphrase -v -d /tmp/k1 $D1
# Plain mode: the same command line (and standard input) maps the same table, key included,
# and `status` prints the same text; then each tool's mapping is closed by the other.
plain_same() {
    input=$1; shift
    printf "$input" | "$REAL" "$@" rp > /tmp/real.out 2>/tmp/real.err || fail "real cryptsetup $*: $(cat /tmp/real.err)"
    dmsetup table --showkeys rp > /tmp/t.real
    "$REAL" status rp | sed 's/rp/NAME/' > /tmp/s.real
    /tmp/dropin/cryptsetup close rp || fail "close of the real plain mapping"
    printf "$input" | /tmp/dropin/cryptsetup "$@" op > /tmp/ours.out 2>/tmp/ours.err || fail "cryptsetup $*: $(cat /tmp/ours.err)"
    dmsetup table --showkeys op > /tmp/t.ours
    [ "$(dmsetup info -c --noheadings -o uuid op)" = CRYPT-PLAIN-op ] || fail "plain uuid: $(dmsetup info -c --noheadings -o uuid op)"
    /tmp/dropin/cryptsetup status op | sed 's/op/NAME/' > /tmp/s.ours
    "$REAL" close op
    cmp -s /tmp/real.out /tmp/ours.out || fail "cryptsetup $*: output differs: $(diff /tmp/real.out /tmp/ours.out | head -4)"
    cmp -s /tmp/t.real /tmp/t.ours || fail "cryptsetup $*: tables differ: $(cat /tmp/t.real) / $(cat /tmp/t.ours)"
    cmp -s /tmp/s.real /tmp/s.ours || fail "cryptsetup $* status differs: $(diff /tmp/s.real /tmp/s.ours | grep "^[-+] ")"
    n=$((n + 1))
}
plain_same 'a passphrase\n' open --type plain $D1
plain_same 'a passphrase\n' open --type plain -c aes-xts-plain64 -s 512 -h sha256 $D1
plain_same 'x\n' open --type plain -c aes-xts-plain64 -s 512 -h sha512:20 -o 8 -p 16 -b 4096 --sector-size 4096 --iv-large-sectors --allow-discards --perf-no_write_workqueue $D1
plain_same 'raw bytes without hashing, long enough' open --type plain --hash plain -d - $D1
plain_same 'piped key file, hashed' open --type plain -c aes-xts-plain64 -s 256 -d - --keyfile-size 5 $D1
printf '0123456789abcdefghijklmnopqrstuvwxyzABCD' > /tmp/k40
plain_same '' open --type plain -q -d /tmp/k40 --keyfile-offset 8 -h sha1 $D1
plain_same '' open --type plain -d /tmp/k1 -s 128 -h sha1 -l 3 $D1
plain_same 'p\n' open --type plain -r $D1
plain_same 'aes\n' open --type plain -c aes -s 128 $D1
# The old action (create NAME DEVICE), used: what the real mapping writes, ours reads.
printf 'old\n' | "$REAL" create rp $D1
head -c 65536 /dev/urandom > /tmp/plain.data
dd if=/tmp/plain.data of=/dev/mapper/rp bs=64k oflag=direct 2>/dev/null
"$REAL" close rp
printf 'old\n' | /tmp/dropin/cryptsetup create op $D1 || fail "create"
cmp -n 65536 /tmp/plain.data /dev/mapper/op || fail "plain data differs between the mappings"
/tmp/dropin/cryptsetup close op
n=$((n + 1))
# Errors: a name in use, a device in use (without --shared), a missing device, an offset
# past the end, a key size not in bytes, a key file shorter than the key, --test-passphrase
# (LUKS only). A mapping either side makes by mistake is removed before the other runs.
cleanup_real() { dmsetup remove p1 2>/dev/null || true; }
"$REAL" open --type plain -d /tmp/k1 -s 128 $D1 busy
same CODE open --type plain -d /tmp/k1 -s 128 $D1 busy
same CODE open --type plain -d /tmp/k1 -s 128 $D1 p1
cleanup_real
same CODE open --type plain -d /tmp/k1 -s 128 --shared -o 8 $D1 p1
cleanup_real
"$REAL" close busy
same CODE open --type plain -d /tmp/k1 -s 128 /dev/nonexistent p1
same CODE open --type plain -d /tmp/k1 -s 128 -o 999999999 $D1 p1
same CODE open --type plain -d /tmp/k1 -s 100 $D1 p1
same CODE open --type plain -d /tmp/k1 -s 512 $D1 p1
same CODE open --type plain --test-passphrase -d /tmp/k1 $D1
cleanup_real
cleanup_real() { :; }

# veritysetup: open with ours, the real status agrees; close with ours.
dd if=/dev/urandom of=$D2 bs=1M count=8 2>/dev/null
root=$("$REALV" format $D2 /tmp/hash.img --salt 00 --uuid 11111111-2222-3333-4444-555555555555 | awk '/Root hash/ {print $3}')
/tmp/dropin/veritysetup open $D2 v0 /tmp/hash.img "$root" 2>/tmp/err || fail "veritysetup open: $(cat /tmp/err)"
"$REALV" status v0 | grep -q 'status:.*verified\|is active' || fail "veritysetup status: $("$REALV" status v0)"
set +e; /tmp/dropin/veritysetup open $D2 v1 /tmp/hash.img 00$root 2>/dev/null; c=$?; "$REALV" open $D2 v1 /tmp/hash.img 00$root 2>/dev/null; r=$?; set -e
[ "$c" = "$r" ] || fail "veritysetup open with a wrong root hash: exit $c, real $r"
# status prints the same text for our mapping (hash on a loop device) and, with flags, for
# the real tool's; an inactive name is exit 4 with the same line.
# tool_same TOOL CODE|OUT ARGS: the real TOOL and ours, exit codes (and output with OUT).
tool_same() {
    tool=$1 mode=$2; shift 2
    set +e
    "$(command -v $tool)" "$@" > /tmp/real.out 2>/tmp/real.err; r=$?
    /tmp/dropin/$tool "$@" > /tmp/ours.out 2>/tmp/ours.err; o=$?
    set -e
    [ "$r" -eq "$o" ] || fail "$tool $*: exit $o, real $r ($(cat /tmp/ours.err))"
    if [ "$mode" = OUT ]; then
        cmp -s /tmp/real.out /tmp/ours.out || fail "$tool $*: output differs: $(diff /tmp/real.out /tmp/ours.out | head -6)"
    fi
    n=$((n + 1))
}
tool_same veritysetup OUT status v0
tool_same veritysetup OUT status /dev/mapper/v0
/tmp/dropin/veritysetup close --deferred /dev/mapper/v0 || fail "veritysetup close --deferred /dev/mapper/v0"
dmsetup info v0 >/dev/null 2>&1 && fail "veritysetup close --deferred left v0"
"$REALV" open --ignore-zero-blocks --check-at-most-once --restart-on-corruption $D2 v2 /tmp/hash.img "$root"
tool_same veritysetup OUT status v2
"$REALV" close v2
tool_same veritysetup OUT status v2
tool_same veritysetup CODE close v2
n=$((n + 3))
# Format 0 (Chrome OS's original: SHA-1 digests packed unpadded) and a one-block tree (no
# levels: the block's hash is the root hash): ours writes and maps them, the kernel reads
# every block back verified, and the status is the real tool's.
root0=$(/tmp/dropin/veritysetup format --format 0 --hash sha1 $D2 /tmp/hash0.img | awk '/Root hash/ {print $3}')
/tmp/dropin/veritysetup open $D2 v3 /tmp/hash0.img "$root0" 2>/tmp/err || fail "veritysetup open (format 0): $(cat /tmp/err)"
cmp -s /dev/mapper/v3 $D2 || fail "format 0: the mapping does not read back the data verified"
tool_same veritysetup OUT status v3
/tmp/dropin/veritysetup close v3
root1=$(/tmp/dropin/veritysetup format --data-blocks 1 $D2 /tmp/hash1.img | awk '/Root hash/ {print $3}')
/tmp/dropin/veritysetup open $D2 v4 /tmp/hash1.img "$root1" 2>/tmp/err || fail "veritysetup open (one block): $(cat /tmp/err)"
cmp -s -n 4096 /dev/mapper/v4 $D2 || fail "one block: the mapping does not read back the block verified"
tool_same veritysetup OUT status v4
/tmp/dropin/veritysetup close v4
n=$((n + 2))

# integritysetup: open, status and close as the real tool, sequentially on one device (one
# integrity mapping at a time); the tables the kernel reports and the status text agree,
# and what the real mapping wrote, ours reads with its tags checked.
"$(command -v integritysetup)" format -q --no-wipe $D2
integritysetup dump $D2 > /tmp/d.real; /tmp/dropin/integritysetup dump $D2 > /tmp/d.ours
cmp -s /tmp/d.real /tmp/d.ours || fail "integritysetup dump differs: $(diff /tmp/d.real /tmp/d.ours | grep '^[-+] ')"
n=$((n + 1))
integrity_same() {
    integritysetup open "$@" $D2 realint
    dmsetup table realint > /tmp/t.real
    integritysetup status realint | sed 's/realint/NAME/' > /tmp/s.real
    /tmp/dropin/integritysetup status realint | sed 's/realint/NAME/' > /tmp/s.real2
    tool_same integritysetup OUT status /dev/mapper/realint
    /tmp/dropin/integritysetup close /dev/mapper/realint || fail "integritysetup close of the real mapping"
    /tmp/dropin/integritysetup open "$@" $D2 oursint 2>/tmp/err || fail "integritysetup open $*: $(cat /tmp/err)"
    dmsetup table oursint > /tmp/t.ours
    [ "$(dmsetup info -c --noheadings -o uuid oursint)" = CRYPT-INTEGRITY-oursint ] || fail "integrity uuid: $(dmsetup info -c --noheadings -o uuid oursint)"
    integritysetup status oursint | sed 's/oursint/NAME/' > /tmp/s.ours
    integritysetup close oursint
    cmp -s /tmp/t.real /tmp/t.ours || fail "integritysetup open $*: tables differ: $(cat /tmp/t.real) / $(cat /tmp/t.ours)"
    cmp -s /tmp/s.real /tmp/s.ours || fail "integritysetup open $*: status differs: $(diff /tmp/s.real /tmp/s.ours | grep "^[-+] ")"
    cmp -s /tmp/s.real /tmp/s.real2 || fail "integritysetup status $*: ours differs: $(diff /tmp/s.real /tmp/s.real2 | grep "^[-+] ")"
    n=$((n + 2))
}
integrity_same
integrity_same --integrity-no-journal
integrity_same -B
integrity_same --integrity-recovery-mode
integrity_same --allow-discards --integrity crc32c
integritysetup open $D2 ri
head -c 1048576 /dev/urandom > /tmp/int.data
dd if=/tmp/int.data of=/dev/mapper/ri bs=1M oflag=direct 2>/dev/null
integritysetup close ri
/tmp/dropin/integritysetup create oi $D2 || fail "integritysetup create"
cmp -n 1048576 /tmp/int.data /dev/mapper/oi || fail "integrity data differs"
# A name in use, a device that is not dm-integrity, a missing one; close and status of a
# name not mapped.
tool_same integritysetup CODE open $D2 oi
/tmp/dropin/integritysetup close oi
tool_same integritysetup CODE open $D1 x1
tool_same integritysetup CODE open /dev/nonexistent x1
tool_same integritysetup CODE close nothere
tool_same integritysetup OUT status nothere
n=$((n + 1))
# A LUKS1 volume of ours: the real tool maps it with the same table as ours, and reads
# what ours wrote.
/tmp/dropin/cryptsetup luksFormat -q --type luks1 $FAST --key-file /tmp/k1 $D1 || fail "luksFormat --type luks1"
/tmp/dropin/cryptsetup open -d /tmp/k1 $D1 l1 || fail "open of our LUKS1"
table_nokey l1 > /tmp/t.ours
head -c 65536 /dev/urandom > /tmp/l1.data
dd if=/tmp/l1.data of=/dev/mapper/l1 bs=64k oflag=direct 2>/dev/null
/tmp/dropin/cryptsetup close l1
"$REAL" open -d /tmp/k1 $D1 l1
[ "$(table_nokey l1)" = "$(cat /tmp/t.ours)" ] || fail "LUKS1 tables: $(table_nokey l1) / $(cat /tmp/t.ours)"
cmp -n 65536 /tmp/l1.data /dev/mapper/l1 || fail "LUKS1 data differs between the mappings"
"$REAL" close l1
n=$((n + 2))
[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] || fail "stray mapping: $(dmsetup ls)"
# A keyring token (cryptsetup's built-in type): the passphrase is the kernel keyring's user
# key. With --token-only (nothing on standard input) both tools open through it, to the same
# table; without the key both fail alike.
"$REAL" luksFormat -q $FAST --key-file /tmp/k1 $D1
"$REAL" token add --key-description cryptpilot-vm $D1
keyctl padd user cryptpilot-vm @u < /tmp/k1 > /dev/null
"$REAL" open --token-only $D1 tok < /dev/null || fail "cryptsetup did not open through the token"
table_nokey tok > /tmp/t.real
"$REAL" close tok
/tmp/dropin/cryptsetup open --token-only $D1 tok < /dev/null 2>/tmp/ours.err ||
    fail "no open through the keyring token: $(cat /tmp/ours.err)"
[ "$(table_nokey tok)" = "$(cat /tmp/t.real)" ] || fail "token tables: $(table_nokey tok) / $(cat /tmp/t.real)"
/tmp/dropin/cryptsetup close tok
keyctl purge user cryptpilot-vm > /dev/null
same CODE_ONLY open --token-only $D1 tok
n=$((n + 1))
[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] || fail "stray mapping: $(dmsetup ls)"
# benchmark: the cipher table as the real tool prints it (AF_ALG is in this kernel), speeds
# and key derivation counts masked; serpent and twofish are N/A rows in ours.
bench_mask() {
    sed -E -e 's/ +[0-9]+\.[0-9] MiB\/s/ <n> MiB\/s/g' -e 's/ +N\/A +N\/A$/ <n> MiB\/s <n> MiB\/s/' \
        -e 's/^(PBKDF2-[a-z0-9]+) .*/\1/' \
        -e 's/^(argon2i?d?) +[0-9]+ iterations, +[0-9]+ memory,/\1 <n> iterations, <n> memory,/'
}
bench_same() {
    set +e
    "$REAL" benchmark "$@" > /tmp/real.out 2>/tmp/real.err; r=$?
    /tmp/dropin/cryptsetup benchmark --seconds 0.1 "$@" > /tmp/ours.out 2>/tmp/ours.err; o=$?
    set -e
    [ "$r" -eq "$o" ] || fail "benchmark $*: exit $o, real $r ($(cat /tmp/ours.err))"
    bench_mask < /tmp/real.out > /tmp/real.m; bench_mask < /tmp/ours.out > /tmp/ours.m
    cmp -s /tmp/real.m /tmp/ours.m || fail "benchmark $*: output differs: $(diff /tmp/real.m /tmp/ours.m | grep '^[-+] ' | head -4)"
    n=$((n + 1))
}
bench_same --cipher aes-xts-plain64
bench_same --cipher aes-xts-plain64 -s 512
bench_same -c aes-cbc-essiv:sha256 --key-size 128
bench_same --pbkdf-memory 32768 --iter-time 100
grep -q '^        aes-xts        512b  *[0-9.]* MiB/s  *[0-9.]* MiB/s$' /tmp/ours.out || fail "benchmark: no aes-xts 512b speeds: $(cat /tmp/ours.out)"
echo "drop-in: $n command lines agree with the real tools on the kernel"
