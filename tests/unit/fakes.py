"""Hand-written fakes of the domain's ports: they keep state that tests assert on."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from vcm.domain.cancel import current_scope
from vcm.domain.errors import (
    BackendError,
    BoxUnavailable,
    Cancelled,
    InvalidRequest,
    StateError,
    Unsupported,
)
from vcm.domain.events import Event
from vcm.domain.model import State
from vcm.domain.ports import ExecResult, Machine, MachineStatus, Progress, SshInfo


class FakeVagrant:
    def __init__(self, boxes: set[str] | None = None, addable: set[str] | None = None) -> None:
        self.boxes = boxes if boxes is not None else {"vcm/bookworm-test"}
        self.addable = addable or set()
        self.machines_by_id: dict[str, MachineStatus] = {}
        self.created: list[Machine] = []
        self.failing: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []
        self.unsupported: set[str] = set()
        self.snapshots: dict[str, list[str]] = {}
        self.provisioned: dict[str, int] = {}
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def fail(self, action: str, vm_id: str = "*") -> None:
        self.failing[action] = vm_id

    def _maybe_fail(self, action: str, vm_id: str) -> None:
        with self._lock:
            self.calls.append((action, vm_id))
        if self.failing.get(action) in ("*", vm_id):
            raise BackendError(f"vagrant {action} failed (exit 1): simulated for {vm_id}")
        if action in self.unsupported:
            raise Unsupported(f"the fake provider cannot {action}")

    def ensure_box(self, box: str) -> None:
        self._maybe_fail("ensure_box", box)
        if box in self.boxes:
            return
        if box not in self.addable:
            raise BoxUnavailable(f"The box '{box}' could not be found")
        self.boxes.add(box)

    def create(self, machine: Machine, progress: Progress) -> None:
        self.machines_by_id[machine.vm_id] = MachineStatus.STOPPED
        progress(f"{machine.vm_id}: booting")
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if current_scope().cancelled:
            raise Cancelled(f"vagrant up of {machine.vm_id} was interrupted on request")
        self._maybe_fail("create", machine.vm_id)
        self.created.append(machine)
        self.machines_by_id[machine.vm_id] = MachineStatus.RUNNING

    def boot(self, vm_id: str, progress: Progress) -> None:
        self._maybe_fail("boot", vm_id)
        self.machines_by_id[vm_id] = MachineStatus.RUNNING

    def halt(self, vm_id: str) -> None:
        self._maybe_fail("halt", vm_id)
        self.machines_by_id[vm_id] = MachineStatus.STOPPED

    def destroy(self, vm_id: str) -> None:
        self._maybe_fail("destroy", vm_id)
        self.machines_by_id.pop(vm_id, None)

    def status(self, vm_id: str) -> MachineStatus:
        self._maybe_fail("status", vm_id)
        return self.machines_by_id.get(vm_id, MachineStatus.NOT_CREATED)

    def machines(self) -> list[str]:
        return list(self.machines_by_id)

    def suspend(self, vm_id: str) -> None:
        self._maybe_fail("suspend", vm_id)
        self.machines_by_id[vm_id] = MachineStatus.SUSPENDED

    def resume(self, vm_id: str) -> None:
        self._maybe_fail("resume", vm_id)
        self.machines_by_id[vm_id] = MachineStatus.RUNNING

    def reload(self, vm_id: str, progress: Progress) -> None:
        self._maybe_fail("reload", vm_id)
        progress(f"{vm_id}: reloading")
        self.machines_by_id[vm_id] = MachineStatus.RUNNING

    def provision(self, vm_id: str, progress: Progress) -> None:
        self._maybe_fail("provision", vm_id)
        self.provisioned[vm_id] = self.provisioned.get(vm_id, 0) + 1

    def snapshot_save(self, vm_id: str, name: str) -> None:
        self._maybe_fail("snapshot", vm_id)
        self.snapshots.setdefault(vm_id, []).append(name)

    def snapshot_restore(self, vm_id: str, name: str) -> None:
        self._maybe_fail("snapshot", vm_id)
        if name not in self.snapshots.get(vm_id, []):
            raise BackendError(f"no snapshot {name}")
        self.machines_by_id[vm_id] = MachineStatus.RUNNING

    def snapshot_delete(self, vm_id: str, name: str) -> None:
        self._maybe_fail("snapshot", vm_id)
        self.snapshots.get(vm_id, []).remove(name)

    def snapshot_list(self, vm_id: str) -> list[str]:
        self._maybe_fail("snapshot", vm_id)
        return list(self.snapshots.get(vm_id, []))

    def exec(self, vm_id: str, argv: list[str], timeout: int) -> ExecResult:
        self._maybe_fail("exec", vm_id)
        return ExecResult(0, " ".join(argv) + "\n", "")

    def ssh_info(self, vm_id: str) -> SshInfo:
        self._maybe_fail("ssh_info", vm_id)
        return SshInfo("127.0.0.1", 2222, "vagrant", f"/keys/{vm_id}")


@dataclass
class InMemoryStore:
    saved: State | None = None
    saves: int = 0
    broken: bool = False

    def load(self) -> State:
        return self.saved.copy() if self.saved is not None else State()

    def save(self, state: State) -> None:
        if self.broken:
            raise StateError("cannot write the state file /fake: disk full")
        self.saved = state.copy()
        self.saves += 1


@dataclass
class FakeHostFiles:
    files: set[str] = field(default_factory=set)

    def check(self, path: str) -> None:
        if path not in self.files:
            raise InvalidRequest(f"no file {path!r} in the files directory")


@dataclass
class RecordingEvents:
    events: list[Event] = field(default_factory=list)

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(event.kind, event.vm_id or event.box_id) for event in self.events]
