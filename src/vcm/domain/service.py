"""The use cases: define boxes, start, stop and destroy VMs, and answer queries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from vcm.domain.allocation import IpPool, box_id_for, check_definition, hostname_for, vm_id_for
from vcm.domain.errors import BoxNotFound, StateError, VcmError, VmNotFound
from vcm.domain.model import Box, BoxDefinition, Network, State, Vm, VmState
from vcm.domain.ports import (
    HostFiles,
    Machine,
    MachineStatus,
    OutputLine,
    Progress,
    VagrantPort,
    no_progress,
)
from vcm.domain.reconcile import Fix, reconcile
from vcm.domain.registry import KeyedLocks, Registry

log = logging.getLogger(__name__)

_STATE_AFTER_FAILURE = {
    MachineStatus.RUNNING: VmState.RUNNING,
    MachineStatus.STOPPED: VmState.STOPPED,
}


def _logged(vm_id: str, progress: Progress) -> Progress:
    def report(line: str) -> None:
        log.info("%s| %s", vm_id, line)
        progress(OutputLine(line, vm_id))

    return report


@dataclass(frozen=True)
class BoxView:
    box: Box
    vm_ids: tuple[str, ...]


@dataclass(frozen=True)
class BulkResult:
    done: tuple[str, ...]
    failed: tuple[tuple[str, Exception], ...]


class VcmService:
    def __init__(
        self,
        *,
        registry: Registry,
        vagrant: VagrantPort,
        host_files: HostFiles,
        pool: IpPool,
        domain: str,
        parallelism: int = 4,
    ) -> None:
        self._registry = registry
        self._vagrant = vagrant
        self._host_files = host_files
        self._pool = pool
        self._domain = domain
        self._parallelism = parallelism
        self._locks = KeyedLocks()

    def check_box(self, definition: BoxDefinition) -> None:
        """InvalidRequest unless `definition` could be created; changes nothing."""
        check_definition(definition)
        for path in definition.host_paths():
            self._host_files.check(path)

    def create_box(self, definition: BoxDefinition) -> Box:
        self.check_box(definition)
        self._vagrant.ensure_box(definition.box)
        with self._registry.change() as state:
            state.box_counter += 1
            box = Box(box_id_for(definition.box, state.box_counter), definition)
            state.boxes[box.box_id] = box
        return box

    def start_vm(self, box_id: str, progress: Progress = no_progress) -> Vm:
        vm = self._record_new_vm(box_id)
        try:
            self._vagrant.create(self._machine(vm), _logged(vm.vm_id, progress))
            return self._update(vm.vm_id, state=VmState.RUNNING, provisioned=True)
        except Exception as error:
            self._discard(vm, error)
            raise
        finally:
            self._locks.release(vm.vm_id)

    def start_existing(self, vm_id: str, progress: Progress = no_progress) -> Vm:
        return self._drive(
            vm_id,
            VmState.STARTING,
            VmState.RUNNING,
            lambda: self._vagrant.boot(vm_id, _logged(vm_id, progress)),
        )

    def stop_vm(self, vm_id: str) -> Vm:
        return self._drive(
            vm_id, VmState.STOPPING, VmState.STOPPED, lambda: self._vagrant.halt(vm_id)
        )

    def destroy_vm(self, vm_id: str) -> Vm:
        with self._locks.hold(vm_id):
            vm = self._update(vm_id, state=VmState.DESTROYING)
            try:
                self._vagrant.destroy(vm_id)
            except Exception as error:
                self._settle(vm_id, error)
                raise
            with self._registry.change() as state:
                del state.vms[vm_id]
            return vm

    def stop_all(self) -> BulkResult:
        return self._each(self._registry.state.vms, self.stop_vm)

    def destroy_all(self) -> BulkResult:
        return self._each(self._registry.state.vms, self.destroy_vm)

    def destroy_box(self, box_id: str) -> BulkResult:
        with self._registry.change() as state:
            state.boxes[box_id] = replace(self._box(state, box_id), removing=True)
        return self._remove_box(box_id)

    def _remove_box(self, box_id: str) -> BulkResult:
        vm_ids = [vm.vm_id for vm in self._registry.state.vms_of(box_id)]
        result = self._each(vm_ids, self.destroy_vm)
        with self._registry.change() as state:
            if result.failed:
                state.boxes[box_id] = replace(state.boxes[box_id], removing=False)
            else:
                del state.boxes[box_id]
        return result

    def list_vms(self) -> list[Vm]:
        return list(self._registry.state.vms.values())

    def get_vm(self, vm_id: str) -> Vm:
        return self._vm(self._registry.state, vm_id)

    def list_boxes(self) -> list[BoxView]:
        state = self._registry.state
        vm_ids: dict[str, list[str]] = {box_id: [] for box_id in state.boxes}
        for vm in state.vms.values():
            vm_ids.setdefault(vm.box_id, []).append(vm.vm_id)
        return [BoxView(box, tuple(vm_ids[box.box_id])) for box in state.boxes.values()]

    def get_box(self, box_id: str) -> BoxView:
        state = self._registry.state
        box = self._box(state, box_id)
        return BoxView(box, tuple(vm.vm_id for vm in state.vms_of(box_id)))

    def reconcile(self) -> list[str]:
        """Make the records agree with what the backend really has; say what changed."""
        changes: list[str] = []
        for vm_id in list(self._registry.state.vms):
            changes.append(self._attempt(vm_id, self._reconcile_vm))
        for orphan in sorted(set(self._vagrant.machines()) - set(self._registry.state.vms)):
            changes.append(self._attempt(orphan, self._destroy_orphan))
        for box in list(self._registry.state.boxes.values()):
            if box.removing:
                changes.append(self._finish_box_removal(box.box_id))
        return [change for change in changes if change]

    def _finish_box_removal(self, box_id: str) -> str:
        result = self._remove_box(box_id)
        if result.failed:
            return f"{box_id}: removal was interrupted; {len(result.failed)} VMs could not go"
        return f"{box_id}: removal was interrupted; finished it"

    @staticmethod
    def _attempt(vm_id: str, fix: Callable[[str], str]) -> str:
        try:
            return fix(vm_id)
        except VcmError as error:
            return f"{vm_id}: left as it is, could not reconcile: {error}"

    def _destroy_orphan(self, vm_id: str) -> str:
        with self._locks.hold(vm_id):
            if vm_id in self._registry.state.vms:
                return ""
            self._vagrant.destroy(vm_id)
        return f"{vm_id}: destroyed, it had no record"

    def _reconcile_vm(self, vm_id: str) -> str:
        with self._locks.hold(vm_id):
            vm = self._registry.state.vms.get(vm_id)
            if vm is None:
                return ""
            verdict = reconcile(vm, self._vagrant.status(vm_id))
            if verdict.fix == Fix.KEEP:
                return ""
            if verdict.fix == Fix.DESTROY:
                self._vagrant.destroy(vm_id)
            if verdict.fix in (Fix.DESTROY, Fix.FORGET):
                with self._registry.change() as state:
                    del state.vms[vm_id]
                return f"{vm_id}: removed, {verdict.reason}"
            assert verdict.state is not None
            self._update(vm_id, state=verdict.state, detail=verdict.reason)
            return f"{vm_id}: {vm.state} -> {verdict.state}, {verdict.reason}"

    def _record_new_vm(self, box_id: str) -> Vm:
        """Record a VM in `starting`, returning with its lock held."""
        with ExitStack() as undo:
            with self._registry.change() as state:
                box = self._box(state, box_id)
                number = box.vms_started + 1
                vm = Vm(
                    vm_id=vm_id_for(box_id, number),
                    box_id=box_id,
                    box=box.definition.box,
                    ip=self._lease(state, box),
                    hostname=hostname_for(box, number, self._domain),
                    state=VmState.STARTING,
                )
                state.boxes[box_id] = replace(box, vms_started=number)
                state.vms[vm.vm_id] = vm
                self._locks.acquire(vm.vm_id)
                undo.callback(self._locks.release, vm.vm_id)
            undo.pop_all()
        return vm

    def _lease(self, state: State, box: Box) -> IPv4Address | None:
        if box.definition.network == Network.NONE:
            return None
        return self._pool.allocate(state.leased_ips())

    def _machine(self, vm: Vm) -> Machine:
        box = self._registry.state.boxes[vm.box_id]
        return Machine(vm.vm_id, box.definition, vm.hostname, vm.ip, self._pool.network.prefixlen)

    def _discard(self, vm: Vm, error: Exception) -> None:
        """Undo a start that failed: nothing of it may stay behind."""
        try:
            self._vagrant.destroy(vm.vm_id)
            with self._registry.change() as state:
                del state.vms[vm.vm_id]
        except VcmError as cleanup:
            log.error("%s: could not remove the failed VM: %s", vm.vm_id, cleanup)
            self._try_update(vm.vm_id, state=VmState.ERROR, detail=f"{error}; cleanup: {cleanup}")

    def _drive(self, vm_id: str, during: VmState, after: VmState, action: Callable[[], None]) -> Vm:
        with self._locks.hold(vm_id):
            if self._vm(self._registry.state, vm_id).state == after:
                return self._registry.state.vms[vm_id]
            self._update(vm_id, state=during)
            try:
                action()
            except Exception as error:
                self._settle(vm_id, error)
                raise
            return self._update(vm_id, state=after, detail="")

    def _settle(self, vm_id: str, error: Exception) -> None:
        """After a failed action, record what the machine really is now."""
        try:
            observed = self._vagrant.status(vm_id)
        except VcmError:
            observed = MachineStatus.OTHER
        state = _STATE_AFTER_FAILURE.get(observed, VmState.ERROR)
        self._try_update(vm_id, state=state, detail=str(error))

    def _try_update(self, vm_id: str, **changes: Any) -> None:
        try:
            self._update(vm_id, **changes)
        except StateError as failure:
            log.error("%s: could not record %s: %s", vm_id, changes, failure)

    def _update(self, vm_id: str, **changes: Any) -> Vm:
        with self._registry.change() as state:
            vm = replace(self._vm(state, vm_id), **changes)
            state.vms[vm_id] = vm
        return vm

    def _each(self, vm_ids: Iterable[str], action: Callable[[str], object]) -> BulkResult:
        with ThreadPoolExecutor(max_workers=self._parallelism) as workers:
            futures = {vm_id: workers.submit(action, vm_id) for vm_id in list(vm_ids)}
        done: list[str] = []
        failed: list[tuple[str, Exception]] = []
        for vm_id, future in futures.items():
            error = future.exception()
            if error is None:
                done.append(vm_id)
            elif isinstance(error, Exception) and not isinstance(error, VmNotFound):
                failed.append((vm_id, error))
        return BulkResult(tuple(done), tuple(failed))

    @staticmethod
    def _box(state: State, box_id: str) -> Box:
        box = state.boxes.get(box_id)
        if box is None or box.removing:
            raise BoxNotFound(box_id)
        return box

    @staticmethod
    def _vm(state: State, vm_id: str) -> Vm:
        vm = state.vms.get(vm_id)
        if vm is None:
            raise VmNotFound(vm_id)
        return vm
