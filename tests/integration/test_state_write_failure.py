"""A state write that fails for real: the daemon's state directory on a tiny tmpfs, filled up.

Every command that would change the state gets INTERNAL and changes nothing; state.json keeps
its previous content, parseable; the daemon keeps serving and works again once there is room.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess
from tests.support.wire import Wire


class FullDisk:
    """A directory whose file system can be filled up on demand and freed again."""

    def __init__(self, directory: Path, how: str) -> None:
        self.directory = directory
        self.how = how
        self._filler = directory / "filler"

    def fill(self) -> None:
        if self.how == "immutable":
            subprocess.run(["chattr", "+i", str(self.directory)], check=True)
            return
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        if self.how == "immutable":
            subprocess.run(["chattr", "-i", str(self.directory)], check=True)
        else:
            self._filler.unlink(missing_ok=True)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[FullDisk]:
    directory = tmp_path / "state"
    directory.mkdir()
    mounted = (
        os.geteuid() == 0
        and _run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)).returncode == 0
    )
    if mounted:
        try:
            yield FullDisk(directory, "tmpfs")
        finally:
            assert _run("umount", str(directory)).returncode == 0
        return
    if shutil.which("chattr") is None or _run("chattr", "+i", str(directory)).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root) and chattr +i is not available")
    _run("chattr", "-i", str(directory))
    full = FullDisk(directory, "immutable")
    try:
        yield full
    finally:
        full.free()


def state_of(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "state.json").read_text(encoding="utf-8"))
    return document


def test_a_full_disk_gives_internal_changes_nothing_and_the_daemon_goes_on(
    disk: FullDisk,
) -> None:
    daemon = DaemonProcess(disk.directory, VCM_DRIVER="simulated").start()
    try:
        with Wire(daemon.host, daemon.port, timeout=30) as wire:
            box_id = wire.ask({"command": "create", "box": "vcm/bookworm-test"})["boxID"]
            vm = wire.ask({"command": "start", "boxID": box_id})
            assert vm["error"] is False, vm
            before = (disk.directory / "state.json").read_bytes()
            listed = [wire.ask({"command": "info", "subcommand": s}) for s in ("box all", "VM all")]

            disk.fill()
            for request in (
                {"command": "create", "box": "vcm/bookworm-test"},
                {"command": "start", "boxID": box_id},
                {"command": "stop", "vmID": vm["vmID"]},
                {"command": "destroy", "vmID": vm["vmID"]},
                {"command": "destroy", "boxID": box_id},
            ):
                reply = wire.ask(request)
                assert (reply["error"], reply.get("code")) == (True, "INTERNAL"), (request, reply)
                assert "state file" in reply["message"]
            everything = wire.ask({"command": "destroy all"})
            assert everything["error"] is True, everything
            assert everything["VMS"] == [], everything
            assert [f["code"] for f in everything["failed"]] == ["INTERNAL"]

            assert (disk.directory / "state.json").read_bytes() == before
            assert state_of(disk.directory)["boxes"][0]["boxID"] == box_id
            left = {p.name for p in disk.directory.iterdir()} - {"filler"}
            assert not [name for name in left if name.startswith(".state.json.")], left
            with Wire(daemon.host, daemon.port, timeout=30) as other:
                again = [
                    other.ask({"command": "info", "subcommand": s}) for s in ("box all", "VM all")
                ]
            assert again == listed

            disk.free()
            created = wire.ask({"command": "create", "box": "vcm/bookworm-test"})
            assert created["error"] is False, created
            assert created["boxID"] != box_id
        assert daemon.stop() == 0
        daemon.start()
        with Wire(daemon.host, daemon.port, timeout=30) as wire:
            boxes = wire.ask({"command": "info", "subcommand": "box all"})["boxes"]
            assert [box["boxID"] for box in boxes] == [box_id, created["boxID"]]
            assert [
                v["vmID"] for v in wire.ask({"command": "info", "subcommand": "VM all"})["VMS"]
            ] == [vm["vmID"]]
    finally:
        disk.free()
        daemon.kill()
