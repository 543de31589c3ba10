# Turns vagrant-lxc 1.4.3's scripts/pipework (diverted to pipework.distrib) into the copy that
# scripts/provision-host installs: LXC >= 3.1 names the container cgroup "lxc.payload.NAME", so
# pipework's `find <devices cgroup> -name NAME` finds nothing and it falls back to docker
# (fgrehm/vagrant-lxc#484). The container's init PID comes from `lxc-info -n NAME -pH` instead.
# Fails (exit 1) unless both blocks it replaces are found exactly once.

/^# Second step: find the guest/ {
    print "# Second step: find the guest (vcm patch: LXC >= 3.1, see fgrehm/vagrant-lxc#484)."
    print "DOCKERPID="
    print "NSPID=$(lxc-info -n \"$GUESTNAME\" -pH 2>/dev/null | tr -d '[:space:]')"
    print "case \"$NSPID\" in"
    print "  ''|*[!0-9]*) die 1 \"Container $GUESTNAME not found or not running (lxc-info -n $GUESTNAME -pH).\" ;;"
    print "esac"
    print ""
    skip = 1; found1++; next
}
skip == 1 && /^# only check IPADDR/ { skip = 0 }
/^if \[ "\$DOCKERPID" \]; then$/ && !found2 {
    print "# (vcm patch: NSPID was set by lxc-info above.)"
    skip = 2; found2++; next
}
skip == 2 && /^# Check if an incompatible VLAN/ { skip = 0; print "" }
skip { next }
{ print }
END {
    if (found1 != 1 || found2 != 1 || skip) {
        print "pipework-lxc5.awk: unexpected pipework layout, refusing to patch" > "/dev/stderr"
        exit 1
    }
}
