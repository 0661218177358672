# Shared helpers for the project's scripts (sourced, not run).

# need_packages PKG...: installs the Debian packages that are missing.
need_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "installing Debian packages: ${missing[*]}" >&2
    local before removed
    before=$(installed_packages)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # apt may remove an installed package as a conflict (qemu-system-x86 from bookworm removes
    # a newer qemu-utils, and with it qemu-img): put back the distribution's version of each.
    removed=$(comm -23 <(echo "$before") <(installed_packages))
    [ -z "$removed" ] && return 0
    echo "reinstalling Debian packages apt removed: $(echo $removed)" >&2
    # shellcheck disable=SC2086 # one package name per word
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" $removed >/dev/null
    # A conflict both ways cannot be settled here: say which packages are missing.
    local gone
    # shellcheck disable=SC2086
    gone=$(comm -23 <(printf '%s\n' "$@" $removed | sort -u) <(installed_packages))
    [ -z "$gone" ] || { echo "cannot install these Debian packages together: $(echo $gone)" >&2; return 1; }
}

# installed_packages: the names of the installed Debian packages, sorted, one per line.
installed_packages() {
    dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | sort
}

# need_cargo: fails with a clear message when no Rust toolchain is installed.
need_cargo() {
    command -v cargo >/dev/null || {
        echo "cargo not found: install a Rust toolchain (1.89 or newer), e.g. with rustup" >&2
        exit 1
    }
}

# build_static: the statically linked, stripped cryptpilot that initrds carry as /init (no
# debug info: a 60 MB binary would make every initrd slow to build, load and unpack).
# Prints its path. Every script builds it the same way, so cargo builds it once.
build_static() {
    echo "building the static cryptpilot binary" >&2
    RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_DEBUG=0 \
        CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked -q \
        --target x86_64-unknown-linux-gnu -p cryptpilot >&2 || return 1
    echo "$PWD/target/x86_64-unknown-linux-gnu/release/cryptpilot"
}
