"""6. Memory and start-up: daemon RSS idle and with 10,000 VMs; launch to accepting connections."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Result, Table, Target, median, ms, now, process_memory
from bench.daemon import RECONCILED, VCM_SRC, Daemon, Wire
from bench.state_fill import SIMULATED_POOL, fill


@dataclass(frozen=True)
class Size:
    vm_counts: tuple[int, ...]
    rounds: int


FULL = Size((0, 10000), rounds=5)
TINY = Size((0, 200), rounds=1)

RSS_TARGET_MIB = 100.0
START_TARGET = 1.0


def _one_launch(state_dir: Path, vms: int) -> dict[str, float]:
    daemon = Daemon(state_dir, VCM_DRIVER="simulated", VCM_IP_POOL=SIMULATED_POOL)
    daemon.launch()
    try:
        accepting = daemon.wait_accepting()
        request = {"command": "info", "subcommand": "VM all" if vms == 0 else "VM bench_probe"}
        with Wire(daemon.host, daemon.port) as wire:
            wire.ask(request)
            first_reply = time.perf_counter() - daemon.launched
            reconciled = daemon.wait_for_log(RECONCILED)
            time.sleep(0.5)
            idle_rss, idle_hwm = process_memory(daemon.pid)
            wire.ok({"command": "info", "subcommand": "VM all"})
            after_rss, after_hwm = process_memory(daemon.pid)
    finally:
        daemon.stop()
    return {
        "accepting": accepting,
        "first_reply": first_reply,
        "reconciled": reconciled,
        "rss_idle": idle_rss,
        "hwm_idle": idle_hwm,
        "rss_after_info_all": after_rss,
        "hwm_after_info_all": after_hwm,
    }


def _import_time() -> float:
    """Seconds for a bare interpreter to import the daemon module: the floor of any start-up."""
    code = "import time; t = time.perf_counter(); import vcm.entrypoints.daemon; "
    code += "print(time.perf_counter() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(VCM_SRC)},
    )
    return float(done.stdout)


def run(size: Size, label: str) -> Result:
    result = Result(
        name="6_startup",
        title="6. Memory and start-up (simulated backend)",
        size=label,
        params={"vm_counts": size.vm_counts, "rounds": size.rounds},
        started=now(),
    )
    began = time.perf_counter()
    figures: dict[int, dict[str, float]] = {}
    raw: dict[str, Any] = {}
    for vms in size.vm_counts:
        with tempfile.TemporaryDirectory(prefix="vcm-bench-start-") as scratch:
            state_dir = Path(scratch)
            if vms:
                fill(state_dir, vms)
            state_bytes = (state_dir / "state.json").stat().st_size if vms else 0
            launches = [_one_launch(state_dir, vms) for _ in range(size.rounds)]
            raw[str(vms)] = launches
            figures[vms] = {key: median([item[key] for item in launches]) for key in launches[0]}
            figures[vms]["state_bytes"] = float(state_bytes)
    imports = [_import_time() for _ in range(size.rounds)]
    raw["import_seconds"] = imports
    result.raw = raw

    table = Table(
        f"Daemon process (median of {size.rounds} launches; RSS idle = after reconciliation, "
        "0.5 s quiet)",
        [
            "VMs",
            "state.json",
            "launch -> accepting",
            "launch -> first reply",
            "launch -> reconciled",
            "RSS idle",
            "RSS after `info VM all`",
            "peak RSS",
        ],
    )
    for vms, item in figures.items():
        table.rows.append(
            [
                f"{vms:,}",
                f"{item['state_bytes'] / 1024:,.0f} KiB",
                ms(item["accepting"]),
                ms(item["first_reply"]),
                ms(item["reconciled"]),
                f"{item['rss_idle']:.1f} MiB",
                f"{item['rss_after_info_all']:.1f} MiB",
                f"{item['hwm_after_info_all']:.1f} MiB",
            ]
        )
    result.tables.append(table)
    result.notes.append(
        f"`import vcm.entrypoints.daemon` alone takes {ms(median(imports))} in a fresh interpreter "
        "(median): the floor under any start-up time."
    )
    largest = max(size.vm_counts)
    smallest = min(size.vm_counts)
    result.targets.append(
        Target(
            "6",
            f"daemon RSS idle, {smallest:,} VMs",
            f"{figures[smallest]['rss_idle']:.1f} MiB",
            "-",
            None,
        )
    )
    result.targets.append(
        Target(
            "6",
            f"daemon RSS idle, {largest:,} VMs (peak after `info VM all`: "
            f"{figures[largest]['hwm_after_info_all']:.0f} MiB)",
            f"{figures[largest]['rss_idle']:.1f} MiB",
            f"<= {RSS_TARGET_MIB:.0f} MB",
            figures[largest]["rss_idle"] <= RSS_TARGET_MIB,
        )
    )
    result.targets.append(
        Target(
            "6",
            f"launch -> accepting connections, {largest:,} VMs",
            f"{ms(figures[largest]['accepting'])} (empty state: "
            f"{ms(figures[smallest]['accepting'])})",
            f"<= {ms(START_TARGET)}",
            figures[largest]["accepting"] <= START_TARGET,
        )
    )
    result.seconds = time.perf_counter() - began
    return result


if __name__ == "__main__":
    print(json.dumps(run(TINY, "tiny").to_json(), indent=2))
