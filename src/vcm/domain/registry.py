"""The live state: consistent snapshots for readers, one writer at a time, saved on every change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from vcm.domain.events import changes
from vcm.domain.model import State
from vcm.domain.ports import EventSink, NoEvents, StateStore


class Registry:
    def __init__(self, store: StateStore, events: EventSink | None = None) -> None:
        self._store = store
        self._events = events or NoEvents()
        self._lock = threading.Lock()
        self._state = store.load()

    @property
    def state(self) -> State:
        """A snapshot; never mutate it, use change()."""
        return self._state

    @contextmanager
    def change(self) -> Iterator[State]:
        """Yield a draft; it becomes the state only once it is saved."""
        with self._lock:
            draft = self._state.copy()
            yield draft
            self._store.save(draft)
            before, self._state = self._state, draft
            for event in changes(before, draft):
                self._events.publish(event)


class KeyedLocks:
    """One lock per key (a vmID), created on demand and dropped when nobody holds it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def acquire(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        lock.acquire()

    def release(self, key: str) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
        lock.release()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        self.acquire(key)
        try:
            yield
        finally:
            self.release(key)
