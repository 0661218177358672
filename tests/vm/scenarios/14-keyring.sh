# Keys in the kernel keyring, as cryptsetup 2.6: our crypt tables name a logon key
# (:SIZE:logon:cryptsetup:<uuid>-d0) and hold no key material even with --showkeys, equal to
# cryptsetup's tables byte for byte, integrity included; cryptsetup's status, resize and close
# work on our mappings and ours on theirs; --disable-keyring puts the hex key back; a detached
# header (--header) opens on the kernel.
hexkey() {
    cryptsetup luksDump -q --dump-volume-key --key-file /tmp/k1 ${2:+--header $2} "$1" |
        sed -n '/MK dump:/,$p' | sed 's/MK dump://' | tr -d ' \t\n'
}
for integ in "" "-I hmac-sha256 --integrity-no-wipe"; do
    desc="${integ:-plain}"
    cryptpilot luks format -q $FAST --key-file /tmp/k1 $integ $D1
    uuid=$(cryptsetup luksUUID $D1)
    vk=$(hexkey $D1)
    [ ${#vk} -ge 128 ] || fail "$desc: no volume key read ($vk)"
    cryptpilot luks open --key-file /tmp/k1 $D1 kr
    ours=$(dmsetup table --showkeys kr)
    echo "$ours" | grep -q " :$(( ${#vk} / 2 )):logon:cryptsetup:$uuid-d0 " || fail "$desc: table $ours"
    echo "$ours" | grep -qi "$vk" && fail "$desc: the key is in our table"
    cryptsetup status kr | grep -q "key location: keyring" || fail "$desc: $(cryptsetup status kr)"
    cryptpilot luks status kr | grep -q "key location: keyring" || fail "$desc: our status"
    cryptsetup close kr
    dmsetup info kr >/dev/null 2>&1 && fail "$desc: cryptsetup close left kr"
    dmsetup info kr_dif >/dev/null 2>&1 && fail "$desc: cryptsetup close left kr_dif"
    cryptsetup open --key-file /tmp/k1 $D1 kr
    theirs=$(dmsetup table --showkeys kr)
    [ "$ours" = "$theirs" ] || fail "$desc: ours '$ours' theirs '$theirs'"
    cryptpilot luks close kr
done

# resize needs the key again for a keyring mapping (both ways round); --disable-keyring does not.
cryptpilot luks format -q $FAST --key-file /tmp/k1 --sector-size 4096 $D1
cryptpilot luks open --key-file /tmp/k1 $D1 kr
cryptsetup resize --key-file /tmp/k1 --size 8192 kr || fail "cryptsetup resize of our mapping"
[ "$(blockdev --getsz /dev/mapper/kr)" = 8192 ] || fail "cryptsetup resized to $(blockdev --getsz /dev/mapper/kr)"
cryptpilot luks close kr
cryptsetup open --key-file /tmp/k1 $D1 kr
expect_code 2 cryptpilot luks resize --key-file /tmp/k2 --size 4096 kr
cryptpilot luks resize --key-file /tmp/k1 --size 4096 kr || fail "our resize of cryptsetup's mapping"
[ "$(blockdev --getsz /dev/mapper/kr)" = 4096 ] || fail "we resized to $(blockdev --getsz /dev/mapper/kr)"
dmsetup table --showkeys kr | grep -q ":64:logon:" || fail "resize lost the keyring key"
cryptsetup close kr
vk=$(hexkey $D1)
cryptpilot luks open --disable-keyring --key-file /tmp/k1 $D1 kr
dmsetup table --showkeys kr | grep -qi " $vk " || fail "--disable-keyring: $(dmsetup table kr)"
cryptsetup status kr | grep -q "key location: dm-crypt" || fail "$(cryptsetup status kr)"
cryptpilot luks resize --size 4096 kr </dev/null || fail "resize of a hex-keyed mapping"
cryptpilot luks close kr
# No key is left behind in any keyring.
grep -q "logon.*cryptsetup:" /proc/keys && fail "a logon key outlived its open: $(cat /proc/keys)"

# A detached header: the data device from sector 0, read back through cryptsetup.
rm -f /tmp/hdr.img
cryptpilot luks format -q $FAST --key-file /tmp/k1 --header /tmp/hdr.img $D2
cryptpilot luks open --key-file /tmp/k1 --header /tmp/hdr.img $D2 dh
[ "$(blockdev --getsz /dev/mapper/dh)" = "$(blockdev --getsz $D2)" ] || fail "detached: size $(blockdev --getsz /dev/mapper/dh)"
dd if=/dev/urandom of=/tmp/p4 bs=1M count=2 2>/dev/null
dd if=/tmp/p4 of=/dev/mapper/dh bs=1M conv=fsync 2>/dev/null
cryptpilot luks close dh
cryptsetup open --key-file /tmp/k1 --header /tmp/hdr.img $D2 dh
dd if=/dev/mapper/dh bs=1M count=2 2>/dev/null | cmp - /tmp/p4 || fail "detached: cryptsetup reads other data"
dmsetup table dh | grep -q " 0 $(cat /sys/block/vdb/dev) 0" || fail "detached table: $(dmsetup table dh)"
cryptsetup close dh
echo "keyring tables equal cryptsetup's (plain and hmac-sha256), no key in them; detached header opens"
