"""Progress, background operations, cancel and events against the real vagrant binary (docker)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.real_vagrant import BOX, need_vagrant, vagrant_daemon
from tests.support.wire import Wire

pytestmark = pytest.mark.vagrant

PROVIDER = "docker"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    need_vagrant()
    process = vagrant_daemon(tmp_path / "state", PROVIDER, VCM_BOX_ADD_TIMEOUT="60").start()
    yield process
    with Wire(process.host, process.port) as wire:
        wire.ask({"command": "destroy all"})
    process.stop()
    print(process.log[-20_000:])


def create_box(wire: Wire) -> str:
    created = wire.ask({"command": "create", "box": BOX, "shell": ["echo provisioned"]})
    assert created["error"] is False, created
    return str(created["boxID"])


def containers() -> list[str]:
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return names.stdout.split()


def test_progress_lines_arrive_before_the_final_reply_of_a_start(
    daemon: DaemonProcess,
) -> None:
    with Wire(daemon.host, daemon.port) as wire:
        box_id = create_box(wire)
        wire.send({"command": "start", "boxID": box_id, "progress": True, "id": "s"})
        interim: list[dict[str, Any]] = []
        began = time.monotonic()
        while "error" not in (line := wire.reply()):
            interim.append({**line, "at": time.monotonic() - began})
        final = line
    assert final["error"] is False, final
    print(f"{len(interim)} progress lines; the reply after {time.monotonic() - began:.1f} s")
    assert len(interim) >= 5
    assert {(line["id"], line["event"], line["vmID"]) for line in interim} == {
        ("s", "progress", final["vmID"])
    }
    assert any("Machine booted and ready" in line["line"] for line in interim)
    phases = [line["phase"] for line in interim]
    for phase in ("importing", "booting", "provisioning"):
        assert phase in phases
    assert phases == sorted(
        phases, key=["preparing", "importing", "booting", "configuring", "provisioning"].index
    )
    assert "provisioned" in " ".join(line["line"] for line in interim)


def test_an_async_start_is_polled_waited_on_and_watched_by_another_client(
    daemon: DaemonProcess,
) -> None:
    with (
        Wire(daemon.host, daemon.port) as wire,
        Wire(daemon.host, daemon.port) as watcher,
    ):
        box_id = create_box(wire)
        assert watcher.ask({"command": "watch", "boxID": box_id})["error"] is False
        accepted = wire.ask({"command": "start", "boxID": box_id, "async": True})
        assert accepted["state"] == "running", accepted
        op_id = accepted["operationID"]
        polled = wire.ask({"command": "operation", "operationID": op_id})
        assert polled["state"] == "running"
        done = wire.ask({"command": "operation", "operationID": op_id, "wait": 300})
        assert done["state"] == "succeeded", done
        vm_id = done["reply"]["vmID"]
        assert done["reply"]["IP"].startswith("192.168.34.")
        assert 0 < len(done["output"]) <= 50
        assert wire.ask({"command": "destroy", "vmID": vm_id})["error"] is False
        seen = [watcher.reply() for _ in range(5)]
    assert [(event["event"], event["vmID"]) for event in seen] == [
        ("vm-starting", vm_id),
        ("vm-running", vm_id),
        ("operation-finished", vm_id),
        ("vm-destroying", vm_id),
        ("vm-destroyed", vm_id),
    ]
    assert seen[2]["operationID"] == op_id


def test_cancel_of_a_running_start_leaves_no_half_made_vm(daemon: DaemonProcess) -> None:
    with Wire(daemon.host, daemon.port) as wire:
        box_id = create_box(wire)
        op_id = wire.ask({"command": "start", "boxID": box_id, "async": True})["operationID"]
        booting = ("booting", "configuring", "provisioning")
        while True:
            polled = wire.ask({"command": "operation", "operationID": op_id})
            if polled.get("phase") in booting or polled["state"] != "running":
                break
            time.sleep(0.2)
        assert polled["state"] == "running", polled
        asked = time.monotonic()
        cancelling = wire.ask({"command": "operation", "operationID": op_id, "cancel": True})
        assert cancelling["error"] is False, cancelling
        done = wire.ask({"command": "operation", "operationID": op_id, "wait": 300})
        print(f"cancelled in phase {polled['phase']}; ended {time.monotonic() - asked:.1f} s later")
        assert done["state"] == "cancelled", done
        assert done["reply"]["code"] == "CANCELLED"
        vm_id = done["vmID"]
        assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
        assert list((daemon.state_dir / "machines").iterdir()) == []
        assert not [name for name in containers() if name.startswith(vm_id)]
        quick = wire.ask({"command": "start", "boxID": box_id, "async": True})["operationID"]
        wire.ask({"command": "operation", "operationID": quick, "cancel": True})
        ended = wire.ask({"command": "operation", "operationID": quick, "wait": 300})
        assert ended["state"] == "cancelled", ended
        assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
