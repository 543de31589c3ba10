from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess
from vcm.client import Client

StartDaemon = Callable[..., DaemonProcess]


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[StartDaemon]:
    """Start real daemons on free ports with the simulated backend and the given VCM_* settings."""
    started: list[DaemonProcess] = []

    def start(**settings: str) -> DaemonProcess:
        state_dir = tmp_path / f"daemon-{len(started)}"
        state_dir.mkdir()
        daemon = DaemonProcess(state_dir, **{"VCM_DRIVER": "simulated", **settings})
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> DaemonProcess:
    return start_daemon()


@pytest.fixture
def vcm(daemon: DaemonProcess) -> Iterator[Client]:
    with Client(daemon.host, daemon.port, timeout=60) as client:
        yield client
