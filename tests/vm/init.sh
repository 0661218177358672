#!/bin/sh
# /init of the test VM: mounts, loads the device-mapper modules, runs each scenario in a
# subshell, prints `RESULT <name> PASS|FAIL <reason>`, then powers off.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/cryptsetup /dev/mapper
for m in $(cat /etc/modules); do modprobe "$m" 2>/dev/null || echo "LOG modprobe $m failed"; done
[ -e /dev/mapper/control ] || echo "LOG no /dev/mapper/control"
# qemu's user network: the key broker is at 10.0.2.100 (the only address forwarded).
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 \
    || echo "LOG no network"
cd /scenarios
for s in *.sh; do
    [ "$s" = lib.sh ] && continue
    name=${s%.sh}
    out=$(sh -c ". ./lib.sh; . ./$s" 2>&1)
    rc=$?
    echo "$out" | sed "s/^/LOG $name: /"
    if [ $rc -eq 0 ]; then
        echo "RESULT $name PASS"
    else
        echo "RESULT $name FAIL $(echo "$out" | tail -n 1)"
    fi
    # Leave nothing behind for the next scenario.
    dmsetup remove_all >/dev/null 2>&1
done
echo VM-SCENARIOS-DONE
poweroff -f
