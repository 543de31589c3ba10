"""The socket server in-process on an ephemeral loopback port, over the simulated backend."""

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

from tests.support.wire import Wire
from vcm.adapters.json_store import JsonStateStore
from vcm.adapters.protocol import RequestHandler
from vcm.adapters.simulated import SimulatedVagrant
from vcm.adapters.socket_server import ServerThread, SocketServer
from vcm.domain.allocation import IpPool
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService

SEED = {
    "create": '{\n\t"command": "create",\n\t"box": "ubuntu/trusty64",\n\t"files": [],\n\t'
    '"puppet": [],\n\t"shell": [],\n\t"network": "private",\n\t"hostname": "dynamic"\n}',
    "start": '{\n\t"command": "start",\n\t"boxID": "ubuntu_trusty64_1"\n}',
    "info": '{\n\t"command": "info",\n\t"subcommand": "VM all"\n}',
}


class Backend(SimulatedVagrant):
    """The simulated backend, with a gate that holds one box's starts until opened."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gated_box = "slow/box"

    def create(self, machine, progress):  # type: ignore[no-untyped-def]
        if machine.definition.box == self.gated_box:
            self.gate.wait(20)
        super().create(machine, progress)


@pytest.fixture
def backend() -> Backend:
    return Backend()


def make_server(tmp_path: Path, backend: Backend, **limits: Any) -> ServerThread:
    service = VcmService(
        registry=Registry(JsonStateStore(tmp_path / "state.json")),
        vagrant=backend,
        host_files=_NoFiles(),
        pool=IpPool.with_host_sides(IPv4Network("192.168.33.0/24")),
        domain="example.com",
    )
    thread = ServerThread(
        SocketServer(
            RequestHandler(service, token=limits.pop("token", None)),
            host="127.0.0.1",
            port=0,
            max_request_bytes=4096,
            workers=8,
            **limits,
        ),
        grace=5,
    )
    thread.start()
    return thread


@pytest.fixture
def server(tmp_path: Path, backend: Backend) -> Iterator[ServerThread]:
    thread = make_server(tmp_path, backend)
    yield thread
    backend.gate.set()
    thread.stop()


class _NoFiles:
    def check(self, path: str) -> None:
        raise AssertionError("no host files in these tests")


def connect(server: ServerThread) -> Wire:
    host, port = server.address
    return Wire(host, port, timeout=20)


def test_the_seed_requests_sent_verbatim_get_the_seed_replies(server: ServerThread) -> None:
    with connect(server) as wire:
        assert wire.ask(SEED["create"]) == {
            "error": False,
            "boxID": "ubuntu_trusty64_1",
            "message": "created box ubuntu_trusty64_1 from ubuntu/trusty64",
        }
        started = wire.ask(SEED["start"])
        assert started["vmID"] == "ubuntu_trusty64_1_1"
        assert wire.ask(SEED["info"])["VMS"][0]["IP"] == started["IP"]


def test_pipelined_requests_are_answered_in_order_even_byte_by_byte(server: ServerThread) -> None:
    requests = (
        "".join(json.dumps({"command": "create", "box": "b/x", "id": n}) for n in range(5))
        + 'junk\n{"command": "info", "subcommand": "box all", "id": "last"}'
    )
    with connect(server) as wire:
        for byte in requests.encode():
            wire.send(bytes([byte]))
        ids = [wire.reply().get("id") for _ in range(7)]
    assert ids == [0, 1, 2, 3, 4, None, "last"]


def test_a_half_closed_connection_still_gets_its_reply(server: ServerThread) -> None:
    with connect(server) as wire:
        wire.send(SEED["info"])
        wire.sock.shutdown(socket.SHUT_WR)
        assert wire.reply()["error"] is False
        assert wire.sock.recv(1) == b""


def test_a_booting_vm_does_not_delay_other_connections(
    server: ServerThread, backend: Backend
) -> None:
    with connect(server) as slow, connect(server) as other:
        box_id = slow.ask({"command": "create", "box": "slow/box"})["boxID"]
        slow.send({"command": "start", "boxID": box_id})
        time.sleep(0.2)
        began = time.monotonic()
        [vm] = other.ask({"command": "info", "subcommand": "VM all"})["VMS"]
        assert vm["state"] == "starting"
        fast_box = other.ask({"command": "create", "box": "fast/box"})["boxID"]
        assert other.ask({"command": "start", "boxID": fast_box})["error"] is False
        assert time.monotonic() - began < 5
        backend.gate.set()
        assert slow.reply()["state"] == "running"


def test_oversized_requests_get_an_error_and_the_connection_goes_on(
    server: ServerThread,
) -> None:
    with connect(server) as wire:
        wire.send('{"command": "create", "box": "' + "a" * 10_000 + '"}')
        assert wire.reply()["code"] == "REQUEST_TOO_LARGE"
        assert wire.ask(SEED["info"])["error"] is False


def test_many_tiny_requests_on_one_connection(server: ServerThread) -> None:
    with connect(server) as wire:
        wire.send('{"command":"info","subcommand":"VM all"}' * 2000)
        replies = [wire.reply() for _ in range(2000)]
    assert all(reply["error"] is False for reply in replies)


def test_bad_input_never_closes_the_connection(server: ServerThread) -> None:
    with connect(server) as wire:
        for garbage in [b"\xff\xfe\n", b"[1,2]\n", b'{"a": }', b"{}", b'{"command": 1}']:
            wire.send(garbage)
            assert wire.reply()["error"] is True
        assert wire.ask(SEED["info"])["error"] is False


def test_connections_over_the_cap_are_refused_and_the_others_keep_working(
    tmp_path: Path, backend: Backend
) -> None:
    server = make_server(tmp_path, backend, max_connections=3)
    try:
        held = [connect(server) for _ in range(3)]
        for wire in held:
            assert wire.ask(SEED["info"])["error"] is False
        with connect(server) as extra:
            refused = extra.reply()
            assert (refused["error"], refused["code"]) == (True, "INTERNAL")
            assert "too many connections" in refused["message"]
        assert held[0].ask(SEED["info"])["error"] is False
        held[0].close()
        time.sleep(0.2)
        with connect(server) as again:
            assert again.ask(SEED["info"])["error"] is False
        for wire in held[1:]:
            wire.close()
    finally:
        server.stop()


def test_a_client_trickling_bytes_is_cut_off_and_others_are_served(
    tmp_path: Path, backend: Backend
) -> None:
    server = make_server(tmp_path, backend, idle_timeout=1.0)
    try:
        with connect(server) as slow, connect(server) as other:
            slow.sock.settimeout(0.2)
            slow.send(b'{"command": "info", "subcommand": ')
            began = time.monotonic()
            while time.monotonic() - began < 8:
                try:
                    slow.send(b" ")
                    if slow.sock.recv(1) == b"":
                        break
                except TimeoutError:
                    pass
                except OSError:
                    break
                assert other.ask(SEED["info"])["error"] is False
            cut_after = time.monotonic() - began
            assert 0.9 < cut_after < 4, f"cut off after {cut_after:.1f} s"
            assert other.ask(SEED["info"])["error"] is False
    finally:
        server.stop()


def test_every_request_is_logged_without_its_token(
    tmp_path: Path, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(tmp_path, backend, token="hunter2")
    try:
        with caplog.at_level("DEBUG", logger="vcm.audit"), connect(server) as wire:
            wire.ask({"command": "create", "box": "a/b", "token": "hunter2"})
            wire.ask({"command": "create", "box": "a/b", "token": "wrong"})
        lines = [r.getMessage() for r in caplog.records if r.name == "vcm.audit"]
        assert len(lines) == 2
        assert 'command="create" target="a/b" result=ok' in lines[0]
        assert "result=UNAUTHORIZED" in lines[1]
        assert all("peer=127.0.0.1:" in line and "duration_ms=" in line for line in lines)
        assert not any(
            "hunter2" in r.getMessage() or "wrong" in r.getMessage() for r in caplog.records
        )
    finally:
        server.stop()
