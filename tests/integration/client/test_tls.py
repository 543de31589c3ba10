"""TLS in the sync client, the asyncio client and `vcm`, against real daemons serving TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.integration.client.test_cli import assert_one_error_line, vcm
from tests.support.daemon import DaemonProcess
from tests.support.tls import make_certificate
from vcm.client import AsyncClient, Client, LocalFileError, VcmConnectionError

BOX = "vcm/bookworm-test"


class _Bounds(TypedDict):
    timeout: float
    connect_timeout: float


QUICK: _Bounds = {"timeout": 5.0, "connect_timeout": 2.0}
"""Bounds for the calls that must fail: they have to fail well within these."""


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path / "tls")


@pytest.fixture
def ca(certificate: tuple[Path, Path]) -> Path:
    """The daemon's certificate is self-signed: it is its own CA."""
    return certificate[0]


@pytest.fixture
def other_ca(tmp_path: Path) -> Path:
    return make_certificate(tmp_path / "other")[0]


@pytest.fixture
def tls_daemon(start_daemon: StartDaemon, certificate: tuple[Path, Path]) -> DaemonProcess:
    cert, key = certificate
    return start_daemon(VCM_TLS_CERT=str(cert), VCM_TLS_KEY=str(key))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose TCP connects succeed (the backlog takes them) but that never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def _where(daemon: DaemonProcess) -> str:
    return f"{daemon.host}:{daemon.port}"


def _fails_quickly(call: Callable[[], object], *fragments: str) -> VcmConnectionError:
    """Run `call()`; it must raise VcmConnectionError at once, with every fragment in it."""
    began = time.monotonic()
    with pytest.raises(VcmConnectionError) as raised:
        call()
    elapsed = time.monotonic() - began
    assert elapsed < QUICK["connect_timeout"] + 1, f"took {elapsed:.1f} s"
    for fragment in fragments:
        assert fragment in raised.value.message, raised.value.message
    return raised.value


class TestSyncClient:
    def test_with_the_ca_it_works_and_keeps_one_connection(
        self, tls_daemon: DaemonProcess, ca: Path
    ) -> None:
        with Client(tls_daemon.host, tls_daemon.port, timeout=30, tls=True, tls_ca=ca) as client:
            box_id = client.create_box(BOX, shell=["echo over TLS"]).box_id
            [connection] = client._idle
            vm = client.start_vm(box_id)
            assert client.list_vms() == [vm]
            assert client.get_box(box_id).vm_ids == (vm.vm_id,)
            assert client._idle == [connection], "each call opened a new TLS connection"
            assert client.destroy_box(box_id).vm_ids == (vm.vm_id,)

    def test_an_ssl_context_is_used_as_it_is(self, tls_daemon: DaemonProcess, ca: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        with Client(tls_daemon.host, tls_daemon.port, tls=context, **QUICK) as client:
            assert client.list_vms() == []

    def test_the_certificate_names_the_host_connected_to(
        self, tls_daemon: DaemonProcess, ca: Path
    ) -> None:
        with Client("localhost", tls_daemon.port, tls=True, tls_ca=str(ca), **QUICK) as client:
            assert client.list_boxes() == []

    def test_without_the_ca_it_is_a_tls_verification_failure(
        self, tls_daemon: DaemonProcess
    ) -> None:
        client = Client(tls_daemon.host, tls_daemon.port, tls=True, **QUICK)
        error = _fails_quickly(
            client.list_vms,
            "TLS verification failed",
            _where(tls_daemon),
            "self-signed",
            "--tls-ca",
        )
        assert error.code == "CONNECTION_FAILED"
        assert isinstance(error.__cause__, ssl.SSLCertVerificationError)

    def test_another_ca_is_a_tls_verification_failure(
        self, tls_daemon: DaemonProcess, other_ca: Path
    ) -> None:
        client = Client(tls_daemon.host, tls_daemon.port, tls=True, tls_ca=other_ca, **QUICK)
        _fails_quickly(client.list_vms, "TLS verification failed", _where(tls_daemon))

    def test_a_certificate_for_another_name_is_a_tls_verification_failure(
        self, start_daemon: StartDaemon, tmp_path: Path
    ) -> None:
        cert, key = make_certificate(tmp_path / "elsewhere", names="DNS:vcm.example.org")
        daemon = start_daemon(VCM_TLS_CERT=str(cert), VCM_TLS_KEY=str(key))
        client = Client(daemon.host, daemon.port, tls=True, tls_ca=cert, **QUICK)
        _fails_quickly(client.list_vms, "TLS verification failed", _where(daemon), "mismatch")

    def test_plain_text_to_a_tls_daemon_fails_at_once_and_suggests_tls(
        self, tls_daemon: DaemonProcess
    ) -> None:
        client = Client(tls_daemon.host, tls_daemon.port, **QUICK)
        _fails_quickly(client.list_vms, "closed the connection", _where(tls_daemon), "--tls")

    def test_tls_to_a_plain_daemon_fails_at_once(self, daemon: DaemonProcess, ca: Path) -> None:
        client = Client(daemon.host, daemon.port, tls=True, tls_ca=ca, **QUICK)
        _fails_quickly(client.list_vms, "TLS handshake", _where(daemon), "does it serve TLS")

    def test_a_handshake_without_answer_is_bounded_by_the_connect_timeout(
        self, silent_port: int, ca: Path
    ) -> None:
        client = Client("127.0.0.1", silent_port, tls=True, tls_ca=ca, connect_timeout=0.5)
        _fails_quickly(client.list_vms, "TLS handshake", "no answer within 0.5 s")

    def test_it_reconnects_when_the_daemon_closed_an_idle_tls_connection(
        self, start_daemon: StartDaemon, certificate: tuple[Path, Path], ca: Path
    ) -> None:
        cert, key = certificate
        daemon = start_daemon(VCM_TLS_CERT=str(cert), VCM_TLS_KEY=str(key), VCM_IDLE_TIMEOUT="1")
        with Client(daemon.host, daemon.port, tls=True, tls_ca=ca, **QUICK) as client:
            assert client.list_vms() == []
            [first] = client._idle
            daemon.wait_for_log("no complete request", timeout=10)
            assert client.create_box(BOX).box_id
            assert client._idle != [first]

    def test_from_env_reads_vcm_tls_and_vcm_tls_ca(
        self, tls_daemon: DaemonProcess, ca: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("VCM_HOST", tls_daemon.host)
        monkeypatch.setenv("VCM_PORT", str(tls_daemon.port))
        monkeypatch.setenv("VCM_TLS", "true")
        monkeypatch.setenv("VCM_TLS_CA", str(ca))
        with Client.from_env(**QUICK) as client:
            assert client.list_vms() == []
        monkeypatch.delenv("VCM_TLS_CA")
        _fails_quickly(Client.from_env(**QUICK).list_vms, "TLS verification failed")
        monkeypatch.setenv("VCM_TLS", "0")
        _fails_quickly(Client.from_env(**QUICK).list_vms, "closed the connection")
        monkeypatch.setenv("VCM_TLS_CA", str(ca))
        with Client.from_env(**QUICK) as client:
            assert client.list_vms() == [], "a CA file implies TLS"


class TestOptions:
    def test_a_ca_without_tls_true_is_refused(self, ca: Path) -> None:
        with pytest.raises(ValueError, match="tls=True"):
            Client(tls_ca=ca)
        with pytest.raises(ValueError, match="SSLContext"):
            AsyncClient(tls=ssl.create_default_context(), tls_ca=ca)

    def test_an_unreadable_ca_file_is_a_local_file_error(self, tmp_path: Path) -> None:
        with pytest.raises(LocalFileError, match=r"missing\.pem"):
            Client(tls=True, tls_ca=tmp_path / "missing.pem")
        (tmp_path / "junk.pem").write_text("not a certificate\n")
        with pytest.raises(LocalFileError, match=r"junk\.pem"):
            AsyncClient(tls=True, tls_ca=tmp_path / "junk.pem")

    def test_a_bad_vcm_tls_names_the_value(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VCM_TLS", "maybe")
        with pytest.raises(ValueError, match=r"VCM_TLS.*'maybe'"):
            Client.from_env()


class TestAsyncClient:
    def test_with_the_ca_it_works_in_parallel_and_reuses_connections(
        self, tls_daemon: DaemonProcess, ca: Path
    ) -> None:
        async def scenario() -> None:
            async with AsyncClient(
                tls_daemon.host, tls_daemon.port, timeout=30, tls=True, tls_ca=ca
            ) as client:
                box_id = (await client.create_box(BOX)).box_id
                [connection] = client._idle
                vms = await asyncio.gather(*(client.start_vm(box_id) for _ in range(3)))
                assert len({vm.ip for vm in vms}) == 3
                assert len(client._idle) == 3
                assert connection in client._idle
                assert sorted(await client.list_vms(), key=str) == sorted(vms, key=str)
                assert len(client._idle) == 3, "a call after the others opened a new connection"
                assert len((await client.destroy_box(box_id)).vm_ids) == 3

        asyncio.run(scenario())

    def test_verification_and_plain_text_failures(
        self, tls_daemon: DaemonProcess, ca: Path, other_ca: Path
    ) -> None:
        async def failure(tls: bool = False, tls_ca: Path | None = None) -> VcmConnectionError:
            client = AsyncClient(tls_daemon.host, tls_daemon.port, tls=tls, tls_ca=tls_ca, **QUICK)
            began = time.monotonic()
            with pytest.raises(VcmConnectionError) as raised:
                await client.list_vms()
            assert time.monotonic() - began < QUICK["connect_timeout"] + 1
            await client.close()
            return raised.value

        async def scenario() -> None:
            for tls_ca in (None, other_ca):
                error = await failure(tls=True, tls_ca=tls_ca)
                assert "TLS verification failed" in error.message
                assert _where(tls_daemon) in error.message
                assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
            plain = await failure()
            assert "closed the connection" in plain.message
            assert "--tls" in plain.message
            async with AsyncClient(tls_daemon.host, tls_daemon.port, tls=True, tls_ca=ca) as ok:
                assert await ok.list_boxes() == []

        asyncio.run(scenario())

    def test_tls_to_a_plain_daemon_and_a_silent_port_fail_in_time(
        self, daemon: DaemonProcess, silent_port: int, ca: Path
    ) -> None:
        async def scenario() -> tuple[str, str]:
            plain = AsyncClient(daemon.host, daemon.port, tls=True, tls_ca=ca, **QUICK)
            with pytest.raises(VcmConnectionError) as refused:
                await plain.list_vms()
            silent = AsyncClient("127.0.0.1", silent_port, tls=True, connect_timeout=0.5)
            began = time.monotonic()
            with pytest.raises(VcmConnectionError) as unanswered:
                await silent.list_vms()
            assert time.monotonic() - began < 1.5
            return refused.value.message, unanswered.value.message

        refused, unanswered = asyncio.run(scenario())
        assert "TLS handshake" in refused
        assert "does it serve TLS" in refused
        assert "no answer within 0.5 s" in unanswered

    def test_it_reconnects_when_the_daemon_closed_an_idle_tls_connection(
        self, start_daemon: StartDaemon, certificate: tuple[Path, Path], ca: Path
    ) -> None:
        cert, key = certificate
        daemon = start_daemon(VCM_TLS_CERT=str(cert), VCM_TLS_KEY=str(key), VCM_IDLE_TIMEOUT="1")

        async def scenario() -> None:
            async with AsyncClient(daemon.host, daemon.port, tls=True, tls_ca=ca, **QUICK) as c:
                assert await c.list_vms() == []
                [first] = c._idle
                await asyncio.to_thread(daemon.wait_for_log, "no complete request", 10)
                assert (await c.create_box(BOX)).box_id
                assert c._idle != [first]

        asyncio.run(scenario())

    def test_from_env_reads_the_tls_settings(
        self, tls_daemon: DaemonProcess, ca: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("VCM_HOST", tls_daemon.host)
        monkeypatch.setenv("VCM_PORT", str(tls_daemon.port))
        monkeypatch.setenv("VCM_TLS", "1")
        monkeypatch.setenv("VCM_TLS_CA", str(ca))

        async def scenario() -> None:
            async with AsyncClient.from_env(**QUICK) as client:
                assert await client.list_vms() == []

        asyncio.run(scenario())


class TestCommandLine:
    def test_tls_ca_connects(self, tls_daemon: DaemonProcess, ca: Path) -> None:
        run = vcm("--json", "ls", "--tls", "--tls-ca", str(ca), port=tls_daemon.port)
        assert (run.code, run.json()) == (0, []), run
        created = vcm("create", BOX, "--tls-ca", str(ca), port=tls_daemon.port)
        assert created.code == 0, created
        assert vcm("boxes", port=tls_daemon.port, VCM_TLS_CA=str(ca)).code == 0
        listed = vcm("--json", "boxes", port=tls_daemon.port, VCM_TLS="1", VCM_TLS_CA=str(ca))
        assert [box["boxID"] for box in listed.json()] == [created.stdout.strip()]

    def test_without_the_ca_it_exits_3_naming_tls_verification(
        self, tls_daemon: DaemonProcess, other_ca: Path
    ) -> None:
        for options, env in (
            (["--tls"], {}),
            ([], {"VCM_TLS": "true"}),
            (["--tls-ca", str(other_ca)], {}),
        ):
            run = vcm("ls", *options, port=tls_daemon.port, **env)
            assert run.code == 3, run
            assert_one_error_line(run, "TLS verification failed", _where(tls_daemon))

    def test_plain_text_to_a_tls_daemon_exits_3_and_suggests_tls(
        self, tls_daemon: DaemonProcess
    ) -> None:
        began = time.monotonic()
        run = vcm("ls", "--timeout", "5", port=tls_daemon.port)
        assert time.monotonic() - began < 5
        assert run.code == 3, run
        assert_one_error_line(run, "closed the connection", "--tls")

    def test_bad_tls_settings_are_usage_errors(self, tmp_path: Path) -> None:
        run = vcm("ls", "--tls-ca", str(tmp_path / "missing.pem"), port=1)
        assert run.code == 2, run
        assert_one_error_line(run, "TLS CA file", "missing.pem")
        run = vcm("ls", port=1, VCM_TLS="maybe")
        assert run.code == 2, run
        assert_one_error_line(run, "VCM_TLS", "maybe")

    def test_help_lists_the_tls_options(self) -> None:
        run = vcm("ls", "--help", port=1)
        for text in ("--tls", "--tls-ca FILE", "VCM_TLS_CA"):
            assert text in run.stdout
        top = vcm("--help", port=1).stdout
        assert "VCM_TLS " in top
        assert "VCM_TLS_CA" in top
