#!/usr/bin/env bash
# The install step and the Debian package, on the static binary (the one initrds carry):
#  - the static build: no program interpreter, its size;
#  - `make install` under a DESTDIR: binary, the existing tool's names, the drop-in names with
#    COMPAT_LINKS=1, man pages that render (the multi-call names' pages too), bash
#    completion that loads and completes verbs, zsh and fish scripts, the systemd unit and
#    dracut module pointed at the installed binary; `make uninstall` leaves nothing;
#  - `make deb`: a package dpkg installs into an empty root, holding the same files and none
#    of cryptsetup-bin's, with no lintian error or warning.
# Prints PASS/FAIL lines; exits 1 on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib.sh
need_cargo
need_packages make man-db groff-base dpkg bash-completion file lintian
fails=0
report() { echo "$1"; [ "${1%% *}" = PASS ] || fails=$((fails + 1)); }
bin=$(build_static) || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The static build.
if file -L "$bin" | grep -Eq 'static(-pie|ally) linked' && ! readelf -l "$bin" | grep -q INTERP; then
    report "PASS  static: $(file -L -b "$bin" | cut -d, -f1-2), no program interpreter, $(( $(stat -c %s "$bin") / 1024 / 1024 )) MiB stripped"
else
    report "FAIL  static: $(file -L -b "$bin")"
fi

# make install.
d=$work/dest
p=/usr/local
if ! make -s install DESTDIR="$d" PREFIX=$p COMPAT_LINKS=1 BIN="$bin" >"$work/install.log" 2>&1; then
    report "FAIL  install: $(tail -3 "$work/install.log" | tr '\n' ' ')"
else
    why=()
    [ -x "$d$p/bin/cryptpilot" ] || why+=("no bin/cryptpilot")
    for n in cryptpilot-crypt cryptpilot-fde-guest cryptpilot-fde-host cryptpilot-convert; do
        [ "$(readlink "$d$p/bin/$n")" = cryptpilot ] || why+=("no link $n")
    done
    for n in cryptsetup veritysetup integritysetup; do
        [ "$(readlink "$d$p/sbin/$n")" = "$p/bin/cryptpilot" ] || why+=("no drop-in link $n")
    done
    # Run by a drop-in name (the link's target is where the package will be, so copy).
    cp "$d$p/bin/cryptpilot" "$work/cryptsetup"
    "$work/cryptsetup" --version | grep -q '^cryptsetup 2\.' || why+=("cryptsetup --version")
    pages=$(find "$d$p/share/man" -name 'cryptpilot*' | wc -l)
    [ "$pages" -ge 40 ] || why+=("only $pages man pages")
    for page in cryptpilot cryptpilot-luks-format cryptpilot-convert cryptpilot-fde-convert; do
        MANPATH=$d$p/share/man man -P cat "$page" 2>/dev/null | grep -q -- '--' || why+=("man $page")
    done
    MANPATH=$d$p/share/man man -P cat 8 cryptpilot-cryptsetup 2>/dev/null | grep -q 'luksFormat' ||
        why+=("man 8 cryptpilot-cryptsetup")
    # bash completion: load it, complete `cryptpilot lu` and `cryptpilot luks for`.
    got=$(bash -c '
        source /usr/share/bash-completion/bash_completion 2>/dev/null
        source "$1"
        COMP_WORDS=(cryptpilot lu); COMP_CWORD=1; COMP_LINE="cryptpilot lu"; COMP_POINT=${#COMP_LINE}
        _cryptpilot cryptpilot lu cryptpilot; echo "${COMPREPLY[*]}"
        COMP_WORDS=(cryptpilot luks for); COMP_CWORD=2; COMP_LINE="cryptpilot luks for"; COMP_POINT=${#COMP_LINE}
        _cryptpilot cryptpilot for luks; echo "${COMPREPLY[*]}"' _ "$d$p/share/bash-completion/completions/cryptpilot" 2>&1)
    grep -qx luks <<<"$(head -1 <<<"$got")" && grep -qx format <<<"$(sed -n 2p <<<"$got")" ||
        why+=("bash completion: $got")
    grep -q 'luks' "$d$p/share/zsh/vendor-completions/_cryptpilot" || why+=("zsh completion")
    grep -q 'luks' "$d$p/share/fish/vendor_completions.d/cryptpilot.fish" || why+=("fish completion")
    grep -q "ExecStart=$p/bin/cryptpilot-crypt " "$d$p/lib/systemd/system/cryptpilot.service" || why+=("unit ExecStart")
    grep -q "ExecStart=$p/bin/cryptpilot-fde-guest " "$d$p/lib/dracut/modules.d/91cryptpilot/cryptpilot-fde-before-sysroot.service" ||
        why+=("dracut unit ExecStart")
    [ -x "$d$p/lib/dracut/modules.d/91cryptpilot/module-setup.sh" ] || why+=("dracut module-setup.sh")
    if [ ${#why[@]} -eq 0 ]; then
        report "PASS  install: binary, 4 names, 3 drop-in links, $pages man pages that render, bash/zsh/fish completion, systemd unit, dracut module"
    else
        report "FAIL  install: ${why[*]}"
    fi
    make -s uninstall DESTDIR="$d" PREFIX=$p >/dev/null 2>&1
    left=$(find "$d" -type f -o -type l | sed "s|^$d||")
    if [ -z "$left" ]; then
        report "PASS  uninstall: nothing left"
    else
        report "FAIL  uninstall left: $(head -5 <<<"$left" | tr '\n' ' ')"
    fi
fi

# make deb, installed into an empty dpkg root.
if ! make -s deb BIN="$bin" >"$work/deb.log" 2>&1; then
    report "FAIL  deb: $(tail -3 "$work/deb.log" | tr '\n' ' ')"
else
    deb=$(ls target/deb/cryptpilot-rs_*.deb | head -1)
    r=$work/dpkgroot
    mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates"
    touch "$r/var/lib/dpkg/status"
    files=$(dpkg-deb -c "$deb" | awk '{print $6}')
    why=()
    dpkg --root="$r" --log=/dev/null --force-not-root --force-script-chrootless -i "$deb" >"$work/dpkg.log" 2>&1 ||
        why+=("dpkg -i: $(tail -1 "$work/dpkg.log")")
    [ -x "$r/usr/bin/cryptpilot" ] || why+=("no /usr/bin/cryptpilot after dpkg -i")
    "$r/usr/bin/cryptpilot" --version | grep -q cryptpilot || why+=("installed binary does not run")
    grep -Eq '/(cryptsetup|veritysetup|integritysetup)$' <<<"$files" && why+=("holds a drop-in name")
    # None of its paths is a file of Debian's cryptsetup-bin (installed here for the interop tests).
    clash=$(dpkg -L cryptsetup-bin 2>/dev/null | grep -Fx -f <(sed 's|^\./|/|' <<<"$files") || true)
    [ -z "$clash" ] || why+=("shares files with cryptsetup-bin: $clash")
    # Debian's policy checks: no error or warning (informational tags are listed in the log).
    lintian --fail-on error,warning "$deb" >"$work/lintian.log" 2>&1 ||
        why+=("lintian: $(grep -E '^[EW]: ' "$work/lintian.log" | head -3 | tr '\n' ' ')")
    if [ ${#why[@]} -eq 0 ]; then
        report "PASS  deb: $(basename "$deb"), $(wc -l <<<"$files") entries, installs into an empty root, no file of cryptsetup-bin, lintian clean"
    else
        report "FAIL  deb: ${why[*]}"
    fi
fi
echo "install: $fails failed"
[ "$fails" -eq 0 ]
