# For the same header, our table equals cryptsetup's field for field (key aside), and the
# device uuid is cryptsetup's CRYPT-LUKS2-<uuid>-<name>.
compare() {
    desc=$1; shift
    cryptpilot luks open --key-file /tmp/k1 "$@" $D1 same
    ours=$(table_nokey same); ouuid=$(dmsetup info -c --noheadings -o uuid same)
    cryptpilot luks close same
    cryptsetup open --key-file /tmp/k1 "$@" $D1 same
    theirs=$(table_nokey same); tuuid=$(dmsetup info -c --noheadings -o uuid same)
    cryptsetup close same
    [ -n "$ours" ] && [ -n "$ouuid" ] || fail "$desc: empty table or uuid"
    [ "$ours" = "$theirs" ] || fail "$desc: ours '$ours' vs cryptsetup '$theirs'"
    [ "$ouuid" = "$tuuid" ] || fail "$desc: uuid ours '$ouuid' vs cryptsetup '$tuuid'"
    echo "$desc: $ours"
}
cryptpilot luks format -q $FAST --key-file /tmp/k1 --sector-size 512 $D1
compare "512-byte sectors"
compare "discards, no workqueues" --allow-discards --perf-no_read_workqueue --perf-no_write_workqueue
compare "read-only" --readonly
cryptpilot luks open --key-file /tmp/k1 --readonly $D1 ro
dmsetup info ro | grep -q "READ-ONLY" || fail "--readonly mapping is writable: $(dmsetup info ro)"
if dd if=/dev/zero of=/dev/mapper/ro bs=4096 count=1 conv=fsync 2>/dev/null; then fail "wrote to a read-only mapping"; fi
cryptpilot luks close ro
cryptpilot luks format -q $FAST --key-file /tmp/k1 --sector-size 4096 --key-size 256 $D1
compare "4096-byte sectors, 256-bit key"
