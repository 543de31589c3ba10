"""Events from state changes, cancel scopes, phases of a start, output lines that know their VM."""

from __future__ import annotations

import threading
from ipaddress import IPv4Network

import pytest

from tests.unit.fakes import FakeHostFiles, FakeVagrant, InMemoryStore, RecordingEvents
from vcm.adapters.progress import PhaseTracker
from vcm.domain.allocation import IpPool
from vcm.domain.cancel import CancelScope, current_scope, running_in
from vcm.domain.errors import Cancelled, StateError
from vcm.domain.model import BoxDefinition, VmState
from vcm.domain.ports import OutputLine
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService

BOX = "vcm/bookworm-test"
DOCKER_UP = [
    "Bringing machine 'default' up with 'docker' provider...",
    "==> default: Creating and configuring docker networks...",
    "==> default: Creating the container...",
    "==> default: Starting container...",
    "==> default: Waiting for machine to boot. This may take a few minutes...",
    "==> default: Machine booted and ready!",
    "==> default: Setting hostname...",
    "==> default: Running provisioner: shell...",
    "    default: booting the app",
]


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
def watched(vagrant: FakeVagrant, store: InMemoryStore, events: RecordingEvents) -> VcmService:
    return VcmService(
        registry=Registry(store, events=events),
        vagrant=vagrant,
        host_files=FakeHostFiles(),
        pool=IpPool.with_host_sides(IPv4Network("192.168.33.0/24")),
        domain="example.com",
    )


class TestEvents:
    def test_each_change_of_the_state_is_an_event_in_order(
        self, watched: VcmService, events: RecordingEvents
    ) -> None:
        box = watched.create_box(BoxDefinition(BOX))
        vm = watched.start_vm(box.box_id)
        watched.stop_vm(vm.vm_id)
        watched.destroy_box(box.box_id)
        assert events.kinds() == [
            ("box-created", box.box_id),
            ("vm-starting", vm.vm_id),
            ("vm-running", vm.vm_id),
            ("vm-stopping", vm.vm_id),
            ("vm-stopped", vm.vm_id),
            ("vm-destroying", vm.vm_id),
            ("vm-destroyed", vm.vm_id),
            ("box-removed", box.box_id),
        ]
        assert events.events[2].vm is not None
        assert events.events[2].vm.state == VmState.RUNNING

    def test_a_change_that_could_not_be_saved_is_no_event(
        self, watched: VcmService, events: RecordingEvents, store: InMemoryStore
    ) -> None:
        store.broken = True
        with pytest.raises(StateError):
            watched.create_box(BoxDefinition(BOX))
        assert events.events == []

    def test_a_failed_start_ends_with_the_vm_destroyed(
        self, watched: VcmService, events: RecordingEvents, vagrant: FakeVagrant
    ) -> None:
        box = watched.create_box(BoxDefinition(BOX))
        vagrant.fail("create")
        with pytest.raises(Exception, match="simulated"):
            watched.start_vm(box.box_id)
        assert [kind for kind, _ in events.kinds()] == [
            "box-created",
            "vm-starting",
            "vm-destroyed",
        ]


class TestCancelScope:
    def test_cancel_interrupts_what_runs_and_refuses_what_would_start(self) -> None:
        scope = CancelScope()
        interrupted: list[str] = []
        with scope.interruptible(lambda: interrupted.append("up")):
            scope.cancel()
        assert interrupted == ["up"]
        with pytest.raises(Cancelled, match="before vagrant up"):
            scope.check("vagrant up")

    def test_an_interrupt_registered_after_the_cancel_runs_at_once(self) -> None:
        scope = CancelScope()
        scope.cancel()
        interrupted: list[str] = []
        with scope.interruptible(lambda: interrupted.append("late")):
            assert interrupted == ["late"]

    def test_the_scope_follows_the_running_context(self) -> None:
        scope = CancelScope()
        assert current_scope() is not scope
        with running_in(scope):
            assert current_scope() is scope
        current_scope().check("anything")  # outside any scope: never cancelled

    def test_a_cancelled_start_leaves_no_vm_and_frees_its_address(
        self, service: VcmService, vagrant: FakeVagrant
    ) -> None:
        box = service.create_box(BoxDefinition(BOX))
        vagrant.gate = threading.Event()
        scope = CancelScope()
        raised: list[BaseException] = []

        def start() -> None:
            with running_in(scope):
                try:
                    service.start_vm(box.box_id)
                except Cancelled as error:
                    raised.append(error)

        worker = threading.Thread(target=start)
        worker.start()
        assert vagrant.entered.wait(5)
        scope.cancel()
        vagrant.gate.set()
        worker.join(5)
        assert len(raised) == 1
        assert service.list_vms() == []
        assert vagrant.machines() == []
        vagrant.gate = None
        assert str(service.start_vm(box.box_id).ip) == "192.168.33.2"


class TestProgress:
    def test_phases_follow_vagrants_lines_and_never_go_back(self) -> None:
        tracker = PhaseTracker()
        assert [tracker.see(line) for line in DOCKER_UP] == [
            "preparing",
            "importing",
            "importing",
            "booting",
            "booting",
            "configuring",
            "configuring",
            "provisioning",
            "provisioning",
        ]

    def test_the_service_tags_each_line_with_its_vm(self, service: VcmService) -> None:
        box = service.create_box(BoxDefinition(BOX))
        lines: list[str] = []
        vm = service.start_vm(box.box_id, progress=lines.append)
        assert lines == [f"{vm.vm_id}: booting"]
        assert isinstance(lines[0], OutputLine)
        assert lines[0].vm_id == vm.vm_id
