"""What a recorded VM should become once we know what Vagrant really has."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vcm.domain.model import Vm, VmState
from vcm.domain.ports import MachineStatus


class Fix(enum.Enum):
    KEEP = "keep"
    SET_STATE = "set state"
    FORGET = "forget"
    DESTROY = "destroy"


@dataclass(frozen=True)
class Verdict:
    fix: Fix
    state: VmState | None = None
    reason: str = ""


_OBSERVED_STATE = {
    MachineStatus.RUNNING: VmState.RUNNING,
    MachineStatus.STOPPED: VmState.STOPPED,
    MachineStatus.SUSPENDED: VmState.SUSPENDED,
}


def reconcile(vm: Vm, observed: MachineStatus) -> Verdict:
    if vm.state == VmState.DESTROYING or (vm.state == VmState.STARTING and not vm.provisioned):
        if observed == MachineStatus.NOT_CREATED:
            return Verdict(Fix.FORGET, reason=f"{vm.state} was interrupted; nothing was left")
        return Verdict(Fix.DESTROY, reason=f"{vm.state} was interrupted; removing what was left")
    if observed == MachineStatus.NOT_CREATED:
        if not vm.provisioned:
            return Verdict(Fix.FORGET, reason="it was never created")
        return Verdict(Fix.SET_STATE, VmState.ERROR, "Vagrant no longer has this machine")
    state = _OBSERVED_STATE.get(observed, VmState.ERROR)
    if state == vm.state:
        return Verdict(Fix.KEEP, state)
    return Verdict(Fix.SET_STATE, state, f"Vagrant reports it {observed}")
