"""5. Cost growth: the time to persist one mutation with 10, 1,000 and 10,000 VMs in state.

The daemon's real path: reply times of create / start / stop / start again / destroy on one
connection, simulated backend with no delay, so what is left is vcm's own work (validation, the
registry, saving state.json with fsync) plus the simulated backend's machines file. To attribute
the time, the same state is also saved by JsonStateStore alone, in this process, split into
building the JSON form, encoding it and writing it.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.common import Result, Table, Target, median, ms, now
from bench.daemon import RECONCILED, Daemon, Wire, timed
from bench.state_fill import BOX, SIMULATED_POOL, fill
from vcm.adapters import json_store
from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.json_store import JsonStateStore
from vcm.domain.model import State


@dataclass(frozen=True)
class Size:
    vm_counts: tuple[int, ...]
    cycles: int
    store_repeats: int


FULL = Size((10, 1000, 10000), cycles=7, store_repeats=9)
TINY = Size((10, 100), cycles=1, store_repeats=1)

TARGET = 0.020
OPERATIONS = ("create", "start", "stop", "start again", "destroy")
# how many times each operation saves state.json (VcmService: record before, result after)
SAVES = {"create": 1, "start": 2, "stop": 2, "start again": 2, "destroy": 2}


def _cycle(wire: Wire) -> dict[str, float]:
    took: dict[str, float] = {}
    took["create"], reply = timed(wire, {"command": "create", "box": BOX})
    box_id = reply["boxID"]
    took["start"], reply = timed(wire, {"command": "start", "boxID": box_id})
    vm_id = reply["vmID"]
    took["stop"], _ = timed(wire, {"command": "stop", "vmID": vm_id})
    took["start again"], _ = timed(wire, {"command": "start", "vmID": vm_id})
    took["destroy"], _ = timed(wire, {"command": "destroy", "vmID": vm_id})
    wire.ok({"command": "destroy", "boxID": box_id})
    return took


def _store_alone(state_dir: Path, repeats: int) -> dict[str, float]:
    store = JsonStateStore(state_dir / "state.json")
    state = store.load()
    target = state_dir / "bench-copy.json"
    parts: dict[str, list[float]] = {
        "to_json": [],
        "dumps": [],
        "write+fsync": [],
        "save": [],
        "save one change": [],
    }
    for repeat in range(repeats):
        began = time.perf_counter()
        document = json_store._state_to_json(state)
        built = time.perf_counter()
        text = json.dumps(document, separators=(",", ":"))
        encoded = time.perf_counter()
        write_atomically(target, text)
        written = time.perf_counter()
        warm = JsonStateStore(target)
        warm.save(state)
        saved = time.perf_counter()
        changed = _one_vm_changed(state, repeat)
        began_change = time.perf_counter()
        warm.save(changed)
        parts["save one change"].append(time.perf_counter() - began_change)
        parts["to_json"].append(built - began)
        parts["dumps"].append(encoded - built)
        parts["write+fsync"].append(written - encoded)
        parts["save"].append(saved - written)
    machines = json.loads((state_dir / "simulated-machines.json").read_text())
    simulated = []
    for _ in range(repeats):
        began = time.perf_counter()
        write_atomically(state_dir / "bench-machines.json", json.dumps(machines))
        simulated.append(time.perf_counter() - began)
    figures = {name: median(values) for name, values in parts.items()}
    figures["simulated machines file"] = median(simulated)
    figures["bytes"] = float(len(text))
    return figures


def _one_vm_changed(state: State, repeat: int) -> State:
    changed = state.copy()
    if changed.vms:
        vm = next(iter(changed.vms.values()))
        changed.vms[vm.vm_id] = replace(vm, detail=f"changed {repeat}")
    return changed


def _growth(small: float, large: float, factor: float) -> float:
    """The exponent k in t ~ n^k between two sizes."""
    return math.log(large / small) / math.log(factor) if small > 0 and large > 0 else float("nan")


def run(size: Size, label: str) -> Result:
    result = Result(
        name="5_persistence",
        title="5. Cost growth: persisting one mutation",
        size=label,
        params={"vm_counts": size.vm_counts, "cycles": size.cycles},
        started=now(),
    )
    began = time.perf_counter()
    replies: dict[int, dict[str, float]] = {}
    stores: dict[int, dict[str, float]] = {}
    raw: dict[str, Any] = {}
    for vms in size.vm_counts:
        with tempfile.TemporaryDirectory(prefix="vcm-bench-persist-") as scratch:
            fill(Path(scratch), vms)
            daemon = Daemon(Path(scratch), VCM_DRIVER="simulated", VCM_IP_POOL=SIMULATED_POOL)
            with daemon.start():
                daemon.wait_for_log(RECONCILED)
                with Wire(daemon.host, daemon.port) as wire:
                    _cycle(wire)  # warm-up: first requests import and compile lazily
                    cycles = [_cycle(wire) for _ in range(size.cycles)]
            raw[str(vms)] = cycles
            replies[vms] = {op: median([cycle[op] for cycle in cycles]) for op in OPERATIONS}
            stores[vms] = _store_alone(Path(scratch), size.store_repeats)
    raw["store"] = {str(vms): figures for vms, figures in stores.items()}
    result.raw = raw

    table = Table(
        f"Reply time of one mutation through the daemon (median of {size.cycles} cycles; "
        "saves = state.json writes it makes)",
        ["VMs", *(f"{op} ({SAVES[op]} save{'s' if SAVES[op] > 1 else ''})" for op in OPERATIONS)],
    )
    for vms in size.vm_counts:
        table.rows.append([f"{vms:,}", *(ms(replies[vms][op]) for op in OPERATIONS)])
    result.tables.append(table)
    store_table = Table(
        "JsonStateStore.save alone on the same state (median): the first save encodes every "
        "record, later ones only what changed; and the parts of one full encoding",
        [
            "VMs",
            "state.json",
            "save(), first",
            "save(), one VM changed",
            "_state_to_json",
            "json.dumps",
            "write+fsync",
            "simulated machines file",
        ],
    )
    for vms in size.vm_counts:
        figures = stores[vms]
        store_table.rows.append(
            [
                f"{vms:,}",
                f"{figures['bytes'] / 1024:,.0f} KiB",
                ms(figures["save"]),
                ms(figures["save one change"]),
                ms(figures["to_json"]),
                ms(figures["dumps"]),
                ms(figures["write+fsync"]),
                ms(figures["simulated machines file"]),
            ]
        )
    result.tables.append(store_table)

    largest = max(size.vm_counts)
    middle = sorted(size.vm_counts)[-2]
    for op in OPERATIONS:
        took = replies[largest][op]
        growth = _growth(replies[middle][op], took, largest / middle)
        result.targets.append(
            Target(
                "5",
                f"`{op}` reply, {largest:,} VMs",
                f"{ms(took)} (growth n^{growth:.2f} from {middle:,})",
                f"<= {ms(TARGET)}, growth <= n^1",
                took <= TARGET and growth <= 1.1,
            )
        )
    result.notes.append(
        "growth is the exponent k in t ~ n^k between the two largest sizes; up to 1.1 counts as "
        "linear (noise)"
    )
    result.seconds = time.perf_counter() - began
    return result
