# shellcheck shell=bash
# Shared helpers for scripts/provision-host and scripts/host/*.sh (sourced, never run).

VCM_LOG_TAG=${VCM_LOG_TAG:-provision-host}
VCM_STEP="start"

log() {
    printf '[%s %s] %s\n' "$VCM_LOG_TAG" "$(date +%H:%M:%S)" "$*"
}

die() {
    printf '[%s %s] ERROR: %s\n' "$VCM_LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2
    exit 1
}

step() {
    VCM_STEP=$1
}

on_error() {
    local rc=$1 line=$2 cmd=$3
    printf '[%s %s] ERROR: step "%s" failed (exit %s) at %s: %s\n' \
        "$VCM_LOG_TAG" "$(date +%H:%M:%S)" "$VCM_STEP" "$rc" "$line" "$cmd" >&2
    exit "$rc"
}

install_error_trap() {
    trap 'on_error $? "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND"' ERR
}

require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (vagrant-lxc, lxc and dockerd need it)"
}

# Install SRC as DEST with MODE unless DEST already has the same content and mode.
# Prints "changed" or "unchanged".
install_file() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
        echo unchanged
        return 0
    fi
    install -D -m "$mode" "$src" "$dest.vcm-new"
    mv -f "$dest.vcm-new" "$dest"
    echo changed
}

# Write stdin to DEST (mode MODE) unless it is already identical. Prints "changed"/"unchanged".
write_file() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    install_file "$tmp" "$dest" "$mode"
    rm -f "$tmp"
}

# lxc-net switches IPv4 forwarding on. Off, guests reach the host and each other on their bridge,
# but nothing is routed off this machine.
forwarding_off() {
    if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 0 ]; then
        echo 0 >/proc/sys/net/ipv4/ip_forward
        log "net.ipv4.ip_forward set back to 0"
    fi
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# The Debian mirror of this host, read at run time from the apt sources (never written to a file).
# MIRROR= in the environment overrides it.
debian_mirror() {
    local suite=${1:-bookworm} uri=""
    if [ -n "${MIRROR:-}" ]; then
        echo "$MIRROR"
        return 0
    fi
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v suite="$suite" '
            function flush() {
                if (!found && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" &&
                    (" " suites " ") ~ ("[ \t]" suite "[ \t]") && uris != "") {
                    split(uris, u, /[ \t]+/); print u[1]; found = 1
                }
                types = ""; suites = ""; uris = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "suites") suites = val
                else if (key == "uris") uris = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { flush() }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk -v suite="$suite" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' /etc/apt/sources.list)
    fi
    case "$uri" in
        http://*|https://*|file:/*) echo "$uri" ;;
        *) die "no usable Debian mirror for '$suite' in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set MIRROR=)" ;;
    esac
}
