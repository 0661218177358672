# status text and JSON describe the mapping.
cryptpilot luks format -q $FAST --key-file /tmp/k1 --sector-size 4096 $D1
cryptpilot luks open --key-file /tmp/k1 $D1 st
out=$(cryptpilot luks status st)
echo "$out" | grep -q "is active" || fail "$out"
echo "$out" | grep -q "cipher:  aes-xts-plain64" || fail "$out"
echo "$out" | grep -q "sector size:  4096" || fail "$out"
echo "$out" | grep -q "offset:  32768 sectors" || fail "$out"
json=$(cryptpilot luks status --json st)
echo "$json" | grep -q '"key_bits":512' || fail "$json"
echo "$json" | grep -q '"type":"LUKS2"' || fail "$json"
cryptpilot luks close st
echo "$json"
