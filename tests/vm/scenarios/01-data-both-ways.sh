# Data written through our mapping is read back through cryptsetup's, and the reverse.
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
cryptpilot luks format -q $FAST --key-file /tmp/k1 $D1
cryptpilot luks open --key-file /tmp/k1 $D1 ours
[ -b /dev/mapper/ours ] || fail "no /dev/mapper/ours node"
dd if=/tmp/pattern of=/dev/mapper/ours bs=1M conv=fsync 2>/dev/null
cryptpilot luks close ours
[ ! -e /dev/mapper/ours ] || fail "node left after close"
cryptsetup open --key-file /tmp/k1 $D1 theirs
dd if=/dev/mapper/theirs bs=1M count=4 2>/dev/null | cmp - /tmp/pattern || fail "cryptsetup read different data"
cryptsetup close theirs

cryptsetup luksFormat -q --type luks2 $FAST --key-file /tmp/k2 $D2
cryptsetup open --key-file /tmp/k2 $D2 theirs
dd if=/tmp/pattern of=/dev/mapper/theirs bs=1M conv=fsync 2>/dev/null
cryptsetup close theirs
cryptpilot luks open --key-file /tmp/k2 $D2 ours
dd if=/dev/mapper/ours bs=1M count=4 2>/dev/null | cmp - /tmp/pattern || fail "we read different data"
cryptpilot luks close ours
echo "4 MiB pattern crossed both ways"
