"""The commands beyond start and stop, on real Vagrant with docker and with vagrant-lxc: exec,
ssh-info, provision, reload, resources, and the clear refusals of what these providers cannot do
(suspend, resume of a suspended VM, snapshots). One VM per provider goes through all of them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_real_vagrant as seed
from tests.support.daemon import DaemonProcess
from tests.support.real_vagrant import BOX
from tests.support.wire import Wire

pytestmark = pytest.mark.vagrant

provider = seed.provider
files_root = seed.files_root
daemon = seed.daemon

COUNT_RUNS = "echo run >> /var/tmp/vcm-provisioned\n"


def timed(
    wire: Wire, request: dict[str, Any], timings: dict[str, float], label: str = ""
) -> dict[str, Any]:
    began = time.monotonic()
    reply = wire.ask(request)
    name = request["command"] + (f" {request['subcommand']}" if "subcommand" in request else "")
    timings[label or name] = round(time.monotonic() - began, 1)
    return reply


def run(wire: Wire, vm_id: str, *argv: str, timeout: int = 60) -> dict[str, Any]:
    reply = wire.ask({"command": "exec", "vmID": vm_id, "argv": list(argv), "timeout": timeout})
    assert reply["error"] is False, reply
    return reply


def limits_seen_by_the_host(daemon: DaemonProcess, vm_id: str, provider: str) -> tuple[str, str]:
    machine = daemon.state_dir / "machines" / vm_id / ".vagrant" / "machines" / "default"
    if provider == "docker":
        container = (machine / "docker" / "id").read_text().strip()
        inspect = subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True
        )
        host_config = json.loads(inspect.stdout)[0]["HostConfig"]
        return str(host_config["NanoCpus"]), str(host_config["Memory"])
    name = (machine / "lxc" / "id").read_text().strip()

    def cgroup(key: str) -> str:
        return subprocess.run(
            ["lxc-cgroup", "-n", name, key], capture_output=True, text=True, check=True
        ).stdout.strip()

    return cgroup("cpu.cfs_quota_us"), cgroup("memory.limit_in_bytes")


def test_exec_provision_reload_resources_and_refusals(daemon: DaemonProcess, provider: str) -> None:
    timings: dict[str, float] = {}
    wire = Wire(daemon.host, daemon.port)
    too_big = wire.ask({"command": "create", "box": BOX, "cpus": len(os.sched_getaffinity(0)) + 1})
    assert too_big["code"] == "INVALID_REQUEST"
    assert "more than this host has" in too_big["message"]
    created = wire.ask(
        {"command": "create", "box": BOX, "shell": [COUNT_RUNS], "cpus": 1, "memory": 256}
    )
    assert created["error"] is False, created
    vm = timed(wire, {"command": "start", "boxID": created["boxID"]}, timings)
    assert vm["error"] is False, vm
    vm_id = vm["vmID"]

    expected = ("1000000000", str(256 * 1024 * 1024))
    if provider == "lxc":
        expected = ("100000", str(256 * 1024 * 1024))
    assert limits_seen_by_the_host(daemon, vm_id, provider) == expected

    check_exec(wire, vm_id, timings)
    check_ssh_info(wire, vm_id, timings)
    check_provision_and_reload(wire, vm, timings)
    assert limits_seen_by_the_host(daemon, vm_id, provider) == expected
    check_refusals(wire, vm_id, provider, timings)

    stopped = wire.ask({"command": "stop", "vmID": vm_id})
    assert stopped["state"] == "stopped"
    refused = wire.ask({"command": "exec", "vmID": vm_id, "argv": ["true"]})
    assert refused["code"] == "INVALID_REQUEST"
    assert "is stopped" in refused["message"]
    booted = timed(wire, {"command": "reload", "vmID": vm_id}, timings, "reload of a stopped VM")
    assert booted["state"] == "running", booted
    assert run(wire, vm_id, "true")["exitStatus"] == 0
    print(f"{provider} timings (s): {timings}")
    wire.close()


def check_exec(wire: Wire, vm_id: str, timings: dict[str, float]) -> None:
    began = time.monotonic()
    ran = run(wire, vm_id, "sh", "-c", 'echo "out $1"; echo err >&2; exit 3', "sh", "it's $HOME")
    timings["exec"] = round(time.monotonic() - began, 1)
    assert (ran["exitStatus"], ran["stdout"], ran["stderr"]) == (3, "out it's $HOME\n", "err\n")
    assert ran["timedOut"] is False
    assert run(wire, vm_id, "id", "-un")["stdout"] == "vagrant\n"
    missing = run(wire, vm_id, "no-such-program")
    assert missing["exitStatus"] == 127
    big = run(wire, vm_id, "head", "-c", "3000000", "/dev/zero")
    assert (big["stdoutTruncated"], len(big["stdout"])) == (True, 1024 * 1024)
    began = time.monotonic()
    slow = run(wire, vm_id, "sleep", "30", timeout=2)
    assert (slow["timedOut"], slow["exitStatus"]) == (True, 124)
    assert time.monotonic() - began < 25


def check_ssh_info(wire: Wire, vm_id: str, timings: dict[str, float]) -> None:
    info = timed(wire, {"command": "ssh-info", "vmID": vm_id}, timings)
    assert info["error"] is False, info
    assert info["user"] == "vagrant"
    assert Path(info["keyPath"]).is_file()
    assert ssh_banner_at(info["host"], info["port"]).startswith(b"SSH-2.0-")


def check_provision_and_reload(wire: Wire, vm: dict[str, Any], timings: dict[str, float]) -> None:
    vm_id = vm["vmID"]
    provisioned = timed(wire, {"command": "provision", "vmID": vm_id}, timings)
    assert provisioned["state"] == "running", provisioned
    assert run(wire, vm_id, "cat", "/var/tmp/vcm-provisioned")["stdout"] == "run\nrun\n"

    run(wire, vm_id, "sudo", "touch", "/run/vcm-before-reload")
    reloaded = timed(wire, {"command": "reload", "vmID": vm_id}, timings)
    assert (reloaded["state"], reloaded["IP"]) == ("running", vm["IP"]), reloaded
    gone = run(wire, vm_id, "test", "-e", "/run/vcm-before-reload")
    assert gone["exitStatus"] == 1, "reload restarts the machine"
    assert run(wire, vm_id, "hostname", "-f")["stdout"] == vm["hostname"] + "\n"
    assert run(wire, vm_id, "cat", "/var/tmp/vcm-provisioned")["stdout"] == "run\nrun\n"


def check_refusals(wire: Wire, vm_id: str, provider: str, timings: dict[str, float]) -> None:
    before = wire.ask({"command": "info", "subcommand": f"VM {vm_id}"})["VMS"]
    refusals = [
        {"command": "suspend", "vmID": vm_id},
        {"command": "snapshot", "subcommand": "save", "vmID": vm_id, "name": "clean"},
        {"command": "snapshot", "subcommand": "list", "vmID": vm_id},
        {"command": "snapshot", "subcommand": "restore", "vmID": vm_id, "name": "clean"},
        {"command": "snapshot", "subcommand": "delete", "vmID": vm_id, "name": "clean"},
    ]
    for request in refusals:
        refused = timed(wire, request, timings)
        assert (refused["error"], refused["code"]) == (True, "UNSUPPORTED"), refused
        assert f"the {provider} provider cannot" in refused["message"]
        print(f"{provider}: {request['command']} -> {refused['message']}")
        assert wire.ask({"command": "info", "subcommand": f"VM {vm_id}"})["VMS"] == before
    resumed = wire.ask({"command": "resume", "vmID": vm_id})
    assert (resumed["error"], resumed["state"]) == (False, "running")


def ssh_banner_at(host: str, port: int) -> bytes:
    if port == 22:
        return seed.ssh_banner(host)
    assert host == "127.0.0.1", f"a forwarded ssh port must be on loopback, not {host}"
    with socket.create_connection((host, port), timeout=10) as connection:
        return connection.recv(64)
