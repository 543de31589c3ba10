"""Interim progress lines: Vagrant's output, each line tagged with the phase the start is in."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import Any

from vcm.adapters.requests import RequestId
from vcm.domain.ports import OutputLine

PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("preparing", ()),
    (
        "importing",
        ("importing base box", "creating the container", "creating and configuring docker"),
    ),
    ("booting", ("starting container", "booting", "waiting for machine to boot", "resuming")),
    (
        "configuring",
        ("machine booted and ready", "setting hostname", "setting up private networks"),
    ),
    ("provisioning", ("running provisioner", "provisioning")),
)


class PhaseTracker:
    """Which phase a start is in, judged from its output lines; it only ever moves forward."""

    def __init__(self) -> None:
        self._index = 0

    @property
    def phase(self) -> str:
        return PHASES[self._index][0]

    def see(self, line: str) -> str:
        """The phase `line` belongs to, after moving on if it marks a later phase."""
        text = line.lower()
        for index in range(len(PHASES) - 1, self._index, -1):
            if any(marker in text for marker in PHASES[index][1]):
                self._index = index
                break
        return self.phase


def progress_line(request_id: RequestId | None, vm_id: str | None, phase: str, line: str) -> Any:
    """An interim line as sent on the wire; it never has an "error" field."""
    fields: dict[str, Any] = {} if request_id is None else {"id": request_id}
    return {**fields, "event": "progress", "vmID": vm_id, "phase": phase, "line": line}


INTERIM_LIMIT = 1000


class InterimPump:
    """Carries one request's progress lines from its worker thread to its connection.

    At most INTERIM_LIMIT lines wait; a client too slow to take them loses the excess, never
    its final reply.
    """

    def __init__(
        self, writer: asyncio.StreamWriter, request_id: RequestId | None, write_timeout: float
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = writer
        self._request_id = request_id
        self._timeout = write_timeout
        self._tracker = PhaseTracker()
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._done = False
        self.dropped = 0

    def report(self, line: str) -> None:
        """From the worker thread, in the order Vagrant printed the lines."""
        vm_id = line.vm_id if isinstance(line, OutputLine) else None
        fields = progress_line(self._request_id, vm_id, self._tracker.see(line), str(line))
        data = (json.dumps(fields, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode()
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._put, data)

    def _put(self, data: bytes) -> None:
        if len(self._lines) >= INTERIM_LIMIT:
            self.dropped += 1
        else:
            self._lines.append(data)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._lines:
                self._writer.write(self._lines.popleft())
                await asyncio.wait_for(self._writer.drain(), self._timeout)
            if self._done:
                return

    async def finish(self, task: asyncio.Task[None]) -> None:
        """Send what is left, before the final reply goes out."""
        self._done = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await task
