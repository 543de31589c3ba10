"""A Python client for the vcm daemon, over its JSON-over-TCP protocol.

    from vcm.client import Client

    with Client("127.0.0.1", 12121) as vcm:
        box = vcm.create_box("vcm/bookworm-test", shell=["echo hello > /etc/motd"])
        vm = vcm.start_vm(box.box_id)
        print(vm.vm_id, vm.ip, vm.hostname)
        vcm.destroy_vm(vm.vm_id)

This package only speaks the wire protocol: it needs neither Vagrant nor the daemon's code.
See docs/python-client.md.
"""

from vcm.client._async import AsyncClient
from vcm.client._calls import FileSource, PuppetSource, ShellSource
from vcm.client._events import AsyncEventStream, EventStream
from vcm.client._operations import AsyncOperation, Operation
from vcm.client._sync import Client
from vcm.client._wire import DEFAULT_CONNECT_TIMEOUT, DEFAULT_HOST, DEFAULT_PORT
from vcm.client.errors import (
    ERRORS_BY_CODE,
    BoxNotFound,
    BoxUnavailable,
    Cancelled,
    Failure,
    InternalError,
    InvalidJson,
    InvalidRequest,
    IpPoolExhausted,
    LocalFileError,
    OperationNotFound,
    ProtocolError,
    RequestTooLarge,
    Unauthorized,
    UnknownCommand,
    Unsupported,
    VagrantError,
    VcmConnectionError,
    VcmError,
    VcmTimeout,
    VmNotFound,
)
from vcm.client.models import (
    DYNAMIC_HOSTNAME,
    Box,
    BulkResult,
    CreatedBox,
    DestroyedBox,
    DestroyedVm,
    Event,
    ExecResult,
    FileProvisioner,
    Network,
    OperationInfo,
    OperationState,
    ProgressLine,
    PuppetProvisioner,
    ShellProvisioner,
    SnapshotResult,
    SshInfo,
    StoppedVm,
    Vm,
    VmState,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DYNAMIC_HOSTNAME",
    "ERRORS_BY_CODE",
    "AsyncClient",
    "AsyncEventStream",
    "AsyncOperation",
    "Box",
    "BoxNotFound",
    "BoxUnavailable",
    "BulkResult",
    "Cancelled",
    "Client",
    "CreatedBox",
    "DestroyedBox",
    "DestroyedVm",
    "Event",
    "EventStream",
    "ExecResult",
    "Failure",
    "FileProvisioner",
    "FileSource",
    "InternalError",
    "InvalidJson",
    "InvalidRequest",
    "IpPoolExhausted",
    "LocalFileError",
    "Network",
    "Operation",
    "OperationInfo",
    "OperationNotFound",
    "OperationState",
    "ProgressLine",
    "ProtocolError",
    "PuppetProvisioner",
    "PuppetSource",
    "RequestTooLarge",
    "ShellProvisioner",
    "ShellSource",
    "SnapshotResult",
    "SshInfo",
    "StoppedVm",
    "Unauthorized",
    "UnknownCommand",
    "Unsupported",
    "VagrantError",
    "VcmConnectionError",
    "VcmError",
    "VcmTimeout",
    "Vm",
    "VmNotFound",
    "VmState",
]
