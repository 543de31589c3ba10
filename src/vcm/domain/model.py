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
    SUSPENDING = "suspending"
    SUSPENDED = "suspended"
    RESUMING = "resuming"
    RELOADING = "reloading"
    PROVISIONING = "provisioning"


TRANSITIONAL_STATES = frozenset(
    {
        VmState.STARTING,
        VmState.STOPPING,
        VmState.DESTROYING,
        VmState.SUSPENDING,
        VmState.RESUMING,
        VmState.RELOADING,
        VmState.PROVISIONING,
    }
)


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
MIN_MEMORY_MIB = 64


@dataclass(frozen=True)
class Resources:
    """What each VM of a box may use: CPUs and memory in MiB; None leaves the provider's default."""

    cpus: int | None = None
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.cpus is not None and not _positive_int(self.cpus, 1):
            raise InvalidRequest(f"cpus must be a whole number of at least 1, not {self.cpus!r}")
        if self.memory is not None and not _positive_int(self.memory, MIN_MEMORY_MIB):
            raise InvalidRequest(
                f"memory must be a whole number of MiB, at least {MIN_MEMORY_MIB}, "
                f"not {self.memory!r}"
            )


def _positive_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass(frozen=True)
class HostCapacity:
    """What the daemon's host has: a box may not ask any VM for more."""

    cpus: int
    memory: int

    def check(self, resources: Resources) -> None:
        if resources.cpus is not None and resources.cpus > self.cpus:
            raise InvalidRequest(
                f"cpus {resources.cpus} is more than this host has ({self.cpus} CPUs)"
            )
        if resources.memory is not None and resources.memory > self.memory:
            raise InvalidRequest(
                f"memory {resources.memory} MiB is more than this host has ({self.memory} MiB)"
            )


@dataclass(frozen=True)
class BoxDefinition:
    box: str
    files: tuple[FileProvisioner, ...] = ()
    puppet: tuple[PuppetProvisioner, ...] = ()
    shell: tuple[ShellProvisioner, ...] = ()
    network: Network = Network.PRIVATE
    hostname: str = DYNAMIC_HOSTNAME
    resources: Resources = Resources()

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
