"""Random command sequences against VcmService: the ID, IP and state rules hold after every step.

A hypothesis state machine drives the service with the hand-written fakes: boxes are created,
VMs started, stopped and destroyed, one at a time, per box and all at once; any command may run
with one Vagrant action failing or with the state store refusing every write; the daemon may
"restart" (a new service over the same store and backend). After every step the invariants below
must hold, and a command that failed must have changed nothing a client can see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.unit.conftest import make_service
from tests.unit.fakes import FakeHostFiles, FakeVagrant, InMemoryStore
from vcm.domain.allocation import is_dns_name
from vcm.domain.errors import BoxNotFound, PoolExhausted, VcmError
from vcm.domain.model import TRANSITIONAL_STATES, BoxDefinition, Network, VmState
from vcm.domain.ports import MachineStatus
from vcm.domain.service import BulkResult, VcmService

BOX = "vcm/bookworm-test"
ADDABLE = "other/box"
MISSING = "missing/box"
POOLS = ("10.1.0.0/29", "10.1.0.16/28")
BACKEND_ACTIONS = ("ensure_box", "create", "boot", "halt", "destroy", "status")
STORE = "store"

T = TypeVar("T")

# A failure to inject for one command: a Vagrant action that fails (for every VM, or for the one
# picked by the number) or the store refusing every write.
failures = st.none() | st.tuples(
    st.sampled_from((*BACKEND_ACTIONS, STORE)), st.none() | st.integers(0, 20)
)
picks = st.integers(0, 50)


@dataclass(frozen=True)
class VmView:
    """What a client sees of a VM, without `detail` (it reports the last failure on purpose)."""

    vm_id: str
    box_id: str
    box: str
    ip: IPv4Address | None
    hostname: str
    state: VmState


@dataclass(frozen=True)
class BoxShown:
    """What a client sees of a box; its counters are left out."""

    box_id: str
    definition: BoxDefinition
    vm_ids: frozenset[str]


@dataclass(frozen=True)
class Snapshot:
    vms: dict[str, VmView]
    boxes: dict[str, BoxShown]


def snapshot(service: VcmService) -> Snapshot:
    vms = {
        vm.vm_id: VmView(vm.vm_id, vm.box_id, vm.box, vm.ip, vm.hostname, vm.state)
        for vm in service.list_vms()
    }
    boxes = {
        view.box.box_id: BoxShown(view.box.box_id, view.box.definition, frozenset(view.vm_ids))
        for view in service.list_boxes()
    }
    return Snapshot(vms, boxes)


# Random create/start/stop/destroy sequences: IDs never repeat, IPs stay unique and in the pool,
# failures change nothing visible.
class ServiceCommands(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.vagrant = FakeVagrant(boxes={BOX}, addable={ADDABLE})
        self.store = InMemoryStore()
        self.pool = IPv4Network(POOLS[0])
        self.service = make_service(self.vagrant, self.store)
        self.box_ids_issued: set[str] = set()
        self.vm_ids_issued: set[str] = set()
        self.steps = 0

    @initialize(pool=st.sampled_from(POOLS))
    def choose_pool(self, pool: str) -> None:
        self.pool = IPv4Network(pool)
        self.service = make_service(self.vagrant, self.store, FakeHostFiles(), pool)

    # -- helpers -------------------------------------------------------------------------------

    def _pick(self, ids: set[str], pick: int, unknown: str) -> str:
        """One of the IDs ever issued (live or gone), or now and then one never issued."""
        choices = [*sorted(ids), unknown]
        return choices[pick % len(choices)]

    def _live_vm(self, pick: int | None) -> str:
        live = sorted(vm.vm_id for vm in self.service.list_vms())
        if pick is None or not live:
            return "*"
        return live[pick % len(live)]

    def _run(
        self, command: Callable[[], T], failure: tuple[str, int | None] | None
    ) -> T | VcmError:
        """Run one command with the failure injected; a failure is returned, never raised."""
        self.steps += 1
        if failure is not None:
            action, pick = failure
            if action == STORE:
                self.store.broken = True
            else:
                self.vagrant.fail(action, self._live_vm(pick))
        try:
            return command()
        except VcmError as error:
            return error
        finally:
            self.store.broken = False
            self.vagrant.failing.clear()
            self._note_issued_vm_ids()

    def _note_issued_vm_ids(self) -> None:
        self.vm_ids_issued |= {vm.vm_id for vm in self.service.list_vms()}
        self.vm_ids_issued |= {vm_id for action, vm_id in self.vagrant.calls if action == "create"}

    def _single(
        self, command: Callable[[], T], failure: tuple[str, int | None] | None
    ) -> T | VcmError:
        """A command on one thing: if it fails, nothing visible may change."""
        before = snapshot(self.service)
        result = self._run(command, failure)
        if isinstance(result, VcmError):
            assert snapshot(self.service) == before, f"failed with {result!r} yet changed state"
        return result

    def _leased(self) -> list[IPv4Address]:
        return [vm.ip for vm in self.service.list_vms() if vm.ip is not None]

    def _capacity(self) -> int:
        return self.pool.num_addresses - 4  # network, broadcast, and the two host-side addresses

    # -- commands ------------------------------------------------------------------------------

    @rule(
        box=st.sampled_from((BOX, ADDABLE, MISSING)),
        network=st.sampled_from(Network),
        hostname=st.sampled_from(("dynamic", "web", "a" * 63)),
        failure=failures,
    )
    def create_box(
        self, box: str, network: Network, hostname: str, failure: tuple[str, int | None] | None
    ) -> None:
        issued = set(self.box_ids_issued)
        result = self._single(
            lambda: self.service.create_box(BoxDefinition(box, network=network, hostname=hostname)),
            failure,
        )
        if not isinstance(result, VcmError):
            assert result.box_id not in issued, f"boxID {result.box_id} issued twice"
            self.box_ids_issued.add(result.box_id)

    @rule(pick=picks, failure=failures)
    def start_from_box(self, pick: int, failure: tuple[str, int | None] | None) -> None:
        box_id = self._pick(self.box_ids_issued, pick, "never_1")
        issued = set(self.vm_ids_issued)
        leased = len(self._leased())
        result = self._single(lambda: self.service.start_vm(box_id), failure)
        if isinstance(result, PoolExhausted):
            assert leased == self._capacity(), f"pool exhausted with only {leased} addresses leased"
        elif isinstance(result, BoxNotFound):
            assert box_id not in {view.box.box_id for view in self.service.list_boxes()}
        elif not isinstance(result, VcmError):
            assert result.vm_id not in issued, f"vmID {result.vm_id} issued twice"
            assert result.vm_id.startswith(f"{box_id}_")
            assert result.state == VmState.RUNNING

    @rule(pick=picks, failure=failures)
    def start_existing(self, pick: int, failure: tuple[str, int | None] | None) -> None:
        vm_id = self._pick(self.vm_ids_issued, pick, "never_1_1")
        result = self._single(lambda: self.service.start_existing(vm_id), failure)
        if not isinstance(result, VcmError):
            assert result.state == VmState.RUNNING

    @rule(pick=picks, failure=failures)
    def stop(self, pick: int, failure: tuple[str, int | None] | None) -> None:
        vm_id = self._pick(self.vm_ids_issued, pick, "never_1_1")
        result = self._single(lambda: self.service.stop_vm(vm_id), failure)
        if not isinstance(result, VcmError):
            assert result.state == VmState.STOPPED

    @rule(pick=picks, failure=failures)
    def destroy_vm(self, pick: int, failure: tuple[str, int | None] | None) -> None:
        vm_id = self._pick(self.vm_ids_issued, pick, "never_1_1")
        result = self._single(lambda: self.service.destroy_vm(vm_id), failure)
        if not isinstance(result, VcmError):
            assert vm_id not in snapshot(self.service).vms

    @rule(pick=picks, failure=failures)
    def destroy_box(self, pick: int, failure: tuple[str, int | None] | None) -> None:
        box_id = self._pick(self.box_ids_issued, pick, "never_1")
        before = snapshot(self.service)
        result = self._run(lambda: self.service.destroy_box(box_id), failure)
        after = snapshot(self.service)
        if isinstance(result, VcmError):
            assert after == before, f"failed with {result!r} yet changed state"
            return
        own = {vm_id for vm_id, vm in before.vms.items() if vm.box_id == box_id}
        self._check_bulk(before, after, result, own, gone=True)
        if result.failed:
            assert box_id in after.boxes, "a box whose VMs could not all go must stay"
        else:
            assert box_id not in after.boxes

    @rule(failure=failures)
    def destroy_all(self, failure: tuple[str, int | None] | None) -> None:
        before = snapshot(self.service)
        result = self._run(self.service.destroy_all, failure)
        assert not isinstance(result, VcmError)
        self._check_bulk(before, snapshot(self.service), result, set(before.vms), gone=True)

    @rule(failure=failures)
    def stop_all(self, failure: tuple[str, int | None] | None) -> None:
        before = snapshot(self.service)
        result = self._run(self.service.stop_all, failure)
        assert not isinstance(result, VcmError)
        after = snapshot(self.service)
        self._check_bulk(before, after, result, set(before.vms), gone=False)

    @rule(reconcile=st.booleans())
    def restart(self, reconcile: bool) -> None:
        """A new daemon over the same state file and backend serves the same state."""
        before = snapshot(self.service)
        self.service = make_service(self.vagrant, self.store, FakeHostFiles(), str(self.pool))
        assert snapshot(self.service) == before
        if reconcile:
            assert self.service.reconcile() == [], "records and backend disagreed"

    def _check_bulk(
        self,
        before: Snapshot,
        after: Snapshot,
        result: BulkResult,
        targets: set[str],
        *,
        gone: bool,
    ) -> None:
        """Every target is done or failed; done ones are gone (or stopped), failed unchanged."""
        failed = {vm_id for vm_id, _ in result.failed}
        assert set(result.done) | failed == targets
        assert not set(result.done) & failed
        for vm_id in result.done:
            if gone:
                assert vm_id not in after.vms
            else:
                assert after.vms[vm_id].state == VmState.STOPPED
        for vm_id in failed:
            assert after.vms[vm_id] == before.vms[vm_id], f"{vm_id} failed yet changed"
        untouched = set(before.vms) - targets
        assert {vm_id: after.vms.get(vm_id) for vm_id in untouched} == {
            vm_id: before.vms[vm_id] for vm_id in untouched
        }

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def ips_are_unique_and_inside_the_pool(self) -> None:
        leased = self._leased()
        assert len(leased) == len(set(leased)), f"an IP is leased twice: {sorted(leased)}"
        never = {
            self.pool.network_address,
            self.pool.broadcast_address,
            self.pool.network_address + 1,
            self.pool.broadcast_address - 1,
        }
        for ip in leased:
            assert ip in self.pool, f"{ip} is outside {self.pool}"
            assert ip not in never, f"{ip} must not be leased from {self.pool}"
        boxes = {view.box.box_id: view.box for view in self.service.list_boxes()}
        for vm in self.service.list_vms():
            private = boxes[vm.box_id].definition.network == Network.PRIVATE
            assert (vm.ip is not None) == private, (
                f"{vm.vm_id}: IP {vm.ip} on a {'private' if private else 'none'} box"
            )

    @invariant()
    def ids_are_issued_once_and_hostnames_are_dns_names(self) -> None:
        vm_ids = [vm.vm_id for vm in self.service.list_vms()]
        assert len(vm_ids) == len(set(vm_ids))
        for vm in self.service.list_vms():
            assert is_dns_name(vm.hostname), vm.hostname
            assert vm.hostname.endswith(".example.com"), vm.hostname
            assert vm.box_id in self.box_ids_issued

    @invariant()
    def the_saved_state_is_what_is_served(self) -> None:
        saved = self.store.saved
        served_vms = {vm.vm_id: vm for vm in self.service.list_vms()}
        served_boxes = {view.box.box_id: view.box for view in self.service.list_boxes()}
        if saved is None:
            assert served_vms == {}
            assert served_boxes == {}
        else:
            assert saved.vms == served_vms
            assert saved.boxes == served_boxes

    @invariant()
    def nothing_is_left_half_done(self) -> None:
        for vm in self.service.list_vms():
            assert vm.state not in TRANSITIONAL_STATES, f"{vm.vm_id} left {vm.state}"
        for view in self.service.list_boxes():
            assert not view.box.removing, f"{view.box.box_id} left marked for removal"

    @invariant()
    def the_backend_has_exactly_the_recorded_vms(self) -> None:
        expected = {VmState.RUNNING: MachineStatus.RUNNING, VmState.STOPPED: MachineStatus.STOPPED}
        recorded = {vm.vm_id: expected.get(vm.state) for vm in self.service.list_vms()}
        assert self.vagrant.machines_by_id == recorded


ServiceCommands.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestRandomCommandSequences = ServiceCommands.TestCase
