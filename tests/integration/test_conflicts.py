"""Fifty clients sending conflicting commands to one daemon at once, over real sockets.

One daemon process (simulated backend with a small delay, so operations overlap; a small IP pool,
so addresses run out and freed ones are leased again) serves 50 connections at once. Each sends a
seeded random mix of start/stop/halt/shutdown/destroy/info: half of it on the few VMs started last,
so several connections act on the same VM at the same moment, half on any VM ever started. A
sampler reads the state files all the while. The load runs once for this module; each test checks
one guarantee on what it recorded.

The last test races destroys of the vmID a start is about to create, which used to deadlock the
daemon.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.wire import Wire

CONNECTIONS = 50
REQUESTS_PER_CONNECTION = (20, 40)
LOAD_SECONDS = 20.0  # no connection sends a new request after this
SOCKET_TIMEOUT = 20.0
SEED = 20240917
HOT_VMS = 3  # the live VMs started last: where most conflicts happen
KEPT_BOXES = ("vcm/conflicts-a", "vcm/conflicts-b")
DOOMED_BOX = "vcm/conflicts-doomed"  # removed by some client during the load
FIRST_VMS_PER_BOX = 2
LEASABLE_IPS = 28  # the /27 below less network, broadcast and the two host-side addresses
DAEMON_SETTINGS = {
    "VCM_DRIVER": "simulated",
    "VCM_SIMULATED_DELAY": "0.03",
    "VCM_IP_POOL": "10.203.0.0/27",
    "VCM_WORKERS": "64",
    "VCM_MAX_CONNECTIONS": "64",
}
SETTLED_STATES = {"running", "stopped"}
RACE_SECONDS = 3.0  # how long clients destroy the vmID a start is about to create
WEDGE_TIMEOUT = 10.0  # a reply this late means the daemon is wedged

Json = dict[str, Any]

# The errors a client may legitimately get while others act on the same VMs and boxes:
# VM_NOT_FOUND: another client destroyed that VM first; BOX_NOT_FOUND: the doomed box is being
# removed or is gone; IP_POOL_EXHAUSTED: the small pool is full. Nothing else is explained by the
# race: VAGRANT_ERROR here would mean the backend was told to act on a machine in a state its
# record did not allow (two commands on one VM at once), and INTERNAL is never acceptable.
_VM_GONE = frozenset({"VM_NOT_FOUND"})
ALLOWED_ERRORS: dict[str, frozenset[str]] = {
    "start box": frozenset({"BOX_NOT_FOUND", "IP_POOL_EXHAUSTED"}),
    "start vm": _VM_GONE,
    "stop": _VM_GONE,
    "destroy vm": _VM_GONE,
    "info vm": _VM_GONE,
    "destroy box": frozenset({"BOX_NOT_FOUND"}),
    "info all": frozenset(),
    "stop all": frozenset(),
}
WEIGHTS = {
    "start box": 15,
    "start vm": 16,
    "stop": 22,
    "destroy vm": 15,
    "info vm": 14,
    "info all": 14,
    "destroy box": 3,
    "stop all": 1,
}


@dataclass(frozen=True)
class Exchange:
    kind: str
    request: Json
    reply: Json


@dataclass(frozen=True)
class LoadRecord:
    exchanges: list[Exchange]
    vm_ids_started: list[str]  # every vmID a start from a box returned, set-up included
    samples: int
    sample_problems: list[str]
    final_vms: list[Json]  # `info VM all` once every client is done
    final_records: Json  # state.json then
    final_machines: dict[str, str]  # the simulated backend's own machines file then
    seconds: float


class KnownVms:
    """What the clients have learnt so far, shared between their threads."""

    def __init__(self, box_ids: list[str], doomed_box_id: str) -> None:
        self.box_ids = box_ids
        self.doomed_box_id = doomed_box_id
        self._lock = threading.Lock()
        self._started: list[str] = []
        self._destroyed: set[str] = set()

    def started(self, vm_id: str) -> None:
        with self._lock:
            self._started.append(vm_id)

    def destroyed(self, vm_id: str) -> None:
        with self._lock:
            self._destroyed.add(vm_id)

    def all_started(self) -> list[str]:
        with self._lock:
            return list(self._started)

    def pick(self, rng: random.Random) -> str:
        """One of the last live VMs half the time (conflicts), else any VM ever started."""
        with self._lock:
            live = [vm_id for vm_id in self._started if vm_id not in self._destroyed]
            if live and rng.random() < 0.5:
                return rng.choice(live[-HOT_VMS:])
            return rng.choice(self._started)


def next_request(rng: random.Random, known: KnownVms) -> tuple[str, Json]:
    [kind] = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))
    if kind == "start box":
        return kind, {"command": "start", "boxID": rng.choice(known.box_ids)}
    if kind == "start vm":
        return kind, {"command": "start", "vmID": known.pick(rng)}
    if kind == "stop":
        return kind, {"command": rng.choice(["stop", "halt", "shutdown"]), "vmID": known.pick(rng)}
    if kind == "destroy vm":
        return kind, {"command": "destroy", "vmID": known.pick(rng)}
    if kind == "info vm":
        return kind, {"command": "info", "subcommand": f"VM {known.pick(rng)}"}
    if kind == "info all":
        return kind, {"command": "info", "subcommand": "VM all"}
    if kind == "destroy box":
        return kind, {"command": "destroy", "boxID": known.doomed_box_id}
    return kind, {"command": "stop all"}


def run_client(
    number: int, daemon: DaemonProcess, known: KnownVms, deadline: float
) -> list[Exchange]:
    rng = random.Random(SEED + number)
    exchanges: list[Exchange] = []
    with Wire(daemon.host, daemon.port, timeout=SOCKET_TIMEOUT) as wire:
        for index in range(rng.randint(*REQUESTS_PER_CONNECTION)):
            if time.monotonic() > deadline:
                break
            kind, request = next_request(rng, known)
            request["id"] = f"{number}-{index}"
            reply = wire.ask(request)
            if reply.get("error") is False and kind == "start box":
                known.started(reply["vmID"])
            if reply.get("error") is False and kind == "destroy vm":
                known.destroyed(reply["vmID"])
            exchanges.append(Exchange(kind, request, reply))
    return exchanges


class StateSampler:
    """Reads state.json and the backend's machines file over and over until stopped."""

    def __init__(self, state_dir: Path) -> None:
        self._state_file = state_dir / "state.json"
        self._machines_file = state_dir / "simulated-machines.json"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-sampler")
        self.samples = 0
        self.problems: list[str] = []

    def __enter__(self) -> StateSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            try:
                self.problems.extend(duplicates_in(read_json(self._state_file)["vms"]))
                read_json(self._machines_file)["machines"]
            except (OSError, ValueError, KeyError, TypeError) as error:
                self.problems.append(f"sample {self.samples}: {error!r}")
            self.samples += 1


def read_json(path: Path) -> Json:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"{path.name} holds {type(document).__name__}, not an object")
    return document


def duplicates_in(vms: list[Json]) -> list[str]:
    """vmIDs listed twice and IPs leased to two VMs at once."""
    vm_ids = Counter(vm["vmID"] for vm in vms)
    ips = Counter(vm["IP"] for vm in vms if vm["IP"] is not None)
    return [f"vmID {vm_id} listed {n} times" for vm_id, n in vm_ids.items() if n > 1] + [
        f"IP {ip} leased {n} times" for ip, n in ips.items() if n > 1
    ]


def set_up_boxes_and_vms(wire: Wire) -> KnownVms:
    box_ids = [wire.ask({"command": "create", "box": box})["boxID"] for box in KEPT_BOXES]
    doomed = wire.ask({"command": "create", "box": DOOMED_BOX})["boxID"]
    known = KnownVms([*box_ids, doomed], doomed)
    for box_id in [*box_ids, doomed]:
        for _ in range(FIRST_VMS_PER_BOX):
            vm = wire.ask({"command": "start", "boxID": box_id})
            assert vm["error"] is False, vm
            known.started(vm["vmID"])
    return known


def run_load(daemon: DaemonProcess, known: KnownVms) -> list[Exchange]:
    deadline = time.monotonic() + LOAD_SECONDS
    with ThreadPoolExecutor(max_workers=CONNECTIONS, thread_name_prefix="client") as clients:
        futures = [
            clients.submit(run_client, number, daemon, known, deadline)
            for number in range(CONNECTIONS)
        ]
        results = [future.result(timeout=LOAD_SECONDS + 2 * SOCKET_TIMEOUT) for future in futures]
    return [exchange for result in results for exchange in result]


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadRecord]:
    state_dir = tmp_path_factory.mktemp("conflicts")
    daemon = DaemonProcess(state_dir, **DAEMON_SETTINGS).start()
    try:
        daemon.wait_for_log("reconciled state with the backend", timeout=30)
        with Wire(daemon.host, daemon.port, timeout=SOCKET_TIMEOUT) as wire:
            known = set_up_boxes_and_vms(wire)
            began = time.monotonic()
            with StateSampler(state_dir) as sampler:
                exchanges = run_load(daemon, known)
            seconds = time.monotonic() - began
            final_vms = wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
        yield LoadRecord(
            exchanges=exchanges,
            vm_ids_started=known.all_started(),
            samples=sampler.samples,
            sample_problems=sampler.problems,
            final_vms=final_vms,
            final_records=read_json(state_dir / "state.json"),
            final_machines=read_json(state_dir / "simulated-machines.json")["machines"],
            seconds=seconds,
        )
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill()


def unexpected(exchange: Exchange) -> str | None:
    """Why this reply breaks the protocol under conflicts, or None if it is fine."""
    request, reply = exchange.request, exchange.reply
    if not isinstance(reply.get("error"), bool) or reply.get("id") != request["id"]:
        return "no boolean error or wrong id"
    if reply["error"]:
        allowed = ALLOWED_ERRORS[exchange.kind]
        return None if reply.get("code") in allowed else f"code not in {sorted(allowed)}"
    if exchange.kind in ("start box", "start vm") and reply["state"] != "running":
        return "a successful start that is not running"
    if exchange.kind == "stop" and reply["state"] != "stopped":
        return "a successful stop that is not stopped"
    return None


def test_every_reply_echoes_its_id_and_is_a_success_or_an_error_the_race_explains(
    load: LoadRecord,
) -> None:
    wrong = [
        f"{why}: {exchange.request} -> {exchange.reply}"
        for exchange in load.exchanges
        if (why := unexpected(exchange)) is not None
    ]
    assert wrong == [], f"{len(wrong)} bad replies, e.g.:\n" + "\n".join(wrong[:10])


def test_the_load_really_conflicted(load: LoadRecord) -> None:
    """Guards the other tests against passing on a load that did not do what it says."""
    outcomes = Counter(
        (exchange.kind, exchange.reply.get("code", "ok")) for exchange in load.exchanges
    )
    assert len(load.exchanges) >= CONNECTIONS * REQUESTS_PER_CONNECTION[0] // 2, load.seconds
    for kind in ("start box", "start vm", "stop", "destroy vm", "destroy box"):
        assert outcomes[kind, "ok"] > 0, (kind, outcomes)
    assert outcomes["stop", "VM_NOT_FOUND"] > 0, outcomes  # a VM destroyed under another client
    assert outcomes["start box", "IP_POOL_EXHAUSTED"] > 0, outcomes  # the pool ran out ...
    assert len(load.vm_ids_started) > LEASABLE_IPS, outcomes  # ... and freed IPs were reused
    assert outcomes["start box", "BOX_NOT_FOUND"] > 0, outcomes  # starts on the removed box


def test_the_state_file_always_parses_and_never_holds_a_vm_or_an_ip_twice(
    load: LoadRecord,
) -> None:
    assert load.samples >= 50, load.samples
    assert load.sample_problems == []


def test_vm_ids_are_never_reused_and_no_ip_is_ever_leased_twice(load: LoadRecord) -> None:
    repeated = [vm_id for vm_id, n in Counter(load.vm_ids_started).items() if n > 1]
    assert repeated == []
    listings = [
        exchange.reply["VMS"]
        for exchange in load.exchanges
        if exchange.kind == "info all" and exchange.reply["error"] is False
    ]
    assert listings, "no `info VM all` succeeded during the load"
    for vms in [*listings, load.final_vms]:
        assert duplicates_in(vms) == []


def test_once_quiet_every_vm_is_running_or_stopped_and_the_state_file_agrees(
    load: LoadRecord,
) -> None:
    assert load.final_vms, "every VM was destroyed: nothing left to check"
    assert {vm["state"] for vm in load.final_vms} <= SETTLED_STATES, load.final_vms
    recorded = {vm["vmID"]: (vm["IP"], vm["state"]) for vm in load.final_records["vms"]}
    assert recorded == {vm["vmID"]: (vm["IP"], vm["state"]) for vm in load.final_vms}


def test_commands_on_one_vm_ran_one_after_another(load: LoadRecord) -> None:
    """Once quiet, the backend holds exactly the recorded VMs, each in its recorded state.

    The simulated backend keeps its machines in its own file, apart from vcm's records. Were
    commands on one VM not serialized (take the per-VM lock out of VcmService), a stop or start
    arriving while a destroy of the same VM sleeps would write the machine back after the destroy
    removed it, leaving a machine with no record; a stop and a start finishing together could
    leave the record `stopped` and the machine running; and a halt of a machine a destroy had
    just removed would fail with VAGRANT_ERROR, which the reply test does not allow.
    """
    machines = load.final_machines
    recorded = {vm["vmID"]: vm["state"] for vm in load.final_vms}
    assert sorted(machines.keys() - recorded.keys()) == [], "machines with no record"
    assert sorted(recorded.keys() - machines.keys()) == [], "records with no machine"
    differing = {
        vm_id: (machines[vm_id], state)
        for vm_id, state in recorded.items()
        if machines[vm_id] != state
    }
    assert differing == {}, "(machine, record) states that differ"


class NextVmId:
    """The vmID the next start from the box will get, as far as the clients can tell."""

    def __init__(self, box_id: str) -> None:
        self.box_id = box_id
        self.last_number = 0

    def started(self, vm_id: str) -> None:
        self.last_number = max(self.last_number, int(vm_id.rsplit("_", 1)[1]))

    def guess(self) -> str:
        return f"{self.box_id}_{self.last_number + 1}"


def keep_starting(daemon: DaemonProcess, next_vm: NextVmId, until: float) -> int:
    starts = 0
    with Wire(daemon.host, daemon.port, timeout=WEDGE_TIMEOUT) as wire:
        while time.monotonic() < until:
            vm = wire.ask({"command": "start", "boxID": next_vm.box_id})
            assert vm["error"] is False, vm
            next_vm.started(vm["vmID"])
            gone = wire.ask({"command": "destroy", "vmID": vm["vmID"]})  # or a destroyer did
            assert gone["error"] is False or gone["code"] == "VM_NOT_FOUND", gone
            starts += 1
    return starts


def keep_destroying_the_next_vm(daemon: DaemonProcess, next_vm: NextVmId, until: float) -> None:
    with Wire(daemon.host, daemon.port, timeout=WEDGE_TIMEOUT) as wire:
        while time.monotonic() < until:
            reply = wire.ask({"command": "destroy", "vmID": next_vm.guess()})
            assert reply["error"] is False or reply["code"] == "VM_NOT_FOUND", reply


def keep_the_state_file_busy(daemon: DaemonProcess, vm_id: str, until: float) -> None:
    """Stop and start another VM, so that starts often wait for the registry lock."""
    with Wire(daemon.host, daemon.port, timeout=WEDGE_TIMEOUT) as wire:
        while time.monotonic() < until:
            for command in ("stop", "start"):
                assert wire.ask({"command": command, "vmID": vm_id})["error"] is False


def test_destroying_the_vm_a_start_is_creating_never_wedges_the_daemon(tmp_path: Path) -> None:
    """vmIDs are predictable, so a client may destroy one before its start has recorded it.

    start_vm takes the new VM's lock while holding the registry lock; a destroy that already held
    that VM's lock and then waited for the registry lock used to deadlock both, and with them
    every later state change of the daemon: the replies stopped and the sockets timed out.
    """
    daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated").start()
    try:
        with Wire(daemon.host, daemon.port, timeout=WEDGE_TIMEOUT) as wire:
            next_vm = NextVmId(wire.ask({"command": "create", "box": KEPT_BOXES[0]})["boxID"])
            other = wire.ask({"command": "create", "box": KEPT_BOXES[1]})["boxID"]
            other_vm = wire.ask({"command": "start", "boxID": other})["vmID"]
            until = time.monotonic() + RACE_SECONDS
            with ThreadPoolExecutor(max_workers=5) as clients:
                others = [
                    clients.submit(keep_destroying_the_next_vm, daemon, next_vm, until)
                    for _ in range(3)
                ]
                others.append(clients.submit(keep_the_state_file_busy, daemon, other_vm, until))
                starts = clients.submit(keep_starting, daemon, next_vm, until).result()
                for other_client in others:
                    other_client.result()
            assert starts > 10, starts
            assert wire.ask({"command": "start", "boxID": next_vm.box_id})["error"] is False
        assert daemon.stop(timeout=30) == 0
    finally:
        daemon.kill()
