# Offline images: what encrypt-image writes, cryptsetup and the kernel open, and the plaintext
# read there equals the input; what the kernel writes through cryptsetup's mapping,
# decrypt-image and `luks read` recover; `luks write` lands where dm-crypt reads it.
dd if=/dev/zero of=/tmp/plain.img bs=1M count=48 2>/dev/null
mkfs.ext4 -q -F -b 4096 /tmp/plain.img
mkdir -p /mnt/p
dd if=/dev/urandom of=/tmp/file bs=1M count=3 2>/dev/null
for ss in 4096 512; do
    rm -f /tmp/enc.img
    cryptpilot luks encrypt-image -q $FAST --key-file /tmp/k1 --sector-size $ss --in /tmp/plain.img --out /tmp/enc.img
    cryptsetup open --key-file /tmp/k1 /tmp/enc.img theirs
    cmp /dev/mapper/theirs /tmp/plain.img || fail "$ss: the kernel reads a different plaintext"
    mount /dev/mapper/theirs /mnt/p
    cp /tmp/file /mnt/p/file
    umount /mnt/p
    cryptsetup close theirs
    rm -f /tmp/dec.img
    cryptpilot luks decrypt-image --key-file /tmp/k1 --in /tmp/enc.img --out /tmp/dec.img
    mount -o loop,ro /tmp/dec.img /mnt/p
    cmp /mnt/p/file /tmp/file || fail "$ss: decrypt-image lost what the kernel wrote"
    umount /mnt/p
    echo "$ss-byte sectors: encrypt-image opens in cryptsetup with the same plaintext; decrypt-image reads the kernel's writes"
done

cryptsetup luksFormat -q $FAST --key-file /tmp/k2 --sector-size 512 $D1
cryptsetup open --key-file /tmp/k2 $D1 theirs
dd if=/tmp/file of=/dev/mapper/theirs bs=1M seek=5 conv=fsync 2>/dev/null
cryptsetup close theirs
cryptpilot luks read --key-file /tmp/k2 --offset 5m --length 3m $D1 | cmp - /tmp/file || fail "luks read differs"
dd if=/dev/urandom of=/tmp/chunk bs=64k count=1 2>/dev/null
cryptpilot luks write --key-file /tmp/k2 --offset 1m --in /tmp/chunk $D1
cryptsetup open --key-file /tmp/k2 $D1 theirs
dd if=/dev/mapper/theirs bs=64k skip=16 count=1 2>/dev/null | cmp - /tmp/chunk || fail "dm-crypt reads luks write's data differently"
cryptsetup close theirs
echo "luks read/write agree with dm-crypt on cryptsetup's volume"
