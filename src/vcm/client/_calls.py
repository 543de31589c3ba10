"""Each command of the protocol as a `Call`: the request it sends and the result it reads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from vcm.client._wire import Call, Reply
from vcm.client.errors import BoxNotFound, LocalFileError, ProtocolError, VmNotFound
from vcm.client.models import (
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
    provisioner_json,
)

LocalPath = str | os.PathLike[str]
FileSource = FileProvisioner | tuple[LocalPath, str]
"""A `FileProvisioner`, or ``(local path, guest destination)``: the file is sent as content."""
ShellSource = ShellProvisioner | str | os.PathLike[str]
"""A `ShellProvisioner`, a ``str`` (an inline script), or a ``Path`` to a local script."""
PuppetSource = PuppetProvisioner | str | os.PathLike[str]
"""A `PuppetProvisioner`, a ``str`` (a manifest), or a ``Path`` to a local manifest."""
AllVerb = Literal["halt", "shutdown", "stop", "destroy"]
VmVerb = Literal["suspend", "resume", "reload", "provision"]
SnapshotVerb = Literal["save", "restore", "delete"]
T = TypeVar("T")


def create_box(
    box: str,
    *,
    files: Iterable[FileSource],
    puppet: Iterable[PuppetSource],
    shell: Iterable[ShellSource],
    network: Network | str,
    hostname: str,
    cpus: int | None = None,
    memory: int | None = None,
) -> Call[CreatedBox]:
    payload: dict[str, Any] = {
        "command": "create",
        "box": box,
        "files": [provisioner_json(_file(item)) for item in files],
        "puppet": [provisioner_json(_puppet(item)) for item in puppet],
        "shell": [provisioner_json(_shell(item)) for item in shell],
        "network": str(network),
        "hostname": hostname,
    }
    payload.update({k: v for k, v in (("cpus", cpus), ("memory", memory)) if v is not None})
    return Call(payload, lambda reply: CreatedBox(_str(reply, "boxID"), _message(reply)))


Progress = Callable[[ProgressLine], None] | None


def start_vm(box_id: str, progress: Progress = None) -> Call[Vm]:
    return _reporting({"command": "start", "boxID": box_id}, _vm, progress)


def start_existing_vm(vm_id: str, progress: Progress = None) -> Call[Vm]:
    return _reporting({"command": "start", "vmID": vm_id}, _vm, progress)


def _reporting(payload: dict[str, Any], parse: Callable[[Reply], T], progress: Progress) -> Call[T]:
    if progress is None:
        return Call(payload, parse)
    return Call({**payload, "progress": True}, parse, progress=progress)


def in_background(call: Call[Any]) -> Call[OperationInfo]:
    """The same request run as a background operation: the reply is the operation's record."""
    return Call({**call.payload, "async": True}, operation_info)


def operation(
    operation_id: str, *, wait: float | None = None, cancel: bool = False
) -> Call[OperationInfo]:
    payload: dict[str, Any] = {"command": "operation", "operationID": operation_id}
    if wait is not None:
        payload["wait"] = wait
    if cancel:
        payload["cancel"] = True
    return Call(payload, operation_info, read_only=not cancel)


def operations() -> Call[list[OperationInfo]]:
    return Call(
        {"command": "operation", "subcommand": "all"},
        lambda reply: _entries(reply, "operations", operation_info),
        read_only=True,
    )


def watch(box_id: str | None, vm_id: str | None) -> Call[Reply]:
    payload: dict[str, Any] = {"command": "watch"}
    if box_id is not None:
        payload["boxID"] = box_id
    if vm_id is not None:
        payload["vmID"] = vm_id
    return Call(payload, dict)


def operation_result(info: OperationInfo, parse: Callable[[Reply], T]) -> T:
    """What the request would have returned; its error if it failed (`Cancelled`, ...)."""
    if info.reply is None:
        raise ProtocolError(f"operation {info.operation_id} is {info.state}: no reply yet")
    return Call({}, parse).result(info.reply)


def operation_info(reply: Reply) -> OperationInfo:
    reply_field = reply.get("reply")
    return OperationInfo(
        operation_id=_str(reply, "operationID"),
        command=_str(reply, "command"),
        target=str(reply.get("target", "")),
        state=OperationState(_str(reply, "state")),
        created=_str(reply, "created"),
        finished=_optional(reply, "finished"),
        cancellable=bool(reply.get("cancellable", False)),
        vm_id=_optional(reply, "vmID"),
        box_id=_optional(reply, "boxID"),
        phase=_optional(reply, "phase"),
        output=tuple(str(line) for line in reply.get("output", ())),
        reply=reply_field if isinstance(reply_field, dict) else None,
    )


def event(line: Reply) -> Event:
    if not isinstance(line.get("event"), str):
        raise ProtocolError(f"the daemon sent a line that is not an event: {line}")
    seq = line.get("seq")
    return Event(
        kind=line["event"],
        seq=seq if isinstance(seq, int) else None,
        time=str(line.get("time", "")),
        vm_id=_optional(line, "vmID"),
        box_id=_optional(line, "boxID"),
        fields=line,
    )


def _optional(reply: Reply, field: str) -> str | None:
    value = reply.get(field)
    return None if value is None else str(value)


def stop_vm(vm_id: str) -> Call[StoppedVm]:
    return Call({"command": "stop", "vmID": vm_id}, _stopped)


def vm_command(verb: VmVerb, vm_id: str) -> Call[Vm]:
    return Call({"command": verb, "vmID": vm_id}, _vm)


def snapshot(verb: SnapshotVerb, vm_id: str, name: str) -> Call[SnapshotResult]:
    payload = {"command": "snapshot", "subcommand": verb, "vmID": vm_id, "name": name}
    return Call(payload, _snapshot)


def list_snapshots(vm_id: str) -> Call[list[str]]:
    payload = {"command": "snapshot", "subcommand": "list", "vmID": vm_id}
    return Call(payload, lambda reply: [str(name) for name in _list(reply, "snapshots")])


def exec_in_vm(vm_id: str, argv: Iterable[str], timeout: int | None) -> Call[ExecResult]:
    payload: dict[str, Any] = {"command": "exec", "vmID": vm_id, "argv": list(argv)}
    if timeout is not None:
        payload["timeout"] = timeout
    return Call(payload, _exec)


def ssh_info(vm_id: str) -> Call[SshInfo]:
    return Call({"command": "ssh-info", "vmID": vm_id}, _ssh_info, read_only=True)


def destroy_vm(vm_id: str) -> Call[DestroyedVm]:
    return Call({"command": "destroy", "vmID": vm_id}, _destroyed_vm)


def destroy_box(box_id: str) -> Call[DestroyedBox]:
    return Call({"command": "destroy", "boxID": box_id}, _destroyed_box)


def all_vms(verb: AllVerb) -> Call[BulkResult]:
    return Call({"command": verb, "subcommand": "all"}, _bulk)


def list_vms() -> Call[list[Vm]]:
    return Call(_info("VM all"), _vms, read_only=True)


def get_vm(vm_id: str) -> Call[Vm]:
    if not _is_one_id(vm_id):
        raise VmNotFound(f"no VM with vmID {vm_id!r}")
    return Call(_info(f"VM {vm_id}"), lambda reply: _only(_vms(reply), "VMS"), read_only=True)


def list_boxes() -> Call[list[Box]]:
    return Call(_info("box all"), _boxes, read_only=True)


def get_box(box_id: str) -> Call[Box]:
    if not _is_one_id(box_id):
        raise BoxNotFound(f"no box with boxID {box_id!r}")
    return Call(_info(f"box {box_id}"), lambda reply: _only(_boxes(reply), "boxes"), read_only=True)


def raw(command: str, fields: dict[str, Any]) -> Call[Reply]:
    return Call({**fields, "command": command}, dict, read_only=command == "info")


def _is_one_id(target: str) -> bool:
    """Whether ``info`` would read `target` as one ID, not as "all" or as nothing."""
    return bool(target) and target != "all" and target.split() == [target]


def _info(subcommand: str) -> dict[str, Any]:
    return {"command": "info", "subcommand": subcommand}


# Provisioners given by the caller


def _file(item: FileSource) -> FileProvisioner:
    if isinstance(item, FileProvisioner):
        return item
    local, destination = item
    return FileProvisioner(destination=destination, content=_read(local))


def _shell(item: ShellSource) -> ShellProvisioner:
    if isinstance(item, ShellProvisioner):
        return item
    if isinstance(item, str):
        return ShellProvisioner(inline=item)
    return ShellProvisioner(inline=_read(item))


def _puppet(item: PuppetSource) -> PuppetProvisioner:
    if isinstance(item, PuppetProvisioner):
        return item
    if isinstance(item, str):
        return PuppetProvisioner(manifest=item)
    return PuppetProvisioner(manifest=_read(item))


def _read(path: LocalPath) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise LocalFileError(f"{os.fspath(path)!r} is not UTF-8 text: {error.reason}") from error
    except OSError as error:
        raise LocalFileError(f"cannot read {os.fspath(path)!r}: {error.strerror}") from error


# Replies


def _vm(entry: Reply) -> Vm:
    ip = entry.get("IP")
    detail = entry.get("detail")
    return Vm(
        vm_id=_str(entry, "vmID"),
        box_id=_str(entry, "boxID"),
        box=_str(entry, "box"),
        ip=str(ip) if ip is not None else None,
        hostname=_str(entry, "hostname"),
        state=VmState(entry.get("state", VmState.RUNNING)),
        detail=str(detail) if detail else None,
    )


def _vms(reply: Reply) -> list[Vm]:
    return _entries(reply, "VMS", _vm)


def _box(entry: Reply) -> Box:
    return Box(
        box_id=_str(entry, "boxID"),
        box=_str(entry, "box"),
        files=tuple(FileProvisioner(**item) for item in _list(entry, "files")),
        puppet=tuple(PuppetProvisioner(**item) for item in _list(entry, "puppet")),
        shell=tuple(_shell_entry(item) for item in _list(entry, "shell")),
        network=Network(_str(entry, "network")),
        hostname=_str(entry, "hostname"),
        vm_ids=tuple(str(vm_id) for vm_id in entry.get("vmIDs", ())),
        cpus=_optional_int(entry, "cpus"),
        memory=_optional_int(entry, "memory"),
    )


def _shell_entry(item: str | dict[str, str]) -> ShellProvisioner:
    return ShellProvisioner(inline=item) if isinstance(item, str) else ShellProvisioner(**item)


def _boxes(reply: Reply) -> list[Box]:
    return _entries(reply, "boxes", _box)


def _entries(reply: Reply, field: str, parse: Callable[[Reply], T]) -> list[T]:
    try:
        return [parse(entry) for entry in _list(reply, field)]
    except (TypeError, ValueError, AttributeError) as error:
        raise ProtocolError(
            f"an entry of '{field}' does not follow the protocol: {error}"
        ) from error


def _stopped(reply: Reply) -> StoppedVm:
    return StoppedVm(
        vm_id=_str(reply, "vmID"),
        box_id=_str(reply, "boxID"),
        state=VmState(reply.get("state", VmState.STOPPED)),
        message=_message(reply),
    )


def _snapshot(reply: Reply) -> SnapshotResult:
    return SnapshotResult(
        vm_id=_str(reply, "vmID"),
        box_id=_str(reply, "boxID"),
        name=_str(reply, "name"),
        state=VmState(_str(reply, "state")),
        message=_message(reply),
    )


def _exec(reply: Reply) -> ExecResult:
    return ExecResult(
        vm_id=_str(reply, "vmID"),
        exit_status=_int(reply, "exitStatus"),
        stdout=_str(reply, "stdout"),
        stderr=_str(reply, "stderr"),
        stdout_truncated=_bool(reply, "stdoutTruncated"),
        stderr_truncated=_bool(reply, "stderrTruncated"),
        timed_out=_bool(reply, "timedOut"),
        message=_message(reply),
    )


def _ssh_info(reply: Reply) -> SshInfo:
    return SshInfo(
        vm_id=_str(reply, "vmID"),
        host=_str(reply, "host"),
        port=_int(reply, "port"),
        user=_str(reply, "user"),
        key_path=_str(reply, "keyPath"),
    )


def _destroyed_vm(reply: Reply) -> DestroyedVm:
    return DestroyedVm(_str(reply, "vmID"), _str(reply, "boxID"), _message(reply))


def _destroyed_box(reply: Reply) -> DestroyedBox:
    return DestroyedBox(_str(reply, "boxID"), _ids(reply), _message(reply))


def _bulk(reply: Reply) -> BulkResult:
    return BulkResult(_ids(reply), _message(reply))


def _ids(reply: Reply) -> tuple[str, ...]:
    return tuple(str(vm_id) for vm_id in _list(reply, "VMS"))


def _only(items: list[T], field: str) -> T:
    if len(items) != 1:
        raise ProtocolError(f"expected one entry in '{field}', got {len(items)}")
    return items[0]


def _list(reply: Reply, field: str) -> list[Any]:
    value = reply.get(field)
    if not isinstance(value, list):
        raise ProtocolError(f"the reply has no list '{field}': {reply}")
    return value


def _str(reply: Reply, field: str) -> str:
    value = reply.get(field)
    if not isinstance(value, str):
        raise ProtocolError(f"the reply has no string '{field}': {reply}")
    return value


def _int(reply: Reply, field: str) -> int:
    value = reply.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"the reply has no whole number '{field}': {reply}")
    return value


def _optional_int(reply: Reply, field: str) -> int | None:
    return None if reply.get(field) is None else _int(reply, field)


def _bool(reply: Reply, field: str) -> bool:
    value = reply.get(field)
    if not isinstance(value, bool):
        raise ProtocolError(f"the reply has no boolean '{field}': {reply}")
    return value


def _message(reply: Reply) -> str:
    return str(reply.get("message", ""))
