"""The asyncio client against a real daemon process with the simulated backend."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.support.daemon import DaemonProcess
from vcm.client import (
    AsyncClient,
    BoxNotFound,
    Client,
    FileProvisioner,
    Unsupported,
    VagrantError,
    VmNotFound,
    VmState,
)

BOX = "vcm/bookworm-test"


def _public_methods(kind: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(kind, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_async_client_has_the_same_methods_as_the_sync_one() -> None:
    sync, async_ = _public_methods(Client), _public_methods(AsyncClient)
    assert sync.keys() == async_.keys()
    for name, signature in sync.items():
        assert list(signature.parameters) == list(async_[name].parameters), name
    for name in async_.keys() - {"from_env"}:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name


def test_the_life_of_a_vm(daemon: DaemonProcess, tmp_path: Path) -> None:
    motd = tmp_path / "motd"
    motd.write_text("hi\n")

    async def scenario() -> None:
        async with AsyncClient(daemon.host, daemon.port, timeout=60) as vcm:
            box_id = (await vcm.create_box(BOX, files=[(motd, "/etc/motd")])).box_id
            box = await vcm.get_box(box_id)
            assert box.files == (FileProvisioner(destination="/etc/motd", content="hi\n"),)
            vm = await vcm.start_vm(box_id)
            assert await vcm.list_vms() == [vm]
            assert (await vcm.stop_vm(vm.vm_id)).state == VmState.STOPPED
            assert (await vcm.get_vm(vm.vm_id)).state == VmState.STOPPED
            assert (await vcm.start_existing_vm(vm.vm_id)).ip == vm.ip
            assert (await vcm.halt_all()).vm_ids == (vm.vm_id,)
            assert (await vcm.destroy_vm(vm.vm_id)).vm_id == vm.vm_id
            assert (await vcm.destroy_box(box_id)).vm_ids == ()
            assert await vcm.list_boxes() == []
            with pytest.raises(VmNotFound):
                await vcm.get_vm(vm.vm_id)
            with pytest.raises(BoxNotFound):
                await vcm.start_vm(box_id)
            assert (await vcm.request("info", subcommand="box all"))["boxes"] == []

    asyncio.run(scenario())


def test_gathered_starts_run_in_parallel_on_their_own_connections(
    start_daemon: StartDaemon,
) -> None:
    daemon = start_daemon(VCM_SIMULATED_DELAY="1")

    async def scenario() -> tuple[float, int]:
        async with AsyncClient(daemon.host, daemon.port, timeout=60) as vcm:
            box_id = (await vcm.create_box(BOX)).box_id
            started = time.monotonic()
            vms = await asyncio.gather(*(vcm.start_vm(box_id) for _ in range(3)))
            elapsed = time.monotonic() - started
            assert len({vm.ip for vm in vms}) == 3
            assert len(await vcm.list_vms()) == 3
            assert len((await vcm.destroy_all()).vm_ids) == 3
            return elapsed, len(vms)

    elapsed, count = asyncio.run(scenario())
    assert count == 3
    assert elapsed < 2.5, f"three 1 s starts took {elapsed:.1f} s: they ran one after another"


def test_a_vagrant_failure_raises_its_exception(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(VCM_SIMULATED_FAILING_BOXES='["broken/box"]')

    async def scenario() -> None:
        async with AsyncClient(daemon.host, daemon.port) as vcm:
            box_id = (await vcm.create_box("broken/box")).box_id
            with pytest.raises(VagrantError, match="simulated failure"):
                await vcm.start_vm(box_id)

    asyncio.run(scenario())


def test_the_lifecycle_commands(daemon: DaemonProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient(daemon.host, daemon.port, timeout=60) as vcm:
            box_id = (await vcm.create_box(BOX, cpus=1, memory=128)).box_id
            assert ((await vcm.get_box(box_id)).cpus, (await vcm.get_box(box_id)).memory) == (
                1,
                128,
            )
            vm = await vcm.start_vm(box_id)
            assert (await vcm.suspend_vm(vm.vm_id)).state == VmState.SUSPENDED
            assert (await vcm.resume_vm(vm.vm_id)).state == VmState.RUNNING
            assert (await vcm.reload_vm(vm.vm_id)).state == VmState.RUNNING
            assert (await vcm.provision_vm(vm.vm_id)).state == VmState.RUNNING
            assert (await vcm.save_snapshot(vm.vm_id, "s1")).name == "s1"
            assert await vcm.list_snapshots(vm.vm_id) == ["s1"]
            assert (await vcm.restore_snapshot(vm.vm_id, "s1")).state == VmState.RUNNING
            await vcm.delete_snapshot(vm.vm_id, "s1")
            assert await vcm.list_snapshots(vm.vm_id) == []
            with pytest.raises(Unsupported, match="no guests"):
                await vcm.exec(vm.vm_id, ["true"])
            with pytest.raises(Unsupported):
                await vcm.ssh_info(vm.vm_id)

    asyncio.run(scenario())
