"""Lifecycle events: what changed in the state, as a watcher should hear it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vcm.domain.model import Box, State, Vm


def now() -> str:
    """The current time as an ISO 8601 UTC timestamp with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """`kind` is box-created, box-removed, vm-<state>, vm-destroyed or operation-finished."""

    kind: str
    box_id: str | None = None
    vm_id: str | None = None
    vm: Vm | None = None
    box: Box | None = None
    extra: tuple[tuple[str, Any], ...] = ()


def changes(old: State, new: State) -> list[Event]:
    """The events that lead from `old` to `new`, boxes created first and removed last."""
    events = [
        Event("box-created", box_id, box=box)
        for box_id, box in new.boxes.items()
        if box_id not in old.boxes
    ]
    earlier = old.vms
    for vm_id, vm in new.vms.items():
        before = earlier.get(vm_id)
        if before is not vm and (before is None or before.state is not vm.state):
            events.append(Event(f"vm-{vm.state}", vm.box_id, vm_id, vm=vm))
    events += [
        Event("vm-destroyed", vm.box_id, vm_id, vm=vm)
        for vm_id, vm in old.vms.items()
        if vm_id not in new.vms
    ]
    events += [
        Event("box-removed", box_id, box=box)
        for box_id, box in old.boxes.items()
        if box_id not in new.boxes
    ]
    return events
