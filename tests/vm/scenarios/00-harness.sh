# The VM itself: device-mapper present, cryptsetup works on a disk, mappings can be listed.
[ -e /dev/mapper/control ] || fail "no device-mapper control node"
cryptsetup luksFormat -q --type luks2 $FAST --key-file /tmp/k1 $D1
cryptsetup open --key-file /tmp/k1 $D1 cs0
dmsetup table cs0 | grep -q " crypt aes-xts-plain64 " || fail "unexpected table: $(dmsetup table cs0)"
cryptsetup close cs0
echo "cryptsetup works: $(cryptsetup --version)"
