"""`Client`: the blocking client, over plain sockets."""

from __future__ import annotations

import itertools
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from vcm.client import _calls
from vcm.client._calls import AllVerb, FileSource, PuppetSource, ShellSource
from vcm.client._events import EventStream
from vcm.client._operations import Operation
from vcm.client._wire import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    READ_SIZE,
    Call,
    ConnectionLost,
    Endpoint,
    Reply,
    ReplyReader,
    TlsOption,
    closed_before_reply,
    connect_failed,
    encode,
    ignore_progress,
    listener,
    timed_out,
    tls_context,
    tls_failed,
)
from vcm.client.errors import VcmConnectionError, VcmTimeout
from vcm.client.models import (
    DYNAMIC_HOSTNAME,
    Box,
    BulkResult,
    CreatedBox,
    DestroyedBox,
    DestroyedVm,
    ExecResult,
    Network,
    OperationInfo,
    ProgressLine,
    SnapshotResult,
    SshInfo,
    StoppedVm,
    Vm,
)

T = TypeVar("T")
_Progress = Callable[[str], None]


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = ReplyReader()
        self.reused = False

    @classmethod
    def open(
        cls, host: str, port: int, connect_timeout: float, tls: ssl.SSLContext | None
    ) -> _Connection:
        """Connect, then with `tls` shake hands; `connect_timeout` bounds both together."""
        deadline = time.monotonic() + connect_timeout
        try:
            sock = socket.create_connection((host, port), timeout=connect_timeout)
        except OSError as error:
            raise VcmConnectionError(connect_failed(host, port, error, connect_timeout)) from error
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if tls is None:
            return cls(sock)
        try:
            sock.settimeout(_remaining(deadline))
            return cls(tls.wrap_socket(sock, server_hostname=host))
        except OSError as error:
            sock.close()
            raise VcmConnectionError(tls_failed(host, port, error, connect_timeout)) from error

    def closed_by_peer(self) -> bool:
        """Idle, the daemon never sends; anything readable means it closed (or broke) the line."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def send(self, data: bytes, deadline: float | None) -> None:
        self._sock.settimeout(_remaining(deadline))
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise
        except OSError as error:
            raise ConnectionLost(sending=True) from error

    def receive(self, request_id: int, deadline: float | None, on_progress: _Progress) -> Reply:
        while (reply := self._reader.reply_for(request_id, on_progress)) is None:
            self._reader.feed(self._recv(deadline))
        self.reused = True
        return reply

    def next_line(self) -> Reply:
        """The next line the daemon sends, however long it takes; ConnectionLost at its end."""
        while (line := self._reader.next_line()) is None:
            self._reader.feed(self._recv(None))
        return line

    def _recv(self, deadline: float | None) -> bytes:
        self._sock.settimeout(_remaining(deadline))
        try:
            data = self._sock.recv(READ_SIZE)
        except TimeoutError:
            raise
        except OSError as error:
            raise ConnectionLost(sending=False) from error
        if not data:
            raise ConnectionLost(sending=False)
        return data

    def close(self) -> None:
        self._sock.close()


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


class Client:
    """A blocking client for the vcm daemon.

    One connection is opened on first use and kept for the next calls; calls from several
    threads at once each get a connection of their own, since the daemon carries out the
    requests of one connection one after another. If the daemon closed an idle connection (it
    was restarted, say), the client reconnects once. Use it as a context manager, or call
    `close()`.

    `timeout` bounds each operation (``None``: wait as long as the daemon works; starting a VM
    can take minutes), `connect_timeout` only connecting (the TCP connect and any TLS
    handshake). `token` is sent with every request, for a daemon run with ``VCM_AUTH_TOKEN``.
    `on_progress` receives the progress lines a daemon streams before a reply.

    `tls=True` speaks TLS, for a daemon run with ``VCM_TLS_CERT``: its certificate must name
    `host` and chain to a CA of the system's or, given `tls_ca` (a PEM file), to one of those.
    An `ssl.SSLContext` is used as it is. A certificate that does not verify is a
    `VcmConnectionError` saying so; an unreadable `tls_ca` raises `LocalFileError` here.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        token: str | None = None,
        on_progress: Callable[[str], None] | None = None,
        tls: TlsOption = False,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._token = token
        self._tls = tls_context(tls, tls_ca)
        self._on_progress = on_progress or ignore_progress
        self._ids = itertools.count(1)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls,
        *,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        on_progress: Callable[[str], None] | None = None,
    ) -> Client:
        """A client for ``VCM_HOST``, ``VCM_PORT``, ``VCM_AUTH_TOKEN``, ``VCM_TLS`` (``1`` or
        ``true``) and ``VCM_TLS_CA`` (a CA file; implies TLS), each optional."""
        endpoint = Endpoint.from_env()
        return cls(
            endpoint.host,
            endpoint.port,
            timeout=timeout,
            connect_timeout=connect_timeout,
            token=endpoint.token,
            on_progress=on_progress,
            tls=endpoint.tls,
            tls_ca=endpoint.tls_ca,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the idle connections. The client stays usable: a later call reconnects."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # Boxes

    def create_box(
        self,
        box: str,
        *,
        files: Iterable[FileSource] = (),
        puppet: Iterable[PuppetSource] = (),
        shell: Iterable[ShellSource] = (),
        network: Network | str = Network.PRIVATE,
        hostname: str = DYNAMIC_HOSTNAME,
        cpus: int | None = None,
        memory: int | None = None,
    ) -> CreatedBox:
        """Define a box: a Vagrant box name plus the provisioners every VM started from it gets.

        `files` items are ``(local path, guest destination)`` pairs (the file's text is sent,
        so this works against a remote daemon) or `FileProvisioner`. A `shell` or `puppet`
        item that is a ``str`` is the script or manifest itself; a ``Path`` is a local file
        whose text is sent; `ShellProvisioner`/`PuppetProvisioner` give the wire form directly
        (``path=`` names a file on the daemon's host). Provisioners run files, then puppet,
        then shell. `hostname` is ``"dynamic"`` or a DNS label used as a prefix. `cpus` and
        `memory` (MiB) size every VM of the box; the daemon refuses more than its host has.
        """
        return self._call(
            _calls.create_box(
                box,
                files=files,
                puppet=puppet,
                shell=shell,
                network=network,
                hostname=hostname,
                cpus=cpus,
                memory=memory,
            )
        )

    def list_boxes(self) -> list[Box]:
        """Every box, with its definition and the vmIDs of its VMs."""
        return self._call(_calls.list_boxes())

    def get_box(self, box_id: str) -> Box:
        """One box; `BoxNotFound` if there is none with that boxID."""
        return self._call(_calls.get_box(box_id))

    def destroy_box(self, box_id: str) -> DestroyedBox:
        """Destroy every VM of the box, then remove the box."""
        return self._call(_calls.destroy_box(box_id))

    # VMs

    def start_vm(
        self, box_id: str, *, progress: Callable[[ProgressLine], None] | None = None
    ) -> Vm:
        """Boot a new VM from a box; returns once it is up and provisioned.

        `progress` receives each line of Vagrant's output as it comes (with its VM and phase).
        """
        return self._call(_calls.start_vm(box_id, progress))

    def start_existing_vm(
        self, vm_id: str, *, progress: Callable[[ProgressLine], None] | None = None
    ) -> Vm:
        """Boot a stopped VM again (same IP and hostname, provisioners not re-run)."""
        return self._call(_calls.start_existing_vm(vm_id, progress))

    def stop_vm(self, vm_id: str) -> StoppedVm:
        """Shut a VM down; it keeps its vmID, IP and hostname until destroyed."""
        return self._call(_calls.stop_vm(vm_id))

    def destroy_vm(self, vm_id: str) -> DestroyedVm:
        """Destroy a VM for good and free its IP."""
        return self._call(_calls.destroy_vm(vm_id))

    def list_vms(self) -> list[Vm]:
        """Every VM that exists, stopped ones included."""
        return self._call(_calls.list_vms())

    def get_vm(self, vm_id: str) -> Vm:
        """One VM; `VmNotFound` if there is none with that vmID."""
        return self._call(_calls.get_vm(vm_id))

    # Lifecycle beyond start and stop

    def suspend_vm(self, vm_id: str) -> Vm:
        """Suspend a running VM; `Unsupported` if its provider cannot (docker, lxc)."""
        return self._call(_calls.vm_command("suspend", vm_id))

    def resume_vm(self, vm_id: str) -> Vm:
        """Resume a suspended VM; a running one is left as it is."""
        return self._call(_calls.vm_command("resume", vm_id))

    def reload_vm(self, vm_id: str) -> Vm:
        """Restart a VM (running, stopped or suspended), applying its definition again;
        provisioners do not run."""
        return self._call(_calls.vm_command("reload", vm_id))

    def provision_vm(self, vm_id: str) -> Vm:
        """Run the provisioners of a running VM again."""
        return self._call(_calls.vm_command("provision", vm_id))

    def save_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Save a snapshot; `Unsupported` if the provider has none (docker, lxc)."""
        return self._call(_calls.snapshot("save", vm_id, name))

    def restore_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Put the VM back as it was saved; provisioners do not run."""
        return self._call(_calls.snapshot("restore", vm_id, name))

    def delete_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Delete a snapshot."""
        return self._call(_calls.snapshot("delete", vm_id, name))

    def list_snapshots(self, vm_id: str) -> list[str]:
        """The names of the VM's snapshots."""
        return self._call(_calls.list_snapshots(vm_id))

    def exec(self, vm_id: str, argv: Iterable[str], *, timeout: int | None = None) -> ExecResult:
        """Run `argv` in a running VM, as its ssh user; returns once it ends.

        ``argv[0]`` is a program on the guest's PATH; use ``["sh", "-c", script]`` for shell
        syntax. `timeout` (seconds, default the daemon's 60) ends the command. A non-zero exit
        status is a result, not an error.
        """
        return self._call(_calls.exec_in_vm(vm_id, argv, timeout))

    def ssh_info(self, vm_id: str) -> SshInfo:
        """Host, port, user and key path to ``ssh`` into a running VM from the daemon's host."""
        return self._call(_calls.ssh_info(vm_id))

    # All VMs

    def halt_all(self) -> BulkResult:
        """Shut every VM down.

        If some fail, raises the error of the first failure, with `done` and `failed` set.
        """
        return self._all("halt")

    def shutdown_all(self) -> BulkResult:
        """The same as `halt_all`."""
        return self._all("shutdown")

    def stop_all(self) -> BulkResult:
        """The same as `halt_all`."""
        return self._all("stop")

    def destroy_all(self) -> BulkResult:
        """Destroy every VM (the boxes stay). Partial failures raise as for `halt_all`."""
        return self._all("destroy")

    # Background operations and events

    def start_vm_async(self, box_id: str) -> Operation[Vm]:
        """Start a VM in the background; the handle's `result()` is the `Vm`."""
        return self._submit(_calls.start_vm(box_id))

    def start_existing_vm_async(self, vm_id: str) -> Operation[Vm]:
        return self._submit(_calls.start_existing_vm(vm_id))

    def stop_vm_async(self, vm_id: str) -> Operation[StoppedVm]:
        return self._submit(_calls.stop_vm(vm_id))

    def destroy_vm_async(self, vm_id: str) -> Operation[DestroyedVm]:
        return self._submit(_calls.destroy_vm(vm_id))

    def destroy_box_async(self, box_id: str) -> Operation[DestroyedBox]:
        return self._submit(_calls.destroy_box(box_id))

    def operation(self, operation_id: str) -> Operation[dict[str, Any]]:
        """A handle on an operation by its ID (`OperationNotFound` if the daemon has none)."""
        info = self._call(_calls.operation(operation_id))
        return Operation(self._call, self.timeout, info, dict)

    def operations(self) -> list[OperationInfo]:
        """The operations the daemon remembers, oldest first, without output or reply."""
        return self._call(_calls.operations())

    def watch(self, *, box_id: str | None = None, vm_id: str | None = None) -> EventStream:
        """Watch lifecycle events on a connection of its own: iterate over the result, and
        close it (or use ``with``) to stop. It is watching by the time this returns.

        Only events about `box_id` (and its VMs) and/or `vm_id`, when given.
        """
        call = _calls.watch(box_id, vm_id)
        connection = self._open()
        request_id = next(self._ids)
        data = encode(call.payload, request_id, self._token)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            call.result(self._attempt(connection, call, request_id, data, deadline))
        except ConnectionLost as lost:
            raise self._lost(call, connection) from lost
        except TimeoutError as error:
            message = timed_out(self.host, self.port, call.command, self.timeout)
            raise VcmTimeout(message) from error
        return EventStream(connection.next_line, connection.close)

    def _submit(self, call: Call[T]) -> Operation[T]:
        info = self._call(_calls.in_background(call))
        return Operation(self._call, self.timeout, info, call.parse)

    # Anything else

    def request(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send any command with its fields and return the reply as a dict.

        For commands a newer daemon offers that this client has no method for yet. An error
        reply raises its exception like every other method.
        """
        return self._call(_calls.raw(command, fields))

    def _all(self, verb: AllVerb) -> BulkResult:
        return self._call(_calls.all_vms(verb))

    def _call(self, call: Call[T]) -> T:
        request_id = next(self._ids)
        data = encode(call.payload, request_id, self._token)
        try:
            reply = self._exchange(call, request_id, data)
        except TimeoutError as error:
            message = timed_out(self.host, self.port, call.command, self.timeout)
            raise VcmTimeout(message) from error
        return call.result(reply)

    def _exchange(self, call: Call[Any], request_id: int, data: bytes) -> Reply:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        connection = self._take()
        try:
            reply = self._attempt(connection, call, request_id, data, deadline)
        except ConnectionLost as lost:
            if not lost.may_resend(call, connection.reused):
                raise self._lost(call, connection) from lost
            connection = self._open()
            try:
                reply = self._attempt(connection, call, request_id, data, deadline)
            except ConnectionLost as again:
                raise self._lost(call, connection) from again
        with self._lock:
            self._idle.append(connection)
        return reply

    def _attempt(
        self,
        connection: _Connection,
        call: Call[Any],
        request_id: int,
        data: bytes,
        deadline: float | None,
    ) -> Reply:
        try:
            connection.send(data, deadline)
            return connection.receive(request_id, deadline, listener(self._on_progress, call))
        except BaseException:
            connection.close()
            raise

    def _take(self) -> _Connection:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return self._open()
        if connection.closed_by_peer():
            connection.close()
            return self._open()
        return connection

    def _open(self) -> _Connection:
        return _Connection.open(self.host, self.port, self.connect_timeout, self._tls)

    def _lost(self, call: Call[Any], connection: _Connection) -> VcmConnectionError:
        maybe_tls = self._tls is None and not connection.reused
        return VcmConnectionError(
            closed_before_reply(self.host, self.port, call.command, maybe_tls=maybe_tls)
        )
