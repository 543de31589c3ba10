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
    SUSPENDED = "suspended"
    OTHER = "other"


@dataclass(frozen=True)
class Machine:
    """What a backend needs to bring one VM into being."""

    vm_id: str
    definition: BoxDefinition
    hostname: str
    ip: IPv4Address | None
    prefix_length: int


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a guest did; output beyond the backend's limit is cut off."""

    exit_status: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False


@dataclass(frozen=True)
class SshInfo:
    host: str
    port: int
    user: str
    key_path: str


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

    def suspend(self, vm_id: str) -> None:
        """Unsupported if the provider cannot suspend."""

    def resume(self, vm_id: str) -> None: ...

    def reload(self, vm_id: str, progress: Progress) -> None:
        """Restart the machine, applying its definition again, without provisioning."""

    def provision(self, vm_id: str, progress: Progress) -> None: ...

    def snapshot_save(self, vm_id: str, name: str) -> None:
        """Unsupported if the provider has no snapshots; likewise for the other snapshot calls."""

    def snapshot_restore(self, vm_id: str, name: str) -> None: ...

    def snapshot_delete(self, vm_id: str, name: str) -> None: ...

    def snapshot_list(self, vm_id: str) -> list[str]: ...

    def exec(self, vm_id: str, argv: list[str], timeout: int) -> ExecResult:
        """Run argv in the running guest; the guest kills it after `timeout` seconds."""

    def ssh_info(self, vm_id: str) -> SshInfo: ...

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
