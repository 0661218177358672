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
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_cargo: fails with a clear message when no Rust toolchain is installed.
need_cargo() {
    command -v cargo >/dev/null || {
        echo "cargo not found: install a Rust toolchain (1.89 or newer), e.g. with rustup" >&2
        exit 1
    }
}
