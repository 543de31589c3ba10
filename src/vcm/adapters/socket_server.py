"""The TCP server: frames requests, answers each in order, never lets one client stall another."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

from vcm.adapters.framing import Frame, FrameKind, JsonObjectSplitter
from vcm.adapters.protocol import (
    InvalidJson,
    Prepared,
    Reply,
    RequestHandler,
    RequestTooLarge,
    encode,
    failed,
)

log = logging.getLogger(__name__)

READ_SIZE = 65536


class SocketServer:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        host: str,
        port: int,
        max_request_bytes: int,
        workers: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._limit = max_request_bytes
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
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("%d commands still running after %.0f s; leaving them", self._busy, grace)
        left = self._busy
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
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        splitter = JsonObjectSplitter(self._limit)
        try:
            while data := await reader.read(READ_SIZE):
                await self._answer_all(splitter.feed(data), writer)
            await self._answer_all(splitter.finish(), writer)
        except (ConnectionError, ssl.SSLError) as error:
            log.debug("connection %s ended: %s", peer, error)
        except asyncio.CancelledError:
            log.debug("connection %s closed at shutdown", peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    async def _answer_all(self, frames: list[Frame], writer: asyncio.StreamWriter) -> None:
        for frame in frames:
            if frame.kind is FrameKind.OBJECT:
                prepared = self._handler.prepare(frame.data)
            elif frame.kind is FrameKind.TOO_LARGE:
                prepared = failed(RequestTooLarge(frame.reason))
            else:
                prepared = failed(InvalidJson(frame.reason))
            writer.write(encode(await self._run(prepared)))
            await writer.drain()

    async def _run(self, prepared: Prepared) -> Reply:
        if not prepared.slow:
            return prepared.reply()
        self._busy += 1
        self._idle.clear()
        try:
            loop = asyncio.get_running_loop()
            return await asyncio.shield(loop.run_in_executor(self._executor, prepared.reply))
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()


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
