"""A backend that keeps pretend machines itself: for client development, demos and load tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vcm.adapters.atomic_file import write_atomically
from vcm.domain.cancel import current_scope
from vcm.domain.errors import BackendError, BoxUnavailable, Cancelled, Unsupported
from vcm.domain.ports import ExecResult, Machine, MachineStatus, Progress, SshInfo


class SimulatedVagrant:
    def __init__(
        self,
        *,
        delay: float = 0.0,
        boxes: frozenset[str] = frozenset(),
        failing_boxes: frozenset[str] = frozenset(),
        machines_file: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._delay = delay
        self._boxes = boxes
        self._failing_boxes = failing_boxes
        self._file = machines_file
        self._sleep = sleep
        self._lock = threading.Lock()
        self._machines, self._snapshots = self._load()

    def ensure_box(self, box: str) -> None:
        if self._boxes and box not in self._boxes:
            known = ", ".join(sorted(self._boxes))
            raise BoxUnavailable(
                f"The box '{box}' could not be found (simulated backend; it has: {known})"
            )

    def create(self, machine: Machine, progress: Progress) -> None:
        for phase in ("importing base box", "booting", "setting hostname", "provisioning"):
            progress(phase)
            self._pause(self._delay / 4)
        if machine.definition.box in self._failing_boxes:
            raise BackendError(f"simulated failure: provisioning {machine.vm_id} exited 1")
        self._set(machine.vm_id, MachineStatus.RUNNING)

    def boot(self, vm_id: str, progress: Progress) -> None:
        self._require(vm_id)
        progress("booting")
        self._pause(self._delay)
        self._set(vm_id, MachineStatus.RUNNING)

    def halt(self, vm_id: str) -> None:
        self._require(vm_id)
        self._sleep(self._delay)
        self._set(vm_id, MachineStatus.STOPPED)

    def destroy(self, vm_id: str) -> None:
        self._sleep(self._delay)
        with self._lock:
            self._snapshots.pop(vm_id, None)
        self._set(vm_id, None)

    def suspend(self, vm_id: str) -> None:
        self._change(vm_id, MachineStatus.RUNNING, MachineStatus.SUSPENDED)

    def resume(self, vm_id: str) -> None:
        self._change(vm_id, MachineStatus.SUSPENDED, MachineStatus.RUNNING)

    def reload(self, vm_id: str, progress: Progress) -> None:
        self._require(vm_id)
        progress("reloading")
        self._sleep(self._delay)
        self._set(vm_id, MachineStatus.RUNNING)

    def provision(self, vm_id: str, progress: Progress) -> None:
        self._change(vm_id, MachineStatus.RUNNING, MachineStatus.RUNNING)
        progress("provisioning")

    def snapshot_save(self, vm_id: str, name: str) -> None:
        self._require(vm_id)
        with self._lock:
            names = self._snapshots.setdefault(vm_id, [])
            if name in names:
                raise BackendError(f"simulated backend: {vm_id} already has a snapshot {name!r}")
            names.append(name)
        self._set(vm_id, self.status(vm_id))

    def snapshot_restore(self, vm_id: str, name: str) -> None:
        self._has_snapshot(vm_id, name)
        self._sleep(self._delay)
        self._set(vm_id, MachineStatus.RUNNING)

    def snapshot_delete(self, vm_id: str, name: str) -> None:
        self._has_snapshot(vm_id, name)
        with self._lock:
            self._snapshots[vm_id].remove(name)
        self._set(vm_id, self.status(vm_id))

    def snapshot_list(self, vm_id: str) -> list[str]:
        self._require(vm_id)
        with self._lock:
            return list(self._snapshots.get(vm_id, []))

    def exec(self, vm_id: str, argv: list[str], timeout: int) -> ExecResult:
        del vm_id, argv, timeout
        raise Unsupported("the simulated backend has no guests to run commands in")

    def ssh_info(self, vm_id: str) -> SshInfo:
        del vm_id
        raise Unsupported("the simulated backend has no guests to ssh to")

    def status(self, vm_id: str) -> MachineStatus:
        with self._lock:
            return self._machines.get(vm_id, MachineStatus.NOT_CREATED)

    def machines(self) -> list[str]:
        with self._lock:
            return list(self._machines)

    def _pause(self, seconds: float) -> None:
        """Take `seconds`, as a boot step would; cancelling interrupts it, as it would Vagrant."""
        scope = current_scope()
        scope.check("the simulated boot step")
        if self._sleep is not time.sleep:
            self._sleep(seconds)
        elif scope.sleep(seconds):
            raise Cancelled("the simulated boot was interrupted on request")

    def _require(self, vm_id: str) -> None:
        if self.status(vm_id) == MachineStatus.NOT_CREATED:
            raise BackendError(f"simulated backend has no machine {vm_id}")

    def _change(self, vm_id: str, before: MachineStatus, after: MachineStatus) -> None:
        status = self.status(vm_id)
        if status != before:
            raise BackendError(f"simulated backend: {vm_id} is {status}, not {before}")
        self._sleep(self._delay)
        self._set(vm_id, after)

    def _has_snapshot(self, vm_id: str, name: str) -> None:
        self._require(vm_id)
        if name not in self.snapshot_list(vm_id):
            raise BackendError(f"simulated backend: {vm_id} has no snapshot {name!r}")

    def _set(self, vm_id: str, status: MachineStatus | None) -> None:
        with self._lock:
            if status is None:
                self._machines.pop(vm_id, None)
            else:
                self._machines[vm_id] = status
            if self._file is not None:
                document = {"machines": self._machines, "snapshots": self._snapshots}
                write_atomically(self._file, json.dumps(document))

    def _load(self) -> tuple[dict[str, MachineStatus], dict[str, list[str]]]:
        if self._file is None or not self._file.exists():
            return {}, {}
        saved = json.loads(self._file.read_text(encoding="utf-8"))
        if "machines" not in saved:  # the first form: only the machines
            saved = {"machines": saved, "snapshots": {}}
        machines = {vm_id: MachineStatus(status) for vm_id, status in saved["machines"].items()}
        return machines, {vm_id: list(names) for vm_id, names in saved["snapshots"].items()}
