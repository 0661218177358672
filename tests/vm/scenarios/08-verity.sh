# dm-verity: a tree we format is mapped by us and by veritysetup with the same table; the
# untouched file system mounts and reads; after one flipped byte on the data disk, reading
# that block fails with an I/O error and its neighbours still read.
dd if=/dev/zero of=$D1 bs=1M count=64 conv=fsync 2>/dev/null
mkfs.ext4 -q -F -b 4096 $D1 16384
mkdir -p /mnt/v
mount $D1 /mnt/v
dd if=/dev/urandom of=/mnt/v/file bs=1M count=4 2>/dev/null
cp /mnt/v/file /tmp/file
umount /mnt/v
out=$(cryptpilot verity format --data-blocks 16384 $D1 $D2)
root=$(echo "$out" | sed -n 's/^Root hash:[[:space:]]*//p')
[ ${#root} -eq 64 ] || fail "no root hash in: $out"

compare() {  # the table and UUID of our mapping and veritysetup's
    cryptpilot verity open "$@"
    ours="$(dmsetup table v) / $(dmsetup info -c --noheadings -o uuid v)"
    cryptpilot verity close v
    veritysetup open "$@"
    theirs="$(dmsetup table v) / $(dmsetup info -c --noheadings -o uuid v)"
    veritysetup close v
    [ "$ours" = "$theirs" ] || fail "ours '$ours' vs veritysetup '$theirs'"
}
compare $D1 v $D2 $root
compare --ignore-zero-blocks --check-at-most-once $D1 v $D2 $root
echo "tables equal: $ours"

cryptpilot verity open $D1 v $D2 $root
mount -o ro /dev/mapper/v /mnt/v
cmp /mnt/v/file /tmp/file || fail "the file reads differently through verity"
umount /mnt/v
cryptpilot verity close v
[ ! -e /dev/mapper/v ] || fail "node left after close"
expect_code 1 cryptpilot verity open $D1 v $D2 $(echo $root | tr 0-9a-f 1-9a-f0)
grep -q "root hash" /tmp/out || { cat /tmp/out; fail "wrong root hash not named"; }

# A tree veritysetup formats maps and mounts through us.
out=$(veritysetup format --data-blocks 16384 $D1 $D2)
vroot=$(echo "$out" | sed -n 's/^Root hash:[[:space:]]*//p')
cryptpilot verity open $D1 v $D2 $vroot
mount -o ro /dev/mapper/v /mnt/v
cmp /mnt/v/file /tmp/file || fail "veritysetup's tree: the file reads differently"
umount /mnt/v
cryptpilot verity close v
ours=$(cryptpilot verity format --data-blocks 16384 $D1 $D2 \
    --salt $(echo "$out" | sed -n 's/^Salt:[[:space:]]*//p') \
    --uuid $(echo "$out" | sed -n 's/^UUID:[[:space:]]*//p'))
[ "$ours" = "$out" ] || fail "same salt and UUID, different report: '$ours' vs '$out'"
echo "veritysetup's tree maps through us; with its salt and UUID our format prints the same"
root=$vroot

# Flip a byte in data block 9000 (not used by the file system: verity covers it anyway).
flip_byte $D1 $((9000 * 4096 + 77))
cryptpilot verity open $D1 v $D2 $root
dd if=/dev/mapper/v of=/dev/null bs=4096 skip=8999 count=1 2>/dev/null || fail "block 8999 fails"
dd if=/dev/mapper/v of=/dev/null bs=4096 skip=9001 count=1 2>/dev/null || fail "block 9001 fails"
if dd if=/dev/mapper/v of=/dev/null bs=4096 skip=9000 count=1 2>/tmp/err; then fail "the flipped block read without error"; fi
grep -q -i -E "I/O error|Input/output error" /tmp/err || { cat /tmp/err; fail "no I/O error for the flipped block"; }
mount -o ro /dev/mapper/v /mnt/v
cmp /mnt/v/file /tmp/file || fail "the untouched file no longer reads"
umount /mnt/v
cryptpilot verity close v
# A block that fails its hash is exit 2, as veritysetup verify.
expect_code 2 cryptpilot verity verify $D1 $D2 $root
grep -q "data block 9000" /tmp/out || { cat /tmp/out; fail "offline verify did not name block 9000"; }
echo "flipped block 9000 fails with an I/O error; the file system still mounts; verify names it"
