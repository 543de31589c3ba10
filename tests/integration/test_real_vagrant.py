"""The whole seed protocol end to end: the daemon as a subprocess, driving the real vagrant binary
with a real provider (docker and vagrant-lxc) and the project's own box."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.real_vagrant import BOX, need_vagrant, vagrant_daemon
from tests.support.wire import Wire

pytestmark = pytest.mark.vagrant

LOCAL_BRIDGES = ("dev vlxcbr1", "dev lxcbr0", "dev docker0", "dev br-")
PUPPET = "file { '/etc/vcm-puppet': content => \"puppet was here\\n\" }\n"
SHELL = 'echo "shell ran as $(id -un) on $(hostname -f)" > /etc/vcm-shell\n'


@pytest.fixture(params=["docker", "lxc"])
def provider(request: pytest.FixtureRequest) -> str:
    need_vagrant()
    return str(request.param)


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    (root / "payload.txt").write_text("payload from the host\n")
    return root


@pytest.fixture
def daemon(tmp_path: Path, provider: str, files_root: Path) -> Any:
    process = vagrant_daemon(
        tmp_path / "state",
        provider,
        VCM_FILES_ROOT=str(files_root),
        VCM_BOX_ADD_TIMEOUT="60",
    ).start()
    yield process
    with Wire(process.host, process.port) as wire:
        wire.ask({"command": "destroy all"})
    process.stop()
    print(process.log[-20_000:])


def in_guest(daemon: DaemonProcess, vm_id: str, command: str) -> str:
    result = subprocess.run(
        ["vagrant", "ssh", "-c", command],
        cwd=daemon.state_dir / "machines" / vm_id,
        env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command!r} in {vm_id}: {result.stderr}"
    return result.stdout.strip()


def ssh_banner(ip: str) -> bytes:
    route = subprocess.run(
        ["ip", "route", "get", ip], capture_output=True, text=True, check=True
    ).stdout
    assert any(bridge in route for bridge in LOCAL_BRIDGES), f"{ip} is not on a local bridge"
    with socket.create_connection((ip, 22), timeout=10) as connection:
        return connection.recv(64)


def start_in_parallel(daemon: DaemonProcess, box_id: str, count: int) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = [{} for _ in range(count)]

    def start(index: int) -> None:
        with Wire(daemon.host, daemon.port) as wire:
            replies[index] = wire.ask(f'{{\n\t"command": "start",\n\t"boxID": "{box_id}"\n}}')

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def test_the_seed_protocol_on_real_vagrant(daemon: DaemonProcess, provider: str) -> None:
    wire = Wire(daemon.host, daemon.port)
    created = wire.ask(
        {
            "command": "create",
            "box": BOX,
            "files": [
                {"source": "payload.txt", "destination": "/tmp/payload.txt"},
                {"content": "inline content\n", "destination": "/tmp/inline.txt"},
            ],
            "puppet": [{"manifest": PUPPET}],
            "shell": [SHELL],
            "network": "private",
            "hostname": "dynamic",
        }
    )
    assert created["error"] is False, created
    box_id = created["boxID"]
    assert box_id.startswith("vcm_bookworm_test_")

    first, second = start_in_parallel(daemon, box_id, 2)
    for reply in (first, second):
        assert reply["error"] is False, reply
        assert reply["box"] == BOX
        assert reply["boxID"] == box_id
    assert {first["vmID"], second["vmID"]} == {f"{box_id}_1", f"{box_id}_2"}
    assert first["IP"] != second["IP"]

    for vm in (first, second):
        vm_id = vm["vmID"]
        assert vm["hostname"] == f"{vm_id.replace('_', '-')}.example.com"
        assert in_guest(daemon, vm_id, "hostname -f") == vm["hostname"]
        assert f"inet {vm['IP']}/24" in in_guest(daemon, vm_id, "ip -4 addr show")
        assert in_guest(daemon, vm_id, "cat /tmp/payload.txt") == "payload from the host"
        assert in_guest(daemon, vm_id, "cat /tmp/inline.txt") == "inline content"
        assert in_guest(daemon, vm_id, "cat /etc/vcm-shell") == (
            f"shell ran as root on {vm['hostname']}"
        )
        assert in_guest(daemon, vm_id, "cat /etc/vcm-puppet") == "puppet was here"
        assert ssh_banner(vm["IP"]).startswith(b"SSH-2.0-")

    listed = wire.ask({"command": "info", "subcommand": "VM all"})
    assert {vm["vmID"]: vm["state"] for vm in listed["VMS"]} == {
        first["vmID"]: "running",
        second["vmID"]: "running",
    }
    one = wire.ask({"command": "info", "subcommand": f"VM {first['vmID']}"})
    assert [vm["IP"] for vm in one["VMS"]] == [first["IP"]]
    boxes = wire.ask({"command": "info", "subcommand": "box all"})["boxes"]
    assert [(b["boxID"], sorted(b["vmIDs"])) for b in boxes] == [
        (box_id, sorted([first["vmID"], second["vmID"]]))
    ]
    assert wire.ask({"command": "info", "subcommand": f"box {box_id}"})["boxes"] == boxes

    stopped = wire.ask('{{\n\t"command": "stop",\n\t"vmID": "{}"\n}}'.format(first["vmID"]))
    assert stopped == {
        "error": False,
        "vmID": first["vmID"],
        "boxID": box_id,
        "state": "stopped",
        "message": f"shutdown VM {first['vmID']} successfully",
    }
    assert wire.ask({"command": "stop", "vmID": first["vmID"]})["error"] is False

    wire.close()
    assert daemon.stop() == 0
    daemon.start()
    wire = Wire(daemon.host, daemon.port)
    daemon.wait_for_log("reconciled state with the backend")
    states = {
        vm["vmID"]: vm["state"]
        for vm in wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
    }
    assert states == {first["vmID"]: "stopped", second["vmID"]: "running"}

    again = wire.ask({"command": "start", "vmID": first["vmID"]})
    assert again["error"] is False, again
    assert (again["IP"], again["hostname"]) == (first["IP"], first["hostname"])
    assert in_guest(daemon, first["vmID"], "hostname -f") == first["hostname"]
    assert ssh_banner(first["IP"]).startswith(b"SSH-2.0-")

    destroyed = wire.ask({"command": "destroy", "vmID": second["vmID"]})
    assert destroyed["error"] is False, destroyed
    assert not (daemon.state_dir / "machines" / second["vmID"]).exists()
    everything = wire.ask({"command": "destroy all"})
    assert everything == {"error": False, "VMS": [first["vmID"]], "message": "destroyed 1 VM"}
    assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
    assert list((daemon.state_dir / "machines").iterdir()) == []
    wire.close()


def test_error_replies_on_real_vagrant(daemon: DaemonProcess) -> None:
    with Wire(daemon.host, daemon.port) as wire:
        missing = wire.ask(
            '{\n\t"command": "create",\n\t"box": "ubuntu/trusty64",\n\t"files": [],'
            '\n\t"puppet": [],\n\t"shell": [],\n\t"network": "private",'
            '\n\t"hostname": "dynamic"\n}'
        )
        assert (missing["error"], missing["code"]) == (True, "BOX_UNAVAILABLE")
        assert "ubuntu/trusty64" in missing["message"]
        assert wire.ask({"command": "stop", "vmID": "ubuntu_trusty64_12_1"})["code"] == (
            "VM_NOT_FOUND"
        )
        assert wire.ask({"command": "start", "boxID": "ubuntu_trusty64_12"})["code"] == (
            "BOX_NOT_FOUND"
        )
        assert wire.ask("this is not json\n")["code"] == "INVALID_JSON"
        escaping = wire.ask(
            {
                "command": "create",
                "box": BOX,
                "files": [{"source": "../state/state.json", "destination": "/x"}],
            }
        )
        assert escaping["code"] == "INVALID_REQUEST"
        assert wire.ask({"command": "info", "subcommand": "box all"})["boxes"] == []
