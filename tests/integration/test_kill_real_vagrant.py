"""kill -9 the daemon in the middle of create, start, stop and destroy on real Vagrant (docker
provider), start it again, and check that it converges: its records and `vagrant status` agree, no
container is left that no record owns, and every VM can then be stopped and destroyed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.real_vagrant import BOX, need_vagrant, vagrant_daemon
from tests.support.wire import Wire

pytestmark = pytest.mark.vagrant

PROVIDER = "docker"
SETTLED = {"running": "running", "stopped": "stopped"}
RECONCILED = "reconciled state with the backend"


@dataclass(frozen=True)
class KillPoint:
    """Send `request` (built from the prepared IDs), wait for `marker` in the log or for
    `after` seconds, then kill -9 the daemon."""

    name: str
    prepare: str
    request: Callable[[dict[str, str]], dict[str, Any]]
    marker: str = ""
    after: float = 0.0


def _start_box(ids: dict[str, str]) -> dict[str, Any]:
    return {"command": "start", "boxID": ids["box"]}


def _on_vm(command: str) -> Callable[[dict[str, str]], dict[str, Any]]:
    return lambda ids: {"command": command, "vmID": ids["vm"]}


KILL_POINTS = [
    KillPoint("create box, just sent", "nothing", lambda _: _create(), after=0.1),
    KillPoint("start, vagrant up just spawned", "box", _start_box, after=0.3),
    KillPoint("start, creating the container", "box", _start_box, marker="Creating the container"),
    KillPoint("start, booted, before provisioning", "box", _start_box, marker="Machine booted"),
    KillPoint("start, provisioning", "box", _start_box, marker="Running provisioner"),
    KillPoint("start again, just spawned", "stopped vm", _on_vm("start"), after=0.3),
    KillPoint("start again, booting", "stopped vm", _on_vm("start"), marker="Starting container"),
    KillPoint("stop, just spawned", "running vm", _on_vm("stop"), after=0.3),
    KillPoint("stop, halting", "running vm", _on_vm("stop"), after=1.5),
    KillPoint("destroy, just spawned", "running vm", _on_vm("destroy"), after=0.3),
    KillPoint("destroy, removing", "running vm", _on_vm("destroy"), after=1.5),
]


def _create() -> dict[str, Any]:
    return {"command": "create", "box": BOX, "shell": ["echo provisioned > /etc/vcm-kill"]}


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[DaemonProcess]:
    need_vagrant()
    daemon = vagrant_daemon(tmp_path / "state", PROVIDER)
    yield daemon
    if not daemon.running:
        daemon.start()
    daemon.wait_for_log(RECONCILED, timeout=300)
    with Wire(daemon.host, daemon.port) as wire:
        wire.ask({"command": "destroy all"})
    daemon.stop()
    print(daemon.log[-20_000:])


def containers() -> set[str]:
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return set(names.split())


def vagrant_state(root: Path) -> str:
    result = subprocess.run(
        ["vagrant", "status", "--machine-readable"],
        cwd=root,
        env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    for line in result.stdout.splitlines():
        fields = line.split(",", 4)
        if len(fields) >= 4 and fields[2] == "state":
            return fields[3]
    raise AssertionError(f"no state in `vagrant status` of {root}:\n{result.stdout}")


def prepare(wire: Wire, what: str) -> dict[str, str]:
    if what == "nothing":
        return {}
    created = wire.ask(_create())
    assert created["error"] is False, created
    ids = {"box": created["boxID"]}
    if what == "box":
        return ids
    started = wire.ask(_start_box(ids))
    assert started["error"] is False, started
    ids["vm"] = started["vmID"]
    if what == "stopped vm":
        stopped = wire.ask({"command": "stop", "vmID": ids["vm"]})
        assert stopped["error"] is False, stopped
    return ids


def kill_during(daemon: DaemonProcess, point: KillPoint, ids: dict[str, str]) -> None:
    wire = Wire(daemon.host, daemon.port)
    wire.send(point.request(ids))
    if point.marker:
        daemon.wait_for_log(point.marker, timeout=120)
    else:
        time.sleep(point.after)
    daemon.kill()
    wire.close()


def assert_records_agree_with_vagrant(daemon: DaemonProcess, wire: Wire, before: set[str]) -> None:
    vms = wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
    machines = daemon.state_dir / "machines"
    on_disk = {entry.name for entry in machines.iterdir()} if machines.is_dir() else set()
    assert on_disk == {vm["vmID"] for vm in vms}, (vms, on_disk)
    for vm in vms:
        assert vm["state"] in SETTLED, vm
        assert vagrant_state(machines / vm["vmID"]) == SETTLED[vm["state"]], vm
    unowned = {
        name
        for name in containers() - before
        if not any(name.startswith(f"{vm['vmID']}_") for vm in vms)
    }
    assert unowned == set(), "containers left that no record owns"
    saved = json.loads((daemon.state_dir / "state.json").read_text())
    assert [vm["vmID"] for vm in saved["vms"]] == [vm["vmID"] for vm in vms]


def stop_and_destroy_everything(daemon: DaemonProcess, wire: Wire, before: set[str]) -> None:
    for vm in wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]:
        stopped = wire.ask({"command": "stop", "vmID": vm["vmID"]})
        assert stopped["error"] is False, stopped
        destroyed = wire.ask({"command": "destroy", "vmID": vm["vmID"]})
        assert destroyed["error"] is False, destroyed
    assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
    assert list((daemon.state_dir / "machines").iterdir()) == []
    assert containers() - before == set()


@pytest.mark.parametrize("point", KILL_POINTS, ids=[point.name for point in KILL_POINTS])
def test_a_killed_daemon_converges_on_restart(restartable: DaemonProcess, point: KillPoint) -> None:
    before = containers()
    restartable.start()
    with Wire(restartable.host, restartable.port) as wire:
        ids = prepare(wire, point.prepare)
    kill_during(restartable, point, ids)

    restartable.start()
    restartable.wait_for_log(RECONCILED, timeout=300)
    with Wire(restartable.host, restartable.port) as wire:
        assert_records_agree_with_vagrant(restartable, wire, before)
        stop_and_destroy_everything(restartable, wire, before)
