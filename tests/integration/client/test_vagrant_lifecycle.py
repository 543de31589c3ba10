"""One full VM lifecycle through the client, on real Vagrant with a real provider."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.real_vagrant import BOX, POOLS, need_vagrant, vagrant_daemon
from vcm.client import Client, VcmError, VmNotFound, VmState

pytestmark = pytest.mark.vagrant


@pytest.fixture
def real_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    need_vagrant()
    provider = os.environ.get("VCM_TEST_PROVIDER", "lxc")
    pool = os.environ.get("VCM_TEST_IP_POOL") or POOLS.get(provider, POOLS["lxc"])
    daemon = vagrant_daemon(tmp_path, provider, pool).start()
    try:
        yield daemon
    finally:
        with contextlib.suppress(VcmError), Client(daemon.host, daemon.port, timeout=300) as vcm:
            vcm.destroy_all()
        daemon.stop()


def test_create_start_info_stop_start_destroy(real_daemon: DaemonProcess, tmp_path: Path) -> None:
    payload = tmp_path / "payload.txt"
    payload.write_text("sent by the vcm client\n")
    pool = IPv4Network(real_daemon.env["VCM_IP_POOL"])
    with Client(real_daemon.host, real_daemon.port, timeout=900) as vcm:
        box_id = vcm.create_box(
            BOX,
            files=[(payload, "/tmp/vcm-payload.txt")],
            shell=["install -m 0644 /tmp/vcm-payload.txt /etc/vcm-payload.txt"],
            hostname="lifecycle",
        ).box_id

        vm = vcm.start_vm(box_id)
        assert vm.state == VmState.RUNNING
        assert vm.ip is not None
        assert IPv4Address(vm.ip) in pool
        assert vm.hostname == "lifecycle-1.example.com"
        assert vcm.get_vm(vm.vm_id) == vm
        assert vcm.get_box(box_id).vm_ids == (vm.vm_id,)

        assert vcm.stop_vm(vm.vm_id).state == VmState.STOPPED
        assert vcm.get_vm(vm.vm_id).state == VmState.STOPPED

        again = vcm.start_existing_vm(vm.vm_id)
        assert (again.state, again.ip, again.hostname) == (VmState.RUNNING, vm.ip, vm.hostname)

        assert vcm.destroy_vm(vm.vm_id).vm_id == vm.vm_id
        with pytest.raises(VmNotFound):
            vcm.get_vm(vm.vm_id)
        assert vcm.list_vms() == []
        assert vcm.destroy_box(box_id).vm_ids == ()
