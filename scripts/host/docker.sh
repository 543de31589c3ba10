# shellcheck shell=bash
# dockerd for Vagrant's docker provider, started by hand (no systemd); sourced by provision-host.
#
# DOCKER_POOLS="A.B.C.0/24 ..." lists the private-network pools to pre-create as docker networks
# (default 192.168.34.0/24; empty: none). Each becomes the network "vcm-pool-A.B.C.0-24" with the
# host (gateway) on .254, like vlxcbr1 on the LXC side. Vagrant's docker provider picks an existing
# network by its exact subnet and never removes one whose name does not start with
# "vagrant_network", so parallel `vagrant up`/`destroy` from different directories cannot race on
# creating or removing the shared network (Vagrant's own lock is per project directory).

DOCKER_CLI=/usr/bin/docker
DOCKER_POOLS=${DOCKER_POOLS-192.168.34.0/24}
DOCKERD_LOG=/var/log/vcm-dockerd.log
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}

dockerd_pid() {
    local pid
    pid=$(cat /run/docker.pid 2>/dev/null) || return 1
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/dockerd ] && echo "$pid"
}

dockerd_answers() {
    timeout 10 "$DOCKER_CLI" info >/dev/null 2>&1
}

# Wait until `docker info` answers; $1 is the pid to watch (dockerd writes its pidfile late).
dockerd_wait() {
    local pid=$1 i
    for ((i = 0; i < DOCKERD_TIMEOUT * 5; i++)); do
        dockerd_answers && return 0
        kill -0 "$pid" 2>/dev/null || die "dockerd exited during start-up; see $DOCKERD_LOG"
        sleep 0.2
    done
    die "dockerd did not answer 'docker info' within ${DOCKERD_TIMEOUT}s; see $DOCKERD_LOG"
}

dockerd_start() {
    # 8>&- 9>&-: the daemon must not inherit (and so hold forever) the callers' lock files.
    setsid /usr/sbin/dockerd --pidfile=/run/docker.pid </dev/null >>"$DOCKERD_LOG" 2>&1 8>&- 9>&- &
    dockerd_wait "$!"
}

dockerd_stop() {
    local pid i
    pid=$(dockerd_pid) || return 0
    kill "$pid"
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    die "dockerd (pid $pid) did not stop within 30s"
}

docker_setup_daemon() {
    step "dockerd"
    local conf
    conf=$(write_file /etc/docker/daemon.json 0644 <<'JSON'
{
  "iptables": false,
  "ip-masq": false,
  "ip6tables": false,
  "ip-forward": false
}
JSON
)
    if dockerd_pid >/dev/null && dockerd_answers; then
        if [ "$conf" = unchanged ]; then
            log "dockerd already up (pid $(dockerd_pid))"
        elif [ -z "$("$DOCKER_CLI" ps -q)" ]; then
            dockerd_stop
            dockerd_start
            log "dockerd restarted with the new /etc/docker/daemon.json (pid $(dockerd_pid))"
        else
            log "daemon.json changed but containers are running: not restarting dockerd now"
        fi
    else
        if dockerd_pid >/dev/null; then
            dockerd_wait "$(dockerd_pid)"
        else
            rm -f /run/docker.pid
            dockerd_start
        fi
        log "dockerd up (pid $(dockerd_pid), $("$DOCKER_CLI" info --format '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}'))"
    fi
    forwarding_off
}

docker_setup_pools() {
    step "docker pool networks"
    local pool net prefix gw existing
    for pool in $DOCKER_POOLS; do
        [[ "$pool" =~ ^(([0-9]{1,3}\.){3})0/24$ ]] || die "bad pool in DOCKER_POOLS: '$pool' (must be A.B.C.0/24)"
        prefix=${BASH_REMATCH[1]}
        gw="${prefix}254"
        net="vcm-pool-${pool%/*}-24"
        existing=$("$DOCKER_CLI" network ls --format '{{.Name}}' | while read -r n; do
            s=$("$DOCKER_CLI" network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$n")
            case " $s " in *" $pool "*) echo "$n" ;; esac
        done)
        if [ "$existing" = "$net" ]; then
            log "docker network $net ($pool, host $gw) already exists"
        elif [ -n "$existing" ]; then
            die "pool $pool is already used by docker network(s): $(echo "$existing" | tr '\n' ' ')"
        else
            "$DOCKER_CLI" network create --driver bridge --subnet "$pool" --gateway "$gw" \
                --label vcm.pool="$pool" "$net" >/dev/null
            log "docker network $net created ($pool, host $gw)"
        fi
    done
}

docker_provision() {
    docker_setup_daemon
    docker_setup_pools
}
