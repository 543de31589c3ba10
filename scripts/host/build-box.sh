#!/bin/bash
# Build the local Vagrant box "vcm/bookworm-test" and add it for the given providers.
#
#   scripts/host/build-box.sh lxc|docker|all
#
# One rootfs (debootstrap bookworm minbase + systemd, openssh-server, sudo, puppet, the vagrant
# user) serves both providers:
#   lxc:    a real .box (metadata.json, lxc-config, rootfs.tar.gz) for vagrant-lxc;
#   docker: the image vcm/bookworm-docker:<build-id> imported from the same rootfs, plus a small
#           box whose embedded Vagrantfile points Vagrant's docker provider at it.
# Artifacts are cached in /var/cache/vcm-box and keyed by a build id (a hash of this script and
# of scripts/host/box/), so a second run only checks them. FORCE=1 rebuilds.
# The Debian mirror is read from the host's apt sources at run time (MIRROR= overrides it); it is
# not left in the box.
set -Eeuo pipefail

HOST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VCM_LOG_TAG=${VCM_LOG_TAG:-build-box}
# shellcheck source=scripts/host/common.sh
. "$HOST_DIR/common.sh"
install_error_trap

BOX_NAME=${BOX_NAME:-vcm/bookworm-test}
SUITE=bookworm
CACHE=${VCM_BOX_CACHE:-/var/cache/vcm-box}
DOCKER_CLI=/usr/bin/docker
DOCKER_REPO=vcm/bookworm-docker
VAGRANT_HOME=${VAGRANT_HOME:-$HOME/.vagrant.d}
export VAGRANT_CHECKPOINT_DISABLE=1
INCLUDE=systemd,systemd-sysv,openssh-server,sudo,iproute2,procps,iputils-ping,netbase
MASKED_UNITS="apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service
 fstrim.timer systemd-timesyncd.service getty@tty1.service console-getty.service
 systemd-networkd-wait-online.service puppet.service"

WORK=""
ROOTFS_MOUNTS=()

cleanup() {
    local m
    for m in "${ROOTFS_MOUNTS[@]}"; do
        umount -l "$m" 2>/dev/null || true
    done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        rm -rf --one-file-system "$WORK"
    fi
}
trap cleanup EXIT

build_id() {
    {
        echo "suite=$SUITE include=$INCLUDE masked=$MASKED_UNITS"
        sha256sum <"$HOST_DIR/build-box.sh"
        (cd "$HOST_DIR/box" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}

# --- rootfs -------------------------------------------------------------------------------

chroot_run() {
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
        DEBIAN_FRONTEND=noninteractive "${@:2}"
}

vagrant_insecure_key() {
    local key
    # (no grep -m1: with pipefail, an early exit of grep fails the pipeline by SIGPIPE)
    key=$(dpkg -L vagrant | grep '/keys/vagrant\.pub$') || die "Vagrant's insecure key (keys/vagrant.pub) not found in the vagrant package"
    echo "${key%%$'\n'*}"
}

debootstrap_rootfs() {
    local root=$1 mirror t0
    mirror=$(debian_mirror "$SUITE")
    t0=$(date +%s)
    step "debootstrap"
    log "debootstrap $SUITE (minbase + $INCLUDE) into $root"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 20 "$WORK/debootstrap.log" >&2
        die "debootstrap failed (log above)"
    }
    log "debootstrap done in $(($(date +%s) - t0))s"
}

install_puppet() {
    local root=$1 t0
    step "puppet"
    t0=$(date +%s)
    install -m 0644 "$HOST_DIR/box/rootfs/etc/dpkg/dpkg.cfg.d/vcm-nodoc" "$root/etc/dpkg/dpkg.cfg.d/vcm-nodoc"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    mount -t proc proc "$root/proc"
    ROOTFS_MOUNTS+=("$root/proc")
    if ! { chroot_run "$root" apt-get -q update &&
        chroot_run "$root" apt-get -q -y install --no-install-recommends puppet; } >"$WORK/apt.log" 2>&1; then
        tail -n 20 "$WORK/apt.log" >&2
        die "installing puppet in the rootfs failed (log above)"
    fi
    umount "$root/proc"
    ROOTFS_MOUNTS=()
    rm -f "$root/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not a shell expansion
    log "puppet $(chroot_run "$root" dpkg-query -W -f='${Version}' puppet) installed in $(($(date +%s) - t0))s"
}

configure_rootfs() {
    local root=$1 unit f
    step "configure rootfs"
    (cd "$HOST_DIR/box/rootfs" && find . -type f) | while read -r f; do
        install -D -m 0644 "$HOST_DIR/box/rootfs/$f" "$root/$f"
    done
    chmod 0440 "$root/etc/sudoers.d/vagrant"
    chmod 0755 "$root/usr/local/sbin/vcm-ssh-host-keys"

    echo "bookworm" >"$root/etc/hostname"
    : >"$root/etc/resolv.conf"
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*

    chroot_run "$root" useradd --create-home --uid 1000 --user-group --shell /bin/bash vagrant
    echo 'vagrant:vagrant' | chroot_run "$root" chpasswd
    install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
    install -m 0600 -o 1000 -g 1000 "$(vagrant_insecure_key)" "$root/home/vagrant/.ssh/authorized_keys"

    chroot_run "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
    for unit in $MASKED_UNITS; do
        ln -sfn /dev/null "$root/etc/systemd/system/$unit"
    done

    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/*
    if [ -d "$root/usr/share/locale" ]; then
        find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    fi
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old "$root/debootstrap"
    find "$root/var/log" -type f -delete
    if grep -rqsF "$(debian_mirror "$SUITE" | sed 's|^[a-z]*://||; s|/.*||')" "$root/etc" "$root/var/lib/apt"; then
        die "the Debian mirror's host name is still written in the rootfs"
    fi
    log "rootfs configured: vagrant user (uid 1000, insecure key), networkd DHCP on eth0, $(echo "$MASKED_UNITS" | wc -w) units masked, $(du -sm "$root" | cut -f1) MiB"
}

build_rootfs() {
    local root=$1
    debootstrap_rootfs "$root"
    install_puppet "$root"
    configure_rootfs "$root"
}

# Unpack the rootfs of the cached lxc box (saves a debootstrap when only the image is missing).
rootfs_from_lxc_box() {
    local root=$1
    step "unpack cached rootfs"
    mkdir -p "$root"
    tar -xOf "$CACHE/bookworm-lxc.box" rootfs.tar.gz |
        tar -xz --numeric-owner --xattrs --xattrs-include='*' --strip-components=2 -C "$root"
    log "rootfs unpacked from $CACHE/bookworm-lxc.box"
}

# --- artifacts ----------------------------------------------------------------------------

lxc_box_cached() {
    [ -f "$CACHE/bookworm-lxc.box" ] && [ "$(cat "$CACHE/bookworm-lxc.box.id" 2>/dev/null)" = "$ID" ]
}

docker_box_cached() {
    [ -f "$CACHE/bookworm-docker.box" ] && [ "$(cat "$CACHE/bookworm-docker.box.id" 2>/dev/null)" = "$ID" ]
}

docker_image_present() {
    [ "$("$DOCKER_CLI" image inspect --format '{{index .Config.Labels "vcm.build-id"}}' "$DOCKER_REPO:$ID" 2>/dev/null)" = "$ID" ]
}

package_lxc_box() {
    local root=$1 dir=$WORK/lxc-box
    step "package lxc box"
    mkdir -p "$dir"
    printf '{"provider":"lxc","version":"1.0.0"}\n' >"$dir/metadata.json"
    install -m 0644 "$HOST_DIR/box/lxc-config" "$dir/lxc-config"
    install -m 0755 "$HOST_DIR/box/lxc-template" "$dir/lxc-template"
    echo "$ID" >"$dir/vcm-build-id"
    # vagrant-lxc's template untars with --strip-components=2: entries must be ./rootfs/...
    tar --numeric-owner --xattrs --xattrs-include='*' -C "${root%/*}" -cf - "./${root##*/}" |
        gzip -1 >"$dir/rootfs.tar.gz"
    tar -C "$dir" -cf "$CACHE/bookworm-lxc.box.tmp" metadata.json lxc-config lxc-template rootfs.tar.gz vcm-build-id
    mv -f "$CACHE/bookworm-lxc.box.tmp" "$CACHE/bookworm-lxc.box"
    echo "$ID" >"$CACHE/bookworm-lxc.box.id"
    log "lxc box $CACHE/bookworm-lxc.box ($(du -m "$CACHE/bookworm-lxc.box" | cut -f1) MiB) built"
}

import_docker_image() {
    local root=$1
    step "docker image"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$root" -cf - . |
        "$DOCKER_CLI" import \
            --change 'CMD ["/sbin/init"]' \
            --change 'ENV container=docker' \
            --change "LABEL vcm.build-id=$ID" \
            - "$DOCKER_REPO:$ID" >/dev/null
    "$DOCKER_CLI" tag "$DOCKER_REPO:$ID" "$DOCKER_REPO:latest"
    log "docker image $DOCKER_REPO:$ID imported ($("$DOCKER_CLI" image inspect --format '{{.Size}}' "$DOCKER_REPO:$ID" | awk '{printf "%d MiB", $1/1048576}'))"
}

package_docker_box() {
    local dir=$WORK/docker-box
    step "package docker box"
    mkdir -p "$dir"
    printf '{"provider":"docker"}\n' >"$dir/metadata.json"
    sed "s|@IMAGE@|$DOCKER_REPO:$ID|" "$HOST_DIR/box/Vagrantfile.docker" >"$dir/Vagrantfile"
    echo "$ID" >"$dir/vcm-build-id"
    tar -C "$dir" -czf "$CACHE/bookworm-docker.box.tmp" metadata.json Vagrantfile vcm-build-id
    mv -f "$CACHE/bookworm-docker.box.tmp" "$CACHE/bookworm-docker.box"
    echo "$ID" >"$CACHE/bookworm-docker.box.id"
    log "docker box $CACHE/bookworm-docker.box built (image $DOCKER_REPO:$ID)"
}

# Hand the fresh rootfs to scripts/host/box/lxc-template as the shared overlay lower dir of this
# build: a rename instead of an unpack on the first `vagrant up` (and no 200 MiB delete now).
adopt_rootfs_as_lower() {
    local root=$1 lower=$CACHE/lxc-rootfs/$ID
    step "lxc lower dir"
    grep -qw overlay /proc/filesystems || return 0
    mkdir -p "$CACHE/lxc-rootfs"
    (
        flock 9
        if [ ! -e "$lower.done" ]; then
            rm -rf --one-file-system "$lower" "$lower.tmp"
            mkdir -p "$root/dev/pts"
            mv "$root" "$lower"
            touch "$lower.done"
        fi
    ) 9>"$CACHE/lxc-rootfs/$ID.lock"
    log "rootfs kept as the shared LXC overlay lower dir $lower"
}

box_dir() {
    echo "$VAGRANT_HOME/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/$1"
}

box_add() {
    local provider=$1 file=$2 dir
    step "vagrant box add ($provider)"
    dir=$(box_dir "$provider")
    if [ "$(cat "$dir/vcm-build-id" 2>/dev/null)" = "$ID" ]; then
        log "box $BOX_NAME ($provider) already added, build $ID"
        return 0
    fi
    vagrant box add --force --name "$BOX_NAME" --provider "$provider" "$file" >"$WORK/box-add.log" 2>&1 || {
        cat "$WORK/box-add.log" >&2
        die "vagrant box add $BOX_NAME ($provider) failed (output above)"
    }
    [ "$(cat "$dir/vcm-build-id" 2>/dev/null)" = "$ID" ] || die "box $BOX_NAME ($provider) is not in $dir after vagrant box add"
    log "box $BOX_NAME ($provider) added from $file, build $ID"
}

# Drop what older builds left: the shared LXC lower dirs (scripts/host/box/lxc-template) and
# docker images that no container uses any more.
prune_old_builds() {
    step "prune old builds"
    local d id pruned=0 img
    for d in "$CACHE"/lxc-rootfs/*.done; do
        [ -e "$d" ] || continue
        id=$(basename "$d" .done)
        [ "$id" = "$ID" ] && continue
        if ! grep -qsF "lxc-rootfs/$id:" /var/lib/lxc/*/config; then
            rm -f "$d"
            rm -rf --one-file-system "$CACHE/lxc-rootfs/$id" "$CACHE/lxc-rootfs/$id.lock"
            pruned=$((pruned + 1))
        fi
    done
    if [ -x "$DOCKER_CLI" ] && "$DOCKER_CLI" info >/dev/null 2>&1; then
        for img in $("$DOCKER_CLI" image ls --format '{{.Repository}}:{{.Tag}}' "$DOCKER_REPO"); do
            case "$img" in
                "$DOCKER_REPO:$ID" | "$DOCKER_REPO:latest") ;;
                *) "$DOCKER_CLI" image rm "$img" >/dev/null 2>&1 && pruned=$((pruned + 1)) ;;
            esac
        done
    fi
    if [ "$pruned" -gt 0 ]; then
        log "pruned $pruned artifact(s) of older box builds"
    fi
}

main() {
    local want_lxc=0 want_docker=0 root
    case "${1:-}" in
        lxc) want_lxc=1 ;;
        docker) want_docker=1 ;;
        all) want_lxc=1 want_docker=1 ;;
        *) die "usage: $0 lxc|docker|all" ;;
    esac
    require_root
    mkdir -p "$CACHE"
    ID=$(build_id)
    if [ -n "${FORCE:-}" ]; then
        rm -f "$CACHE"/*.id
    fi
    WORK=$(mktemp -d "$CACHE/work.XXXXXX")
    root=$WORK/rootfs

    if ! lxc_box_cached; then
        build_rootfs "$root"
        package_lxc_box "$root"
    fi
    if [ "$want_docker" = 1 ] && { [ -n "${FORCE:-}" ] || ! docker_image_present; }; then
        [ -d "$root/etc" ] || rootfs_from_lxc_box "$root"
        import_docker_image "$root"
    fi
    if [ "$want_docker" = 1 ] && ! docker_box_cached; then
        package_docker_box
    fi
    if [ "$want_lxc" = 1 ] && [ -d "$root/etc" ]; then
        adopt_rootfs_as_lower "$root"
    fi

    local providers=""
    if [ "$want_lxc" = 1 ]; then
        box_add lxc "$CACHE/bookworm-lxc.box"
        providers="lxc"
    fi
    if [ "$want_docker" = 1 ]; then
        box_add docker "$CACHE/bookworm-docker.box"
        providers="${providers:+$providers }docker"
    fi
    prune_old_builds
    step "done"
    log "box $BOX_NAME ready (build $ID) for: $providers"
}

main "$@"
