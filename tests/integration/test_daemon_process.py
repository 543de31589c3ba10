"""The daemon as users run it: a subprocess, configured by VCM_* variables, stopped by signals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.tls import make_certificate
from tests.support.wire import Wire


def run_daemon(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    daemon = DaemonProcess(tmp_path, **env)
    return subprocess.run(
        [sys.executable, "-m", "vcm.entrypoints.daemon"],
        env=daemon.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_state_survives_a_restart_and_counters_never_repeat(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated").start()
    with Wire(daemon.host, daemon.port) as wire:
        box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
        vm = wire.ask({"command": "start", "boxID": box_id})
        wire.ask({"command": "destroy", "boxID": box_id})
        box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
        vm = wire.ask({"command": "start", "boxID": box_id})
        wire.ask({"command": "stop", "vmID": vm["vmID"]})
    assert daemon.stop() == 0
    daemon.start()
    with Wire(daemon.host, daemon.port) as wire:
        [saved] = wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
        assert (saved["vmID"], saved["IP"], saved["state"]) == (vm["vmID"], vm["IP"], "stopped")
        assert wire.ask({"command": "create", "box": "a/b"})["boxID"] == "a_b_3"
        assert wire.ask({"command": "start", "vmID": vm["vmID"]})["IP"] == vm["IP"]
    assert daemon.stop() == 0
    assert "SIMULATED backend" in daemon.log


def test_sigint_stops_it_cleanly_too(tmp_path: Path) -> None:
    import signal

    daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated").start()
    assert daemon._signal(signal.SIGINT, 30) == 0
    assert "vcm stopped" in daemon.log


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"VCM_PORT": "99999"}, "VCM_PORT"),
        ({"VCM_IP_POOL": "not-a-net"}, "VCM_IP_POOL"),
        ({"VCM_DRIVER": "magic"}, "VCM_DRIVER"),
        ({"VCM_DOMAIN": "bad_domain!"}, "VCM_DOMAIN"),
        ({"VCM_HOST": "0.0.0.0"}, "VCM_AUTH_TOKEN"),
    ],
)
def test_a_bad_setting_is_one_clear_line_and_a_non_zero_exit(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    result = run_daemon(tmp_path, **{"VCM_DRIVER": "simulated", **env})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("vcmd: ")
    assert words in line


def test_a_bad_toml_setting_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "vcm.toml"
    config.write_text("prot = 1\n")
    result = run_daemon(tmp_path, VCM_DRIVER="simulated", VCM_CONFIG_FILE=str(config))
    assert result.returncode == 1
    assert "PROT" in result.stderr
    assert str(config) in result.stderr


def test_a_corrupt_state_file_stops_start_up_and_is_not_overwritten(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"schema": 1, "boxes": [')
    result = run_daemon(tmp_path, VCM_DRIVER="simulated")
    assert result.returncode == 1
    assert str(state) in result.stderr
    assert state.read_text() == '{"schema": 1, "boxes": ['


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    first = DaemonProcess(tmp_path / "a", VCM_DRIVER="simulated").start()
    try:
        result = run_daemon(tmp_path / "b", VCM_DRIVER="simulated", VCM_PORT=str(first.port))
        assert result.returncode == 1
        assert "cannot listen" in result.stderr
    finally:
        first.stop()


def test_sigterm_lets_a_running_start_finish_and_reply(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated", VCM_SIMULATED_DELAY="2").start()
    with Wire(daemon.host, daemon.port) as wire:
        box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
        wire.send({"command": "start", "boxID": box_id})
        daemon.wait_for_log("a_b_1_1| booting", timeout=10)
        daemon._process.terminate()  # type: ignore[union-attr]
        assert wire.reply()["state"] == "running"
    assert daemon._process.wait(30) == 0  # type: ignore[union-attr]
    daemon.start()
    with Wire(daemon.host, daemon.port) as wire:
        [vm] = wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
        assert vm["state"] == "running"
    daemon.stop()


def test_a_start_still_running_after_the_grace_is_reconciled_next_time(tmp_path: Path) -> None:
    daemon = DaemonProcess(
        tmp_path, VCM_DRIVER="simulated", VCM_SIMULATED_DELAY="60", VCM_SHUTDOWN_GRACE="1"
    ).start()
    wire = Wire(daemon.host, daemon.port)
    box_id = wire.ask({"command": "create", "box": "a/b"})["boxID"]
    wire.send({"command": "start", "boxID": box_id})
    daemon.wait_for_log("a_b_1_1| importing base box", timeout=10)
    assert daemon.stop(timeout=20) == 0
    assert "1 commands interrupted" in daemon.log
    wire.close()
    daemon.start()
    daemon.wait_for_log("reconciled state with the backend")
    assert "a_b_1_1: removed, starting was interrupted" in daemon.log
    with Wire(daemon.host, daemon.port) as wire:
        assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
    daemon.stop()


def test_tls_serves_the_protocol_and_plain_text_gets_nothing(tmp_path: Path) -> None:
    import socket
    import ssl

    cert, key = make_certificate(tmp_path)
    daemon = DaemonProcess(
        tmp_path / "state", VCM_DRIVER="simulated", VCM_TLS_CERT=str(cert), VCM_TLS_KEY=str(key)
    ).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with (
            socket.create_connection((daemon.host, daemon.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b'{"command": "info", "subcommand": "VM all", "id": 1}')
            reply = tls.recv(65536)
        assert reply.startswith(b'{"error": false, "id": 1')
        with Wire(daemon.host, daemon.port, timeout=5) as plain:
            plain.send({"command": "info", "subcommand": "VM all"})
            with pytest.raises((ConnectionError, OSError)):
                plain.reply()
        assert "TLS" in daemon.log
    finally:
        daemon.stop()


def test_tls_needs_both_files(tmp_path: Path) -> None:
    result = run_daemon(tmp_path, VCM_DRIVER="simulated", VCM_TLS_CERT=str(tmp_path / "c"))
    assert result.returncode == 1
    assert "VCM_TLS_KEY" in result.stderr


def test_an_unreadable_certificate_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("not a certificate")
    result = run_daemon(
        tmp_path,
        VCM_DRIVER="simulated",
        VCM_TLS_CERT=str(tmp_path / "c"),
        VCM_TLS_KEY=str(tmp_path / "c"),
    )
    assert result.returncode == 1
    assert "VCM_TLS_CERT" in result.stderr


def test_floods_of_bad_input_leave_its_memory_bounded(tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, VCM_DRIVER="simulated").start()
    flood = 64 * 1024 * 1024
    with Wire(daemon.host, daemon.port, timeout=120) as wire:
        assert wire.ask({"command": "info", "subcommand": "VM all"})["error"] is False
        before = daemon.rss_bytes()
        wire.send(b'{"command": "create", "box": "' + b"a" * flood + b'"}')
        assert wire.reply()["code"] == "REQUEST_TOO_LARGE"
        wire.send(b"not json\n" * 20_000)
        assert {wire.reply()["code"] for _ in range(20_000)} == {"INVALID_JSON"}
        assert wire.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []
        grown = daemon.rss_bytes() - before
    assert daemon.stop() == 0
    assert grown < 32 * 1024 * 1024, f"RSS grew by {grown / 2**20:.0f} MiB on {flood >> 20} MiB"
