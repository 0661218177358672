# resize: an open mapping shrinks to --size and grows to its device after the device grew
# (a loop device over a file, extended and re-read with losetup -c), keeping its data; the
# kernel's size and cryptsetup's status agree. Errors: not mapped (4), too large, not whole
# encryption sectors (1), nothing changed.
truncate -s 48M /tmp/grow.img
cryptpilot luks format -q $FAST --key-file /tmp/k1 --sector-size 4096 /tmp/grow.img
loop=$(/sbin/losetup -f --show /tmp/grow.img)
cryptpilot luks open --key-file /tmp/k1 $loop rs
dd if=/dev/urandom of=/tmp/p3 bs=1M count=4 2>/dev/null
dd if=/tmp/p3 of=/dev/mapper/rs bs=1M conv=fsync 2>/dev/null
full=$(/sbin/blockdev --getsz /dev/mapper/rs)
[ "$full" = $(( (48 - 16) * 2048 )) ] || fail "initial size $full"

cryptpilot luks resize --key-file /tmp/k1 rs --size 16384 || fail "shrink"
[ "$(/sbin/blockdev --getsz /dev/mapper/rs)" = 16384 ] || fail "shrunk to $(/sbin/blockdev --getsz /dev/mapper/rs)"
cryptsetup status rs | grep -q "size:    16384 sectors" || fail "cryptsetup: $(cryptsetup status rs)"

expect_code 1 cryptpilot luks resize --key-file /tmp/k1 rs --size 1000001
grep -q "not a size for rs" /tmp/out || fail "message: $(cat /tmp/out)"
expect_code 1 cryptpilot luks resize --key-file /tmp/k1 rs --size 16385
grep -q "4096-byte encryption sectors" /tmp/out || fail "message: $(cat /tmp/out)"
[ "$(/sbin/blockdev --getsz /dev/mapper/rs)" = 16384 ] || fail "a refused resize changed the size"
expect_code 4 cryptpilot luks resize nosuchname

# The disk grows: the mapping takes all of it.
truncate -s 80M /tmp/grow.img
/sbin/losetup -c $loop
cryptpilot luks resize --key-file /tmp/k1 rs || fail "grow"
[ "$(/sbin/blockdev --getsz /dev/mapper/rs)" = $(( (80 - 16) * 2048 )) ] || fail "grew to $(/sbin/blockdev --getsz /dev/mapper/rs)"
dd if=/dev/mapper/rs bs=1M count=4 2>/dev/null | cmp - /tmp/p3 || fail "data changed"
cryptpilot luks close rs
cryptsetup open --key-file /tmp/k1 $loop again
dd if=/dev/mapper/again bs=1M count=4 2>/dev/null | cmp - /tmp/p3 || fail "cryptsetup reads other data"
cryptsetup close again
/sbin/losetup -d $loop
echo "shrunk to 16384 sectors, grew to $(( (80 - 16) * 2048 ))"
