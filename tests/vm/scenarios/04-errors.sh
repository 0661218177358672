# Wrong passphrase, a name in use, closing a mounted volume, closing nothing: clear errors,
# cryptsetup's exit codes, no stray mappings.
cryptpilot luks format -q $FAST --key-file /tmp/k1 $D1
printf wrong > /tmp/kw
expect_code 2 cryptpilot luks open --key-file /tmp/kw $D1 e1
grep -q "no key available" /tmp/out || fail "message: $(cat /tmp/out)"
[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] || fail "stray mapping after a wrong passphrase: $(dmsetup ls)"

cryptpilot luks open --key-file /tmp/k1 $D1 e1
expect_code 5 cryptpilot luks open --key-file /tmp/k1 $D1 e1
grep -q "already exists" /tmp/out || fail "message: $(cat /tmp/out)"

# Formatting the disk under a live mapping: busy (O_EXCL), exit 5, header unchanged.
before=$(dd if=$D1 bs=1M count=17 2>/dev/null | md5sum)
expect_code 5 cryptpilot luks format -q $FAST --key-file /tmp/k2 $D1
grep -q "in use" /tmp/out || fail "message: $(cat /tmp/out)"
[ "$(dd if=$D1 bs=1M count=17 2>/dev/null | md5sum)" = "$before" ] || fail "busy format changed the disk"

mkfs.ext4 -q /dev/mapper/e1
mount -t ext4 /dev/mapper/e1 /mnt
expect_code 5 cryptpilot luks close e1
grep -q "still in use" /tmp/out || fail "message: $(cat /tmp/out)"
[ -b /dev/mapper/e1 ] && dmsetup info e1 >/dev/null || fail "busy close removed the mapping"
umount /mnt
cryptpilot luks close e1
expect_code 4 cryptpilot luks close e1
expect_code 4 cryptpilot luks status e1
grep -q "inactive" /tmp/out || fail "status: $(cat /tmp/out)"
[ -z "$(dmsetup ls 2>/dev/null | grep -v 'No devices')" ] || fail "stray mapping: $(dmsetup ls)"
echo "errors clean"
