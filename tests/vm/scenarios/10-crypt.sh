# Volumes from configuration files: the temporary otp ext4 volume (data gone on reopen), the
# persistent exec volume with integrity (data kept), interrupted inits, volumes of the
# existing tool (subsystem cryptpilot), and the boot service opening only auto-open volumes.
C="cryptpilot crypt -c /tmp/cfg"
mkdir -p /tmp/cfg/volumes /mnt/v
cat > /tmp/cfg/volumes/tmp0.toml <<EOT
volume = "tmp0"
dev = "$D1"
auto_open = true
makefs = "ext4"

[encrypt.otp]
EOT
cat > /tmp/cfg/volumes/data0.toml <<EOT
volume = "data0"
dev = "$D2"
auto_open = true
makefs = "ext4"
integrity = true

[encrypt.exec]
command = "cat"
args = ["/tmp/k1"]
EOT
dd if=/dev/zero of=/tmp/manual.img bs=1M count=40 2>/dev/null
cat > /tmp/cfg/volumes/manual.toml <<EOT
volume = "manual0"
dev = "/tmp/manual.img"

[encrypt.exec]
command = "cat"
args = ["/tmp/k2"]
EOT
$C config check

# otp: a fresh ext4 on every open; nothing survives a close.
$C open tmp0
mount /dev/mapper/tmp0 /mnt/v
echo secret > /mnt/v/f
umount /mnt/v
$C close tmp0
$C open tmp0
mount /dev/mapper/tmp0 /mnt/v
[ ! -e /mnt/v/f ] || fail "otp volume kept its data across a reopen"
umount /mnt/v
$C close tmp0
expect_code 1 $C init tmp0
grep -q "needs no init" /tmp/out || { cat /tmp/out; fail "init of an otp volume not refused clearly"; }
echo "otp: fresh file system on each open, data gone after reopen"

# exec + integrity: init (asks before erasing the old LUKS header), write, reopen, intact.
mkfs.ext4 -q -F $D2
expect_code 1 $C init data0 < /dev/null
grep -q "pass -y" /tmp/out || { cat /tmp/out; fail "init over data not refused"; }
$C init -y data0
$C show data0 | grep -q "data0 .* exec .* yes .* no .* yes .* yes" || { $C show; fail "show after init"; }
[ "$(cryptpilot luks dump $D2 | sed -n 's/^Subsystem:[[:space:]]*//p')" = cryptpilot ] || fail "subsystem not cryptpilot after init"
$C open --check-fs data0
dmsetup info data0_dif >/dev/null || fail "no integrity device under data0"
mount /dev/mapper/data0 /mnt/v
cp /tmp/k2 /mnt/v/kept
umount /mnt/v
$C close data0
$C open data0
mount /dev/mapper/data0 /mnt/v
cmp /mnt/v/kept /tmp/k2 || fail "persistent volume lost its data"
umount /mnt/v
$C close data0
expect_code 1 $C init data0
grep -q "already initialized" /tmp/out || { cat /tmp/out; fail "re-init not refused"; }
echo "exec + integrity: initialized, data intact across close and reopen"

# An interrupted init is detected, not trusted, and redone by init.
cryptpilot luks config --subsystem cryptpilot-initializing $D2
expect_code 1 $C open data0
grep -q "interrupted" /tmp/out || { cat /tmp/out; fail "interrupted init not detected on open"; }
$C show data0 | grep -q interrupted || fail "show does not say interrupted"
$C init data0
$C open data0 && $C close data0
echo "interrupted init: refused on open, redone by init"

# A volume the existing tool initialized (subsystem cryptpilot) is recognised.
cryptsetup luksFormat -q $FAST --subsystem cryptpilot --key-file /tmp/k2 /tmp/manual.img
$C show manual0 | grep -q "manual0 .* exec .* yes" || { $C show; fail "existing tool's volume not initialized"; }

# Boot: both auto-open volumes open, the manual one stays closed; a failing one is reported
# while the others still open.
$C boot-service --stage system-volumes-auto-open
dmsetup info tmp0 >/dev/null && dmsetup info data0 >/dev/null || fail "boot service did not open both"
! dmsetup info manual0 >/dev/null 2>&1 || fail "boot service opened a manual volume"
$C close tmp0 data0
sed -i 's|/tmp/k1|/tmp/missing-key|' /tmp/cfg/volumes/data0.toml
expect_code 1 $C boot-service --stage system-volumes-auto-open
grep -q "data0" /tmp/out || { cat /tmp/out; fail "the failing volume was not reported"; }
dmsetup info tmp0 >/dev/null || fail "one failure stopped the other volumes"
$C close tmp0
echo "boot service: opened tmp0 and data0, skipped manual0; a failure is reported, the rest open"
