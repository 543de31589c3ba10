"""Handles on background operations, for `Client` and `AsyncClient`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from vcm.client import _calls
from vcm.client._wire import Call, Reply
from vcm.client.errors import VcmTimeout
from vcm.client.models import OperationInfo

T = TypeVar("T")
MAX_WAIT = 3600.0


def wait_step(left: float | None, call_timeout: float | None) -> float:
    """How long one ``wait`` request may ask the daemon to wait."""
    step = MAX_WAIT if left is None else max(min(left, MAX_WAIT), 0.0)
    if call_timeout is not None:
        step = min(step, max(call_timeout * 0.8, 0.1))
    return step


def _not_done(info: OperationInfo, timeout: float | None) -> VcmTimeout:
    what = f"operation {info.operation_id} ({info.command})"
    return VcmTimeout(f"{what} is still {info.state} after {timeout or 0:g} s")


class Operation(Generic[T]):
    """A command the daemon runs in the background (`Client.start_vm_async`, ...).

    `info` is what was last heard of it; `wait()` blocks until it ends, `cancel()` asks the
    daemon to stop it (a start only), `result()` returns what the command would have returned,
    or raises its error (`Cancelled` if it was cancelled).
    """

    def __init__(
        self,
        call: Callable[[Call[OperationInfo]], OperationInfo],
        call_timeout: float | None,
        info: OperationInfo,
        parse: Callable[[Reply], T],
    ) -> None:
        self._call = call
        self._call_timeout = call_timeout
        self._parse = parse
        self.info = info

    @property
    def operation_id(self) -> str:
        return self.info.operation_id

    def refresh(self) -> OperationInfo:
        self.info = self._call(_calls.operation(self.operation_id))
        return self.info

    def wait(self, timeout: float | None = None) -> OperationInfo:
        """Wait until the operation has ended, or `timeout` seconds (None: as long as it takes)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.info.done:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            step = wait_step(left, self._call_timeout)
            self.info = self._call(_calls.operation(self.operation_id, wait=step))
        return self.info

    def cancel(self) -> OperationInfo:
        """Ask the daemon to stop the operation; `InvalidRequest` where it cannot."""
        self.info = self._call(_calls.operation(self.operation_id, cancel=True))
        return self.info

    def result(self, timeout: float | None = None) -> T:
        info = self.wait(timeout)
        if not info.done:
            raise _not_done(info, timeout)
        return _calls.operation_result(info, self._parse)


class AsyncOperation(Generic[T]):
    """The asyncio twin of `Operation`."""

    def __init__(
        self,
        call: Callable[[Call[OperationInfo]], Awaitable[OperationInfo]],
        call_timeout: float | None,
        info: OperationInfo,
        parse: Callable[[Reply], T],
    ) -> None:
        self._call = call
        self._call_timeout = call_timeout
        self._parse = parse
        self.info = info

    @property
    def operation_id(self) -> str:
        return self.info.operation_id

    async def refresh(self) -> OperationInfo:
        self.info = await self._call(_calls.operation(self.operation_id))
        return self.info

    async def wait(self, timeout: float | None = None) -> OperationInfo:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.info.done:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                break
            step = wait_step(left, self._call_timeout)
            self.info = await self._call(_calls.operation(self.operation_id, wait=step))
        return self.info

    async def cancel(self) -> OperationInfo:
        self.info = await self._call(_calls.operation(self.operation_id, cancel=True))
        return self.info

    async def result(self, timeout: float | None = None) -> T:
        info = await self.wait(timeout)
        if not info.done:
            raise _not_done(info, timeout)
        return _calls.operation_result(info, self._parse)
