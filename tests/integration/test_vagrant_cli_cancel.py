"""Cancelling `vagrant up` through the adapter, against a stub `vagrant` that traps SIGINT as
Vagrant does: the first one starts its cleanup, a second would skip it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.integration.test_vagrant_cli_stub import Stub, files, machine, make_cli, stub  # noqa: F401
from vcm.adapters.host_files import FilesRoot
from vcm.domain.cancel import CancelScope, running_in
from vcm.domain.errors import Cancelled

INTERRUPTIBLE_UP = """#!/bin/bash
echo "$PWD|$*" >> "$STUB_DIR/calls"
[ "$1" = up ] || exit 0
trap 'echo int >> "$STUB_DIR/ints"
      echo "==> default: Waiting for cleanup before exiting..."
      sleep 0.3; exit 1' INT
echo "==> default: Starting container..."
sleep 30
echo "==> default: Machine booted and ready!"
"""


@pytest.fixture
def interruptible(stub: Stub, tmp_path: Path) -> Stub:  # noqa: F811
    (tmp_path / "bin" / "vagrant").write_text(INTERRUPTIBLE_UP)
    return stub


def test_cancel_interrupts_vagrant_once_like_ctrl_c_and_its_children_too(
    tmp_path: Path,
    interruptible: Stub,
    files: FilesRoot,  # noqa: F811
) -> None:
    cli = make_cli(tmp_path, files)
    scope = CancelScope()
    lines: list[str] = []
    failures: list[Exception] = []

    def up() -> None:
        with running_in(scope):
            try:
                cli.create(machine(), lines.append)
            except Exception as error:
                failures.append(error)

    worker = threading.Thread(target=up)
    worker.start()
    deadline = time.monotonic() + 10
    while not lines and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    scope.cancel()
    worker.join(10)
    assert time.monotonic() - began < 5, "the sleeping child should have been interrupted too"
    assert [type(error) for error in failures] == [Cancelled]
    assert "interrupted on request" in str(failures[0])
    assert lines == [
        "==> default: Starting container...",
        "==> default: Waiting for cleanup before exiting...",
    ]
    assert (interruptible.dir / "ints").read_text().splitlines() == ["int"]


def test_a_start_cancelled_before_vagrant_ran_never_runs_it(
    tmp_path: Path,
    interruptible: Stub,
    files: FilesRoot,  # noqa: F811
) -> None:
    scope = CancelScope()
    scope.cancel()
    with running_in(scope), pytest.raises(Cancelled, match="before vagrant up"):
        make_cli(tmp_path, files).create(machine(), print)
    assert [args for _, args in interruptible.calls()] == []
