"""The TCP server: frames requests, answers each in order, never lets one client stall another."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from vcm.adapters.events import EventHub, Watcher
from vcm.adapters.framing import Frame, FrameKind, JsonObjectSplitter
from vcm.adapters.progress import InterimPump
from vcm.adapters.protocol import (
    InvalidJson,
    Prepared,
    Reply,
    RequestHandler,
    RequestTooLarge,
    TooManyConnections,
    encode,
    error_fields,
    failed,
)

log = logging.getLogger(__name__)
audit = logging.getLogger("vcm.audit")

READ_SIZE = 65536
WATCH_SEND_BUFFER = 32768


class SocketServer:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        host: str,
        port: int,
        max_request_bytes: int,
        workers: int,
        max_connections: int = 256,
        idle_timeout: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
        events: EventHub | None = None,
    ) -> None:
        self._handler = handler
        self._events = events or EventHub()
        self._host = host
        self._port = port
        self._limit = max_request_bytes
        self._max_connections = max_connections
        self._idle_timeout = idle_timeout
        self._ssl = ssl_context
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vcm-op")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._idle = asyncio.Event()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "the server is not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        self._idle.set()
        self._server = await asyncio.start_server(
            self._serve_connection, self._host, self._port, ssl=self._ssl, limit=READ_SIZE
        )

    async def stop(self, grace: float) -> int:
        """Stop accepting, let running commands finish (up to `grace` seconds), then close.

        Returns how many commands were still running when it gave up waiting.
        """
        if self._server is not None:
            self._server.close()
        began = time.monotonic()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("%d commands still running after %.0f s; leaving them", self._busy, grace)
        left = self._busy
        background = self._handler.operations
        remaining = max(grace - (time.monotonic() - began), 0)
        left += await asyncio.get_running_loop().run_in_executor(
            None, background.wait_idle, remaining
        )
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)
        return left

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = _peer(writer)
        if len(self._connections) >= self._max_connections:
            log.warning("refused %s: %d connections already open", peer, len(self._connections))
            busy = TooManyConnections(f"too many connections ({self._max_connections}); retry")
            writer.write(encode(error_fields(busy)))
            await _close(writer)
            return
        self._connections.add(task)
        splitter = JsonObjectSplitter(self._limit)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._idle_timeout
        try:
            while data := await _read_by(reader, deadline):
                if frames := splitter.feed(data):
                    if watcher := await self._answer_all(frames, writer, peer):
                        await self._stream_events(watcher, reader, writer)
                        return
                    deadline = loop.time() + self._idle_timeout
            if watcher := await self._answer_all(splitter.finish(), writer, peer):
                self._events.close(watcher)  # the client has closed its side: nothing to watch
        except TimeoutError:
            log.info("closed %s: no complete request for %.0f s", peer, self._idle_timeout)
        except (ConnectionError, ssl.SSLError) as error:
            log.debug("connection %s ended: %s", peer, error)
        except asyncio.CancelledError:
            log.debug("connection %s closed at shutdown", peer)
        finally:
            self._connections.discard(task)
            await _close(writer)

    async def _answer_all(
        self, frames: list[Frame], writer: asyncio.StreamWriter, peer: str
    ) -> Watcher | None:
        """Answer each request in order; a watch request ends the list and returns its watcher."""
        for frame in frames:
            if frame.kind is FrameKind.OBJECT:
                prepared = self._handler.prepare(frame.data)
            elif frame.kind is FrameKind.TOO_LARGE:
                prepared = failed(RequestTooLarge(frame.reason))
            else:
                prepared = failed(InvalidJson(frame.reason))
            watcher = self._events.open(prepared.watch) if prepared.watch else None
            began = time.monotonic()
            reply = await self._run(prepared, writer)
            _audit(peer, prepared, reply, time.monotonic() - began)
            try:
                writer.write(encode(reply))
                if writer.transport.get_write_buffer_size() > READ_SIZE:
                    async with asyncio.timeout(self._idle_timeout):
                        await writer.drain()
            except BaseException:
                if watcher is not None:
                    self._events.close(watcher)
                raise
            if watcher is not None:
                return watcher
        return None

    async def _stream_events(
        self, watcher: Watcher, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # keep what the kernel buffers for one watcher small, too
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WATCH_SEND_BUFFER)
        try:
            await watcher.stream(reader, writer, self._idle_timeout)
        finally:
            self._events.close(watcher)

    async def _run(self, prepared: Prepared, writer: asyncio.StreamWriter) -> Reply:
        if prepared.waits is not None:
            return await prepared.reply_later()
        if not prepared.slow:
            return prepared.reply()
        self._busy += 1
        self._idle.clear()
        try:
            loop = asyncio.get_running_loop()
            if not prepared.progress:
                return await asyncio.shield(loop.run_in_executor(self._executor, prepared.reply))
            pump = InterimPump(writer, prepared.request_id, self._idle_timeout)
            pumping = asyncio.create_task(pump.run())
            try:
                return await asyncio.shield(
                    loop.run_in_executor(self._executor, prepared.reply, pump.report)
                )
            finally:
                await pump.finish(pumping)
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()


async def _read_by(reader: asyncio.StreamReader, deadline: float) -> bytes:
    async with asyncio.timeout_at(deadline):
        return await reader.read(READ_SIZE)


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5)


def _audit(peer: str, prepared: Prepared, reply: Reply, seconds: float) -> None:
    """One structured line per request: who, what, result, how long. Never the token."""
    result = reply.get("code", "ok") if reply["error"] else "ok"
    level = logging.INFO if prepared.slow or reply["error"] else logging.DEBUG
    if audit.isEnabledFor(level):
        audit.log(
            level,
            "peer=%s command=%s target=%s result=%s duration_ms=%.1f",
            peer,
            json.dumps(prepared.command),
            json.dumps(prepared.target),
            result,
            seconds * 1000,
        )


class ServerThread:
    """Run a SocketServer on its own event loop in a thread: for embedding and for tests."""

    def __init__(self, server: SocketServer, grace: float = 30.0) -> None:
        self._server = server
        self._grace = grace
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vcm-server")

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(self._grace), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
