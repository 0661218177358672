# Locks shared with cryptsetup (/run/cryptsetup/L_<major>:<minor>): each tool waits while the
# other changes the header, and keyslots added by both at once are never lost.
cryptpilot luks format -q $FAST --key-file /tmp/k1 $D1
printf one > /tmp/ka; printf two > /tmp/kb

# cryptsetup reads the header, runs a 3 s KDF unlocked, then takes its write lock and checks
# that the header's sequence id has not moved. Our header change in that window lands, and
# cryptsetup then refuses its stale update instead of overwriting it: nothing is lost.
cryptsetup luksAddKey -q --pbkdf pbkdf2 --iter-time 3000 --key-file /tmp/k1 $D1 /tmp/ka > /tmp/cs.log 2>&1 &
sleep 1
cryptpilot luks config --label changed $D1 || fail "config"
set +e; wait $!; r=$?; set -e
cryptsetup luksDump $D1 | grep -q "Label:.*changed" || fail "our label lost"
if [ $r -eq 0 ]; then
    cryptsetup open --test-passphrase --key-file /tmp/ka $D1 || fail "cryptsetup's key lost"
else
    grep -q "concurrent" /tmp/cs.log || fail "cryptsetup: $(cat /tmp/cs.log)"
fi

# We hold our lock through a KDF of over a second: cryptsetup waits for it, then adds its key.
cryptpilot luks add-key --pbkdf pbkdf2 --pbkdf-force-iterations 500000 --key-file /tmp/k1 $D1 /tmp/kb &
sleep 0.3
t0=$(now)
cryptsetup luksAddKey -q $FAST --key-file /tmp/k1 $D1 /tmp/k2 || fail "cryptsetup luksAddKey"
t1=$(now)
wait $! || fail "our add-key"
waited=$(echo "$t1 $t0" | awk '{ print $1 - $2 }')
awk -v w="$waited" 'BEGIN { exit !(w >= 0.5) }' || fail "cryptsetup did not wait ($waited s)"
for k in /tmp/kb /tmp/k2; do
    cryptsetup open --test-passphrase --key-file $k $D1 || fail "key $k lost"
done
# The slow keyslot would slow every later unlock that tries it.
cryptsetup luksRemoveKey -q --key-file /tmp/kb $D1

# Both at once, three times over: whatever a tool reports done is there.
i=0
while [ $i -lt 3 ]; do
    printf "ours$i" > /tmp/o$i; printf "theirs$i" > /tmp/t$i
    cryptpilot luks add-key $FAST --key-file /tmp/k1 $D1 /tmp/o$i > /tmp/o$i.log 2>&1 &
    p1=$!
    cryptsetup luksAddKey -q $FAST --key-file /tmp/k1 $D1 /tmp/t$i > /tmp/t$i.log 2>&1 &
    p2=$!
    set +e; wait $p1; r1=$?; wait $p2; r2=$?; set -e
    [ $r1 -ne 0 ] || cryptsetup open --test-passphrase --key-file /tmp/o$i $D1 || fail "round $i: our key lost"
    [ $r2 -ne 0 ] || cryptsetup open --test-passphrase --key-file /tmp/t$i $D1 || fail "round $i: cryptsetup's key lost"
    [ $r1 -eq 0 ] || [ $r2 -eq 0 ] || fail "round $i: both failed: $(cat /tmp/o$i.log /tmp/t$i.log)"
    # Keep slots free for the next round.
    [ $r1 -ne 0 ] || cryptsetup luksRemoveKey -q --key-file /tmp/o$i $D1
    [ $r2 -ne 0 ] || cryptsetup luksRemoveKey -q --key-file /tmp/t$i $D1
    i=$((i + 1))
done
cryptsetup isLuks $D1 || fail "header damaged"
echo "cryptsetup waited $waited s for our lock"
