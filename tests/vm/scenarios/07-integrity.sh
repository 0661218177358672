# LUKS2 with dm-integrity: the superblock and journal we write equal what cryptsetup has the
# kernel write; our tables equal cryptsetup's; data crosses both ways; a flipped byte on the
# disk makes that sector fail to read; the tag wipe is timed against cryptsetup's.
dd if=/dev/urandom of=/tmp/pattern bs=1M count=4 2>/dev/null
journal_md5() {  # DEV: md5 of the journal area after the superblock at 16 MiB
    j=$(dmsetup table "$2" | grep -o 'journal_sectors:[0-9]*' | cut -d: -f2)
    dd if="$1" bs=512 skip=32776 count="$j" 2>/dev/null | md5sum | cut -d' ' -f1
}
for args in "--integrity hmac-sha256 --sector-size 512" \
            "--integrity hmac-sha256 --sector-size 4096" \
            "--cipher aes-gcm-random --integrity aead --sector-size 512" \
            "--cipher aes-xts-random --integrity hmac-sha256 --sector-size 512" \
            "--integrity hmac-sha256 --integrity-legacy-padding --sector-size 512"; do
    cryptsetup luksFormat -q $FAST --key-file /tmp/k1 --integrity-no-wipe $args $D1
    cryptpilot luks format -q $FAST --key-file /tmp/k1 --integrity-no-wipe $args $D2
    [ "$(sb_area $D1 32768)" = "$(sb_area $D2 32768)" ] || {
        sb_area $D1 32768 | head -2; sb_area $D2 32768 | head -2
        fail "$args: superblocks differ"; }
    # Tables and UUIDs of both mappings, journalled and direct, for the same header.
    for mode in "" "--integrity-no-journal"; do
        cryptsetup open --key-file /tmp/k1 $mode $D2 x
        theirs="$(table_nokey x) / $(dmsetup table x_dif) / $(dmsetup info -c --noheadings -o uuid x x_dif | tr '\n' ' ')"
        their_journal=$(journal_md5 $D1 x_dif)
        cryptsetup close x
        cryptpilot luks open --key-file /tmp/k1 $mode $D2 x
        want=journal; [ -n "$mode" ] && want=direct
        cryptpilot luks status --json x | grep -q "\"mode\":\"$want" \
            || { cryptpilot luks status --json x; fail "status does not show the integrity layer"; }
        ours="$(table_nokey x) / $(dmsetup table x_dif) / $(dmsetup info -c --noheadings -o uuid x x_dif | tr '\n' ' ')"
        our_journal=$(journal_md5 $D2 x_dif)
        cryptpilot luks close x
        [ "$ours" = "$theirs" ] || fail "$args $mode: ours '$ours' vs cryptsetup '$theirs'"
        [ -z "$mode" ] && { [ "$our_journal" = "$their_journal" ] || fail "$args: journals differ"; }
        ! dmsetup info x_dif >/dev/null 2>&1 || fail "close left x_dif behind"
    done
    echo "$args: superblock, journal, tables equal: $ours"
done

# Standalone superblocks equal integritysetup's (the kernel's) for the same parameters, and
# integritysetup maps ours with the table it builds for its own.
for pair in "--integrity crc32c|--tag-size 4" \
            "--integrity sha256 -s 4096 -j 1048576 --interleave-sectors 8192|-t 32 -s 4096 -j 1048576 --interleave-sectors 8192" \
            "--integrity sha1 --journal-size 65536|-t 20 -j 64k"; do
    theirs=${pair%|*}; ours=${pair#*|}
    dd if=/dev/zero of=$D1 bs=1M count=1 conv=fsync 2>/dev/null
    integritysetup format -q --no-wipe --integrity-legacy-hmac $theirs $D1
    cryptpilot integrity format -q --no-wipe $ours $D2 > /dev/null
    [ "$(sb_area $D1 0)" = "$(sb_area $D2 0)" ] || {
        sb_area $D1 0 | head -2; sb_area $D2 0 | head -2; fail "integritysetup $theirs: superblocks differ"; }
    j=$(cryptpilot integrity dump --json $D2 | grep -o '"journal_sectors":[0-9]*' | cut -d: -f2)
    [ "$(dd if=$D1 bs=512 skip=8 count=$j 2>/dev/null | md5sum)" = "$(dd if=$D2 bs=512 skip=8 count=$j 2>/dev/null | md5sum)" ] \
        || fail "integritysetup $theirs: journals differ"
    alg=$(echo "$theirs" | cut -d' ' -f2)
    integritysetup open --integrity $alg $D1 i; t1=$(dmsetup table i); integritysetup close i
    integritysetup open --integrity $alg $D2 i; t2=$(dmsetup table i); integritysetup close i
    [ "${t1#* * * * }" = "${t2#* * * * }" ] || fail "integritysetup maps ours as '$t2', its own as '$t1'"
    echo "integritysetup format $theirs: superblock and journal equal; $(cryptpilot integrity dump $D2 | tr '\n' ' ')"
done

# integrity format initialises every tag as integritysetup's does (no --no-wipe): every
# sector of the whole device reads back through integritysetup's mapping, timed against
# integritysetup's format on the same disk size; without the wipe, reads fail.
t=$(now); cryptpilot integrity format -q -I sha256 $D2; ours=$(elapsed $t)
t=$(now); integritysetup format -q -I sha256 $D1; theirs=$(elapsed $t)
echo "integrity format + wipe of 256 MiB (sha256 tags): cryptpilot ${ours} s, integritysetup ${theirs} s"
integritysetup open -I sha256 $D2 wiped
dd if=/dev/mapper/wiped of=/dev/null bs=1M 2>/tmp/err || { cat /tmp/err; fail "a sector of our wiped integrity device does not read"; }
integritysetup close wiped
dd if=/dev/zero of=$D2 bs=1M conv=fsync 2>/dev/null || true
cryptpilot integrity format -q --no-wipe -I sha256 $D2
integritysetup open -I sha256 $D2 unwiped
! dd if=/dev/mapper/unwiped of=/dev/null bs=1M count=1 2>/dev/null || fail "an unwiped device read back: the check above proves nothing"
integritysetup close unwiped

# The full format with the tag wipe, timed against cryptsetup's on the same disk size.
t=$(now); cryptpilot luks format -q $FAST --key-file /tmp/k1 --integrity hmac-sha256 --sector-size 512 $D1; ours=$(elapsed $t)
t=$(now); cryptsetup luksFormat -q $FAST --key-file /tmp/k2 --integrity hmac-sha256 --sector-size 512 $D2; theirs=$(elapsed $t)
echo "format + wipe of 256 MiB: cryptpilot ${ours} s, cryptsetup ${theirs} s"

# Every sector reads back after our wipe (no I/O error), through cryptsetup's mapping too.
cryptsetup open --key-file /tmp/k1 $D1 theirs
dd if=/dev/mapper/theirs of=/dev/null bs=1M 2>/tmp/err || { cat /tmp/err; fail "a sector of our wiped volume does not read"; }
dd if=/tmp/pattern of=/dev/mapper/theirs bs=1M seek=3 conv=fsync 2>/dev/null
cryptsetup close theirs
cryptpilot luks open --key-file /tmp/k1 $D1 ours
dd if=/dev/mapper/ours bs=1M skip=3 count=4 2>/dev/null | cmp - /tmp/pattern || fail "we read cryptsetup's writes differently"
dd if=/dev/mapper/ours of=/dev/null bs=1M 2>/tmp/err || { cat /tmp/err; fail "a sector of cryptsetup's wipe does not read"; }
dd if=/tmp/pattern of=/dev/mapper/ours bs=1M seek=10 conv=fsync 2>/dev/null
j=$(dmsetup table ours_dif | grep -o 'journal_sectors:[0-9]*' | cut -d: -f2)
cryptpilot luks close ours
cryptsetup open --key-file /tmp/k1 $D1 theirs
dd if=/dev/mapper/theirs bs=1M skip=10 count=4 2>/dev/null | cmp - /tmp/pattern || fail "cryptsetup reads our writes differently"
cryptsetup close theirs
# cryptsetup's volume opens with us and reads its wiped sectors.
cryptpilot luks open --key-file /tmp/k2 $D2 ours
dd if=/dev/mapper/ours of=/dev/null bs=1M 2>/tmp/err || { cat /tmp/err; fail "cryptsetup's volume does not read through us"; }
cryptpilot luks close ours
echo "data crossed both ways; every sector reads after either wipe"

# Flip one byte of logical sector 1000's data on the disk (area 0: superblock, journal, a
# 2048-sector tag run, then data): the 4 KiB block holding it (sectors 1000-1007, what a
# buffered read fetches) now fails, its neighbours do not.
off=$(( (32768 + 8 + j + 2048 + 1000) * 512 + 100 ))
flip_byte $D1 $off
cryptpilot luks open --key-file /tmp/k1 $D1 ours
dd if=/dev/mapper/ours of=/dev/null bs=4096 skip=124 count=1 2>/dev/null || fail "block 124 fails"
dd if=/dev/mapper/ours of=/dev/null bs=4096 skip=126 count=1 2>/dev/null || fail "block 126 fails"
if dd if=/dev/mapper/ours of=/dev/null bs=4096 skip=125 count=1 2>/tmp/err; then fail "the flipped sector read without error"; fi
grep -q -i -E "I/O error|Input/output error" /tmp/err || { cat /tmp/err; fail "no I/O error for the flipped sector"; }
cryptpilot luks close ours
echo "flipped byte at disk offset $off: logical sector 1000 fails with an I/O error, its neighbours read"
