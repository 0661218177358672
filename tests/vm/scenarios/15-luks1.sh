# LUKS1 on the kernel: a cryptsetup-made LUKS1 volume (xts and cbc-essiv) maps through us with
# cryptsetup's exact table, key included (LUKS1 keys never go to the keyring), and UUID; data
# written through our mapping reads back through cryptsetup's; after our conversion to LUKS2
# both tools open it with the same data and the key moves into the keyring; converted back
# (refused while mapped), cryptsetup opens it as LUKS1.
for spec in "aes-xts-plain64 512" "aes-cbc-essiv:sha256 256"; do
    set -- $spec
    cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 --cipher $1 --key-size $2 --key-file /tmp/k1 $D1
    cryptpilot luks open --key-file /tmp/k1 $D1 l1
    ours="$(dmsetup table --showkeys l1) / $(dmsetup info -c --noheadings -o uuid l1)"
    dd if=/dev/urandom of=/tmp/p5 bs=1M count=2 2>/dev/null
    dd if=/tmp/p5 of=/dev/mapper/l1 bs=1M conv=fsync 2>/dev/null
    cryptpilot luks close l1
    cryptsetup open --key-file /tmp/k1 $D1 l1
    theirs="$(dmsetup table --showkeys l1) / $(dmsetup info -c --noheadings -o uuid l1)"
    [ "$ours" = "$theirs" ] || fail "$1: ours '$ours' theirs '$theirs'"
    dd if=/dev/mapper/l1 bs=1M count=2 2>/dev/null | cmp - /tmp/p5 || fail "$1: cryptsetup reads other data"
    cryptsetup close l1
done
cryptpilot luks convert -q --type luks2 $D1
cryptsetup open --key-file /tmp/k1 $D1 l1
dd if=/dev/mapper/l1 bs=1M count=2 2>/dev/null | cmp - /tmp/p5 || fail "converted: cryptsetup reads other data"
cryptsetup close l1
cryptpilot luks open --key-file /tmp/k1 $D1 l1
dd if=/dev/mapper/l1 bs=1M count=2 2>/dev/null | cmp - /tmp/p5 || fail "converted: we read other data"
dmsetup table l1 | grep -q ":32:logon:cryptsetup:" || fail "converted: $(dmsetup table l1)"
# Mapped, it is not converted back (cryptsetup's busy exit 5), and the header stays.
cryptsetup luksDump $D1 > /tmp/dump-mapped
rc=0; cryptpilot luks convert -q --type luks1 $D1 2>/tmp/err || rc=$?
[ $rc = 5 ] || fail "converting a mapped volume: exit $rc: $(cat /tmp/err)"
rc=0; cryptsetup convert -q --type luks1 $D1 2>/dev/null || rc=$?
[ $rc = 5 ] || fail "cryptsetup converting a mapped volume: exit $rc"
cryptsetup luksDump $D1 | cmp -s - /tmp/dump-mapped || fail "the refused conversion changed the header"
cryptpilot luks close l1
# Back to LUKS1 (its keyslot is PBKDF2, the sectors 512 bytes): cryptsetup opens it with the
# same data, and the key is in the table again.
cryptpilot luks convert -q --type luks1 $D1
cryptsetup open --key-file /tmp/k1 $D1 l1
dd if=/dev/mapper/l1 bs=1M count=2 2>/dev/null | cmp - /tmp/p5 || fail "back to LUKS1: cryptsetup reads other data"
cryptsetup status l1 | grep -q "type:    LUKS1" || fail "back to LUKS1: $(cryptsetup status l1)"
cryptsetup close l1
echo "LUKS1 tables equal cryptsetup's (xts, cbc-essiv); converted volume opens in both, both ways"
