"""How a box's CPUs and memory become each provider's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcm.adapters.resources import docker_update_args, host_capacity, provider_settings
from vcm.domain.model import Resources


@pytest.mark.parametrize("provider", ["virtualbox", "libvirt"])
def test_vm_providers_get_cpus_and_memory_in_mib(provider: str) -> None:
    assert provider_settings(Resources(cpus=2, memory=1024))[provider] == {
        "cpus": 2,
        "memory": 1024,
    }


@pytest.mark.parametrize("provider", ["virtualbox", "libvirt"])
def test_vm_providers_get_only_what_was_asked(provider: str) -> None:
    assert provider_settings(Resources(memory=512))[provider] == {"memory": 512}
    assert provider_settings(Resources(cpus=3))[provider] == {"cpus": 3}


def test_lxc_gets_a_cfs_quota_and_a_memory_limit() -> None:
    assert provider_settings(Resources(cpus=2, memory=256))["lxc"] == {
        "customize": [
            ["cgroup.cpu.cfs_period_us", "100000"],
            ["cgroup.cpu.cfs_quota_us", "200000"],
            ["cgroup.memory.limit_in_bytes", "256M"],
        ]
    }


def test_docker_limits_go_to_docker_update() -> None:
    assert "docker" not in provider_settings(Resources(cpus=1, memory=300))
    assert docker_update_args(Resources(cpus=1, memory=300)) == [
        "--cpus=1",
        "--memory=300m",
        "--memory-swap=300m",
    ]
    assert docker_update_args(Resources()) == []


def test_no_resources_no_settings() -> None:
    assert provider_settings(Resources()) == {}


def test_host_capacity_reads_mem_total(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  10 kB\nMemTotal:       24683792 kB\n")
    capacity = host_capacity(meminfo)
    assert capacity.memory == 24105
    assert capacity.cpus >= 1
