"""The ports: what the domain needs from Vagrant, the state store and the host's files."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol

from vcm.domain.events import Event
from vcm.domain.model import BoxDefinition, State

Progress = Callable[[str], None]


class OutputLine(str):
    """A line of a backend's output that knows which VM it came from; prints as the line."""

    vm_id: str

    def __new__(cls, text: str, vm_id: str) -> OutputLine:
        line = super().__new__(cls, text)
        line.vm_id = vm_id
        return line


def no_progress(line: str) -> None:
    del line


class MachineStatus(enum.StrEnum):
    NOT_CREATED = "not_created"
    RUNNING = "running"
    STOPPED = "stopped"
    OTHER = "other"


@dataclass(frozen=True)
class Machine:
    """What a backend needs to bring one VM into being."""

    vm_id: str
    definition: BoxDefinition
    hostname: str
    ip: IPv4Address | None
    prefix_length: int


class VagrantPort(Protocol):
    """A backend that runs VMs: real Vagrant, or the simulated one."""

    def ensure_box(self, box: str) -> None:
        """Make the box available, adding it if needed; BoxUnavailable if it cannot."""

    def create(self, machine: Machine, progress: Progress) -> None:
        """Create, boot and provision a new machine."""

    def boot(self, vm_id: str, progress: Progress) -> None:
        """Boot an existing machine again, without provisioning."""

    def halt(self, vm_id: str) -> None: ...

    def destroy(self, vm_id: str) -> None:
        """Remove the machine and everything kept for it; succeeds if it is already gone."""

    def status(self, vm_id: str) -> MachineStatus: ...

    def machines(self) -> list[str]:
        """The vmIDs the backend holds anything for."""


class StateStore(Protocol):
    def load(self) -> State:
        """The saved state, or an empty one when nothing was saved yet; StateError if unreadable."""

    def save(self, state: State) -> None:
        """Replace the saved state atomically; StateError if it cannot."""


class HostFiles(Protocol):
    def check(self, path: str) -> None:
        """InvalidRequest unless `path` names a readable file inside the allowed directory."""


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Pass `event` on to whoever listens; never blocks for long, never raises."""


class NoEvents:
    def publish(self, event: Event) -> None:
        del event
