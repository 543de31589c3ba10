"""4. The control plane under load: `info` with 1,000 and 10,000 VMs, 1/16/64 connections.

Simulated backend, loopback only. The state is written in the daemon's own format (bench.state_fill)
and the daemon is the real one, started as users start it; the load generator is another process.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    Result,
    Table,
    Target,
    median,
    ms,
    now,
    process_cpu_seconds,
    process_memory,
    rate,
)
from bench.daemon import RECONCILED, Daemon
from bench.load import run_load
from bench.state_fill import SIMULATED_POOL, fill


@dataclass(frozen=True)
class Size:
    vm_counts: tuple[int, ...]
    connections: tuple[int, ...]
    rounds: int
    warmup: float
    duration: float
    max_requests: int


FULL = Size((1000, 10000), (1, 16, 64), rounds=5, warmup=0.5, duration=2.0, max_requests=200_000)
TINY = Size((50,), (1, 4), rounds=1, warmup=0.05, duration=0.2, max_requests=2000)

ONE_TARGET_RATE = 10_000
ONE_TARGET_P99 = 0.010
ALL_TARGET_P99 = 0.020


def _requests(query: str, vm_ids: list[str]) -> list[str]:
    if query == "all":
        return [json.dumps({"command": "info", "subcommand": "VM all"})]
    shuffled = random.Random(8).sample(vm_ids, len(vm_ids))
    return [json.dumps({"command": "info", "subcommand": f"VM {vm_id}"}) for vm_id in shuffled]


def _measure(daemon: Daemon, size: Size, query: str, vm_ids: list[str], connections: int) -> Any:
    rounds = []
    for _ in range(size.rounds):
        cpu_before = process_cpu_seconds(daemon.pid)
        load = run_load(
            {
                "host": daemon.host,
                "port": daemon.port,
                "connections": connections,
                "requests": _requests(query, vm_ids),
                "warmup": size.warmup,
                "duration": size.duration,
                "max_requests": size.max_requests,
            }
        )
        load["server_cpu"] = process_cpu_seconds(daemon.pid) - cpu_before
        if load["errors"]:
            raise RuntimeError(f"{load['errors']} error replies: {load['first_error']}")
        rounds.append(load)
    return rounds


def run(size: Size, label: str) -> Result:
    result = Result(
        name="4_control_plane",
        title="4. Control plane under load (simulated backend, loopback)",
        size=label,
        params={
            "vm_counts": size.vm_counts,
            "connections": size.connections,
            "rounds": size.rounds,
            "warmup_s": size.warmup,
            "duration_s": size.duration,
        },
        started=now(),
    )
    began = time.perf_counter()
    table = Table(
        "info latency and throughput (median of the rounds; server CPU per reply from /proc)",
        [
            "VMs",
            "query",
            "conns",
            "replies/s",
            "p50",
            "p99",
            "p99 worst round",
            "daemon CPU/reply",
            "client CPU/reply",
        ],
    )
    runs: dict[str, Any] = {}
    for vms in size.vm_counts:
        with tempfile.TemporaryDirectory(prefix="vcm-bench-cp-") as scratch:
            state = fill(Path(scratch), vms)
            vm_ids = list(state.vms)
            daemon = Daemon(Path(scratch), VCM_DRIVER="simulated", VCM_IP_POOL=SIMULATED_POOL)
            with daemon.start():
                daemon.wait_for_log(RECONCILED)
                for query in ("one", "all"):
                    for connections in size.connections:
                        rounds = _measure(daemon, size, query, vm_ids, connections)
                        runs[f"{vms}/{query}/{connections}"] = rounds
                        replies = sum(r["replies"] for r in rounds)
                        table.rows.append(
                            [
                                f"{vms:,}",
                                "VM <id>" if query == "one" else "VM all",
                                str(connections),
                                rate(median([r["throughput"] for r in rounds])),
                                ms(median([r["p50"] for r in rounds])),
                                ms(median([r["p99"] for r in rounds])),
                                ms(max(r["p99"] for r in rounds)),
                                f"{sum(r['server_cpu'] for r in rounds) / replies * 1e6:.0f} µs",
                                f"{sum(r['client_cpu'] for r in rounds) / replies * 1e6:.0f} µs",
                            ]
                        )
                rss, hwm = process_memory(daemon.pid)
                runs[f"{vms}/memory"] = {"rss_mib": rss, "hwm_mib": hwm}
                result.notes.append(
                    f"{vms:,} VMs: daemon RSS after the load {rss:.0f} MiB (peak {hwm:.0f} MiB)"
                )
    result.tables.append(table)
    result.raw = runs
    top = max(size.connections)
    for vms in size.vm_counts:
        rounds = runs[f"{vms}/one/{top}"]
        throughput = median([r["throughput"] for r in rounds])
        p99 = median([r["p99"] for r in rounds])
        result.targets.append(
            Target(
                "4",
                f"`info VM <id>`, {vms:,} VMs, {top} connections",
                f"{rate(throughput)}, p99 {ms(p99)}",
                f">= {ONE_TARGET_RATE:,}/s, p99 <= {ms(ONE_TARGET_P99)}",
                throughput >= ONE_TARGET_RATE and p99 <= ONE_TARGET_P99,
            )
        )
    small = min(size.vm_counts)
    for connections in size.connections:
        rounds = runs[f"{small}/all/{connections}"]
        p99 = median([r["p99"] for r in rounds])
        judged = connections == 1
        result.targets.append(
            Target(
                "4",
                f"`info VM all`, {small:,} VMs, {connections} connection"
                + ("s" if connections > 1 else "")
                + ("" if judged else " (queueing; not the target's case)"),
                f"p99 {ms(p99)}, {rate(median([r['throughput'] for r in rounds]))}",
                f"p99 <= {ms(ALL_TARGET_P99)}" if judged else "-",
                p99 <= ALL_TARGET_P99 if judged else None,
            )
        )
    result.seconds = time.perf_counter() - began
    return result
