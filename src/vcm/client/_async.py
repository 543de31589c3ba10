"""`AsyncClient`: the asyncio client, with the same methods as `Client`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import select
import socket
import ssl
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from vcm.client import _calls
from vcm.client._calls import AllVerb, FileSource, PuppetSource, ShellSource
from vcm.client._events import AsyncEventStream
from vcm.client._operations import AsyncOperation
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
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._stream = reader
        self._writer = writer
        self._reader = ReplyReader()
        self.reused = False

    @classmethod
    async def open(
        cls, host: str, port: int, connect_timeout: float, tls: ssl.SSLContext | None
    ) -> _Connection:
        """Connect, then with `tls` shake hands; `connect_timeout` bounds both together."""
        deadline = asyncio.get_running_loop().time() + connect_timeout
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(host, port)
        except OSError as error:
            raise VcmConnectionError(connect_failed(host, port, error, connect_timeout)) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if tls is None:
            return cls(reader, writer)
        try:
            async with asyncio.timeout_at(deadline):
                await writer.start_tls(tls, server_hostname=host)
        except OSError as error:
            writer.close()
            raise VcmConnectionError(tls_failed(host, port, error, connect_timeout)) from error
        return cls(reader, writer)

    def closed_by_peer(self) -> bool:
        """Idle, the daemon never sends; anything readable means it closed (or broke) the line.

        The socket itself is asked, since the loop may not have run since the hang-up.
        """
        if self._stream.at_eof() or self._writer.is_closing():
            return True
        sock = self._writer.get_extra_info("socket")
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError, TypeError):
            return True
        return bool(readable)

    async def send(self, data: bytes) -> None:
        try:
            self._writer.write(data)
            await self._writer.drain()
        except OSError as error:
            raise ConnectionLost(sending=True) from error

    async def receive(self, request_id: int, on_progress: _Progress) -> Reply:
        while (reply := self._reader.reply_for(request_id, on_progress)) is None:
            self._reader.feed(await self._recv())
        self.reused = True
        return reply

    async def next_line(self) -> Reply:
        while (line := self._reader.next_line()) is None:
            self._reader.feed(await self._recv())
        return line

    async def _recv(self) -> bytes:
        try:
            data = await self._stream.read(READ_SIZE)
        except OSError as error:
            raise ConnectionLost(sending=False) from error
        if not data:
            raise ConnectionLost(sending=False)
        return data

    def discard(self) -> None:
        self._writer.close()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class AsyncClient:
    """The asyncio twin of `Client`: the same methods, each a coroutine.

    Calls that run at the same time (``asyncio.gather``) each get a connection of their own, so
    the daemon carries them out in parallel; calls one after another reuse one connection. Use
    it as ``async with AsyncClient(...) as vcm:``, or ``await close()``. The options are those
    of `Client`, TLS included.
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

    @classmethod
    def from_env(
        cls,
        *,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        on_progress: Callable[[str], None] | None = None,
    ) -> AsyncClient:
        """A client configured from the environment; see `Client.from_env`."""
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

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the idle connections. The client stays usable: a later call reconnects."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    # Boxes

    async def create_box(
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
        """Define a box; see `Client.create_box`."""
        return await self._call(
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

    async def list_boxes(self) -> list[Box]:
        """Every box, with its definition and the vmIDs of its VMs."""
        return await self._call(_calls.list_boxes())

    async def get_box(self, box_id: str) -> Box:
        """One box; `BoxNotFound` if there is none with that boxID."""
        return await self._call(_calls.get_box(box_id))

    async def destroy_box(self, box_id: str) -> DestroyedBox:
        """Destroy every VM of the box, then remove the box."""
        return await self._call(_calls.destroy_box(box_id))

    # VMs

    async def start_vm(
        self, box_id: str, *, progress: Callable[[ProgressLine], None] | None = None
    ) -> Vm:
        """Boot a new VM from a box; see `Client.start_vm`."""
        return await self._call(_calls.start_vm(box_id, progress))

    async def start_existing_vm(
        self, vm_id: str, *, progress: Callable[[ProgressLine], None] | None = None
    ) -> Vm:
        """Boot a stopped VM again (same IP and hostname, provisioners not re-run)."""
        return await self._call(_calls.start_existing_vm(vm_id, progress))

    async def stop_vm(self, vm_id: str) -> StoppedVm:
        """Shut a VM down; it keeps its vmID, IP and hostname until destroyed."""
        return await self._call(_calls.stop_vm(vm_id))

    async def destroy_vm(self, vm_id: str) -> DestroyedVm:
        """Destroy a VM for good and free its IP."""
        return await self._call(_calls.destroy_vm(vm_id))

    async def list_vms(self) -> list[Vm]:
        """Every VM that exists, stopped ones included."""
        return await self._call(_calls.list_vms())

    async def get_vm(self, vm_id: str) -> Vm:
        """One VM; `VmNotFound` if there is none with that vmID."""
        return await self._call(_calls.get_vm(vm_id))

    # Lifecycle beyond start and stop

    async def suspend_vm(self, vm_id: str) -> Vm:
        """Suspend a running VM; `Unsupported` if its provider cannot (docker, lxc)."""
        return await self._call(_calls.vm_command("suspend", vm_id))

    async def resume_vm(self, vm_id: str) -> Vm:
        """Resume a suspended VM; a running one is left as it is."""
        return await self._call(_calls.vm_command("resume", vm_id))

    async def reload_vm(self, vm_id: str) -> Vm:
        """Restart a VM (running, stopped or suspended), applying its definition again;
        provisioners do not run."""
        return await self._call(_calls.vm_command("reload", vm_id))

    async def provision_vm(self, vm_id: str) -> Vm:
        """Run the provisioners of a running VM again."""
        return await self._call(_calls.vm_command("provision", vm_id))

    async def save_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Save a snapshot; `Unsupported` if the provider has none (docker, lxc)."""
        return await self._call(_calls.snapshot("save", vm_id, name))

    async def restore_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Put the VM back as it was saved; provisioners do not run."""
        return await self._call(_calls.snapshot("restore", vm_id, name))

    async def delete_snapshot(self, vm_id: str, name: str) -> SnapshotResult:
        """Delete a snapshot."""
        return await self._call(_calls.snapshot("delete", vm_id, name))

    async def list_snapshots(self, vm_id: str) -> list[str]:
        """The names of the VM's snapshots."""
        return await self._call(_calls.list_snapshots(vm_id))

    async def exec(
        self, vm_id: str, argv: Iterable[str], *, timeout: int | None = None
    ) -> ExecResult:
        """Run `argv` in a running VM, as its ssh user; returns once it ends.

        ``argv[0]`` is a program on the guest's PATH; use ``["sh", "-c", script]`` for shell
        syntax. `timeout` (seconds, default the daemon's 60) ends the command. A non-zero exit
        status is a result, not an error.
        """
        return await self._call(_calls.exec_in_vm(vm_id, argv, timeout))

    async def ssh_info(self, vm_id: str) -> SshInfo:
        """Host, port, user and key path to ``ssh`` into a running VM from the daemon's host."""
        return await self._call(_calls.ssh_info(vm_id))

    # All VMs

    async def halt_all(self) -> BulkResult:
        """Shut every VM down; partial failures raise as for `Client.halt_all`."""
        return await self._all("halt")

    async def shutdown_all(self) -> BulkResult:
        """The same as `halt_all`."""
        return await self._all("shutdown")

    async def stop_all(self) -> BulkResult:
        """The same as `halt_all`."""
        return await self._all("stop")

    async def destroy_all(self) -> BulkResult:
        """Destroy every VM (the boxes stay)."""
        return await self._all("destroy")

    # Background operations and events

    async def start_vm_async(self, box_id: str) -> AsyncOperation[Vm]:
        """Start a VM in the background; see `Client.start_vm_async`."""
        return await self._submit(_calls.start_vm(box_id))

    async def start_existing_vm_async(self, vm_id: str) -> AsyncOperation[Vm]:
        return await self._submit(_calls.start_existing_vm(vm_id))

    async def stop_vm_async(self, vm_id: str) -> AsyncOperation[StoppedVm]:
        return await self._submit(_calls.stop_vm(vm_id))

    async def destroy_vm_async(self, vm_id: str) -> AsyncOperation[DestroyedVm]:
        return await self._submit(_calls.destroy_vm(vm_id))

    async def destroy_box_async(self, box_id: str) -> AsyncOperation[DestroyedBox]:
        return await self._submit(_calls.destroy_box(box_id))

    async def operation(self, operation_id: str) -> AsyncOperation[dict[str, Any]]:
        info = await self._call(_calls.operation(operation_id))
        return AsyncOperation(self._call, self.timeout, info, dict)

    async def operations(self) -> list[OperationInfo]:
        return await self._call(_calls.operations())

    async def watch(
        self, *, box_id: str | None = None, vm_id: str | None = None
    ) -> AsyncEventStream:
        """Watch lifecycle events; see `Client.watch`. ``async for event in stream``."""
        call = _calls.watch(box_id, vm_id)
        connection = await self._open()
        request_id = next(self._ids)
        data = encode(call.payload, request_id, self._token)
        try:
            async with asyncio.timeout(self.timeout):
                call.result(await self._attempt(connection, call, request_id, data))
        except ConnectionLost as lost:
            raise self._lost(call, connection) from lost
        except TimeoutError as error:
            message = timed_out(self.host, self.port, call.command, self.timeout)
            raise VcmTimeout(message) from error
        return AsyncEventStream(connection.next_line, connection.close)

    async def _submit(self, call: Call[T]) -> AsyncOperation[T]:
        info = await self._call(_calls.in_background(call))
        return AsyncOperation(self._call, self.timeout, info, call.parse)

    # Anything else

    async def request(self, command: str, **fields: Any) -> dict[str, Any]:
        """Send any command with its fields and return the reply; see `Client.request`."""
        return await self._call(_calls.raw(command, fields))

    async def _all(self, verb: AllVerb) -> BulkResult:
        return await self._call(_calls.all_vms(verb))

    async def _call(self, call: Call[T]) -> T:
        request_id = next(self._ids)
        data = encode(call.payload, request_id, self._token)
        try:
            async with asyncio.timeout(self.timeout):
                reply = await self._exchange(call, request_id, data)
        except TimeoutError as error:
            message = timed_out(self.host, self.port, call.command, self.timeout)
            raise VcmTimeout(message) from error
        return call.result(reply)

    async def _exchange(self, call: Call[Any], request_id: int, data: bytes) -> Reply:
        connection = await self._take()
        try:
            reply = await self._attempt(connection, call, request_id, data)
        except ConnectionLost as lost:
            if not lost.may_resend(call, connection.reused):
                raise self._lost(call, connection) from lost
            connection = await self._open()
            try:
                reply = await self._attempt(connection, call, request_id, data)
            except ConnectionLost as again:
                raise self._lost(call, connection) from again
        self._idle.append(connection)
        return reply

    async def _attempt(
        self, connection: _Connection, call: Call[Any], request_id: int, data: bytes
    ) -> Reply:
        try:
            await connection.send(data)
            return await connection.receive(request_id, listener(self._on_progress, call))
        except BaseException:
            connection.discard()
            raise

    async def _take(self) -> _Connection:
        if not self._idle:
            return await self._open()
        connection = self._idle.pop()
        if connection.closed_by_peer():
            await connection.close()
            return await self._open()
        return connection

    async def _open(self) -> _Connection:
        return await _Connection.open(self.host, self.port, self.connect_timeout, self._tls)

    def _lost(self, call: Call[Any], connection: _Connection) -> VcmConnectionError:
        maybe_tls = self._tls is None and not connection.reused
        return VcmConnectionError(
            closed_before_reply(self.host, self.port, call.command, maybe_tls=maybe_tls)
        )
