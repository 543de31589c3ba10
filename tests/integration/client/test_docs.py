"""The examples of docs/python-client.md, run as scripts against a daemon on a free port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.support.daemon import DaemonProcess
from vcm.client import Client

DOC = Path(__file__).parents[3] / "docs" / "python-client.md"


def _example(after_heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(after_heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, f"no python example after {after_heading!r}"
    return match.group(1)


def _run(script: str, daemon: DaemonProcess) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("VCM_")}
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**environ, "VCM_HOST": daemon.host, "VCM_PORT": str(daemon.port)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("heading", ["## Quick start", "## asyncio"])
def test_the_example_runs_against_a_daemon_on_another_port(
    daemon: DaemonProcess, heading: str
) -> None:
    assert daemon.port != 12121
    done = _run(_example(heading), daemon)
    assert done.returncode == 0, done.stderr
    with Client(daemon.host, daemon.port) as vcm:
        assert vcm.list_vms() == []
        assert vcm.list_boxes() == []


def test_the_quick_start_lists_two_running_vms(daemon: DaemonProcess) -> None:
    done = _run(_example("## Quick start"), daemon)
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["vcm_bookworm_test_1_1", "running"],
        ["vcm_bookworm_test_1_2", "running"],
    ]


def test_the_progress_example_prints_each_phase(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(VCM_SIMULATED_DELAY="0.4")
    done = _run(_example("## Progress"), daemon)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[importing] importing base box",
        "[booting] booting",
        "[configuring] setting hostname",
        "[provisioning] provisioning",
    ]


def test_the_operations_example_waits_and_cancels(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(VCM_SIMULATED_DELAY="1")
    done = _run(_example("## Background operations"), daemon)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "op-1 running",
        "cancelled; the daemon destroyed what it had made",
    ]
    with Client(daemon.host, daemon.port) as vcm:
        assert vcm.list_vms() == []
