"""The socket protocol: one JSON request in, one JSON reply out, errors mapped in one table."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vcm.adapters.codec import definition_to_json, vm_to_json
from vcm.adapters.events import WatchFilter
from vcm.adapters.operations import OperationManager
from vcm.adapters.requests import (
    CreateRequest,
    Envelope,
    ExecRequest,
    InfoRequest,
    OperationRequest,
    RequestId,
    SnapshotRequest,
    TargetRequest,
    VmRequest,
    WatchRequest,
    parse,
)
from vcm.domain.errors import (
    BackendError,
    BoxNotFound,
    BoxUnavailable,
    Cancelled,
    InvalidRequest,
    OperationNotFound,
    PoolExhausted,
    StateError,
    Unsupported,
    VcmError,
    VmNotFound,
    WrongState,
)
from vcm.domain.model import Vm
from vcm.domain.ports import Progress, no_progress
from vcm.domain.service import BoxView, BulkResult, VcmService

log = logging.getLogger(__name__)

Reply = dict[str, Any]


class InvalidJson(VcmError):
    pass


class UnknownCommand(VcmError):
    pass


class RequestTooLarge(VcmError):
    pass


class Unauthorized(VcmError):
    pass


class TooManyConnections(VcmError):
    pass


ERROR_CODES: dict[type[VcmError], str] = {
    InvalidJson: "INVALID_JSON",
    InvalidRequest: "INVALID_REQUEST",
    WrongState: "INVALID_REQUEST",
    UnknownCommand: "UNKNOWN_COMMAND",
    RequestTooLarge: "REQUEST_TOO_LARGE",
    Unauthorized: "UNAUTHORIZED",
    BoxNotFound: "BOX_NOT_FOUND",
    VmNotFound: "VM_NOT_FOUND",
    BoxUnavailable: "BOX_UNAVAILABLE",
    PoolExhausted: "IP_POOL_EXHAUSTED",
    BackendError: "VAGRANT_ERROR",
    Unsupported: "UNSUPPORTED",
    StateError: "INTERNAL",
    TooManyConnections: "INTERNAL",
    Cancelled: "CANCELLED",
    OperationNotFound: "OPERATION_NOT_FOUND",
}


def error_code(error: Exception) -> str:
    for kind in type(error).__mro__:
        if kind in ERROR_CODES:
            return ERROR_CODES[kind]
    return "INTERNAL"


def error_fields(error: Exception) -> Reply:
    code = error_code(error)
    if code == "INTERNAL" and not isinstance(error, VcmError):
        log.error("internal error", exc_info=error)
        return {"error": True, "code": code, "message": f"internal error: {type(error).__name__}"}
    return {"error": True, "code": code, "message": str(error)}


def encode(reply: Reply) -> bytes:
    text = json.dumps(reply, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
    return (text + "\n").encode()


@dataclass(frozen=True)
class Prepared:
    """A parsed request: `run` computes its reply; `slow` ones belong on a worker thread.

    `progress`: the client asked for interim progress lines, which `run` reports to the
    callback it gets. `waits`: the reply is awaited on the event loop instead (it waits for
    something else to happen). `watch`: after its reply the connection streams events.
    """

    request_id: RequestId | None
    command: str
    run: Callable[[Progress], Reply]
    slow: bool
    target: str = ""
    progress: bool = False
    waits: Callable[[], Awaitable[Reply]] | None = None
    watch: WatchFilter | None = None

    def reply(self, progress: Progress = no_progress) -> Reply:
        if self.waits is not None:
            return asyncio.run(self.reply_later())
        try:
            fields = self.run(progress)
        except Exception as error:  # every failure becomes a reply, never a dropped connection
            fields = error_fields(error)
        return self._final(fields)

    async def reply_later(self) -> Reply:
        assert self.waits is not None
        try:
            fields = await self.waits()
        except Exception as error:
            fields = error_fields(error)
        return self._final(fields)

    def _final(self, fields: Reply) -> Reply:
        reply: Reply = {"error": fields.pop("error", False)}
        if self.request_id is not None:
            reply["id"] = self.request_id
        reply.update(fields)
        return reply


def failed(error: Exception, request_id: RequestId | None = None) -> Prepared:
    def raise_it(_: Progress) -> Reply:
        raise error

    return Prepared(request_id, "", raise_it, slow=False)


_ALL_FORMS = {"destroy all", "halt all", "shutdown all", "stop all"}
_STOP_VERBS = {"stop": "shutdown", "halt": "halted", "shutdown": "shutdown"}
_TARGETS = {
    "start": ("vmID", "boxID"),
    "stop": ("vmID", "subcommand"),
    "halt": ("vmID", "subcommand"),
    "shutdown": ("vmID", "subcommand"),
    "destroy": ("vmID", "boxID", "subcommand"),
}
_ONE_VM_CHANGES = ("suspend", "resume", "reload", "provision")
_ENVELOPE = ("command", "id", "token", "progress", "async")


class RequestHandler:
    def __init__(
        self,
        service: VcmService,
        token: str | None = None,
        operations: OperationManager | None = None,
    ) -> None:
        self._service = service
        self._token = token
        self.operations = operations or OperationManager()
        self._commands: dict[str, tuple[Callable[[dict[str, Any]], Reply], bool]] = {
            "create": (self._create, True),
            "start": (self._start, True),
            "stop": (self._stop, True),
            "halt": (self._stop, True),
            "shutdown": (self._stop, True),
            "destroy": (self._destroy, True),
            "info": (self._info, False),
            "suspend": (self._suspend, True),
            "resume": (self._resume, True),
            "reload": (self._reload, True),
            "provision": (self._provision, True),
            "snapshot": (self._snapshot, True),
            "exec": (self._exec, True),
            "ssh-info": (self._ssh_info, True),
            "operation": (self._operation_list, False),
            "watch": (self._watch, False),
        }
        self._reporting: dict[str, Callable[[dict[str, Any], Progress], Reply]] = {
            "start": self._start,
        }

    def handle(self, raw: bytes) -> Reply:
        return self.prepare(raw).reply()

    def prepare(self, raw: bytes) -> Prepared:
        try:
            data = _decode(raw)
            request_id = _request_id(data)
        except VcmError as error:
            return failed(error)
        try:
            envelope = parse(Envelope, {k: data[k] for k in _ENVELOPE if k in data})
            self._authorize(envelope.token)
            command = _normalize(data)
            handler, slow = self._commands[command]
        except VcmError as error:
            return failed(error, request_id)
        except KeyError:
            return failed(
                UnknownCommand(
                    f"unknown command {data['command']!r}; known: "
                    f"{', '.join(sorted(self._commands))}"
                ),
                request_id,
            )
        try:
            special = self._special(envelope, command, data, request_id)
        except VcmError as error:
            return failed(error, request_id)
        if special is not None:
            return special
        run = self._runner(command, data, handler)
        return Prepared(request_id, command, run, slow, _target(data), progress=envelope.progress)

    def _runner(
        self, command: str, data: dict[str, Any], handler: Callable[[dict[str, Any]], Reply]
    ) -> Callable[[Progress], Reply]:
        reporting = self._reporting.get(command)
        if reporting is not None:
            return lambda progress: reporting(data, progress)
        return lambda _: handler(data)

    def _special(
        self, envelope: Envelope, command: str, data: dict[str, Any], request_id: RequestId | None
    ) -> Prepared | None:
        """The background, waiting and watching forms of a request; None for the others."""
        if envelope.background:
            return self._background(envelope, command, data, request_id)
        if command == "operation" and data.get("operationID") is not None:
            request = parse(OperationRequest, data)
            return Prepared(
                request_id,
                command,
                _answered_later,
                slow=False,
                target=_target(data),
                waits=lambda: self._operation(request),
            )
        if command == "watch":
            watch = parse(WatchRequest, data)
            where = WatchFilter(watch.boxID, watch.vmID)
            return Prepared(
                request_id, command, lambda _: self._watch(data), False, _target(data), watch=where
            )
        return None

    def _background(
        self, envelope: Envelope, command: str, data: dict[str, Any], request_id: RequestId | None
    ) -> Prepared:
        if command not in (*_TARGETS, *_ONE_VM_CHANGES, "create"):
            raise InvalidRequest(
                f"'async' is for create, start, stop, halt, shutdown, destroy, "
                f"{', '.join(_ONE_VM_CHANGES)}; not '{command}'"
            )
        if envelope.progress:
            raise InvalidRequest(
                "'progress' and 'async' do not go together: ask the operation for its output"
            )
        if command == "create":
            self._service.check_box(parse(CreateRequest, data).definition())
        elif command in _ONE_VM_CHANGES:
            parse(VmRequest, data)
        else:
            _only(parse(TargetRequest, data), command, *_TARGETS[command])
        body = {k: v for k, v in data.items() if k not in ("id", "async", "progress")}
        run = self._runner(command, body, self._commands[command][0])
        inner = Prepared(None, command, run, slow=True)

        def submit(_: Progress) -> Reply:
            record = self.operations.submit(
                command,
                _target(data),
                inner.reply,
                cancellable=command == "start",
                box_id=data.get("boxID"),
                vm_id=data.get("vmID"),
            )
            return {**record, "message": f"{command} runs as operation {record['operationID']}"}

        return Prepared(request_id, command, submit, slow=True, target=_target(data))

    def _authorize(self, token: str | None) -> None:
        if self._token is None:
            return
        if token is None or not hmac.compare_digest(token.encode(), self._token.encode()):
            raise Unauthorized("this daemon needs a valid 'token' in every request")

    def _create(self, data: dict[str, Any]) -> Reply:
        box = self._service.create_box(parse(CreateRequest, data).definition())
        return {
            "boxID": box.box_id,
            "message": f"created box {box.box_id} from {box.definition.box}",
        }

    def _start(self, data: dict[str, Any], progress: Progress = no_progress) -> Reply:
        request = parse(TargetRequest, data)
        _only(request, "start", "vmID", "boxID")
        if request.boxID is not None:
            vm = self._service.start_vm(request.boxID, progress)
        else:
            assert request.vmID is not None
            vm = self._service.start_existing(request.vmID, progress)
        return {**vm_entry(vm), "message": f"started VM {vm.vm_id} successfully"}

    def _stop(self, data: dict[str, Any]) -> Reply:
        request = parse(TargetRequest, data)
        _only(request, request.command, "vmID", "subcommand")
        if request.subcommand == "all":
            return bulk_reply("shut down", self._service.stop_all())
        assert request.vmID is not None
        vm = self._service.stop_vm(request.vmID)
        verb = _STOP_VERBS[request.command]
        return {
            "vmID": vm.vm_id,
            "boxID": vm.box_id,
            "state": str(vm.state),
            "message": f"{verb} VM {vm.vm_id} successfully",
        }

    def _destroy(self, data: dict[str, Any]) -> Reply:
        request = parse(TargetRequest, data)
        _only(request, "destroy", "vmID", "boxID", "subcommand")
        if request.subcommand == "all":
            return bulk_reply("destroyed", self._service.destroy_all())
        if request.boxID is not None:
            result = self._service.destroy_box(request.boxID)
            reply = bulk_reply("destroyed", result)
            if not result.failed:
                reply["message"] = f"removed box {request.boxID} and its {_vms(result.done)}"
            return {"boxID": request.boxID, **reply}
        assert request.vmID is not None
        vm = self._service.destroy_vm(request.vmID)
        return {
            "vmID": vm.vm_id,
            "boxID": vm.box_id,
            "message": f"destroyed VM {vm.vm_id} successfully",
        }

    def _suspend(self, data: dict[str, Any]) -> Reply:
        vm = self._service.suspend_vm(parse(VmRequest, data).vmID)
        return {**vm_entry(vm), "message": f"suspended VM {vm.vm_id} successfully"}

    def _resume(self, data: dict[str, Any]) -> Reply:
        vm = self._service.resume_vm(parse(VmRequest, data).vmID)
        return {**vm_entry(vm), "message": f"resumed VM {vm.vm_id} successfully"}

    def _reload(self, data: dict[str, Any]) -> Reply:
        vm = self._service.reload_vm(parse(VmRequest, data).vmID)
        return {**vm_entry(vm), "message": f"reloaded VM {vm.vm_id} successfully"}

    def _provision(self, data: dict[str, Any]) -> Reply:
        vm = self._service.provision_vm(parse(VmRequest, data).vmID)
        return {**vm_entry(vm), "message": f"provisioned VM {vm.vm_id} successfully"}

    def _snapshot(self, data: dict[str, Any]) -> Reply:
        request = parse(SnapshotRequest, data)
        if request.subcommand == "list":
            if request.name is not None:
                raise InvalidRequest("'snapshot' 'list' takes no 'name'")
            names = self._service.list_snapshots(request.vmID)
            count = f"{len(names)} snapshot" + ("" if len(names) == 1 else "s")
            return {
                "vmID": request.vmID,
                "snapshots": names,
                "message": f"VM {request.vmID} has {count}",
            }
        if request.name is None:
            raise InvalidRequest(f"'snapshot' '{request.subcommand}' needs a 'name'")
        act = {
            "save": (self._service.save_snapshot, "saved"),
            "restore": (self._service.restore_snapshot, "restored"),
            "delete": (self._service.delete_snapshot, "deleted"),
        }
        action, done = act[request.subcommand]
        vm = action(request.vmID, request.name)
        return {
            "vmID": vm.vm_id,
            "boxID": vm.box_id,
            "name": request.name,
            "state": str(vm.state),
            "message": f"{done} snapshot {request.name} of VM {vm.vm_id}",
        }

    def _exec(self, data: dict[str, Any]) -> Reply:
        request = parse(ExecRequest, data)
        result = self._service.exec_in_vm(request.vmID, request.argv, request.timeout)
        ending = "timed out" if result.timed_out else f"exited {result.exit_status}"
        return {
            "vmID": request.vmID,
            "exitStatus": result.exit_status,
            "stdout": result.stdout,
            "stderr": result.stderr,
            "stdoutTruncated": result.stdout_truncated,
            "stderrTruncated": result.stderr_truncated,
            "timedOut": result.timed_out,
            "message": f"{request.argv[0]} in VM {request.vmID} {ending}",
        }

    def _ssh_info(self, data: dict[str, Any]) -> Reply:
        vm_id = parse(VmRequest, data).vmID
        info = self._service.ssh_info(vm_id)
        return {
            "vmID": vm_id,
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "keyPath": info.key_path,
            "message": f"ssh -i {info.key_path} -p {info.port} {info.user}@{info.host}",
        }

    def _operation_list(self, data: dict[str, Any]) -> Reply:
        request = parse(OperationRequest, data)
        if request.subcommand != "all" or request.wait is not None or request.cancel:
            raise InvalidRequest("'operation' needs 'operationID', or 'subcommand': 'all' alone")
        operations = self.operations.all()
        return {"operations": operations, "message": f"listed {len(operations)} operations"}

    async def _operation(self, request: OperationRequest) -> Reply:
        assert request.operationID is not None
        if request.subcommand is not None:
            raise InvalidRequest("'operation' takes 'operationID' or 'subcommand', not both")
        operation_id = request.operationID
        self.operations.describe(operation_id)
        if request.cancel:
            self.operations.cancel(operation_id)
        if request.wait:
            await self.operations.wait(operation_id, request.wait)
        record = self.operations.describe(operation_id)
        message = f"operation {operation_id} ({record['command']}) is {record['state']}"
        if request.cancel and record["state"] == "running":
            message += "; it is being cancelled"
        return {**record, "message": message}

    def _watch(self, data: dict[str, Any]) -> Reply:
        request = parse(WatchRequest, data)
        about = [f"{k} {v}" for k, v in (("boxID", request.boxID), ("vmID", request.vmID)) if v]
        scope = f" about {' and '.join(about)}" if about else ""
        return {"message": f"watching events{scope} until you close the connection"}

    def _info(self, data: dict[str, Any]) -> Reply:
        request = parse(InfoRequest, data)
        kind, _, target = request.subcommand.strip().partition(" ")
        target = target.strip()
        if kind.lower() == "vm" and target:
            vms = self._service.list_vms() if target == "all" else [self._service.get_vm(target)]
            return {
                "VMS": [vm_entry(vm) for vm in vms],
                "message": f"listed information on {_vms(vms, 'active ')}",
            }
        if kind.lower() == "box" and target:
            boxes = (
                self._service.list_boxes() if target == "all" else [self._service.get_box(target)]
            )
            count = f"{len(boxes)} box" + ("" if len(boxes) == 1 else "es")
            return {
                "boxes": [box_entry(view) for view in boxes],
                "message": f"listed information on {count}",
            }
        raise InvalidRequest(
            "subcommand must be 'VM all', 'VM <vmID>', 'box all' or 'box <boxID>', "
            f"not {request.subcommand!r}"
        )


def _answered_later(_: Progress) -> Reply:
    raise AssertionError("a waiting request is answered by reply_later")


def vm_entry(vm: Vm) -> Reply:
    """A VM as clients see it: the stored form without bookkeeping, `detail` only when set."""
    entry = vm_to_json(vm)
    del entry["provisioned"]
    if not entry["detail"]:
        del entry["detail"]
    return entry


def box_entry(view: BoxView) -> Reply:
    return {
        "boxID": view.box.box_id,
        **definition_to_json(view.box.definition),
        "vmIDs": list(view.vm_ids),
    }


def bulk_reply(verb: str, result: BulkResult) -> Reply:
    reply: Reply = {"VMS": list(result.done), "message": f"{verb} {_vms(result.done)}"}
    if result.failed:
        reply["failed"] = [
            {"vmID": vm_id, **{k: v for k, v in error_fields(error).items() if k != "error"}}
            for vm_id, error in result.failed
        ]
        reply["error"] = True
        reply["code"] = error_code(result.failed[0][1])
        reply["message"] += f"; {len(result.failed)} failed: {result.failed[0][1]}"
    return reply


def _vms(items: object, adjective: str = "") -> str:
    count = len(items)  # type: ignore[arg-type]
    return f"{count} {adjective}VM" + ("" if count == 1 else "s")


def _target(data: dict[str, Any]) -> str:
    for field in ("vmID", "boxID", "subcommand", "box"):
        if isinstance(data.get(field), str):
            return str(data[field])[:200]
    return ""


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except UnicodeDecodeError as error:
        raise InvalidJson(
            f"a request must be UTF-8: {error.reason} at byte {error.start}"
        ) from error
    except (ValueError, RecursionError) as error:
        raise InvalidJson(f"not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise InvalidJson("a request must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw) and not _is_unicode(data):
        raise InvalidRequest("strings must be Unicode text: a lone \\u surrogate is not")
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


def _is_unicode(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _request_id(data: dict[str, Any]) -> RequestId | None:
    value = data.get("id")
    if value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool)):
        return value
    raise InvalidRequest("'id' must be a string or a number")


def _normalize(data: dict[str, Any]) -> str:
    """Turn the one-string form ("destroy all") into command plus subcommand."""
    command = data["command"]
    if command in _ALL_FORMS:
        if data.get("subcommand", "all") != "all":
            raise InvalidRequest(f"'{command}' cannot take another subcommand")
        command = command.split()[0]
        data["command"] = command
        data["subcommand"] = "all"
    return str(command)


def _only(request: TargetRequest, command: str, *allowed: str) -> None:
    given = [name for name in ("vmID", "boxID", "subcommand") if getattr(request, name) is not None]
    if len(given) != 1 or given[0] not in allowed:
        options = " or ".join(f"'{name}'" for name in allowed).replace(
            "'subcommand'", "'subcommand': 'all'"
        )
        raise InvalidRequest(f"'{command}' needs exactly one of {options}")
