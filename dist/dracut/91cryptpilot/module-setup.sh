#!/bin/bash
# dracut module 91cryptpilot: the full-disk protection's boot stages in a systemd initrd.
# Install this directory as /usr/lib/dracut/modules.d/91cryptpilot and build with
#   dracut --add cryptpilot --kernel-cmdline root=/dev/mapper/rootfs ...
# With systemd-networkd as the initrd's network, give ip=dhcp (or a static ip=) on the kernel
# command line: its generator reads only that.
# The static cryptpilot binary needs no lvm2, cryptsetup, veritysetup or e2fsprogs inside.
# /etc/cryptpilot/{fde,global,metadata}.toml are carried: the initrd's measurement covers
# the root hash. (Without systemd or dracut, `cryptpilot fde initrd` writes a minimal initrd.)
# CRYPTPILOT_BIN and CRYPTPILOT_CONFIG_DIR in the environment name another binary and
# configuration directory (an image being built, a test).

check() {
    # Only when asked for (--add cryptpilot).
    return 255
}

depends() {
    # dm: udev's device-mapper rules, so that systemd sees /dev/mapper/rootfs. Key providers
    # (kbs, kms) fetch keys over the network.
    echo dm network
    if require_binaries attestation-agent; then
        echo attestation-agent
    fi
    return 0
}

installkernel() {
    hostonly='' instmods dm-mod dm-crypt dm-integrity dm-verity dm-snapshot dm-zero \
        aesni-intel xts cbc essiv sha256 hmac authenc crc32c lzo lzo-rle zram overlay \
        virtio-pci virtio-blk virtio-net
}

install() {
    local bin=${CRYPTPILOT_BIN:-${dracutsysrootdir:-}/usr/bin/cryptpilot}
    local conf=${CRYPTPILOT_CONFIG_DIR:-${dracutsysrootdir:-}/etc/cryptpilot}
    inst_simple "$bin" /usr/bin/cryptpilot
    ln_r /usr/bin/cryptpilot /usr/bin/cryptpilot-fde-guest
    [ -e "$conf/fde.toml" ] || dfatal "91cryptpilot: $conf/fde.toml is missing"
    [ -e "$conf/metadata.toml" ] || dfatal "91cryptpilot: $conf/metadata.toml (the root hash) is missing"
    local f
    for f in fde.toml metadata.toml global.toml; do
        [ -e "$conf/$f" ] && inst_simple "$conf/$f" "/etc/cryptpilot/$f"
    done
    inst_simple "$moddir/12-cryptpilot-hide-intermediate-devices.rules" \
        "${udevrulesdir:-/usr/lib/udev/rules.d}/12-cryptpilot-hide-intermediate-devices.rules"
    inst_simple "$moddir/cryptpilot-fde-before-sysroot.service" \
        "$systemdsystemunitdir/cryptpilot-fde-before-sysroot.service"
    inst_simple "$moddir/cryptpilot-fde-after-sysroot.service" \
        "$systemdsystemunitdir/cryptpilot-fde-after-sysroot.service"
    $SYSTEMCTL -q --root "$initdir" enable cryptpilot-fde-before-sysroot.service
    $SYSTEMCTL -q --root "$initdir" enable cryptpilot-fde-after-sysroot.service
    # The network for key providers, configured by the initrd's network module. No
    # activation by dracut's lvm module: the stage brings up the cryptpilot volume group
    # itself, and lvm2 activating it at the same time (its udev-triggered lvm_scan) races
    # with it for the same devices and /dev nodes. And fail closed: no emergency shell
    # (from which keys could be asked for with this very measurement), a power-off.
    mkdir -p "${initdir}/etc/cmdline.d"
    echo "rd.neednet=1 ip=dhcp rd.lvm=0 rd.shell=0 rd.emergency=poweroff" \
        > "${initdir}/etc/cmdline.d/91-cryptpilot.conf"
}
