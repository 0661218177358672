# A kbs volume whose key the real Trustee key broker releases (started by run.sh on the host,
# reached through qemu's user network): init, open, write, close, reopen and read; then
# cryptsetup opens the same device with the resource's bytes as the passphrase.
C="cryptpilot crypt -c /tmp/kcfg"
mkdir -p /tmp/kcfg/volumes /mnt/k
cat > /tmp/kcfg/volumes/k.toml <<EOT
volume = "kbs0"
dev = "$D1"
makefs = "ext4"

[encrypt.kbs]
kbs_url = "http://10.0.2.100:8080"
key_uri = "kbs:///default/local-resources/vm-disk"
EOT
$C config check
$C init -y kbs0
$C open kbs0
mount /dev/mapper/kbs0 /mnt/k
echo "released by the broker" > /mnt/k/f
umount /mnt/k
$C close kbs0
$C open --check-fs kbs0
mount /dev/mapper/kbs0 /mnt/k
[ "$(cat /mnt/k/f)" = "released by the broker" ] || fail "data lost across close and reopen"
umount /mnt/k
$C close kbs0
echo "kbs: init, open, close, reopen with the key from the real broker"

cryptsetup open --key-file /scenarios/kbs-secret "$D1" cs0 || fail "cryptsetup refused the broker's bytes"
mount -o ro /dev/mapper/cs0 /mnt/k
[ "$(cat /mnt/k/f)" = "released by the broker" ] || fail "cryptsetup sees other data"
umount /mnt/k
cryptsetup close cs0
echo "cryptsetup opens the volume with the resource's bytes"

# A resource the broker does not have: refused (exit 7), nothing mapped.
sed -i 's/vm-disk/no-such-key/' /tmp/kcfg/volumes/k.toml
expect_code 7 $C open kbs0
grep -q "PluginInternalError" /tmp/out || { cat /tmp/out; fail "unclear refusal"; }
dmsetup info kbs0 >/dev/null 2>&1 && fail "a refused open left a mapping"
echo "a missing resource is refused with exit 7"
