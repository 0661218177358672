#!/bin/bash
# dracut module 91cryptpilot: the full-disk protection's boot stages in a systemd initrd.
# Install this directory as /usr/lib/dracut/modules.d/91cryptpilot and build with
#   dracut --add cryptpilot --kernel-cmdline root=/dev/mapper/rootfs ...
# The static cryptpilot binary needs no lvm2, cryptsetup, veritysetup or e2fsprogs inside.
# /etc/cryptpilot/{fde,global,metadata}.toml are carried: the initrd's measurement covers
# the root hash. (Without systemd or dracut, `cryptpilot fde initrd` writes a minimal initrd.)

check() {
    # Only when asked for (--add cryptpilot).
    return 255
}

depends() {
    # Key providers (kbs, kms) fetch keys over the network.
    echo network
    if require_binaries attestation-agent; then
        echo attestation-agent
    fi
    return 0
}

installkernel() {
    hostonly='' instmods dm-mod dm-crypt dm-integrity dm-verity dm-snapshot \
        aesni-intel xts sha256 hmac authenc crc32c zram overlay virtio-pci virtio-blk virtio-net
}

install() {
    inst_simple /usr/bin/cryptpilot /usr/bin/cryptpilot
    ln_r /usr/bin/cryptpilot /usr/bin/cryptpilot-fde-guest
    local f
    for f in fde.toml metadata.toml global.toml; do
        [ -e "${dracutsysrootdir:-}/etc/cryptpilot/$f" ] && inst_simple "/etc/cryptpilot/$f"
    done
    [ -e "${dracutsysrootdir:-}/etc/cryptpilot/fde.toml" ] \
        || dfatal "91cryptpilot: /etc/cryptpilot/fde.toml is missing"
    [ -e "${dracutsysrootdir:-}/etc/cryptpilot/metadata.toml" ] \
        || dfatal "91cryptpilot: /etc/cryptpilot/metadata.toml (the root hash) is missing"
    inst_rules "$moddir/12-cryptpilot-hide-intermediate-devices.rules"
    inst_simple "$moddir/cryptpilot-fde-before-sysroot.service" \
        "$systemdsystemunitdir/cryptpilot-fde-before-sysroot.service"
    inst_simple "$moddir/cryptpilot-fde-after-sysroot.service" \
        "$systemdsystemunitdir/cryptpilot-fde-after-sysroot.service"
    $SYSTEMCTL -q --root "$initdir" enable cryptpilot-fde-before-sysroot.service
    $SYSTEMCTL -q --root "$initdir" enable cryptpilot-fde-after-sysroot.service
    # The network for key providers, configured by the initrd's network module.
    echo "rd.neednet=1 ip=dhcp" > "${initdir}/etc/cmdline.d/91-cryptpilot.conf"
}
