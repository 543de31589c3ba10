"""Background operations: a request run apart from its connection, kept as a record to query,
wait on or cancel, and saved (a bounded history) so that a restart reports what it interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.progress import PhaseTracker
from vcm.domain.cancel import CancelScope, running_in
from vcm.domain.errors import InvalidRequest, OperationNotFound, StateError
from vcm.domain.events import Event, now
from vcm.domain.ports import EventSink, NoEvents, OutputLine, Progress

log = logging.getLogger(__name__)

SCHEMA = 1
HISTORY = 200
OUTPUT_LINES = 50
LINE_CHARS = 2000
Reply = dict[str, Any]
Run = Callable[[Progress], Reply]
INTERRUPTED_REPLY: Reply = {
    "error": True,
    "code": "INTERNAL",
    "message": "the daemon stopped while this operation ran; at its next start it reconciled "
    "the VMs with Vagrant (see info for what is left)",
}


class OperationState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


@dataclass
class Operation:
    operation_id: str
    command: str
    target: str
    cancellable: bool
    created: str
    box_id: str | None = None
    vm_id: str | None = None
    state: OperationState = OperationState.RUNNING
    finished: str | None = None
    phase: str | None = None
    reply: Reply | None = None
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    scope: CancelScope = field(default_factory=CancelScope)
    waiters: list[Callable[[], None]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state == OperationState.RUNNING

    def to_json(self) -> Reply:
        fields: Reply = {
            "operationID": self.operation_id,
            "command": self.command,
            "target": self.target,
            "state": str(self.state),
            "created": self.created,
            "finished": self.finished,
            "cancellable": self.cancellable and self.running,
        }
        for name, value in (("boxID", self.box_id), ("vmID", self.vm_id), ("phase", self.phase)):
            if value is not None:
                fields[name] = value
        fields["output"] = list(self.output)
        if self.reply is not None:
            fields["reply"] = self.reply
        return fields

    @classmethod
    def from_json(cls, data: Reply) -> Operation:
        operation = cls(
            operation_id=str(data["operationID"]),
            command=str(data["command"]),
            target=str(data["target"]),
            cancellable=False,
            created=str(data["created"]),
            box_id=data.get("boxID"),
            vm_id=data.get("vmID"),
            state=OperationState(data["state"]),
            finished=data.get("finished"),
            phase=data.get("phase"),
            reply=data.get("reply"),
        )
        operation.output.extend(str(line) for line in data.get("output", []))
        return operation


def _final_state(reply: Reply) -> OperationState:
    if not reply.get("error"):
        return OperationState.SUCCEEDED
    if reply.get("code") == "CANCELLED":
        return OperationState.CANCELLED
    return OperationState.FAILED


class OperationManager:
    """Runs operations on its own worker threads; thread-safe."""

    def __init__(
        self,
        *,
        path: Path | None = None,
        events: EventSink | None = None,
        workers: int = 64,
        history: int = HISTORY,
    ) -> None:
        self._path = path
        self._events = events or NoEvents()
        self._history = history
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vcm-bg")
        self._counter = 0
        self._operations: dict[str, Operation] = {}
        self._load()

    @property
    def running(self) -> int:
        with self._lock:
            return sum(1 for operation in self._operations.values() if operation.running)

    def submit(
        self,
        command: str,
        target: str,
        run: Run,
        *,
        cancellable: bool,
        box_id: str | None = None,
        vm_id: str | None = None,
    ) -> Reply:
        """Start `run` in the background; return the new operation's record."""
        with self._lock:
            self._counter += 1
            operation = Operation(
                f"op-{self._counter}", command, target, cancellable, now(), box_id, vm_id
            )
            self._operations[operation.operation_id] = operation
            self._forget_old()
            self._save()
            described = operation.to_json()
        self._executor.submit(self._run, operation, run)
        return described

    def describe(self, operation_id: str) -> Reply:
        with self._lock:
            return self._get(operation_id).to_json()

    def all(self) -> list[Reply]:
        with self._lock:
            return [
                {k: v for k, v in operation.to_json().items() if k not in ("output", "reply")}
                for operation in self._operations.values()
            ]

    def cancel(self, operation_id: str) -> None:
        """Ask a running operation to stop; InvalidRequest where it cannot be."""
        with self._lock:
            operation = self._get(operation_id)
            if not operation.running:
                raise InvalidRequest(
                    f"operation {operation_id} has already ended: it {operation.state}"
                )
            if not operation.cancellable:
                raise InvalidRequest(
                    f"operation {operation_id} ({operation.command}) cannot be cancelled: "
                    "Vagrant cannot stop it safely half-way; wait for it to end"
                )
        log.info("cancelling operation %s (%s)", operation_id, operation.command)
        operation.scope.cancel()

    async def wait(self, operation_id: str, seconds: float) -> None:
        """Return once the operation has ended, or after `seconds`; never blocks the loop."""
        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        def settle() -> None:
            if not ended.done():
                ended.set_result(None)

        def wake() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle)

        with self._lock:
            operation = self._operations.get(operation_id)
            if operation is None or not operation.running:
                return
            operation.waiters.append(wake)
        try:
            await asyncio.wait_for(ended, seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock, contextlib.suppress(ValueError):
                operation.waiters.remove(wake)

    def wait_idle(self, seconds: float) -> int:
        """Wait until no operation runs, at most `seconds`; return how many still run."""
        deadline = time.monotonic() + seconds
        with self._idle:
            while (left := self._count_running()) and time.monotonic() < deadline:
                self._idle.wait(max(deadline - time.monotonic(), 0.01))
        return left

    def _run(self, operation: Operation, run: Run) -> None:
        tracker = PhaseTracker()

        def progress(line: str) -> None:
            with self._lock:
                operation.output.append(str(line)[:LINE_CHARS])
                operation.phase = tracker.see(line)
                if isinstance(line, OutputLine):
                    operation.vm_id = line.vm_id

        with running_in(operation.scope):
            try:
                reply = run(progress)
            except Exception as error:  # run() answers every failure; this is a last resort
                log.exception("operation %s failed unexpectedly", operation.operation_id)
                reply = {"error": True, "code": "INTERNAL", "message": f"internal error: {error}"}
        reply.pop("id", None)
        self._finish(operation, reply)

    def _finish(self, operation: Operation, reply: Reply) -> None:
        with self._lock:
            operation.reply = reply
            operation.state = _final_state(reply)
            operation.finished = now()
            if operation.vm_id is None and isinstance(reply.get("vmID"), str):
                operation.vm_id = reply["vmID"]
            waiters, operation.waiters = operation.waiters, []
            self._save()
            self._idle.notify_all()
        log.info("operation %s %s", operation.operation_id, operation.state)
        self._events.publish(self._finished_event(operation))
        for wake in waiters:
            wake()

    @staticmethod
    def _finished_event(operation: Operation) -> Event:
        box_id = operation.box_id
        if box_id is None and operation.reply is not None:
            box_id = operation.reply.get("boxID")
        return Event(
            "operation-finished",
            box_id=box_id,
            vm_id=operation.vm_id,
            extra=(
                ("operationID", operation.operation_id),
                ("command", operation.command),
                ("target", operation.target),
                ("state", str(operation.state)),
            ),
        )

    def _count_running(self) -> int:
        return sum(1 for operation in self._operations.values() if operation.running)

    def _get(self, operation_id: str) -> Operation:
        operation = self._operations.get(operation_id)
        if operation is None:
            raise OperationNotFound(operation_id)
        return operation

    def _forget_old(self) -> None:
        ended = [key for key, operation in self._operations.items() if not operation.running]
        for key in ended[: max(len(self._operations) - self._history, 0)]:
            del self._operations[key]

    def _save(self) -> None:
        if self._path is None:
            return
        document = {
            "schema": SCHEMA,
            "counter": self._counter,
            "operations": [operation.to_json() for operation in self._operations.values()],
        }
        try:
            write_atomically(self._path, json.dumps(document, separators=(",", ":")))
        except OSError as error:
            log.error("cannot save the operations to %s: %s", self._path, error)

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
            if document.get("schema") != SCHEMA:
                raise ValueError(f"schema {document.get('schema')!r}")
            operations = [Operation.from_json(item) for item in document["operations"]]
            self._counter = int(document["counter"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise StateError(
                f"the operations file {self._path} is not valid ({error!r}); "
                "repair it, or move it away to start with no history"
            ) from error
        for operation in operations:
            if operation.running:
                operation.state = OperationState.INTERRUPTED
                operation.finished = now()
                operation.reply = dict(INTERRUPTED_REPLY)
            self._operations[operation.operation_id] = operation
        self._save()
