# shellcheck shell=bash
# LXC host side for vagrant-lxc, without systemd (sourced by scripts/provision-host).
#
# PRIVATE_BRIDGES="NAME=ADDR/24 ..." lists the host-only bridges to keep up (default vlxcbr1 on
# 192.168.33.254/24). vagrant-lxc gives a machine's first private_network a /24 on the bridge named
# by lxc__bridge_name, so every private pool needs its own bridge here.

LXC_HOST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PRIVATE_BRIDGES=${PRIVATE_BRIDGES:-vlxcbr1=192.168.33.254/24}

lxc_setup_cgroups() {
    step "cgroups"
    if mountpoint -q /sys/fs/cgroup; then
        log "cgroups: /sys/fs/cgroup already mounted ($(stat -f -c %T /sys/fs/cgroup))"
    else
        mount -t cgroup2 cgroup2 /sys/fs/cgroup
        log "cgroups: mounted cgroup2 on /sys/fs/cgroup"
    fi
}

lxc_net_running() {
    local pid
    [ -f /run/lxc/network_up ] || return 1
    pid=$(cat /run/lxc/dnsmasq.pid 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

lxc_net_has_settings() {
    local pid
    pid=$(cat /run/lxc/dnsmasq.pid)
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- '--no-ping' &&
        tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- '--conf-file=/etc/lxc/dnsmasq-vagrant.conf'
}

lxc_setup_net() {
    step "lxc-net"
    local c1 c2
    c1=$(printf 'no-resolv\nno-poll\n' | write_file /etc/lxc/dnsmasq-vagrant.conf 0644)
    c2=$(write_file /etc/default/lxc-net 0644 <<'CONF'
# Written by vcm scripts/provision-host; lxc-net is started by hand (no systemd).
USE_LXC_BRIDGE="true"
LXC_BRIDGE="lxcbr0"
LXC_ADDR="10.0.3.1"
LXC_NETMASK="255.255.255.0"
LXC_NETWORK="10.0.3.0/24"
LXC_DHCP_RANGE="10.0.3.2,10.0.3.254"
LXC_DHCP_MAX="253"
LXC_DHCP_PING="false"
LXC_DHCP_CONFILE=/etc/lxc/dnsmasq-vagrant.conf
CONF
)
    if lxc_net_running; then
        if [ "$c1$c2" = unchangedunchanged ] && lxc_net_has_settings; then
            log "lxc-net already up (dnsmasq pid $(cat /run/lxc/dnsmasq.pid))"
        elif [ -z "$(lxc-ls --running 2>/dev/null)" ]; then
            /usr/libexec/lxc/lxc-net stop >/dev/null
            /usr/libexec/lxc/lxc-net start >/dev/null 8>&- 9>&-
            log "lxc-net restarted with new settings (dnsmasq pid $(cat /run/lxc/dnsmasq.pid))"
        else
            log "lxc-net settings changed but containers are running: not restarting lxc-net now"
        fi
    else
        if [ -f /run/lxc/network_up ]; then
            /usr/libexec/lxc/lxc-net stop >/dev/null 2>&1 || true
            rm -f /run/lxc/network_up
        fi
        /usr/libexec/lxc/lxc-net start >/dev/null 8>&- 9>&-
        lxc_net_running || die "lxc-net start did not leave dnsmasq running"
        log "lxc-net started: lxcbr0 10.0.3.1/24, dnsmasq pid $(cat /run/lxc/dnsmasq.pid) (--no-ping, no-resolv)"
    fi
    forwarding_off
}

lxc_setup_bridges() {
    step "private bridges"
    local spec name addr
    mkdir -p /etc/vagrant-lxc
    touch /etc/vagrant-lxc/keep-bridges
    for spec in $PRIVATE_BRIDGES; do
        name=${spec%%=*}
        addr=${spec#*=}
        [[ "$name" =~ ^[A-Za-z0-9_-]{1,15}$ ]] || die "bad bridge name in PRIVATE_BRIDGES: '$name'"
        [[ "$addr" =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/24$ ]] || die "bad bridge address in PRIVATE_BRIDGES: '$addr' (must be A.B.C.D/24)"
        [ -e "/sys/class/net/$name" ] || ip link add "$name" type bridge
        ip -o -4 addr show dev "$name" | awk '{print $4}' | grep -qxF "$addr" ||
            ip addr add "$addr" dev "$name"
        ip link set "$name" up
        grep -qxF "$name" /etc/vagrant-lxc/keep-bridges || echo "$name" >>/etc/vagrant-lxc/keep-bridges
        log "private bridge $name $addr ready (kept)"
    done
}

lxc_gem_pipework() {
    local path
    path=$(dpkg -L vagrant-lxc | grep '^/.*/gems/vagrant-lxc-[^/]*/scripts/pipework$') ||
        die "scripts/pipework not found in the vagrant-lxc package"
    echo "${path%%$'\n'*}"
}

lxc_patch_pipework() {
    step "pipework patch"
    local pw tmp state
    pw=$(lxc_gem_pipework)
    if ! dpkg-divert --list "$pw" | grep -q .; then
        dpkg-divert --local --rename --divert "$pw.distrib" --add "$pw" >/dev/null
    fi
    [ -f "$pw.distrib" ] || die "diverted pipework $pw.distrib is missing (reinstall vagrant-lxc)"
    tmp=$(mktemp)
    awk -f "$LXC_HOST_DIR/pipework-lxc5.awk" "$pw.distrib" >"$tmp"
    bash -n "$tmp"
    state=$(install_file "$tmp" "$pw" 0755)
    rm -f "$tmp"
    log "pipework patched ($state): $pw (original diverted to $pw.distrib)"
}

lxc_install_helpers() {
    step "vagrant-lxc wrapper and stop hook"
    local s1 s2
    s1=$(install_file "$LXC_HOST_DIR/vagrant-lxc-wrapper" /usr/local/bin/vagrant-lxc-wrapper 0755)
    s2=$(install_file "$LXC_HOST_DIR/vagrant-lxc-stop-hook" /usr/local/libexec/vagrant-lxc-stop-hook 0755)
    log "vagrant-lxc wrapper ($s1) and LXC stop hook ($s2) installed"
}

lxc_check() {
    step "lxc-checkconfig"
    local out
    out=$(lxc-checkconfig 2>&1 | sed 's/\x1b\[[0-9;]*m//g') || true
    local want
    for want in "Namespaces: enabled" "Network namespace: enabled" "Veth pair device: enabled"; do
        grep -qF "$want" <<<"$out" || die "lxc-checkconfig does not report '$want'"
    done
    log "lxc-checkconfig: namespaces, network namespace and veth enabled"
}

lxc_provision() {
    lxc_setup_cgroups
    lxc_setup_net
    lxc_setup_bridges
    lxc_patch_pipework
    lxc_install_helpers
    lxc_check
}
