# mkfs.ext4 on our mapping, files written, closed, reopened: files intact.
cryptpilot luks format -q $FAST --key-file /tmp/k1 $D1
cryptpilot luks open --key-file /tmp/k1 $D1 fs
mkfs.ext4 -q /dev/mapper/fs
mount -t ext4 /dev/mapper/fs /mnt
dd if=/dev/urandom of=/mnt/data bs=1M count=2 2>/dev/null
sum=$(md5sum /mnt/data | cut -d' ' -f1)
echo hello > /mnt/greeting
umount /mnt
cryptpilot luks close fs
cryptpilot luks open --key-file /tmp/k1 $D1 fs
mount -t ext4 /dev/mapper/fs /mnt
[ "$(md5sum /mnt/data | cut -d' ' -f1)" = "$sum" ] || fail "data changed across close/reopen"
[ "$(cat /mnt/greeting)" = hello ] || fail "greeting lost"
umount /mnt
e2fsck -fn /dev/mapper/fs >/dev/null 2>&1 || fail "e2fsck found errors"
cryptpilot luks close fs
echo "ext4 intact across close and reopen"
