"""Event streams (``watch``): a connection of their own that yields events until closed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from vcm.client import _calls
from vcm.client._wire import ConnectionLost, Reply
from vcm.client.models import Event


class EventStream:
    """Lifecycle events from the daemon, as an iterator; it is already watching when created.

    Iteration ends when the daemon closes the connection (after a ``dropped`` event, say).
    Close it, or use it as a context manager, to stop watching.
    """

    def __init__(self, next_line: Callable[[], Reply], close: Callable[[], None]) -> None:
        self._next_line = next_line
        self._close = close

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        try:
            return _calls.event(self._next_line())
        except ConnectionLost:
            raise StopIteration from None

    def close(self) -> None:
        self._close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncEventStream:
    """The asyncio twin of `EventStream`: ``async for event in stream``."""

    def __init__(
        self, next_line: Callable[[], Awaitable[Reply]], close: Callable[[], Awaitable[None]]
    ) -> None:
        self._next_line = next_line
        self._close = close

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return _calls.event(await self._next_line())
        except ConnectionLost:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        await self._close()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
