"""Progress callbacks, operation handles and watch() in the Python clients and the `vcm`
command, against a daemon process with the simulated backend (VCM_DRIVER=simulated)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.integration.client.test_cli import VCM, vcm
from tests.support.daemon import DaemonProcess
from vcm.client import (
    AsyncClient,
    Cancelled,
    Client,
    Event,
    InvalidRequest,
    OperationNotFound,
    OperationState,
    ProgressLine,
    VmState,
)

BOX = "vcm/bookworm-test"


@pytest.fixture
def slow(start_daemon: StartDaemon) -> DaemonProcess:
    return start_daemon(VCM_SIMULATED_DELAY="0.8")


def test_a_progress_callback_gets_each_line_with_its_vm_and_phase(slow: DaemonProcess) -> None:
    seen: list[ProgressLine] = []
    quiet: list[str] = []
    with Client(slow.host, slow.port, timeout=30, on_progress=quiet.append) as vcm_:
        box_id = vcm_.create_box(BOX).box_id
        vm = vcm_.start_vm(box_id, progress=seen.append)
        again = vcm_.start_vm(box_id)
    assert [(line.vm_id, line.phase, str(line)) for line in seen] == [
        (vm.vm_id, "importing", "importing base box"),
        (vm.vm_id, "booting", "booting"),
        (vm.vm_id, "configuring", "setting hostname"),
        (vm.vm_id, "provisioning", "provisioning"),
    ]
    assert quiet == [str(line) for line in seen]
    assert again.state == VmState.RUNNING


def test_an_operation_handle_waits_for_the_result(slow: DaemonProcess) -> None:
    with Client(slow.host, slow.port, timeout=30) as vcm_:
        box_id = vcm_.create_box(BOX).box_id
        began = time.monotonic()
        operation = vcm_.start_vm_async(box_id)
        assert time.monotonic() - began < 0.8  # the start itself takes 0.8 s
        states = [operation.info.state, operation.wait(timeout=0.1).state]
        vm = operation.result(timeout=20)
        states.append(operation.info.state)
        assert states == [OperationState.RUNNING, OperationState.RUNNING, OperationState.SUCCEEDED]
        assert vm.vm_id == f"{box_id}_1"
        assert operation.info.output[-1] == "provisioning"
        again = vcm_.operation(operation.operation_id)
        assert again.info.reply is not None
        assert again.info.reply["vmID"] == vm.vm_id
        assert [info.operation_id for info in vcm_.operations()] == [operation.operation_id]
        with pytest.raises(OperationNotFound):
            vcm_.operation("op-999")


def test_a_cancelled_start_raises_cancelled_and_leaves_no_vm(start_daemon: StartDaemon) -> None:
    slow = start_daemon(VCM_SIMULATED_DELAY="3")
    with Client(slow.host, slow.port, timeout=30) as vcm_:
        box_id = vcm_.create_box(BOX).box_id
        operation = vcm_.start_vm_async(box_id)
        time.sleep(0.3)
        operation.cancel()
        with pytest.raises(Cancelled):
            operation.result(timeout=20)
        assert operation.info.state == OperationState.CANCELLED
        assert vcm_.list_vms() == []
        stopping = vcm_.stop_vm_async("nope_1_1")
        stopping.wait(10)
        with pytest.raises(InvalidRequest, match="already ended"):
            stopping.cancel()


def test_watch_yields_the_events_of_another_clients_work(daemon: DaemonProcess) -> None:
    seen: list[Event] = []
    with Client(daemon.host, daemon.port, timeout=30) as vcm_, vcm_.watch() as events:
        with Client(daemon.host, daemon.port, timeout=30) as other:
            box_id = other.create_box(BOX).box_id
            vm = other.start_vm(box_id)
            other.destroy_vm(vm.vm_id)
        for event in events:
            seen.append(event)
            if event.kind == "vm-destroyed":
                break
    assert [(e.kind, e.vm_id) for e in seen] == [
        ("box-created", None),
        ("vm-starting", vm.vm_id),
        ("vm-running", vm.vm_id),
        ("vm-destroying", vm.vm_id),
        ("vm-destroyed", vm.vm_id),
    ]
    assert seen[2].fields["IP"] == vm.ip


def test_the_async_client_has_operations_and_watch(slow: DaemonProcess) -> None:
    async def scenario() -> list[str]:
        async with AsyncClient(slow.host, slow.port, timeout=30) as vcm_:
            box_id = (await vcm_.create_box(BOX)).box_id
            kinds: list[str] = []

            stream = await vcm_.watch(box_id=box_id)

            async def watch() -> None:
                async with stream:
                    async for event in stream:
                        kinds.append(event.kind)
                        if event.kind == "operation-finished":
                            return

            watching = asyncio.create_task(watch())
            operation = await vcm_.start_vm_async(box_id)
            vm = await operation.result(timeout=20)
            assert vm.state == VmState.RUNNING
            await asyncio.wait_for(watching, 10)
            return kinds

    assert asyncio.run(scenario()) == ["vm-starting", "vm-running", "operation-finished"]


def test_vcm_start_follow_async_wait_and_watch(slow: DaemonProcess) -> None:
    box_id = vcm("create", BOX, port=slow.port).stdout.strip()
    followed = vcm("start", "--follow", box_id, port=slow.port)
    assert followed.code == 0, followed.stderr
    assert followed.stdout.strip() == f"{box_id}_1"
    assert followed.stderr.splitlines() == [
        "importing base box",
        "booting",
        "setting hostname",
        "provisioning",
    ]
    watcher = subprocess.Popen(
        [str(VCM), "watch", "--json", "--vm", f"{box_id}_2", "--port", str(slow.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        started = vcm("start", "--async", box_id, port=slow.port)
        assert started.code == 0, started.stderr
        op_id = started.stdout.strip()
        assert op_id.startswith("op-")
        waited = vcm("wait", op_id, "--json", port=slow.port)
        assert waited.code == 0, waited.stderr
        assert json.loads(waited.stdout)["state"] == "succeeded"
        assert watcher.stdout is not None
        lines = [json.loads(watcher.stdout.readline()) for _ in range(3)]
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert [line["event"] for line in lines] == ["vm-starting", "vm-running", "operation-finished"]
    cancelled = vcm("start", "--async", box_id, port=slow.port).stdout.strip()
    assert vcm("cancel", cancelled, port=slow.port).code == 0
    ended = vcm("wait", cancelled, port=slow.port)
    assert ended.code == 1
    assert "cancelled" in ended.stdout
    assert vcm("wait", "op-999", port=slow.port).code == 4
