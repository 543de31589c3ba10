"""A box's CPUs and memory, in each provider's own terms, and what this host has to give."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vcm.domain.model import HostCapacity, Resources

CFS_PERIOD_US = 100_000
LXC_KEYS = ("cgroup.cpu.cfs_period_us", "cgroup.cpu.cfs_quota_us", "cgroup.memory.limit_in_bytes")


def provider_settings(resources: Resources) -> dict[str, Any]:
    """What the fixed Vagrantfile sets per provider (machine.json's `provider_settings`).

    Docker is not here: a project's `d.create_args` would replace the box's own, so its limits
    are applied to the container with `docker update` instead (see docker_update_args).
    """
    sizes = {
        key: value
        for key, value in (("cpus", resources.cpus), ("memory", resources.memory))
        if value is not None
    }
    if not sizes:
        return {}
    return {
        "virtualbox": dict(sizes),
        "libvirt": dict(sizes),
        "lxc": {"customize": lxc_customizations(resources)},
    }


def lxc_customizations(resources: Resources) -> list[list[str]]:
    """cgroup v1 limits for `lxc.customize`: a CFS quota of `cpus` CPUs, and a memory limit."""
    items: list[list[str]] = []
    if resources.cpus is not None:
        items.append([LXC_KEYS[0], str(CFS_PERIOD_US)])
        items.append([LXC_KEYS[1], str(resources.cpus * CFS_PERIOD_US)])
    if resources.memory is not None:
        items.append([LXC_KEYS[2], f"{resources.memory}M"])
    return items


def docker_update_args(resources: Resources) -> list[str]:
    """`docker update` options; swap is limited to the memory itself (no extra swap)."""
    args: list[str] = []
    if resources.cpus is not None:
        args.append(f"--cpus={resources.cpus}")
    if resources.memory is not None:
        args += [f"--memory={resources.memory}m", f"--memory-swap={resources.memory}m"]
    return args


def host_capacity(meminfo: Path = Path("/proc/meminfo")) -> HostCapacity:
    """The CPUs this process may run on and the host's total memory in MiB."""
    return HostCapacity(cpus=len(os.sched_getaffinity(0)), memory=_mem_total_mib(meminfo))


def _mem_total_mib(meminfo: Path) -> int:
    for line in meminfo.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "MemTotal":
            return int(value.split()[0]) // 1024
    raise ValueError(f"no MemTotal in {meminfo}")
