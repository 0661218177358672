# An image file on tmpfs is opened through an automatic loop device, which goes away on close.
truncate -s 48M /tmp/disk.img
cryptpilot luks format -q $FAST --key-file /tmp/k1 /tmp/disk.img
cryptpilot luks open --key-file /tmp/k1 /tmp/disk.img img
loopdev=$(dmsetup deps -o devname img | sed -n 's/.*(\(loop[0-9]*\)).*/\1/p')
[ -n "$loopdev" ] || fail "mapping is not on a loop device: $(dmsetup deps img)"
dd if=/dev/urandom of=/tmp/p2 bs=1M count=1 2>/dev/null
dd if=/tmp/p2 of=/dev/mapper/img bs=1M conv=fsync 2>/dev/null
cryptpilot luks status img | grep -q "device:  /dev/$loopdev" || fail "status: $(cryptpilot luks status img)"
cryptpilot luks close img
sleep 1
[ -z "$(cat /sys/block/$loopdev/loop/backing_file 2>/dev/null)" ] || fail "$loopdev still attached"
cryptsetup open --key-file /tmp/k1 /tmp/disk.img again
dd if=/dev/mapper/again bs=1M count=1 2>/dev/null | cmp - /tmp/p2 || fail "data differs"
cryptsetup close again
echo "loop device attached as $loopdev and auto-cleared"
