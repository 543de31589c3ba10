"""The use cases: define boxes; start, stop, suspend, reload, provision, snapshot, exec in and
destroy VMs; answer queries."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any

from vcm.domain.allocation import IpPool, box_id_for, check_definition, hostname_for, vm_id_for
from vcm.domain.errors import (
    BoxNotFound,
    InvalidRequest,
    StateError,
    Unsupported,
    VcmError,
    VmNotFound,
    WrongState,
)
from vcm.domain.model import Box, BoxDefinition, HostCapacity, Network, State, Vm, VmState
from vcm.domain.ports import (
    ExecResult,
    HostFiles,
    Machine,
    MachineStatus,
    OutputLine,
    Progress,
    SshInfo,
    VagrantPort,
    no_progress,
)
from vcm.domain.reconcile import Fix, reconcile
from vcm.domain.registry import KeyedLocks, Registry

log = logging.getLogger(__name__)

_STATE_AFTER_FAILURE = {
    MachineStatus.RUNNING: VmState.RUNNING,
    MachineStatus.STOPPED: VmState.STOPPED,
    MachineStatus.SUSPENDED: VmState.SUSPENDED,
}
_CREATED = frozenset({VmState.RUNNING, VmState.STOPPED, VmState.SUSPENDED})
_RUNNING = frozenset({VmState.RUNNING})
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_EXEC_TIMEOUT = 3600
MAX_ARGV = 1024


def check_snapshot_name(name: str) -> None:
    if not _SNAPSHOT_NAME.match(name):
        raise InvalidRequest(
            "a snapshot name is 1 to 64 letters, digits and . _ -, starting with a letter or "
            f"digit, not {name!r}"
        )


def check_exec(argv: list[str], timeout: int) -> None:
    if not argv or len(argv) > MAX_ARGV or not argv[0]:
        raise InvalidRequest(f"argv must be 1 to {MAX_ARGV} strings, the first not empty")
    if any("\x00" in arg for arg in argv):
        raise InvalidRequest("argv strings must not contain NUL characters")
    if not 1 <= timeout <= MAX_EXEC_TIMEOUT:
        raise InvalidRequest(f"timeout must be 1 to {MAX_EXEC_TIMEOUT} seconds, not {timeout}")


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
        capacity: HostCapacity | None = None,
    ) -> None:
        self._registry = registry
        self._vagrant = vagrant
        self._host_files = host_files
        self._pool = pool
        self._domain = domain
        self._parallelism = parallelism
        self._capacity = capacity
        self._locks = KeyedLocks()

    def check_box(self, definition: BoxDefinition) -> None:
        """InvalidRequest unless `definition` could be created; changes nothing."""
        check_definition(definition)
        if self._capacity is not None:
            self._capacity.check(definition.resources)
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

    def suspend_vm(self, vm_id: str) -> Vm:
        return self._act(
            vm_id,
            "suspend",
            _RUNNING,
            (VmState.SUSPENDING, VmState.SUSPENDED),
            action=lambda: self._vagrant.suspend(vm_id),
            noop=VmState.SUSPENDED,
        )

    def resume_vm(self, vm_id: str) -> Vm:
        return self._act(
            vm_id,
            "resume",
            frozenset({VmState.SUSPENDED}),
            (VmState.RESUMING, VmState.RUNNING),
            action=lambda: self._vagrant.resume(vm_id),
            noop=VmState.RUNNING,
        )

    def reload_vm(self, vm_id: str, progress: Progress = no_progress) -> Vm:
        return self._act(
            vm_id,
            "reload",
            _CREATED,
            (VmState.RELOADING, VmState.RUNNING),
            action=lambda: self._vagrant.reload(vm_id, _logged(vm_id, progress)),
        )

    def provision_vm(self, vm_id: str, progress: Progress = no_progress) -> Vm:
        return self._act(
            vm_id,
            "provision",
            _RUNNING,
            (VmState.PROVISIONING, VmState.RUNNING),
            action=lambda: self._vagrant.provision(vm_id, _logged(vm_id, progress)),
        )

    def save_snapshot(self, vm_id: str, name: str) -> Vm:
        check_snapshot_name(name)
        return self._query(vm_id, "snapshot save", _CREATED, self._vagrant.snapshot_save, name)

    def delete_snapshot(self, vm_id: str, name: str) -> Vm:
        check_snapshot_name(name)
        return self._query(vm_id, "snapshot delete", _CREATED, self._vagrant.snapshot_delete, name)

    def list_snapshots(self, vm_id: str) -> list[str]:
        snapshots: list[str] = []
        self._query(
            vm_id,
            "snapshot list",
            _CREATED,
            lambda vm: snapshots.extend(self._vagrant.snapshot_list(vm)),
        )
        return snapshots

    def restore_snapshot(self, vm_id: str, name: str) -> Vm:
        """Put the machine back as it was saved; its state is then whatever Vagrant reports."""
        check_snapshot_name(name)
        with self._locks.hold(vm_id):
            self._require(self._vm(self._registry.state, vm_id), "snapshot restore", _CREATED)
            try:
                self._vagrant.snapshot_restore(vm_id, name)
            except Unsupported:
                raise
            except Exception as error:
                self._settle(vm_id, error)
                raise
            observed = self._vagrant.status(vm_id)
            state = _STATE_AFTER_FAILURE.get(observed, VmState.ERROR)
            return self._update(vm_id, state=state, detail="")

    def exec_in_vm(self, vm_id: str, argv: list[str], timeout: int) -> ExecResult:
        check_exec(argv, timeout)
        with self._locks.hold(vm_id):
            self._require(self._vm(self._registry.state, vm_id), "exec", _RUNNING)
            return self._vagrant.exec(vm_id, argv, timeout)

    def ssh_info(self, vm_id: str) -> SshInfo:
        with self._locks.hold(vm_id):
            self._require(self._vm(self._registry.state, vm_id), "ssh-info", _RUNNING)
            return self._vagrant.ssh_info(vm_id)

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

    def _act(
        self,
        vm_id: str,
        verb: str,
        allowed: frozenset[VmState],
        states: tuple[VmState, VmState],
        *,
        action: Callable[[], None],
        noop: VmState | None = None,
    ) -> Vm:
        """Move a VM from an `allowed` state through `states` (during, after) by `action`.

        A VM already in `noop` is left alone. What the provider cannot do changes nothing.
        """
        with self._locks.hold(vm_id):
            before = self._vm(self._registry.state, vm_id)
            if before.state == noop:
                return before
            self._require(before, verb, allowed)
            self._update(vm_id, state=states[0])
            try:
                action()
            except Unsupported:
                self._try_update(vm_id, state=before.state, detail=before.detail)
                raise
            except Exception as error:
                self._settle(vm_id, error)
                raise
            return self._update(vm_id, state=states[1], detail="")

    def _query(
        self,
        vm_id: str,
        verb: str,
        allowed: frozenset[VmState],
        action: Callable[..., object],
        *args: str,
    ) -> Vm:
        """Run `action(vm_id, *args)` on a VM in an `allowed` state, leaving its record alone."""
        with self._locks.hold(vm_id):
            vm = self._vm(self._registry.state, vm_id)
            self._require(vm, verb, allowed)
            action(vm_id, *args)
            return vm

    @staticmethod
    def _require(vm: Vm, verb: str, allowed: frozenset[VmState]) -> None:
        if vm.state not in allowed:
            wanted = " or ".join(sorted(str(state) for state in allowed))
            raise WrongState(f"VM {vm.vm_id} is {vm.state}; {verb} needs it {wanted}")

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
        # Look before taking the registry lock: start_vm takes a new VM's lock while holding the
        # registry lock, so whoever holds the lock of a vmID not recorded yet (a destroy of the
        # VM a start is creating) must give it up, not wait for the registry lock: a deadlock.
        self._vm(self._registry.state, vm_id)
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
