from __future__ import annotations

import threading
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from tests.unit.conftest import make_service
from tests.unit.fakes import FakeHostFiles, FakeVagrant, InMemoryStore
from vcm.domain.errors import (
    BackendError,
    BoxNotFound,
    BoxUnavailable,
    InvalidRequest,
    PoolExhausted,
    StateError,
    Unsupported,
    VmNotFound,
)
from vcm.domain.model import (
    BoxDefinition,
    FileProvisioner,
    HostCapacity,
    Network,
    Resources,
    ShellProvisioner,
    VmState,
)
from vcm.domain.ports import MachineStatus
from vcm.domain.service import VcmService

BOX = "vcm/bookworm-test"


def started(service: VcmService, count: int = 1) -> list[str]:
    box = service.create_box(BoxDefinition(BOX))
    return [service.start_vm(box.box_id).vm_id for _ in range(count)]


class TestCreateBox:
    def test_records_the_definition_under_a_new_box_id(self, service: VcmService) -> None:
        definition = BoxDefinition(BOX, shell=(ShellProvisioner(inline="true"),))
        box = service.create_box(definition)
        assert box.box_id == "vcm_bookworm_test_1"
        assert service.get_box(box.box_id).box.definition == definition

    def test_box_ids_never_repeat_across_removal_and_restart(
        self, vagrant: FakeVagrant, store: InMemoryStore
    ) -> None:
        first = make_service(vagrant, store)
        one = first.create_box(BoxDefinition(BOX))
        first.destroy_box(one.box_id)
        again = make_service(vagrant, store)
        assert again.create_box(BoxDefinition(BOX)).box_id == "vcm_bookworm_test_2"

    def test_adds_a_missing_box_that_vagrant_can_get(
        self, vagrant: FakeVagrant, service: VcmService
    ) -> None:
        vagrant.addable.add("other/box")
        service.create_box(BoxDefinition("other/box"))
        assert "other/box" in vagrant.boxes

    def test_unavailable_box_records_nothing_and_uses_no_number(
        self, service: VcmService, store: InMemoryStore
    ) -> None:
        with pytest.raises(BoxUnavailable, match="could not be found"):
            service.create_box(BoxDefinition("ubuntu/trusty64"))
        assert service.list_boxes() == []
        assert service.create_box(BoxDefinition(BOX)).box_id.endswith("_1")

    def test_file_sources_must_exist_in_the_files_directory(self, service: VcmService) -> None:
        missing = FileProvisioner(destination="/tmp/x", source="../etc/shadow")
        with pytest.raises(InvalidRequest, match="files directory"):
            service.create_box(BoxDefinition(BOX, files=(missing,)))
        assert service.list_boxes() == []

    def test_a_provisioner_needs_exactly_one_source(self) -> None:
        with pytest.raises(InvalidRequest, match="exactly one"):
            FileProvisioner(destination="/x", source="a", content="b")
        with pytest.raises(InvalidRequest, match="exactly one"):
            ShellProvisioner()


class TestStartVm:
    def test_a_new_vm_runs_with_an_ip_and_a_hostname(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        box = service.create_box(BoxDefinition(BOX))
        vm = service.start_vm(box.box_id)
        assert vm.vm_id == "vcm_bookworm_test_1_1"
        assert vm.state == VmState.RUNNING
        assert vm.ip == IPv4Address("192.168.33.2")
        assert vm.hostname == "vcm-bookworm-test-1-1.example.com"
        assert vagrant.created[0].hostname == vm.hostname
        assert vagrant.created[0].prefix_length == 24

    def test_vms_get_distinct_ips_and_numbers(self, service: VcmService) -> None:
        ids = started(service, 3)
        vms = [service.get_vm(vm_id) for vm_id in ids]
        assert [vm.vm_id[-2:] for vm in vms] == ["_1", "_2", "_3"]
        assert len({vm.ip for vm in vms}) == 3

    def test_no_network_means_no_ip(self, service: VcmService) -> None:
        box = service.create_box(BoxDefinition(BOX, network=Network.NONE))
        assert service.start_vm(box.box_id).ip is None

    def test_unknown_box(self, service: VcmService) -> None:
        with pytest.raises(BoxNotFound, match="nope_1"):
            service.start_vm("nope_1")

    def test_a_failed_start_leaves_nothing_and_frees_the_ip(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        box = service.create_box(BoxDefinition(BOX))
        vagrant.fail("create")
        with pytest.raises(BackendError, match="simulated"):
            service.start_vm(box.box_id)
        assert service.list_vms() == []
        assert vagrant.machines() == []
        vagrant.failing.clear()
        vm = service.start_vm(box.box_id)
        assert vm.ip == IPv4Address("192.168.33.2")
        assert vm.vm_id.endswith("_2")

    def test_a_failed_start_whose_cleanup_fails_is_kept_in_error(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        box = service.create_box(BoxDefinition(BOX))
        vagrant.fail("create")
        vagrant.fail("destroy")
        with pytest.raises(BackendError):
            service.start_vm(box.box_id)
        [vm] = service.list_vms()
        assert vm.state == VmState.ERROR
        assert "cleanup" in vm.detail

    def test_an_exhausted_pool_records_nothing(
        self, vagrant: FakeVagrant, store: InMemoryStore
    ) -> None:
        service = make_service(vagrant, store, pool="10.1.0.0/29")
        started(service, 4)
        with pytest.raises(PoolExhausted):
            service.start_vm("vcm_bookworm_test_1")
        assert len(service.list_vms()) == 4


class TestStopAndStartAgain:
    def test_stop_then_start_keeps_ip_and_hostname(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        before = service.get_vm(vm_id)
        assert service.stop_vm(vm_id).state == VmState.STOPPED
        after = service.start_existing(vm_id)
        assert (after.state, after.ip, after.hostname) == (
            VmState.RUNNING,
            before.ip,
            before.hostname,
        )
        assert len(vagrant.created) == 1

    def test_stopping_a_stopped_vm_succeeds_without_vagrant(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        service.stop_vm(vm_id)
        service.stop_vm(vm_id)
        assert vagrant.calls.count(("halt", vm_id)) == 1

    def test_a_failed_halt_records_what_vagrant_reports(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.fail("halt")
        with pytest.raises(BackendError):
            service.stop_vm(vm_id)
        vm = service.get_vm(vm_id)
        assert vm.state == VmState.RUNNING
        assert "halt failed" in vm.detail

    def test_unknown_vm(self, service: VcmService) -> None:
        with pytest.raises(VmNotFound):
            service.stop_vm("x_1_1")
        with pytest.raises(VmNotFound):
            service.start_existing("x_1_1")


class TestDestroy:
    def test_destroy_removes_the_vm_and_frees_its_ip(self, service: VcmService) -> None:
        first, second = started(service, 2)
        ip = service.get_vm(first).ip
        service.destroy_vm(first)
        with pytest.raises(VmNotFound):
            service.get_vm(first)
        assert service.start_vm("vcm_bookworm_test_1").ip == ip
        assert service.get_vm(second).ip != ip

    def test_destroy_all_reports_failures_and_keeps_those_vms(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        ok, bad = started(service, 2)
        vagrant.fail("destroy", bad)
        result = service.destroy_all()
        assert result.done == (ok,)
        assert [vm_id for vm_id, _ in result.failed] == [bad]
        assert [vm.vm_id for vm in service.list_vms()] == [bad]

    def test_stop_all_stops_every_vm(self, service: VcmService) -> None:
        ids = started(service, 3)
        assert set(service.stop_all().done) == set(ids)
        assert {vm.state for vm in service.list_vms()} == {VmState.STOPPED}

    def test_destroy_box_removes_its_vms_and_itself(self, service: VcmService) -> None:
        ids = started(service, 2)
        result = service.destroy_box("vcm_bookworm_test_1")
        assert set(result.done) == set(ids)
        assert service.list_vms() == []
        with pytest.raises(BoxNotFound):
            service.start_vm("vcm_bookworm_test_1")

    def test_destroy_box_keeps_the_box_when_a_vm_cannot_go(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.fail("destroy")
        assert service.destroy_box("vcm_bookworm_test_1").failed
        view = service.get_box("vcm_bookworm_test_1")
        assert view.vm_ids == (vm_id,)
        assert not view.box.removing


class TestStateFailures:
    def test_a_failed_write_changes_nothing_in_memory(
        self, service: VcmService, store: InMemoryStore
    ) -> None:
        store.broken = True
        with pytest.raises(StateError, match="disk full"):
            service.create_box(BoxDefinition(BOX))
        assert service.list_boxes() == []

    def test_the_saved_state_matches_what_is_served(
        self, service: VcmService, store: InMemoryStore
    ) -> None:
        [vm_id] = started(service)
        assert store.saved is not None
        assert store.saved.vms[vm_id] == service.get_vm(vm_id)


class TestConcurrency:
    def test_commands_on_one_vm_wait_for_each_other(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        box = service.create_box(BoxDefinition(BOX))
        vagrant.gate = threading.Event()
        starter = threading.Thread(target=service.start_vm, args=(box.box_id,))
        starter.start()
        assert vagrant.entered.wait(5)
        [vm] = service.list_vms()
        assert vm.state == VmState.STARTING
        destroyer = threading.Thread(target=service.destroy_vm, args=(vm.vm_id,))
        destroyer.start()
        destroyer.join(0.2)
        assert destroyer.is_alive(), "destroy must wait for the start to finish"
        vagrant.gate.set()
        starter.join(5)
        destroyer.join(5)
        assert vagrant.calls[-1] == ("destroy", vm.vm_id)
        assert service.list_vms() == []

    def test_concurrent_starts_never_share_ids_or_ips(self, service: VcmService) -> None:
        box = service.create_box(BoxDefinition(BOX))
        threads = [threading.Thread(target=service.start_vm, args=(box.box_id,)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        vms = service.list_vms()
        assert len({vm.vm_id for vm in vms}) == len({vm.ip for vm in vms}) == 20


class TestReconcile:
    def test_running_and_stopped_machines_update_their_records(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        one, two = started(service, 2)
        vagrant.machines_by_id[one] = MachineStatus.STOPPED
        changes = service.reconcile()
        assert service.get_vm(one).state == VmState.STOPPED
        assert service.get_vm(two).state == VmState.RUNNING
        assert len(changes) == 1

    def test_an_interrupted_first_start_is_destroyed(
        self, vagrant: FakeVagrant, store: InMemoryStore
    ) -> None:
        service = make_service(vagrant, store)
        box = service.create_box(BoxDefinition(BOX))
        vagrant.gate = threading.Event()
        threading.Thread(target=service.start_vm, args=(box.box_id,), daemon=True).start()
        assert vagrant.entered.wait(5)
        restarted = make_service(vagrant, store)
        assert restarted.list_vms()[0].state == VmState.STARTING
        restarted.reconcile()
        assert restarted.list_vms() == []
        assert vagrant.machines() == []
        vagrant.gate.set()

    def test_a_machine_without_a_record_is_destroyed(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        vagrant.machines_by_id["ghost_1_1"] = MachineStatus.RUNNING
        assert service.reconcile() == ["ghost_1_1: destroyed, it had no record"]
        assert vagrant.machines() == []

    def test_a_provisioned_vm_that_vagrant_lost_is_marked_error(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.machines_by_id.clear()
        service.reconcile()
        vm = service.get_vm(vm_id)
        assert vm.state == VmState.ERROR
        assert "no longer has" in vm.detail

    def test_an_interrupted_box_removal_is_finished(
        self, vagrant: FakeVagrant, store: InMemoryStore
    ) -> None:
        service = make_service(vagrant, store)
        [vm_id] = started(service)
        box_id = service.get_vm(vm_id).box_id
        vagrant.fail("destroy")
        assert service.destroy_box(box_id).failed
        assert store.saved is not None  # now mark it as a daemon killed mid-removal leaves it
        store.saved.boxes[box_id] = replace(store.saved.boxes[box_id], removing=True)
        vagrant.failing.clear()
        restarted = make_service(vagrant, store)
        assert f"{box_id}: removal was interrupted; finished it" in restarted.reconcile()
        assert restarted.list_boxes() == []
        assert restarted.list_vms() == []
        assert vagrant.machines() == []

    def test_a_backend_failure_leaves_the_record_and_says_so(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.fail("status")
        [change] = service.reconcile()
        assert "could not reconcile" in change
        assert service.get_vm(vm_id).state == VmState.RUNNING


def test_host_files_are_checked_at_create(vagrant: FakeVagrant, store: InMemoryStore) -> None:
    service = make_service(vagrant, store, FakeHostFiles({"payload.txt"}))
    ok = FileProvisioner(destination="/tmp/p", source="payload.txt")
    assert service.create_box(BoxDefinition(BOX, files=(ok,))).definition.files == (ok,)


class TestSuspendAndResume:
    def test_suspend_then_resume(self, service: VcmService, vagrant: FakeVagrant) -> None:
        [vm_id] = started(service)
        assert service.suspend_vm(vm_id).state == VmState.SUSPENDED
        assert vagrant.machines_by_id[vm_id] == MachineStatus.SUSPENDED
        assert service.get_vm(vm_id).state == VmState.SUSPENDED
        assert service.resume_vm(vm_id).state == VmState.RUNNING
        assert vagrant.machines_by_id[vm_id] == MachineStatus.RUNNING

    def test_suspending_a_suspended_vm_and_resuming_a_running_one_do_nothing(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        assert service.resume_vm(vm_id).state == VmState.RUNNING
        service.suspend_vm(vm_id)
        service.suspend_vm(vm_id)
        assert [call for call in vagrant.calls if call[0] in ("suspend", "resume")] == [
            ("suspend", vm_id)
        ]

    def test_a_stopped_vm_cannot_be_suspended_or_resumed(self, service: VcmService) -> None:
        [vm_id] = started(service)
        service.stop_vm(vm_id)
        with pytest.raises(InvalidRequest, match="is stopped; suspend needs it running"):
            service.suspend_vm(vm_id)
        with pytest.raises(InvalidRequest, match="resume needs it suspended"):
            service.resume_vm(vm_id)
        assert service.get_vm(vm_id).state == VmState.STOPPED

    def test_a_provider_that_cannot_suspend_changes_nothing(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        before = service.get_vm(vm_id)
        vagrant.unsupported.add("suspend")
        with pytest.raises(Unsupported, match="cannot suspend"):
            service.suspend_vm(vm_id)
        assert service.get_vm(vm_id) == before

    def test_a_failed_resume_records_what_vagrant_reports(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        service.suspend_vm(vm_id)
        vagrant.fail("resume")
        with pytest.raises(BackendError):
            service.resume_vm(vm_id)
        vm = service.get_vm(vm_id)
        assert (vm.state, "resume failed" in vm.detail) == (VmState.SUSPENDED, True)


class TestReloadAndProvision:
    def test_reload_boots_a_stopped_vm_and_keeps_it(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        before = service.get_vm(vm_id)
        service.stop_vm(vm_id)
        after = service.reload_vm(vm_id)
        assert (after.state, after.ip, after.hostname) == (
            VmState.RUNNING,
            before.ip,
            before.hostname,
        )
        assert ("reload", vm_id) in vagrant.calls

    def test_reload_of_a_running_vm_runs_vagrant(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        lines: list[str] = []
        service.reload_vm(vm_id, progress=lines.append)
        assert lines == [f"{vm_id}: reloading"]

    def test_provision_runs_the_provisioners_of_a_running_vm(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        assert service.provision_vm(vm_id).state == VmState.RUNNING
        assert vagrant.provisioned == {vm_id: 1}

    def test_provision_needs_a_running_vm(self, service: VcmService) -> None:
        [vm_id] = started(service)
        service.stop_vm(vm_id)
        with pytest.raises(InvalidRequest, match="provision needs it running"):
            service.provision_vm(vm_id)

    def test_a_failed_provision_keeps_the_vm_running_with_the_reason(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.fail("provision")
        with pytest.raises(BackendError):
            service.provision_vm(vm_id)
        vm = service.get_vm(vm_id)
        assert vm.state == VmState.RUNNING
        assert "provision failed" in vm.detail

    def test_the_next_success_clears_the_detail(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.fail("provision")
        with pytest.raises(BackendError):
            service.provision_vm(vm_id)
        vagrant.failing.clear()
        assert service.provision_vm(vm_id).detail == ""


class TestSnapshots:
    def test_save_list_restore_delete(self, service: VcmService, vagrant: FakeVagrant) -> None:
        [vm_id] = started(service)
        service.save_snapshot(vm_id, "clean-1")
        service.save_snapshot(vm_id, "later")
        assert service.list_snapshots(vm_id) == ["clean-1", "later"]
        service.stop_vm(vm_id)
        assert service.restore_snapshot(vm_id, "clean-1").state == VmState.RUNNING
        service.delete_snapshot(vm_id, "later")
        assert service.list_snapshots(vm_id) == ["clean-1"]

    @pytest.mark.parametrize("name", ["", "-x", "a b", "a;rm", "../x", "x" * 65, "é"])
    def test_names_are_checked_before_vagrant_sees_them(
        self, service: VcmService, vagrant: FakeVagrant, name: str
    ) -> None:
        [vm_id] = started(service)
        with pytest.raises(InvalidRequest, match="snapshot name"):
            service.save_snapshot(vm_id, name)
        assert ("snapshot", vm_id) not in vagrant.calls

    def test_a_provider_without_snapshots_changes_nothing(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        before = service.get_vm(vm_id)
        vagrant.unsupported.add("snapshot")
        for attempt in (
            lambda: service.save_snapshot(vm_id, "a"),
            lambda: service.restore_snapshot(vm_id, "a"),
            lambda: service.delete_snapshot(vm_id, "a"),
            lambda: service.list_snapshots(vm_id),
        ):
            with pytest.raises(Unsupported):
                attempt()
        assert service.get_vm(vm_id) == before

    def test_a_failed_restore_records_what_vagrant_reports(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        with pytest.raises(BackendError, match="no snapshot"):
            service.restore_snapshot(vm_id, "never")
        assert service.get_vm(vm_id).state == VmState.RUNNING


class TestExecAndSshInfo:
    def test_exec_returns_what_the_backend_ran(self, service: VcmService) -> None:
        [vm_id] = started(service)
        result = service.exec_in_vm(vm_id, ["echo", "hi"], 30)
        assert (result.exit_status, result.stdout) == (0, "echo hi\n")

    @pytest.mark.parametrize(
        ("argv", "timeout", "problem"),
        [
            ([], 10, "argv"),
            ([""], 10, "argv"),
            (["x"] * 1025, 10, "argv"),
            (["echo", "a\x00b"], 10, "NUL"),
            (["true"], 0, "timeout"),
            (["true"], 3601, "timeout"),
        ],
    )
    def test_bad_argv_or_timeout_is_refused(
        self,
        service: VcmService,
        vagrant: FakeVagrant,
        argv: list[str],
        timeout: int,
        problem: str,
    ) -> None:
        [vm_id] = started(service)
        with pytest.raises(InvalidRequest, match=problem):
            service.exec_in_vm(vm_id, argv, timeout)
        assert ("exec", vm_id) not in vagrant.calls

    def test_exec_and_ssh_info_need_a_running_vm(self, service: VcmService) -> None:
        [vm_id] = started(service)
        service.stop_vm(vm_id)
        with pytest.raises(InvalidRequest, match="exec needs it running"):
            service.exec_in_vm(vm_id, ["true"], 10)
        with pytest.raises(InvalidRequest, match="ssh-info needs it running"):
            service.ssh_info(vm_id)

    def test_ssh_info(self, service: VcmService) -> None:
        [vm_id] = started(service)
        assert service.ssh_info(vm_id).key_path == f"/keys/{vm_id}"


class TestResources:
    def test_a_box_records_its_resources(self, service: VcmService) -> None:
        box = service.create_box(BoxDefinition(BOX, resources=Resources(cpus=1, memory=256)))
        assert service.get_box(box.box_id).box.definition.resources == Resources(1, 256)

    @pytest.mark.parametrize(
        ("resources", "problem"),
        [
            ({"cpus": 3}, "cpus 3 is more than this host has \\(2 CPUs\\)"),
            ({"memory": 4097}, "memory 4097 MiB is more than this host has \\(4096 MiB\\)"),
        ],
    )
    def test_more_than_the_host_has_is_refused(
        self, vagrant: FakeVagrant, store: InMemoryStore, resources: dict[str, int], problem: str
    ) -> None:
        service = make_service(vagrant, store, capacity=HostCapacity(cpus=2, memory=4096))
        with pytest.raises(InvalidRequest, match=problem):
            service.create_box(BoxDefinition(BOX, resources=Resources(**resources)))
        assert service.list_boxes() == []

    @pytest.mark.parametrize(
        "resources", [{"cpus": 0}, {"cpus": True}, {"memory": 63}, {"memory": 1.5}]
    )
    def test_nonsense_is_refused(self, resources: dict[str, object]) -> None:
        with pytest.raises(InvalidRequest):
            Resources(**resources)  # type: ignore[arg-type]


class TestReconcileNewStates:
    def test_a_suspended_machine_is_recorded_suspended(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        [vm_id] = started(service)
        vagrant.machines_by_id[vm_id] = MachineStatus.SUSPENDED
        service.reconcile()
        assert service.get_vm(vm_id).state == VmState.SUSPENDED

    @pytest.mark.parametrize(
        ("interrupted", "observed", "state"),
        [
            (VmState.SUSPENDING, MachineStatus.SUSPENDED, VmState.SUSPENDED),
            (VmState.SUSPENDING, MachineStatus.RUNNING, VmState.RUNNING),
            (VmState.RESUMING, MachineStatus.RUNNING, VmState.RUNNING),
            (VmState.RELOADING, MachineStatus.STOPPED, VmState.STOPPED),
            (VmState.PROVISIONING, MachineStatus.RUNNING, VmState.RUNNING),
            (VmState.RELOADING, MachineStatus.OTHER, VmState.ERROR),
        ],
    )
    def test_an_interrupted_command_takes_the_state_vagrant_reports(
        self,
        vagrant: FakeVagrant,
        store: InMemoryStore,
        interrupted: VmState,
        observed: MachineStatus,
        state: VmState,
    ) -> None:
        service = make_service(vagrant, store)
        [vm_id] = started(service)
        assert store.saved is not None
        store.saved.vms[vm_id] = replace(store.saved.vms[vm_id], state=interrupted)
        vagrant.machines_by_id[vm_id] = observed
        restarted = make_service(vagrant, store)
        [change] = restarted.reconcile()
        assert restarted.get_vm(vm_id).state == state
        assert f"{interrupted} -> {state}" in change
