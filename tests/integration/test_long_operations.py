"""Progress lines, background operations and the event stream, in-process over the simulated
backend: the socket server on an ephemeral loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.wire import Wire
from vcm.adapters.events import EventHub
from vcm.adapters.json_store import JsonStateStore
from vcm.adapters.operations import OperationManager
from vcm.adapters.protocol import RequestHandler
from vcm.adapters.simulated import SimulatedVagrant
from vcm.adapters.socket_server import ServerThread, SocketServer
from vcm.domain.allocation import IpPool
from vcm.domain.errors import StateError
from vcm.domain.events import Event
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService

SEED_CREATE = (
    '{\n\t"command": "create",\n\t"box": "ubuntu/trusty64",\n\t"files": [],\n\t'
    '"puppet": [],\n\t"shell": [],\n\t"network": "private",\n\t"hostname": "dynamic"\n}'
)
SEED_START = '{\n\t"command": "start",\n\t"boxID": "ubuntu_trusty64_1"\n}'
SEED_INFO = '{\n\t"command": "info",\n\t"subcommand": "VM all"\n}'
SEED_STOP = '{\n\t"command": "stop",\n\t"vmID": "ubuntu_trusty64_1_1"\n}'
SEED_DESTROY = '{"command": "destroy", "vmID": "ubuntu_trusty64_1_1"}'
VM = (
    '"vmID": "ubuntu_trusty64_1_1", "boxID": "ubuntu_trusty64_1", "box": "ubuntu/trusty64", '
    '"IP": "192.168.33.2", "hostname": "ubuntu-trusty64-1-1.example.com"'
)
# What a seed client received before progress, operations and events existed, byte for byte.
SEED_REPLIES = (
    b'{"error": false, "boxID": "ubuntu_trusty64_1", '
    b'"message": "created box ubuntu_trusty64_1 from ubuntu/trusty64"}\n'
    + f'{{"error": false, {VM}, "state": "running", '
    '"message": "started VM ubuntu_trusty64_1_1 successfully"}\n'.encode()
    + f'{{"error": false, "VMS": [{{{VM}, "state": "running"}}], '
    '"message": "listed information on 1 active VM"}\n'.encode()
    + b'{"error": false, "vmID": "ubuntu_trusty64_1_1", "boxID": "ubuntu_trusty64_1", '
    b'"state": "stopped", "message": "shutdown VM ubuntu_trusty64_1_1 successfully"}\n'
    b'{"error": false, "vmID": "ubuntu_trusty64_1_1", "boxID": "ubuntu_trusty64_1", '
    b'"message": "destroyed VM ubuntu_trusty64_1_1 successfully"}\n'
)


class Daemon:
    def __init__(self, tmp_path: Path, *, delay: float = 0.0, buffer: int = 1000) -> None:
        self.hub = EventHub(buffer=buffer)
        self.operations = OperationManager(
            path=tmp_path / "operations.json", events=self.hub, workers=8
        )
        self.backend = SimulatedVagrant(delay=delay)
        service = VcmService(
            registry=Registry(JsonStateStore(tmp_path / "state.json"), events=self.hub),
            vagrant=self.backend,
            host_files=_NoFiles(),
            pool=IpPool.with_host_sides(IPv4Network("192.168.33.0/24")),
            domain="example.com",
        )
        self.thread = ServerThread(
            SocketServer(
                RequestHandler(service, operations=self.operations),
                host="127.0.0.1",
                port=0,
                max_request_bytes=65536,
                workers=8,
                events=self.hub,
            ),
            grace=10,
        )
        self.thread.start()

    def wire(self, timeout: float = 20) -> Wire:
        host, port = self.thread.address
        return Wire(host, port, timeout=timeout)

    def watch(self, **where: str) -> Wire:
        wire = self.wire()
        reply = wire.ask({"command": "watch", **where})
        assert reply["error"] is False, reply
        return wire


class _NoFiles:
    def check(self, path: str) -> None:
        raise AssertionError("no host files in these tests")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path, delay=0.4)
    yield running
    running.thread.stop()


@pytest.fixture
def slow_daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path, delay=3)
    yield running
    running.thread.stop()


def read_until_final(wire: Wire) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    interim = []
    while "error" not in (line := wire.reply()):
        interim.append(line)
    return interim, line


def events(wire: Wire, count: int) -> list[dict[str, Any]]:
    return [wire.reply() for _ in range(count)]


def raw_bytes(wire: Wire, lines: int) -> bytes:
    data = b""
    while data.count(b"\n") < lines:
        chunk = wire.sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


class TestSeedClients:
    def test_see_the_same_bytes_while_others_follow_progress_operations_and_events(
        self, tmp_path: Path
    ) -> None:
        running = Daemon(tmp_path)
        try:
            watcher = running.watch()
            with running.wire() as seed, running.wire() as other:
                for request in (SEED_CREATE, SEED_START, SEED_INFO, SEED_STOP, SEED_DESTROY):
                    seed.send(request)
                    other.send({"command": "operation", "subcommand": "all"})
                    assert other.reply()["error"] is False
                assert raw_bytes(seed, 5) == SEED_REPLIES
                seed.sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    seed.sock.recv(1)
            kinds = [event["event"] for event in events(watcher, 7)]
            assert kinds == [
                "box-created",
                "vm-starting",
                "vm-running",
                "vm-stopping",
                "vm-stopped",
                "vm-destroying",
                "vm-destroyed",
            ]
            watcher.close()
        finally:
            running.thread.stop()


class TestProgress:
    def test_a_start_that_asks_gets_its_lines_with_phases_before_the_reply(
        self, daemon: Daemon
    ) -> None:
        with daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            wire.send({"command": "start", "boxID": box_id, "progress": True, "id": 7})
            interim, final = read_until_final(wire)
        vm_id = final["vmID"]
        assert final["state"] == "running"
        assert [(line["id"], line["event"], line["vmID"]) for line in interim] == [
            (7, "progress", vm_id)
        ] * 4
        assert [(line["phase"], line["line"]) for line in interim] == [
            ("importing", "importing base box"),
            ("booting", "booting"),
            ("configuring", "setting hostname"),
            ("provisioning", "provisioning"),
        ]

    def test_only_the_request_that_asked_gets_lines(self, daemon: Daemon) -> None:
        with daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            wire.send({"command": "start", "boxID": box_id, "id": 1})
            wire.send({"command": "start", "boxID": box_id, "id": 2, "progress": True})
            wire.send({"command": "info", "subcommand": "VM all", "id": 3, "progress": True})
            first = wire.reply()
            assert (first["id"], first["error"]) == (1, False)
            interim, second = read_until_final(wire)
            assert second["id"] == 2
            assert len(interim) == 4
            assert all(line["id"] == 2 and "error" not in line for line in interim)
            assert wire.reply()["id"] == 3

    def test_a_non_boolean_progress_is_refused(self, daemon: Daemon) -> None:
        with daemon.wire() as wire:
            reply = wire.ask({"command": "create", "box": "a/b", "progress": "yes"})
            assert reply["code"] == "INVALID_REQUEST"
            assert "'progress'" in reply["message"]
            assert wire.ask({"command": "info", "subcommand": "box all"})["boxes"] == []


class TestOperations:
    def test_an_async_start_is_answered_at_once_then_polled_and_waited_on(
        self, slow_daemon: Daemon
    ) -> None:
        with slow_daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            began = time.monotonic()
            accepted = wire.ask({"command": "start", "boxID": box_id, "async": True, "id": "x"})
            assert time.monotonic() - began < 1.5  # the start itself takes 3 s
            assert accepted["id"] == "x"
            assert accepted["error"] is False
            assert (accepted["state"], accepted["command"], accepted["finished"]) == (
                "running",
                "start",
                None,
            )
            op_id = accepted["operationID"]
            polled = wire.ask({"command": "operation", "operationID": op_id})
            assert polled["state"] == "running"
            assert polled["cancellable"] is True
            done = wire.ask({"command": "operation", "operationID": op_id, "wait": 10})
        assert done["state"] == "succeeded"
        assert done["finished"] >= done["created"]
        assert done["reply"]["error"] is False
        assert done["reply"]["state"] == "running"
        assert "id" not in done["reply"]
        assert done["vmID"] == done["reply"]["vmID"] == f"{box_id}_1"
        assert done["output"] == [
            "importing base box",
            "booting",
            "setting hostname",
            "provisioning",
        ]
        assert done["cancellable"] is False

    def test_the_lifecycle_commands_run_as_operations_too(self, daemon: Daemon) -> None:
        with daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            vm_id = wire.ask({"command": "start", "boxID": box_id})["vmID"]
            for command, state in (("suspend", "suspended"), ("resume", "running")):
                accepted = wire.ask({"command": command, "vmID": vm_id, "async": True})
                assert (accepted["error"], accepted["cancellable"]) == (False, False), accepted
                done = wire.ask(
                    {"command": "operation", "operationID": accepted["operationID"], "wait": 10}
                )
                assert done["state"] == "succeeded", done
                assert done["reply"]["state"] == state
            refused = wire.ask({"command": "exec", "vmID": vm_id, "argv": ["true"], "async": True})
            assert refused["code"] == "INVALID_REQUEST"
            assert "not 'exec'" in refused["message"]
            unknown = wire.ask({"command": "reload", "vmID": vm_id, "async": True, "x": 1})
            assert unknown["code"] == "INVALID_REQUEST"
            listed = wire.ask({"command": "operation", "subcommand": "all"})["operations"]
            assert [op["command"] for op in listed] == ["suspend", "resume"]

    def test_waiting_blocks_neither_the_daemon_nor_other_clients(self, slow_daemon: Daemon) -> None:
        daemon = slow_daemon
        with daemon.wire() as waiter, daemon.wire() as other:
            box_id = other.ask({"command": "create", "box": "a/b"})["boxID"]
            op_id = other.ask({"command": "start", "boxID": box_id, "async": True})["operationID"]
            waiters = [daemon.wire() for _ in range(20)]
            for wire in waiters:
                wire.send({"command": "operation", "operationID": op_id, "wait": 30})
            waiter.send({"command": "operation", "operationID": op_id, "wait": 0.2})
            began = time.monotonic()
            assert other.ask({"command": "info", "subcommand": "VM all"})["error"] is False
            assert time.monotonic() - began < 1
            assert waiter.reply()["state"] == "running"
            assert {wire.reply()["state"] for wire in waiters} == {"succeeded"}
            for wire in waiters:
                wire.close()

    def test_cancel_stops_a_start_and_leaves_no_vm_behind(self, slow_daemon: Daemon) -> None:
        daemon = slow_daemon
        with daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            op_id = wire.ask({"command": "start", "boxID": box_id, "async": True})["operationID"]
            time.sleep(0.15)
            cancelling = wire.ask({"command": "operation", "operationID": op_id, "cancel": True})
            assert "cancelled" in cancelling["message"] or cancelling["state"] == "cancelled"
            done = wire.ask({"command": "operation", "operationID": op_id, "wait": 10})
            assert done["state"] == "cancelled"
            assert done["reply"]["code"] == "CANCELLED"
            assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
            assert daemon.backend.machines() == []
            again = wire.ask({"command": "start", "boxID": box_id})
            assert again["IP"] == "192.168.33.2"

    def test_cancel_is_refused_where_it_cannot_be_done(self, daemon: Daemon) -> None:
        with daemon.wire() as wire:
            box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
            vm_id = wire.ask({"command": "start", "boxID": box_id})["vmID"]
            op_id = wire.ask({"command": "destroy", "vmID": vm_id, "async": True})["operationID"]
            refused = wire.ask({"command": "operation", "operationID": op_id, "cancel": True})
            assert refused["code"] == "INVALID_REQUEST"
            assert "cannot be cancelled" in refused["message"]
            done = wire.ask({"command": "operation", "operationID": op_id, "wait": 10})
            assert done["state"] == "succeeded"
            late = wire.ask({"command": "operation", "operationID": op_id, "cancel": True})
            assert late["code"] == "INVALID_REQUEST"
            assert "already ended" in late["message"]

    def test_a_failed_operation_keeps_the_error_reply(self, daemon: Daemon) -> None:
        with daemon.wire() as wire:
            op = wire.ask({"command": "stop", "vmID": "nope_1_1", "async": True})
            done = wire.ask({"command": "operation", "operationID": op["operationID"], "wait": 5})
        assert done["state"] == "failed"
        assert done["reply"]["code"] == "VM_NOT_FOUND"

    @pytest.mark.parametrize(
        ("request_", "code"),
        [
            ({"command": "operation", "operationID": "op-99"}, "OPERATION_NOT_FOUND"),
            ({"command": "operation", "operationID": "op-1", "wait": -1}, "INVALID_REQUEST"),
            ({"command": "operation", "operationID": "op-1", "wait": 7200}, "INVALID_REQUEST"),
            ({"command": "operation", "operationID": "op-1", "wait": "5"}, "INVALID_REQUEST"),
            ({"command": "operation", "operationID": 1}, "INVALID_REQUEST"),
            ({"command": "operation"}, "INVALID_REQUEST"),
            ({"command": "info", "subcommand": "VM all", "async": True}, "INVALID_REQUEST"),
            ({"command": "start", "boxID": "a_1", "async": 1}, "INVALID_REQUEST"),
            ({"command": "start", "boxID": 5, "async": True}, "INVALID_REQUEST"),
            ({"command": "start", "async": True}, "INVALID_REQUEST"),
            ({"command": "create", "box": "a b", "async": True}, "INVALID_REQUEST"),
            (
                {"command": "start", "boxID": "a_1", "async": True, "progress": True},
                "INVALID_REQUEST",
            ),
            ({"command": "watch", "vmID": 3}, "INVALID_REQUEST"),
            ({"command": "watch", "what": "x"}, "INVALID_REQUEST"),
        ],
    )
    def test_bad_requests_get_an_error_and_record_nothing(
        self, daemon: Daemon, request_: dict[str, Any], code: str
    ) -> None:
        with daemon.wire() as wire:
            reply = wire.ask(request_)
            assert (reply["error"], reply["code"]) == (True, code), reply
            listed = wire.ask({"command": "operation", "subcommand": "all"})
            assert listed["operations"] == []
            assert wire.ask({"command": "info", "subcommand": "box all"})["error"] is False


class TestOperationRecords:
    def test_survive_a_restart_and_an_interrupted_one_says_so(self, tmp_path: Path) -> None:
        path = tmp_path / "operations.json"
        first = OperationManager(path=path, workers=2)
        release = threading.Event()
        done = first.submit("destroy", "a_1_1", lambda _: {"error": False}, cancellable=False)
        running = first.submit(
            "start", "a_1", lambda _: {"error": False} if release.wait(10) else {}, cancellable=True
        )
        time.sleep(0.2)
        second = OperationManager(path=path)
        assert second.describe(done["operationID"])["state"] == "succeeded"
        interrupted = second.describe(running["operationID"])
        assert interrupted["state"] == "interrupted"
        assert interrupted["finished"] is not None
        assert interrupted["reply"]["error"] is True
        assert (
            second.submit("start", "b", lambda _: {"error": False}, cancellable=True)["operationID"]
            == "op-3"
        )
        release.set()

    def test_an_unreadable_history_stops_the_daemon_with_a_clear_error(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "operations.json").write_text('{"schema": 1, "counter": "x"')
        with pytest.raises(StateError, match=r"operations file .* is not valid"):
            OperationManager(path=tmp_path / "operations.json")
        daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated")
        with pytest.raises(RuntimeError, match="operations file"):
            daemon.start(timeout=15)

    def test_history_is_bounded_and_keeps_the_newest(self, tmp_path: Path) -> None:
        manager = OperationManager(path=tmp_path / "ops.json", history=5)
        for n in range(12):
            manager.submit("stop", f"v{n}", lambda _: {"error": False}, cancellable=False)
            assert manager.wait_idle(5) == 0
        kept = [record["operationID"] for record in manager.all()]
        assert kept == [f"op-{n}" for n in range(8, 13)]
        reloaded = OperationManager(path=tmp_path / "ops.json", history=5)
        assert [record["operationID"] for record in reloaded.all()] == kept


class TestWatch:
    def test_many_watchers_see_every_event_in_the_same_order(self, daemon: Daemon) -> None:
        watchers = [daemon.watch() for _ in range(40)]
        with daemon.wire() as client:
            box_id = client.ask({"command": "create", "box": "a/b"})["boxID"]
            op_id = client.ask({"command": "start", "boxID": box_id, "async": True})["operationID"]
            client.ask({"command": "operation", "operationID": op_id, "wait": 10})
            vm_id = f"{box_id}_1"
            client.ask({"command": "destroy", "boxID": box_id})
        expected = [
            ("box-created", None),
            ("vm-starting", vm_id),
            ("vm-running", vm_id),
            ("operation-finished", vm_id),
            ("vm-destroying", vm_id),
            ("vm-destroyed", vm_id),
            ("box-removed", None),
        ]
        seen = [events(wire, len(expected)) for wire in watchers]
        for stream in seen:
            assert [(e["event"], e.get("vmID")) for e in stream] == expected
            assert [e["seq"] for e in stream] == sorted(e["seq"] for e in stream)
            assert all(e["boxID"] == box_id and "error" not in e for e in stream)
        assert seen[0][3]["operationID"] == op_id
        assert seen[0][3]["state"] == "succeeded"
        assert seen[0][2]["IP"] == "192.168.33.2"
        for wire in watchers:
            wire.close()
        deadline = time.monotonic() + 5
        while daemon.hub.watchers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.hub.watchers == 0

    def test_filters_by_box_and_by_vm(self, daemon: Daemon) -> None:
        with daemon.wire() as client:
            first = client.ask({"command": "create", "box": "a/b"})["boxID"]
            second = client.ask({"command": "create", "box": "c/d"})["boxID"]
            by_box = daemon.watch(boxID=second)
            by_vm = daemon.watch(vmID=f"{first}_2")
            for box_id in (first, first, second):
                client.ask({"command": "start", "boxID": box_id})
        assert [(e["event"], e["vmID"]) for e in events(by_box, 2)] == [
            ("vm-starting", f"{second}_1"),
            ("vm-running", f"{second}_1"),
        ]
        assert [(e["event"], e["vmID"]) for e in events(by_vm, 2)] == [
            ("vm-starting", f"{first}_2"),
            ("vm-running", f"{first}_2"),
        ]
        for wire in (by_box, by_vm):
            wire.sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                wire.reply()
            wire.close()

    def test_a_slow_watcher_is_dropped_with_a_notice_and_blocks_nobody(
        self, tmp_path: Path
    ) -> None:
        running = Daemon(tmp_path, buffer=50)
        try:
            host, port = running.thread.address
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect((host, port))
            slow_wire = Wire.__new__(Wire)
            slow_wire.sock, slow_wire._pending = slow, b""
            slow_wire.sock.settimeout(20)
            assert slow_wire.ask({"command": "watch"})["error"] is False
            fast = running.watch()
            received: list[dict[str, Any]] = []
            reader = threading.Thread(target=lambda: received.extend(events(fast, 3000)))
            reader.start()
            padding = "x" * 200
            with running.wire() as client:
                for n in range(3000):
                    running.hub.publish(Event("test", extra=(("n", n), ("pad", padding))))
                    if n % 500 == 0:
                        began = time.monotonic()
                        assert client.ask({"command": "info", "subcommand": "VM all"})
                        assert time.monotonic() - began < 1
                    if n % 10 == 0:
                        time.sleep(0.005)
            reader.join(30)
            assert [e["n"] for e in received] == list(range(3000))
            lines = []
            while (line := slow_wire.reply())["event"] == "test":
                lines.append(line["n"])
            assert line["event"] == "dropped"
            assert line["missed"] > 0
            assert "fell more than 50 events behind" in line["message"]
            assert lines == list(range(len(lines)))
            assert slow.recv(1) == b""
            slow.close()
            fast.close()
        finally:
            running.thread.stop()


class TestTheDaemonProcess:
    """The daemon itself (VCM_DRIVER=simulated): restarts, and watchers of real requests."""

    def test_an_operation_interrupted_by_a_killed_daemon_is_reported_so(
        self, tmp_path: Path
    ) -> None:
        daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated", VCM_SIMULATED_DELAY="30")
        daemon.start()
        try:
            with Wire(daemon.host, daemon.port) as wire:
                box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
                running = wire.ask({"command": "start", "boxID": box_id, "async": True})
                assert running["state"] == "running"
            daemon.kill()
            daemon.start()
            daemon.wait_for_log("reconciled state with the backend")
            with Wire(daemon.host, daemon.port) as wire:
                after = wire.ask({"command": "operation", "operationID": running["operationID"]})
                assert after["state"] == "interrupted"
                assert after["reply"]["code"] == "INTERNAL"
                assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
                again = wire.ask({"command": "destroy", "boxID": box_id, "async": True})
                assert again["operationID"] != running["operationID"]
        finally:
            daemon.kill()

    def test_a_stopping_daemon_lets_a_background_operation_finish(self, tmp_path: Path) -> None:
        daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated", VCM_SIMULATED_DELAY="1")
        daemon.start()
        try:
            with Wire(daemon.host, daemon.port) as wire:
                box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
                op_id = wire.ask({"command": "start", "boxID": box_id, "async": True})[
                    "operationID"
                ]
            assert daemon.stop() == 0
            daemon.start()
            with Wire(daemon.host, daemon.port) as wire:
                done = wire.ask({"command": "operation", "operationID": op_id})
                assert done["state"] == "succeeded"
                [vm] = wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
                assert vm["state"] == "running"
        finally:
            daemon.kill()

    def test_a_slow_watcher_of_real_requests_is_dropped_and_others_see_all(
        self, tmp_path: Path
    ) -> None:
        daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated", VCM_WATCH_BUFFER="5")
        daemon.start()
        try:
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect((daemon.host, daemon.port))
            slow.sendall(b'{"command": "watch"}')
            watchers = [Wire(daemon.host, daemon.port) for _ in range(10)]
            for wire in watchers:
                assert wire.ask({"command": "watch"})["error"] is False
            got: dict[int, list[int]] = {n: [] for n in range(len(watchers))}

            def drain(n: int) -> None:
                while len(got[n]) < 600:
                    got[n].append(watchers[n].reply()["seq"])

            readers = [threading.Thread(target=drain, args=(n,)) for n in range(len(watchers))]
            for reader in readers:
                reader.start()
            name = "o/" + "x" * 190
            with Wire(daemon.host, daemon.port) as client:
                for _ in range(6):
                    client.send("".join(f'{{"command": "create", "box": "{name}"}}' * 100))
                    began = time.monotonic()
                    replies = [client.reply() for _ in range(100)]
                    assert all(reply["error"] is False for reply in replies)
                    assert time.monotonic() - began < 20
            for reader in readers:
                reader.join(30)
            assert all(seqs == list(range(1, 601)) for seqs in got.values())
            slow.settimeout(20)
            data = b""
            while chunk := slow.recv(65536):
                data += chunk
            lines = [json.loads(line) for line in data.splitlines()]
            assert lines[0]["error"] is False
            assert lines[-1]["event"] == "dropped"
            assert 1 < len(lines) < 600
            for wire in watchers:
                wire.close()
        finally:
            daemon.kill()
