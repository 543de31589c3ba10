"""1-3. vcm on real Vagrant (docker provider) against the raw `vagrant` CLI, side by side.

1. Overhead per VM: create+start+stop+destroy through the daemon vs `vagrant up`, `halt`,
   `destroy -f` on the same Vagrantfile (vcm's template plus a machine.json as VagrantCli writes).
2. Parallel starts: 4 VMs started at once through the daemon vs 4 sequential raw `vagrant up`.
3. Queries: `info VM <id>` vs `vagrant status --machine-readable` in that VM's directory, and
   `info VM all` vs `vagrant global-status`, while the daemon's VMs of (2) run.

Runs are interleaved (daemon, raw, daemon, raw, ...) and each comparison is the median of the
per-round ratios. Every VM created is destroyed at the end, also when a step fails or on SIGTERM.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from types import FrameType
from typing import Any

from bench.common import (
    Result,
    Table,
    Target,
    median,
    ms,
    now,
    process_children_cpu_seconds,
    secs,
)
from bench.daemon import RECONCILED, Daemon, Wire, timed
from vcm.adapters.vagrant_cli import MACHINE_FILE, template_text

REAL_VAGRANT_LOCK = Path("/run/lock/vcm-real-vagrant-tests.lock")  # as tests/conftest.py

BOX = "vcm/bookworm-test"
POOL = "192.168.36.0/24"  # this benchmark's own pool: other work on this host uses .33-.35
DOCKER_NETWORK = "vcm-pool-192.168.36.0-24"
GATEWAY = "192.168.36.254"
RAW_IPS = [f"192.168.36.{n}" for n in range(200, 210)]  # the daemon leases from .2 upwards
DOMAIN = "example.com"
VAGRANT_ENV = {
    **os.environ,
    "VAGRANT_CHECKPOINT_DISABLE": "1",
    "VAGRANT_NO_COLOR": "1",
}
COMMAND_TIMEOUT = 900

OVERHEAD_TARGET = 1.05
PARALLEL_TARGET = 0.5
QUERY_TARGET = 0.01


@dataclass(frozen=True)
class Size:
    rounds: int
    parallel: int


FULL = Size(rounds=5, parallel=4)
TINY = Size(rounds=1, parallel=2)


def available() -> str:
    """Empty if real-Vagrant benchmarks can run here, else why not."""
    if shutil.which("vagrant") is None:
        return "vagrant is not installed"
    if shutil.which("docker") is None:
        return "docker is not installed"
    boxes = _vagrant(Path.cwd(), "box", "list", "--machine-readable", check=False)
    if f",box-name,{BOX}" not in boxes.stdout or ",box-provider,docker" not in boxes.stdout:
        return f"box {BOX} for docker is not installed (scripts/provision-host docker)"
    return ""


def _vagrant(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["vagrant", *args],
        cwd=root,
        env=VAGRANT_ENV,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"vagrant {' '.join(args)} in {root} failed: {done.stderr[-2000:]}")
    return done


def _timed_vagrant(root: Path, *args: str) -> float:
    began = time.perf_counter()
    _vagrant(root, *args)
    return time.perf_counter() - began


class Scratch:
    """Raw Vagrant projects, the daemon's state dir, and what must be destroyed at the end."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vcm-bench-vagrant-"))
        self.state_dir = self.root / "state"
        self.raw_dirs: list[Path] = []
        self.created_network = False
        self._serial = 0

    def raw_project(self, ip: str) -> Path:
        """A directory like the daemon's machine directories: vcm's Vagrantfile + machine.json."""
        self._serial += 1
        root = self.root / f"raw-{self._serial}"
        root.mkdir()
        prefix = IPv4Network(POOL).prefixlen
        spec = {
            "box": BOX,
            "hostname": f"raw-{self._serial}.{DOMAIN}",
            "guest": "debian",
            "network": {
                "ip": ip,
                "netmask": str(IPv4Network(f"0.0.0.0/{prefix}").netmask),
                "lxc_bridge": "vlxcbr1",
            },
            "provisioners": [],
        }
        (root / MACHINE_FILE).write_text(json.dumps(spec, indent=2))
        (root / "Vagrantfile").write_text(template_text())
        self.raw_dirs.append(root)
        return root

    def destroy_raw(self, root: Path) -> None:
        if (root / ".vagrant").exists():
            _vagrant(root, "destroy", "--force", check=False)
        shutil.rmtree(root, ignore_errors=True)
        if root in self.raw_dirs:
            self.raw_dirs.remove(root)

    def ensure_network(self) -> None:
        """The pool's docker network, made like scripts/host/docker.sh makes its pools.

        Made beforehand, parallel `vagrant up`s share it instead of racing to create it.
        """
        names = subprocess.run(
            ["docker", "network", "ls", "--format", "{{.Name}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if DOCKER_NETWORK in names:
            return
        subprocess.run(
            [
                *("docker", "network", "create", "--driver", "bridge", "--subnet", POOL),
                *("--gateway", GATEWAY, "--label", f"vcm.pool={POOL}", DOCKER_NETWORK),
            ],
            capture_output=True,
            check=True,
        )
        self.created_network = True

    def cleanup(self) -> list[str]:
        """Destroy every VM this benchmark may have left; say what was still there."""
        left: list[str] = []
        for root in list(self.raw_dirs):
            left.append(str(root))
            self.destroy_raw(root)
        machines = self.state_dir / "machines"
        if machines.is_dir():
            for root in sorted(machines.iterdir()):
                if (root / ".vagrant").exists():
                    left.append(str(root))
                    _vagrant(root, "destroy", "--force", check=False)
        if self.created_network:
            subprocess.run(
                ["docker", "network", "rm", DOCKER_NETWORK], capture_output=True, check=False
            )
        shutil.rmtree(self.root, ignore_errors=True)
        return left


@contextmanager
def _alone_with_vagrant() -> Iterator[None]:
    """Hold the host-wide lock the real-Vagrant tests take, so no test shares the machine."""
    with REAL_VAGRANT_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into an exception so that the cleanup below runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _daemon_cycle(daemon: Daemon) -> dict[str, float]:
    took: dict[str, float] = {}
    cpu_before = process_children_cpu_seconds(daemon.pid)
    with Wire(daemon.host, daemon.port) as wire:
        took["create"], reply = timed(wire, {"command": "create", "box": BOX})
        box_id = reply["boxID"]
        took["start"], reply = timed(wire, {"command": "start", "boxID": box_id})
        vm_id = reply["vmID"]
        took["stop"], _ = timed(wire, {"command": "stop", "vmID": vm_id})
        took["destroy"], _ = timed(wire, {"command": "destroy", "vmID": vm_id})
        wire.ok({"command": "destroy", "boxID": box_id})
    took["total"] = sum(took[step] for step in ("create", "start", "stop", "destroy"))
    took["vagrant_cpu"] = process_children_cpu_seconds(daemon.pid) - cpu_before
    return took


def _raw_cycle(scratch: Scratch) -> dict[str, float]:
    root = scratch.raw_project(RAW_IPS[0])
    took: dict[str, float] = {}
    usage_before = os.times()
    try:
        took["start"] = _timed_vagrant(root, "up", "--provider=docker")
        took["stop"] = _timed_vagrant(root, "halt")
        took["destroy"] = _timed_vagrant(root, "destroy", "--force")
    finally:
        scratch.destroy_raw(root)
    usage = os.times()
    took["create"] = 0.0
    took["total"] = took["start"] + took["stop"] + took["destroy"]
    took["vagrant_cpu"] = (
        usage.children_user
        + usage.children_system
        - usage_before.children_user
        - usage_before.children_system
    )
    return took


def _daemon_parallel(daemon: Daemon, count: int) -> tuple[float, list[str], float]:
    """Start `count` VMs at once, one connection each; wall time from first send to last reply."""
    with Wire(daemon.host, daemon.port) as wire:
        box_id = wire.ok({"command": "create", "box": BOX})["boxID"]
    wires = [Wire(daemon.host, daemon.port) for _ in range(count)]
    vm_ids: list[str] = []
    errors: list[BaseException] = []
    cpu_before = process_children_cpu_seconds(daemon.pid)

    def start(wire: Wire) -> None:
        try:
            vm_ids.append(wire.ok({"command": "start", "boxID": box_id})["vmID"])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(wire,)) for wire in wires]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    for wire in wires:
        wire.close()
    if errors:
        raise RuntimeError(f"parallel start failed: {errors[0]}")
    return wall, vm_ids, process_children_cpu_seconds(daemon.pid) - cpu_before


def _raw_sequential(scratch: Scratch, count: int) -> tuple[float, float]:
    roots = [scratch.raw_project(ip) for ip in RAW_IPS[:count]]
    usage_before = os.times()
    try:
        began = time.perf_counter()
        for root in roots:
            _vagrant(root, "up", "--provider=docker")
        wall = time.perf_counter() - began
        usage = os.times()
    finally:
        threads = [threading.Thread(target=scratch.destroy_raw, args=(r,)) for r in roots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    cpu = (
        usage.children_user
        + usage.children_system
        - usage_before.children_user
        - usage_before.children_system
    )
    return wall, cpu


def _fresh_query(daemon: Daemon, subcommand: str) -> float:
    """One query as a client makes it: connect, send, read the reply, close."""
    began = time.perf_counter()
    with Wire(daemon.host, daemon.port) as wire:
        wire.ok({"command": "info", "subcommand": subcommand})
    return time.perf_counter() - began


def _queries(daemon: Daemon, vm_id: str) -> dict[str, float]:
    directory = daemon.state_dir / "machines" / vm_id
    took: dict[str, float] = {}
    took["vagrant status"] = _timed_vagrant(directory, "status", "--machine-readable")
    took["info VM <id>"] = _fresh_query(daemon, f"VM {vm_id}")
    took["vagrant global-status"] = _timed_vagrant(directory, "global-status")
    took["info VM all"] = _fresh_query(daemon, "VM all")
    return took


def run(size: Size, label: str) -> Result:
    result = Result(
        name="1_3_real_vagrant",
        title="1-3. On real Vagrant (docker provider): vcm vs the raw vagrant CLI",
        size=label,
        params={"rounds": size.rounds, "parallel": size.parallel, "pool": POOL, "box": BOX},
        started=now(),
    )
    began = time.perf_counter()
    scratch = Scratch()
    cycles: list[tuple[dict[str, float], dict[str, float]]] = []
    parallel: list[dict[str, float]] = []
    queries: list[dict[str, float]] = []
    daemon = Daemon(
        scratch.state_dir,
        VCM_DRIVER="vagrant",
        VCM_PROVIDER="docker",
        VCM_GUEST="debian",
        VCM_IP_POOL=POOL,
        VCM_DOMAIN=DOMAIN,
    )
    try:
        with _sigterm_unwinds(), _alone_with_vagrant():
            scratch.ensure_network()
            daemon.start()
            daemon.wait_for_log(RECONCILED)
            for _ in range(size.rounds):
                cycles.append((_daemon_cycle(daemon), _raw_cycle(scratch)))
            for _ in range(size.rounds):
                wall, vm_ids, cpu = _daemon_parallel(daemon, size.parallel)
                try:
                    queries.append(_queries(daemon, vm_ids[0]))
                finally:
                    with Wire(daemon.host, daemon.port) as wire:
                        wire.ask({"command": "destroy all"})
                raw_wall, raw_cpu = _raw_sequential(scratch, size.parallel)
                parallel.append(
                    {"daemon": wall, "raw": raw_wall, "daemon_cpu": cpu, "raw_cpu": raw_cpu}
                )
    finally:
        try:
            if daemon.process is not None and daemon.process.poll() is None:
                with Wire(daemon.host, daemon.port) as wire:
                    wire.ask({"command": "destroy all"})
        except OSError:
            pass
        daemon.stop()
        left = scratch.cleanup()
        if left:
            result.notes.append(f"cleanup destroyed what a failed step left: {left}")
    result.raw = {"cycles": cycles, "parallel": parallel, "queries": queries}
    _report(result, size, cycles, parallel, queries)
    result.seconds = time.perf_counter() - began
    return result


def _report(
    result: Result,
    size: Size,
    cycles: list[tuple[dict[str, float], dict[str, float]]],
    parallel: list[dict[str, float]],
    queries: list[dict[str, float]],
) -> None:
    n = size.rounds
    steps = Table(
        f"1. One VM's life, daemon vs raw vagrant (median of {n} interleaved rounds)",
        ["step", "through vcm", "raw vagrant", "vcm - raw"],
    )
    for step, raw_step in (
        ("create", "create"),
        ("start", "start"),
        ("stop", "stop"),
        ("destroy", "destroy"),
        ("total", "total"),
        ("vagrant_cpu", "vagrant_cpu"),
    ):
        ours = median([a[step] for a, _ in cycles])
        theirs = median([b[raw_step] for _, b in cycles])
        name = {
            "create": "create (box; raw: nothing)",
            "start": "start (`vagrant up`)",
            "stop": "stop (`vagrant halt`)",
            "destroy": "destroy (`vagrant destroy -f`)",
            "total": "total",
            "vagrant_cpu": "CPU of Vagrant's processes",
        }[step]
        steps.rows.append([name, secs(ours), secs(theirs), f"{(ours - theirs) * 1000:+.0f} ms"])
    result.tables.append(steps)
    ratios = [a["total"] / b["total"] for a, b in cycles]
    result.targets.append(
        Target(
            "1",
            "create+start+stop+destroy, 1 VM: vcm / raw vagrant",
            f"{secs(median([a['total'] for a, _ in cycles]))} vs "
            f"{secs(median([b['total'] for _, b in cycles]))}",
            f"<= {OVERHEAD_TARGET}",
            median(ratios) <= OVERHEAD_TARGET,
            f"{median(ratios):.3f}",
        )
    )

    p_ratios = [item["daemon"] / item["raw"] for item in parallel]
    table = Table(
        f"2. {size.parallel} VMs started at once through vcm vs {size.parallel} sequential raw "
        f"`vagrant up` (median of {n} rounds)",
        ["", "wall", "CPU of Vagrant's processes"],
        [
            [
                "vcm, parallel",
                secs(median([i["daemon"] for i in parallel])),
                secs(median([i["daemon_cpu"] for i in parallel])),
            ],
            [
                "raw, sequential",
                secs(median([i["raw"] for i in parallel])),
                secs(median([i["raw_cpu"] for i in parallel])),
            ],
        ],
    )
    result.tables.append(table)
    result.targets.append(
        Target(
            "2",
            f"{size.parallel} parallel starts through vcm / {size.parallel} sequential "
            "`vagrant up` (wall)",
            f"{secs(median([i['daemon'] for i in parallel]))} vs "
            f"{secs(median([i['raw'] for i in parallel]))}",
            f"<= {PARALLEL_TARGET}",
            median(p_ratios) <= PARALLEL_TARGET,
            f"{median(p_ratios):.3f}",
        )
    )

    q_table = Table(
        f"3. Queries with {size.parallel} VMs running (median of {n} interleaved rounds; "
        "vcm: fresh connection per query)",
        ["query", "vcm", "vagrant", "ratio"],
    )
    for our_query, their_query, what in (
        ("info VM <id>", "vagrant status", "`info VM <id>` vs `vagrant status --machine-readable`"),
        ("info VM all", "vagrant global-status", "`info VM all` vs `vagrant global-status`"),
    ):
        ratio = median([q[our_query] / q[their_query] for q in queries])
        a = median([q[our_query] for q in queries])
        b = median([q[their_query] for q in queries])
        q_table.rows.append([what, ms(a), ms(b), f"{ratio:.5f}"])
        result.targets.append(
            Target(
                "3",
                what,
                f"{ms(a)} vs {ms(b)}",
                f"< {QUERY_TARGET}",
                ratio < QUERY_TARGET,
                f"{ratio:.5f}",
            )
        )
    result.tables.append(q_table)


def leftovers() -> list[str]:
    """Vagrant machines of this benchmark still known to Vagrant (for a final check)."""
    done = subprocess.run(
        ["vagrant", "global-status", "--prune", "--machine-readable"],
        capture_output=True,
        text=True,
        env=VAGRANT_ENV,
        check=False,
        timeout=COMMAND_TIMEOUT,
    )
    return [line for line in done.stdout.splitlines() if "vcm-bench-vagrant-" in line]


def describe(raw: dict[str, Any]) -> str:
    return json.dumps(raw)
