"""Fill a state directory with N VMs: the daemon's own state.json plus the simulated machines.

The records are built with vcm's own rules (IDs, hostnames) and written by vcm's own
JsonStateStore, so the file is exactly what a daemon that had started N VMs would have saved; the
simulated backend's machines file lists each VM as running, so reconciliation keeps them all.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path

from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.json_store import JsonStateStore
from vcm.domain.allocation import box_id_for, hostname_for, vm_id_for
from vcm.domain.model import Box, BoxDefinition, ShellProvisioner, State, Vm, VmState

BOX = "vcm/bookworm-test"
# Simulated VMs never touch a network; a /16 only gives 10,000 VMs distinct addresses.
SIMULATED_POOL = "10.36.0.0/16"
DOMAIN = "example.com"
VMS_PER_BOX = 100


def build_state(vms: int, pool: str = SIMULATED_POOL, domain: str = DOMAIN) -> State:
    network = IPv4Network(pool)
    first, last = network.network_address + 1, network.broadcast_address - 1
    addresses = (ip for ip in network.hosts() if ip not in (first, last))
    definition = BoxDefinition(BOX, shell=(ShellProvisioner(inline="echo benchmark > /etc/motd"),))
    state = State()
    for index in range(vms):
        if index % VMS_PER_BOX == 0:
            state.box_counter += 1
            box_id = box_id_for(BOX, state.box_counter)
            count = min(VMS_PER_BOX, vms - index)
            state.boxes[box_id] = Box(box_id, definition, vms_started=count)
        box = state.boxes[box_id]
        number = index % VMS_PER_BOX + 1
        vm = Vm(
            vm_id=vm_id_for(box_id, number),
            box_id=box_id,
            box=BOX,
            ip=next(addresses),
            hostname=hostname_for(box, number, domain),
            state=VmState.RUNNING,
            provisioned=True,
        )
        state.vms[vm.vm_id] = vm
    return state


def fill(state_dir: Path, vms: int) -> State:
    """Write state.json and simulated-machines.json for `vms` running VMs; return the state."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state = build_state(vms)
    JsonStateStore(state_dir / "state.json").save(state)
    machines = dict.fromkeys(state.vms, "running")
    write_atomically(state_dir / "simulated-machines.json", json.dumps(machines))
    return state
