"""The event stream: lifecycle events fanned out to watchers, each with a bounded buffer.

Publishing never waits for a watcher. A watcher that falls more than its buffer behind gets a
last line saying so and is disconnected; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from vcm.adapters.codec import vm_to_json
from vcm.domain.events import Event, now

log = logging.getLogger(__name__)

DEFAULT_BUFFER = 1000
NOTICE_SECONDS = 5.0


@dataclass(frozen=True)
class WatchFilter:
    """Only events about this box (and its VMs) and/or this VM; None matches everything."""

    box_id: str | None = None
    vm_id: str | None = None

    def matches(self, event: Event) -> bool:
        return (self.box_id is None or event.box_id == self.box_id) and (
            self.vm_id is None or event.vm_id == self.vm_id
        )


def event_json(event: Event, seq: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": event.kind, "seq": seq, "time": now()}
    if event.vm is not None:
        vm = vm_to_json(event.vm)
        fields.update({k: v for k, v in vm.items() if k != "provisioned" and v != ""})
    if event.box is not None:
        fields.update({"boxID": event.box.box_id, "box": event.box.definition.box})
    if event.box_id is not None:
        fields.setdefault("boxID", event.box_id)
    if event.vm_id is not None:
        fields.setdefault("vmID", event.vm_id)
    fields.update(event.extra)
    return fields


def _line(fields: dict[str, Any]) -> bytes:
    return (json.dumps(fields, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode()


class Watcher:
    """One watching connection: events queue here until its connection takes them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: WatchFilter, limit: int) -> None:
        self.where = where
        self._loop = loop
        self._limit = limit
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self.missed = 0

    def offer(self, line: bytes) -> None:
        """From any thread."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: so is the watcher
            self._loop.call_soon_threadsafe(self._put, line)

    def _put(self, line: bytes) -> None:
        if self.missed or len(self._lines) >= self._limit:
            self.missed += 1
        else:
            self._lines.append(line)
        self._wake.set()

    async def stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, write_timeout: float
    ) -> None:
        """Send events until the client closes its side or falls too far behind."""
        closed = asyncio.ensure_future(_until_eof(reader))
        try:
            while not closed.done():
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({closed, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                if not await self._send_queued(writer, write_timeout):
                    return
        finally:
            closed.cancel()

    async def _send_queued(self, writer: asyncio.StreamWriter, write_timeout: float) -> bool:
        while self._lines and not self.missed:
            writer.write(self._lines.popleft())
            await asyncio.wait_for(writer.drain(), write_timeout)
        if self.missed:
            await self._drop(writer)
            return False
        return True

    async def _drop(self, writer: asyncio.StreamWriter) -> None:
        missed = self.missed + len(self._lines)
        self._lines.clear()
        log.warning("dropped a watcher %d events behind (buffer %d)", missed, self._limit)
        writer.write(
            _line(
                {
                    "event": "dropped",
                    "missed": missed,
                    "time": now(),
                    "message": f"this watcher fell more than {self._limit} events behind and "
                    "is disconnected; watch again, and use info to catch up",
                }
            )
        )
        try:
            await asyncio.wait_for(writer.drain(), NOTICE_SECONDS)
        except (TimeoutError, ConnectionError):
            writer.transport.abort()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


class EventHub:
    """Thread-safe: the registry and the operations publish from worker threads."""

    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        self._watchers: set[Watcher] = set()
        self._seq = 0

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def publish(self, event: Event) -> None:
        with self._lock:
            self._seq += 1
            targets = [watcher for watcher in self._watchers if watcher.where.matches(event)]
            if targets:
                line = _line(event_json(event, self._seq))
                for watcher in targets:
                    watcher.offer(line)

    def open(self, where: WatchFilter) -> Watcher:
        """Register a watcher now, so that it misses nothing after its reply is sent."""
        watcher = Watcher(asyncio.get_running_loop(), where, self._buffer)
        with self._lock:
            self._watchers.add(watcher)
        return watcher

    def close(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)
