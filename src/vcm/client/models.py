"""What the daemon replies, as frozen dataclasses with Python names for the wire's fields."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeVar

_OpenEnum = TypeVar("_OpenEnum", bound=enum.StrEnum)


def _unknown_member(cls: type[_OpenEnum], value: object) -> _OpenEnum | None:
    """A value a newer daemon may send, kept as a member of its own instead of failing."""
    if not isinstance(value, str):
        return None
    unknown = str.__new__(cls, value)
    unknown._name_ = value.upper()
    unknown._value_ = value
    return unknown


class VmState(enum.StrEnum):
    """A VM's state. A state a newer daemon reports that this client does not know still parses."""

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

    @classmethod
    def _missing_(cls, value: object) -> VmState | None:
        return _unknown_member(cls, value)


class Network(enum.StrEnum):
    """``PRIVATE``: a static address from the daemon's pool; ``NONE``: no private network."""

    PRIVATE = "private"
    NONE = "none"


DYNAMIC_HOSTNAME = "dynamic"


@dataclass(frozen=True)
class FileProvisioner:
    """Copy a file into the guest: from `content` (text), or from `source` on the daemon's host.

    `source` is relative to the daemon's files directory; remote clients send `content`, which
    `create_box` does for local files given as ``(path, destination)``.
    """

    destination: str
    source: str | None = None
    content: str | None = None


@dataclass(frozen=True)
class ShellProvisioner:
    """Run a shell script in the guest: `inline` text, or `path` on the daemon's host."""

    inline: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class PuppetProvisioner:
    """Apply a Puppet manifest in the guest: `manifest` text, or `path` on the daemon's host."""

    manifest: str | None = None
    path: str | None = None


Provisioner = FileProvisioner | ShellProvisioner | PuppetProvisioner


def provisioner_json(provisioner: Provisioner) -> dict[str, str]:
    """The wire form of a provisioner: its fields that are set."""
    return {key: value for key, value in vars(provisioner).items() if value is not None}


@dataclass(frozen=True)
class Vm:
    """A VM as the daemon reports it (``start``, ``info VM ...``)."""

    vm_id: str
    box_id: str
    box: str
    ip: str | None
    hostname: str
    state: VmState
    detail: str | None = None
    """Why the VM is in ``error``, or what the last failed command on it said."""

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names (``vmID``, ``IP``, ...)."""
        entry: dict[str, Any] = {
            "vmID": self.vm_id,
            "boxID": self.box_id,
            "box": self.box,
            "IP": self.ip,
            "hostname": self.hostname,
            "state": str(self.state),
        }
        if self.detail is not None:
            entry["detail"] = self.detail
        return entry


@dataclass(frozen=True)
class Box:
    """A box (a VM template) with its definition and the VMs started from it that still exist."""

    box_id: str
    box: str
    files: tuple[FileProvisioner, ...]
    puppet: tuple[PuppetProvisioner, ...]
    shell: tuple[ShellProvisioner, ...]
    network: Network
    hostname: str
    vm_ids: tuple[str, ...]
    cpus: int | None = None
    """CPUs each VM may use; None: the provider's default."""
    memory: int | None = None
    """Memory each VM may use, in MiB; None: the provider's default."""

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {
            "boxID": self.box_id,
            "box": self.box,
            "files": [provisioner_json(item) for item in self.files],
            "puppet": [provisioner_json(item) for item in self.puppet],
            "shell": [provisioner_json(item) for item in self.shell],
            "network": str(self.network),
            "hostname": self.hostname,
            "cpus": self.cpus,
            "memory": self.memory,
            "vmIDs": list(self.vm_ids),
        }


@dataclass(frozen=True)
class CreatedBox:
    """The reply to ``create``."""

    box_id: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {"boxID": self.box_id, "message": self.message}


@dataclass(frozen=True)
class StoppedVm:
    """The reply to ``stop`` (and ``halt``, ``shutdown``) of one VM."""

    vm_id: str
    box_id: str
    state: VmState
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {
            "vmID": self.vm_id,
            "boxID": self.box_id,
            "state": str(self.state),
            "message": self.message,
        }


@dataclass(frozen=True)
class DestroyedVm:
    """The reply to ``destroy`` of one VM."""

    vm_id: str
    box_id: str
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {"vmID": self.vm_id, "boxID": self.box_id, "message": self.message}


@dataclass(frozen=True)
class DestroyedBox:
    """The reply to ``destroy`` of a box: the vmIDs destroyed with it."""

    box_id: str
    vm_ids: tuple[str, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {"boxID": self.box_id, "VMS": list(self.vm_ids), "message": self.message}


@dataclass(frozen=True)
class BulkResult:
    """The reply to a command on all VMs: the vmIDs it acted on."""

    vm_ids: tuple[str, ...]
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {"VMS": list(self.vm_ids), "message": self.message}


@dataclass(frozen=True)
class SnapshotResult:
    """The reply to ``snapshot`` ``save``, ``restore`` or ``delete``."""

    vm_id: str
    box_id: str
    name: str
    state: VmState
    """The VM's state afterwards (a restore may start or stop it)."""
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {
            "vmID": self.vm_id,
            "boxID": self.box_id,
            "name": self.name,
            "state": str(self.state),
            "message": self.message,
        }


@dataclass(frozen=True)
class ExecResult:
    """The reply to ``exec``: how the command ended and what it wrote (decoded as UTF-8)."""

    vm_id: str
    exit_status: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    """The command wrote more than the daemon keeps; `stdout` is its beginning."""
    stderr_truncated: bool
    timed_out: bool
    """The command ran out of its timeout and was ended (`exit_status` is then 124 or 137)."""
    message: str

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {
            "vmID": self.vm_id,
            "exitStatus": self.exit_status,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "stdoutTruncated": self.stdout_truncated,
            "stderrTruncated": self.stderr_truncated,
            "timedOut": self.timed_out,
            "message": self.message,
        }


@dataclass(frozen=True)
class SshInfo:
    """The reply to ``ssh-info``: how to ``ssh`` into a running VM from the daemon's host."""

    vm_id: str
    host: str
    port: int
    user: str
    key_path: str
    """The private key's path on the daemon's host."""

    def command(self) -> list[str]:
        """An ``ssh`` command line that logs in (run it on the daemon's host)."""
        return ["ssh", "-i", self.key_path, "-p", str(self.port), f"{self.user}@{self.host}"]

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        return {
            "vmID": self.vm_id,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "keyPath": self.key_path,
        }


class ProgressLine(str):
    """An interim line the daemon sent before a reply: the text of one line of Vagrant's output
    (it is a ``str``), with the VM it is about and the phase of the start."""

    vm_id: str | None
    phase: str | None

    def __new__(cls, line: str, vm_id: str | None = None, phase: str | None = None) -> ProgressLine:
        text = super().__new__(cls, line)
        text.vm_id = vm_id
        text.phase = phase
        return text


class OperationState(enum.StrEnum):
    """A background operation's state; ``interrupted``: the daemon stopped while it ran."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @classmethod
    def _missing_(cls, value: object) -> OperationState | None:
        return _unknown_member(cls, value)


@dataclass(frozen=True)
class OperationInfo:
    """What the daemon reports on a background operation (``operation``)."""

    operation_id: str
    command: str
    target: str
    state: OperationState
    created: str
    finished: str | None
    cancellable: bool
    vm_id: str | None
    box_id: str | None
    phase: str | None
    output: tuple[str, ...]
    reply: dict[str, Any] | None
    """The reply the request would have had, once the operation has ended."""

    @property
    def done(self) -> bool:
        return self.state != OperationState.RUNNING

    def to_json(self) -> dict[str, Any]:
        """The wire form, with the protocol's field names."""
        fields: dict[str, Any] = {
            "operationID": self.operation_id,
            "command": self.command,
            "target": self.target,
            "state": str(self.state),
            "created": self.created,
            "finished": self.finished,
            "cancellable": self.cancellable,
        }
        for name, value in (("vmID", self.vm_id), ("boxID", self.box_id), ("phase", self.phase)):
            if value is not None:
                fields[name] = value
        fields["output"] = list(self.output)
        if self.reply is not None:
            fields["reply"] = self.reply
        return fields


@dataclass(frozen=True)
class Event:
    """One line of the event stream (``watch``): `kind` such as ``vm-running``."""

    kind: str
    seq: int | None
    time: str
    vm_id: str | None
    box_id: str | None
    fields: dict[str, Any]
    """Every field as sent, such as ``state``, ``IP`` or ``operationID``."""

    def to_json(self) -> dict[str, Any]:
        return dict(self.fields)
