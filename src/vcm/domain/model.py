"""Boxes (VM templates), VMs and the whole state the daemon keeps."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from vcm.domain.errors import InvalidRequest


class Network(enum.StrEnum):
    PRIVATE = "private"
    NONE = "none"


class VmState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DESTROYING = "destroying"
    ERROR = "error"


TRANSITIONAL_STATES = frozenset({VmState.STARTING, VmState.STOPPING, VmState.DESTROYING})


def _exactly_one(kind: str, **options: str | None) -> None:
    given = [name for name, value in options.items() if value is not None]
    if len(given) != 1:
        names = " or ".join(f"'{name}'" for name in options)
        raise InvalidRequest(f"a {kind} provisioner needs exactly one of {names}")


@dataclass(frozen=True)
class FileProvisioner:
    destination: str
    source: str | None = None
    content: str | None = None

    def __post_init__(self) -> None:
        _exactly_one("file", source=self.source, content=self.content)
        if not self.destination or any(c in self.destination for c in "\r\n"):
            raise InvalidRequest("a file provisioner needs a non-empty one-line 'destination'")
        if self.source == "":
            raise InvalidRequest("a file provisioner's 'source' must not be empty")


@dataclass(frozen=True)
class ShellProvisioner:
    inline: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        _exactly_one("shell", inline=self.inline, path=self.path)


@dataclass(frozen=True)
class PuppetProvisioner:
    manifest: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        _exactly_one("puppet", manifest=self.manifest, path=self.path)


DYNAMIC_HOSTNAME = "dynamic"


@dataclass(frozen=True)
class BoxDefinition:
    box: str
    files: tuple[FileProvisioner, ...] = ()
    puppet: tuple[PuppetProvisioner, ...] = ()
    shell: tuple[ShellProvisioner, ...] = ()
    network: Network = Network.PRIVATE
    hostname: str = DYNAMIC_HOSTNAME

    def host_paths(self) -> list[str]:
        """Every path on the daemon's host that the provisioners read."""
        provisioners = (*self.files, *self.puppet, *self.shell)
        paths = [getattr(p, "source", None) for p in provisioners]
        paths += [getattr(p, "path", None) for p in provisioners]
        return [path for path in paths if path is not None]


@dataclass(frozen=True)
class Box:
    box_id: str
    definition: BoxDefinition
    vms_started: int = 0
    removing: bool = False


@dataclass(frozen=True)
class Vm:
    vm_id: str
    box_id: str
    box: str
    ip: IPv4Address | None
    hostname: str
    state: VmState
    provisioned: bool = False
    detail: str = ""


@dataclass
class State:
    """Everything the daemon knows. Records are immutable; a change replaces them."""

    box_counter: int = 0
    boxes: dict[str, Box] = field(default_factory=dict)
    vms: dict[str, Vm] = field(default_factory=dict)

    def copy(self) -> State:
        return State(self.box_counter, dict(self.boxes), dict(self.vms))

    def vms_of(self, box_id: str) -> list[Vm]:
        return [vm for vm in self.vms.values() if vm.box_id == box_id]

    def leased_ips(self) -> set[IPv4Address]:
        return {vm.ip for vm in self.vms.values() if vm.ip is not None}
