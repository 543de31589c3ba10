"""The sync client against a real daemon process with the simulated backend."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.support.daemon import DaemonProcess
from vcm.client import (
    BoxNotFound,
    BoxUnavailable,
    Client,
    FileProvisioner,
    InvalidRequest,
    IpPoolExhausted,
    Network,
    PuppetProvisioner,
    RequestTooLarge,
    ShellProvisioner,
    Unauthorized,
    UnknownCommand,
    VagrantError,
    VcmConnectionError,
    VmNotFound,
    VmState,
)

BOX = "vcm/bookworm-test"


class TestBoxes:
    def test_create_sends_every_field_and_local_files_as_content(
        self, vcm: Client, tmp_path: Path
    ) -> None:
        motd = tmp_path / "motd"
        motd.write_text("built by vcm\n")
        script = tmp_path / "setup.sh"
        script.write_text("#!/bin/sh\necho set up\n")
        created = vcm.create_box(
            BOX,
            files=[(motd, "/etc/motd")],
            puppet=["notify { 'hello': }"],
            shell=["echo inline", script],
            network=Network.NONE,
            hostname="web",
        )
        assert created.box_id.startswith("vcm_bookworm_test_")
        box = vcm.get_box(created.box_id)
        assert box.box == BOX
        assert box.files == (FileProvisioner(destination="/etc/motd", content="built by vcm\n"),)
        assert box.puppet == (PuppetProvisioner(manifest="notify { 'hello': }"),)
        assert box.shell == (
            ShellProvisioner(inline="echo inline"),
            ShellProvisioner(inline="#!/bin/sh\necho set up\n"),
        )
        assert (box.network, box.hostname, box.vm_ids) == (Network.NONE, "web", ())

    def test_box_ids_never_repeat_and_list_boxes_has_them_all(self, vcm: Client) -> None:
        first = vcm.create_box(BOX).box_id
        second = vcm.create_box("other/box").box_id
        assert first != second
        assert second.startswith("other_box_")
        assert {box.box_id for box in vcm.list_boxes()} == {first, second}

    def test_destroy_box_destroys_its_vms_and_removes_it(self, vcm: Client) -> None:
        box_id = vcm.create_box(BOX).box_id
        vm_ids = [vcm.start_vm(box_id).vm_id for _ in range(2)]
        gone = vcm.destroy_box(box_id)
        assert (gone.box_id, sorted(gone.vm_ids)) == (box_id, sorted(vm_ids))
        assert vcm.list_vms() == []
        with pytest.raises(BoxNotFound):
            vcm.get_box(box_id)


class TestVms:
    def test_the_whole_life_of_two_vms(self, vcm: Client) -> None:
        box_id = vcm.create_box(BOX, hostname="web").box_id
        first, second = vcm.start_vm(box_id), vcm.start_vm(box_id)
        assert (first.vm_id, second.vm_id) == (f"{box_id}_1", f"{box_id}_2")
        assert first.state == second.state == VmState.RUNNING
        assert first.ip != second.ip
        assert (first.hostname, second.hostname) == ("web-1.example.com", "web-2.example.com")
        assert vcm.list_vms() == [first, second]
        assert vcm.get_box(box_id).vm_ids == (first.vm_id, second.vm_id)

        stopped = vcm.stop_vm(first.vm_id)
        assert (stopped.vm_id, stopped.box_id, stopped.state) == (
            first.vm_id,
            box_id,
            VmState.STOPPED,
        )
        assert vcm.get_vm(first.vm_id).state == VmState.STOPPED
        again = vcm.start_existing_vm(first.vm_id)
        assert (again.ip, again.hostname, again.state) == (
            first.ip,
            first.hostname,
            VmState.RUNNING,
        )

        destroyed = vcm.destroy_vm(first.vm_id)
        assert (destroyed.vm_id, destroyed.box_id) == (first.vm_id, box_id)
        assert vcm.list_vms() == [second]

    def test_network_none_gives_no_ip(self, vcm: Client) -> None:
        box_id = vcm.create_box(BOX, network="none").box_id
        assert vcm.start_vm(box_id).ip is None

    def test_a_vm_being_started_shows_as_starting_to_another_client(
        self, start_daemon: StartDaemon
    ) -> None:
        daemon = start_daemon(VCM_SIMULATED_DELAY="1.5")
        with Client(daemon.host, daemon.port) as vcm, Client(daemon.host, daemon.port) as peek:
            box_id = vcm.create_box(BOX).box_id
            starting = threading.Thread(target=vcm.start_vm, args=(box_id,))
            starting.start()
            try:
                deadline = time.monotonic() + 10
                while not peek.list_vms() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert [vm.state for vm in peek.list_vms()] == [VmState.STARTING]
            finally:
                starting.join(30)
            assert [vm.state for vm in peek.list_vms()] == [VmState.RUNNING]

    def test_two_threads_on_one_client_start_vms_in_parallel(
        self, start_daemon: StartDaemon
    ) -> None:
        daemon = start_daemon(VCM_SIMULATED_DELAY="1")
        with Client(daemon.host, daemon.port) as vcm:
            box_id = vcm.create_box(BOX).box_id
            threads = [threading.Thread(target=vcm.start_vm, args=(box_id,)) for _ in range(2)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            elapsed = time.monotonic() - started
            assert len(vcm.list_vms()) == 2
        assert elapsed < 1.9, f"two 1 s starts took {elapsed:.1f} s: they ran one after another"


class TestAllVms:
    def test_halt_all_stops_every_vm_and_destroy_all_removes_them(self, vcm: Client) -> None:
        box_id = vcm.create_box(BOX).box_id
        vm_ids = {vcm.start_vm(box_id).vm_id for _ in range(3)}
        assert set(vcm.halt_all().vm_ids) == vm_ids
        assert {vm.state for vm in vcm.list_vms()} == {VmState.STOPPED}
        assert set(vcm.destroy_all().vm_ids) == vm_ids
        assert vcm.list_vms() == []
        assert vcm.get_box(box_id).vm_ids == ()

    @pytest.mark.parametrize("method", ["shutdown_all", "stop_all"])
    def test_the_other_spellings_of_halt_all(self, vcm: Client, method: str) -> None:
        box_id = vcm.create_box(BOX).box_id
        vm_id = vcm.start_vm(box_id).vm_id
        assert getattr(vcm, method)().vm_ids == (vm_id,)
        assert vcm.get_vm(vm_id).state == VmState.STOPPED


class TestErrors:
    def test_unknown_vm_ids(self, vcm: Client) -> None:
        for call in (vcm.get_vm, vcm.stop_vm, vcm.destroy_vm, vcm.start_existing_vm):
            with pytest.raises(VmNotFound) as raised:
                call("nothing_1_1")
            assert raised.value.code == "VM_NOT_FOUND"
            assert "nothing_1_1" in raised.value.message

    def test_unknown_box_ids(self, vcm: Client) -> None:
        for call in (vcm.get_box, vcm.start_vm, vcm.destroy_box):
            with pytest.raises(BoxNotFound) as raised:
                call("nothing_1")
            assert raised.value.code == "BOX_NOT_FOUND"

    def test_invalid_values_are_refused_and_nothing_is_recorded(self, vcm: Client) -> None:
        with pytest.raises(InvalidRequest):
            vcm.create_box("not a box name!")
        with pytest.raises(InvalidRequest):
            vcm.create_box(BOX, hostname="not_a_dns_label")
        with pytest.raises(InvalidRequest, match="files directory"):
            vcm.create_box(BOX, shell=[ShellProvisioner(path="setup.sh")])
        assert vcm.list_boxes() == []

    def test_an_unknown_command_through_the_raw_request(self, vcm: Client) -> None:
        with pytest.raises(UnknownCommand, match="frobnicate"):
            vcm.request("frobnicate")
        assert vcm.request("info", subcommand="VM all")["VMS"] == []

    def test_a_box_vagrant_cannot_get(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_BOXES=f'["{BOX}"]')
        with Client(daemon.host, daemon.port) as vcm:
            with pytest.raises(BoxUnavailable, match="ubuntu/trusty64"):
                vcm.create_box("ubuntu/trusty64")
            assert vcm.create_box(BOX).box_id

    def test_a_vagrant_failure_leaves_no_vm(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_FAILING_BOXES='["broken/box"]')
        with Client(daemon.host, daemon.port) as vcm:
            box_id = vcm.create_box("broken/box").box_id
            with pytest.raises(VagrantError) as raised:
                vcm.start_vm(box_id)
            assert raised.value.code == "VAGRANT_ERROR"
            assert "simulated failure" in raised.value.message
            assert vcm.list_vms() == []

    def test_an_exhausted_pool(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_IP_POOL="192.168.33.0/29")
        with Client(daemon.host, daemon.port) as vcm:
            box_id = vcm.create_box(BOX).box_id
            ips = {vcm.start_vm(box_id).ip for _ in range(4)}
            assert len(ips) == 4
            with pytest.raises(IpPoolExhausted):
                vcm.start_vm(box_id)
            assert len(vcm.list_vms()) == 4

    def test_a_daemon_with_a_token(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_AUTH_TOKEN="open-sesame")
        with pytest.raises(Unauthorized):
            Client(daemon.host, daemon.port).list_vms()
        with pytest.raises(Unauthorized):
            Client(daemon.host, daemon.port, token="wrong").list_vms()
        assert Client(daemon.host, daemon.port, token="open-sesame").list_vms() == []

    def test_a_request_over_the_size_limit(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_MAX_REQUEST_BYTES="1024")
        with Client(daemon.host, daemon.port) as vcm:
            with pytest.raises(RequestTooLarge):
                vcm.create_box(BOX, shell=["echo " + "x" * 2000])
            assert vcm.list_boxes() == []


class TestConnection:
    def test_reconnects_to_a_restarted_daemon_on_the_same_port(
        self, start_daemon: StartDaemon, tmp_path: Path
    ) -> None:
        first = start_daemon()
        with Client(first.host, first.port) as vcm:
            box_id = vcm.create_box(BOX).box_id
            first.stop()
            again = DaemonProcess(
                first.state_dir, VCM_DRIVER="simulated", VCM_PORT=str(first.port)
            ).start()
            try:
                assert vcm.start_vm(box_id).vm_id == f"{box_id}_1"
                assert vcm.get_box(box_id).vm_ids == (f"{box_id}_1",)
            finally:
                again.stop()

    def test_a_stopped_daemon_gives_a_connection_error_naming_it(
        self, daemon: DaemonProcess
    ) -> None:
        with Client(daemon.host, daemon.port) as vcm:
            vcm.list_vms()
            daemon.stop()
            with pytest.raises(VcmConnectionError, match=f"{daemon.host}:{daemon.port}"):
                vcm.list_vms()
