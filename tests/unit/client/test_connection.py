"""The client's connection handling, against a scripted server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.unit.client.fake_daemon import FakeDaemon, Request, error, line, reply, vm_entry
from vcm.client import (
    AsyncClient,
    Client,
    InternalError,
    InvalidJson,
    ProtocolError,
    VcmConnectionError,
    VcmTimeout,
)


def _answer_everything(request: Request) -> list[bytes]:
    if request["command"] == "info":
        return [reply(request, VMS=[vm_entry()], message="listed")]
    return [reply(request, **vm_entry(), message="started")]


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    with FakeDaemon(_answer_everything) as fake:
        yield fake


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestConnecting:
    def test_a_refused_connection_says_where_it_tried(self) -> None:
        port = _free_port()
        with pytest.raises(VcmConnectionError, match=f"127.0.0.1:{port}: Connection refused"):
            Client("127.0.0.1", port).list_vms()

    def test_calls_one_after_another_share_one_connection(self, daemon: FakeDaemon) -> None:
        with Client(daemon.host, daemon.port) as vcm:
            for _ in range(3):
                vcm.list_vms()
        assert daemon.connections == 1
        assert [request["id"] for request in daemon.requests] == [1, 2, 3]

    def test_calls_from_two_threads_at_once_get_two_connections(self) -> None:
        both_arrived = threading.Barrier(2, timeout=10)

        def wait_for_the_other(request: Request) -> list[bytes]:
            both_arrived.wait()
            return _answer_everything(request)

        with FakeDaemon(wait_for_the_other) as fake, Client(fake.host, fake.port) as vcm:
            threads = [threading.Thread(target=vcm.start_vm, args=("b_1",)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert fake.connections == 2
            assert fake.commands() == ["start", "start"]


class TestReconnecting:
    def test_reconnects_once_when_the_daemon_closed_an_idle_connection(
        self, daemon: FakeDaemon
    ) -> None:
        with Client(daemon.host, daemon.port) as vcm:
            vcm.list_vms()
            daemon.close_connections()
            time.sleep(0.05)
            vm = vcm.start_vm("b_1")
        assert vm.vm_id == "b_1_1"
        assert daemon.connections == 2
        assert daemon.commands() == ["info", "start"]

    def test_a_read_only_command_is_sent_again_if_the_line_broke_before_its_reply(self) -> None:
        hang_ups = iter([False, True, False])

        def close_the_second_time(request: Request) -> list[bytes] | None:
            return None if next(hang_ups) else _answer_everything(request)

        with FakeDaemon(close_the_second_time) as fake, Client(fake.host, fake.port) as vcm:
            vcm.list_vms()
            assert len(vcm.list_vms()) == 1
            assert fake.commands() == ["info", "info", "info"]
            assert fake.connections == 2

    def test_a_command_that_changes_things_is_never_sent_twice(self) -> None:
        def close_on_start(request: Request) -> list[bytes] | None:
            return None if request["command"] == "start" else _answer_everything(request)

        with FakeDaemon(close_on_start) as fake, Client(fake.host, fake.port) as vcm:
            vcm.list_vms()
            with pytest.raises(VcmConnectionError, match="may or may not have carried it out"):
                vcm.start_vm("b_1")
            assert fake.commands() == ["info", "start"]

    def test_a_fresh_connection_closed_before_the_reply_is_not_retried(self) -> None:
        with FakeDaemon(lambda request: None) as fake, Client(fake.host, fake.port) as vcm:
            with pytest.raises(VcmConnectionError, match="before replying to 'info'"):
                vcm.list_vms()
            assert fake.commands() == ["info"]


class TestTimeouts:
    def test_no_reply_within_the_timeout_raises_and_the_next_call_reconnects(self) -> None:
        def silent_on_start(request: Request) -> list[bytes]:
            return [] if request["command"] == "start" else _answer_everything(request)

        with FakeDaemon(silent_on_start) as fake, Client(fake.host, fake.port, timeout=0.3) as vcm:
            started = time.monotonic()
            with pytest.raises(VcmTimeout, match=r"'start' within 0.3 s"):
                vcm.start_vm("b_1")
            assert 0.25 < time.monotonic() - started < 5
            assert len(vcm.list_vms()) == 1
            assert fake.connections == 2

    def test_progress_lines_do_not_extend_the_timeout(self) -> None:
        def chatty(request: Request) -> list[bytes]:
            return [line({"id": request["id"], "progress": "still booting"})]

        seen: list[str] = []
        with (
            FakeDaemon(chatty) as fake,
            Client(fake.host, fake.port, timeout=0.3, on_progress=seen.append) as vcm,
            pytest.raises(VcmTimeout),
        ):
            vcm.start_vm("b_1")
        assert seen == ["still booting"]

    def test_connecting_to_a_listener_that_never_accepts_gives_up_in_time(self) -> None:
        with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
            host, port = full.getsockname()[:2]
            fillers = [socket.socket() for _ in range(4)]
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex((host, port))
            started = time.monotonic()
            try:
                with pytest.raises(VcmConnectionError, match=r"no answer within 0.3 s"):
                    Client(host, port, timeout=1, connect_timeout=0.3).list_vms()
            finally:
                for filler in fillers:
                    filler.close()
            assert time.monotonic() - started < 5


class TestOddReplies:
    def test_progress_lines_before_the_reply_reach_the_callback(self) -> None:
        def with_progress(request: Request) -> list[bytes]:
            return [
                line({"id": request["id"], "progress": "importing base box"}),
                line({"id": request["id"], "progress": "booting"}),
                *_answer_everything(request),
            ]

        seen: list[str] = []
        with (
            FakeDaemon(with_progress) as fake,
            Client(fake.host, fake.port, on_progress=seen.append) as vcm,
        ):
            assert vcm.start_vm("b_1").vm_id == "b_1_1"
        assert seen == ["importing base box", "booting"]

    def test_internal_and_invalid_json_replies_raise_their_exceptions(self) -> None:
        def failing(request: Request) -> list[bytes]:
            if request["command"] == "info":
                return [error(request, "INTERNAL", "the state file is not writable")]
            return [line({"error": True, "code": "INVALID_JSON", "message": "not JSON"})]

        with FakeDaemon(failing) as fake, Client(fake.host, fake.port) as vcm:
            with pytest.raises(InternalError, match="not writable"):
                vcm.list_vms()
            with pytest.raises(InvalidJson, match="not JSON"):
                vcm.start_vm("b_1")
            assert fake.connections == 1

    def test_garbage_from_the_server_is_a_protocol_error_and_drops_the_line(self) -> None:
        answers = iter([[b"HTTP/1.1 400 Bad Request\r\n"], None])

        def garbage_then_answer(request: Request) -> list[bytes]:
            return next(answers, None) or _answer_everything(request)

        with FakeDaemon(garbage_then_answer) as fake, Client(fake.host, fake.port) as vcm:
            with pytest.raises(ProtocolError, match="not JSON"):
                vcm.list_vms()
            assert len(vcm.list_vms()) == 1
            assert fake.connections == 2


class TestAsync:
    def test_reconnects_once_when_the_daemon_closed_an_idle_connection(
        self, daemon: FakeDaemon
    ) -> None:
        async def scenario() -> str:
            async with AsyncClient(daemon.host, daemon.port) as vcm:
                await vcm.list_vms()
                daemon.close_connections()
                await asyncio.sleep(0.05)
                return (await vcm.start_vm("b_1")).vm_id

        assert asyncio.run(scenario()) == "b_1_1"
        assert daemon.connections == 2

    def test_reconnects_even_if_the_loop_was_blocked_while_the_daemon_hung_up(
        self, daemon: FakeDaemon
    ) -> None:
        async def scenario() -> str:
            async with AsyncClient(daemon.host, daemon.port) as vcm:
                await vcm.list_vms()
                daemon.close_connections()
                time.sleep(0.05)  # the loop does not run: nothing has seen the hang-up yet
                return (await vcm.start_vm("b_1")).vm_id

        assert asyncio.run(scenario()) == "b_1_1"
        assert daemon.connections == 2

    def test_a_timeout_raises_and_the_next_call_works(self) -> None:
        def silent_on_start(request: Request) -> list[bytes]:
            return [] if request["command"] == "start" else _answer_everything(request)

        async def scenario(fake: FakeDaemon) -> int:
            async with AsyncClient(fake.host, fake.port, timeout=0.3) as vcm:
                with pytest.raises(VcmTimeout, match="'start'"):
                    await vcm.start_vm("b_1")
                return len(await vcm.list_vms())

        with FakeDaemon(silent_on_start) as fake:
            assert asyncio.run(scenario(fake)) == 1
            assert fake.connections == 2

    def test_a_refused_connection_says_where_it_tried(self) -> None:
        port = _free_port()
        with pytest.raises(VcmConnectionError, match=f"127.0.0.1:{port}"):
            asyncio.run(AsyncClient("127.0.0.1", port).list_vms())

    def test_a_cancelled_call_leaves_no_connection_behind_for_reuse(self) -> None:
        def silent(request: Request) -> list[bytes]:
            return [] if request["command"] == "start" else _answer_everything(request)

        async def scenario(fake: FakeDaemon) -> int:
            async with AsyncClient(fake.host, fake.port) as vcm:
                task = asyncio.create_task(vcm.start_vm("b_1"))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return len(await vcm.list_vms())

        with FakeDaemon(silent) as fake:
            assert asyncio.run(scenario(fake)) == 1
            assert fake.connections == 2
