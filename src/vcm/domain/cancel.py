"""Cancellation of a running use case: whoever runs it holds a scope, backends honour it.

The scope travels with the running thread's context, so the use cases and the ports need no
extra parameter: a backend asks `current_scope()` before it starts something long and registers
how to interrupt it while it runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from vcm.domain.errors import Cancelled

Interrupt = Callable[[], None]


class CancelScope:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._interrupts: list[Interrupt] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Mark the scope cancelled and interrupt whatever runs in it now."""
        with self._lock:
            self._cancelled.set()
            interrupts = list(self._interrupts)
        for interrupt in interrupts:
            interrupt()

    def check(self, what: str) -> None:
        """Raise Cancelled instead of starting `what` once the scope is cancelled."""
        if self.cancelled:
            raise Cancelled(f"cancelled before {what} began")

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds` or until cancelled; True if cancelled."""
        return self._cancelled.wait(seconds)

    @contextmanager
    def interruptible(self, interrupt: Interrupt) -> Iterator[None]:
        """While the block runs, cancelling calls `interrupt` (at once if already cancelled)."""
        with self._lock:
            self._interrupts.append(interrupt)
            already = self.cancelled
        if already:
            interrupt()
        try:
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)


_NEVER = CancelScope()
_current: ContextVar[CancelScope] = ContextVar("vcm_cancel_scope", default=_NEVER)


def current_scope() -> CancelScope:
    """The scope of the running use case; one that is never cancelled outside any."""
    return _current.get()


@contextmanager
def running_in(scope: CancelScope) -> Iterator[CancelScope]:
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
