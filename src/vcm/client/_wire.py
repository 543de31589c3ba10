"""The protocol without the I/O: encode requests, split reply lines, turn replies into results.

The sync and async clients share everything here and only move bytes themselves.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vcm.client.errors import Failure, ProtocolError, error_for

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 12121
DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the TCP connection; the operation timeout is separate."""
READ_SIZE = 65536
MAX_REPLY_BYTES = 256 * 1024 * 1024

Reply = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One command: what to send, and how to read the reply into a result."""

    payload: dict[str, Any]
    parse: Callable[[Reply], T]
    read_only: bool = False
    """A read-only command may be sent again safely if the connection broke before its reply."""

    @property
    def command(self) -> str:
        return str(self.payload.get("command", "?"))

    def result(self, reply: Reply) -> T:
        raise_for_error(reply)
        return self.parse(reply)


class ConnectionLost(Exception):
    """The connection broke; `sending` if before the whole request was handed to the kernel."""

    def __init__(self, *, sending: bool) -> None:
        super().__init__()
        self.sending = sending

    def may_resend(self, call: Call[Any], reused: bool) -> bool:
        """Whether sending the request again on a new connection is safe.

        Only a connection that had served before can have been closed while idle; a request
        that did not go out, or a read-only one, can then go again.
        """
        return reused and (self.sending or call.read_only)


def encode(payload: dict[str, Any], request_id: int, token: str | None) -> bytes:
    """One request as the bytes to send; `id` and `token` go with every request."""
    request = {**payload, "id": request_id}
    if token is not None:
        request["token"] = token
    return (json.dumps(request, ensure_ascii=False) + "\n").encode()


class LineBuffer:
    """Feed reply bytes in any chunks; pop each complete line once it has arrived."""

    def __init__(self, limit: int = MAX_REPLY_BYTES) -> None:
        self._partial = bytearray()
        self._lines: deque[bytes] = deque()
        self._limit = limit

    def feed(self, data: bytes) -> None:
        *complete, rest = data.split(b"\n")
        if complete:
            complete[0] = bytes(self._partial) + complete[0]
            self._partial = bytearray()
            self._lines.extend(line for line in complete if line.strip())
        self._partial += rest
        if len(self._partial) > self._limit:
            raise ProtocolError(f"a reply line is longer than {self._limit} bytes")

    def pop(self) -> bytes | None:
        return self._lines.popleft() if self._lines else None


class ReplyReader:
    """The reading side of one connection: bytes in, the reply to a given request out."""

    def __init__(self, limit: int = MAX_REPLY_BYTES) -> None:
        self._buffer = LineBuffer(limit)

    def feed(self, data: bytes) -> None:
        self._buffer.feed(data)

    def reply_for(self, request_id: int, on_progress: Callable[[str], None]) -> Reply | None:
        """The final reply once it has arrived; progress lines before it go to `on_progress`."""
        while (line := self._buffer.pop()) is not None:
            item = read_line(line, request_id)
            if isinstance(item, Interim):
                on_progress(item.text)
            else:
                return item
        return None


def ignore_progress(text: str) -> None:
    """The default progress callback."""


@dataclass(frozen=True)
class Interim:
    """A line the daemon sent before the final reply: progress text to show the user."""

    text: str


def read_line(line: bytes, request_id: int) -> Reply | Interim:
    """The final reply to request `request_id`, or an interim progress line before it.

    A final reply has ``error``. A reply without ``id`` is accepted as the current one: the
    daemon cannot echo the id of a request it could not read (such as one too large).
    """
    reply = _decode(line)
    if "id" in reply and reply["id"] != request_id:
        raise ProtocolError(f"a reply for request {reply['id']!r} came while {request_id} waited")
    if "error" not in reply:
        return Interim(str(reply.get("progress", reply.get("message", ""))))
    if not isinstance(reply["error"], bool):
        raise ProtocolError(f"'error' must be a JSON boolean, not {reply['error']!r}")
    return reply


def _decode(line: bytes) -> Reply:
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(f"the daemon sent a line that is not JSON: {line[:200]!r}") from error
    if not isinstance(reply, dict):
        raise ProtocolError(f"the daemon sent JSON that is not an object: {line[:200]!r}")
    return reply


def raise_for_error(reply: Reply) -> None:
    """Raise the exception for an error reply; do nothing for a success."""
    if reply.get("error") is not True:
        return
    code = str(reply.get("code", "UNKNOWN"))
    message = str(reply.get("message", f"the daemon replied {code}"))
    raise error_for(
        code,
        message,
        done=tuple(str(vm_id) for vm_id in reply.get("VMS", ())),
        failed=tuple(_failure(item) for item in reply.get("failed", ())),
    )


def _failure(item: Any) -> Failure:
    if not isinstance(item, dict):
        return Failure(vm_id="?", code="UNKNOWN", message=str(item))
    return Failure(
        vm_id=str(item.get("vmID", "?")),
        code=str(item.get("code", "UNKNOWN")),
        message=str(item.get("message", "")),
    )


def describe_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_failed(host: str, port: int, error: OSError, connect_timeout: float) -> str:
    if isinstance(error, TimeoutError):
        reason = f"no answer within {connect_timeout:g} s"
    else:
        reason = error.strerror or str(error) or type(error).__name__
    return (
        f"cannot connect to the vcm daemon at {describe_address(host, port)}: {reason} "
        "(is vcmd running there? set --host/--port or VCM_HOST/VCM_PORT)"
    )


def closed_before_reply(host: str, port: int, command: str) -> str:
    return (
        f"the vcm daemon at {describe_address(host, port)} closed the connection before "
        f"replying to '{command}'; it may or may not have carried it out"
    )


def timed_out(host: str, port: int, command: str, timeout: float | None) -> str:
    return (
        f"no reply from the vcm daemon at {describe_address(host, port)} to '{command}' "
        f"within {timeout or 0:g} s; the daemon may still be carrying it out"
    )


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon is and the token it wants, as read from the environment."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Endpoint:
        """`VCM_HOST`, `VCM_PORT` and `VCM_AUTH_TOKEN`, each optional."""
        return cls(
            host=environ.get("VCM_HOST") or DEFAULT_HOST,
            port=parse_port(environ.get("VCM_PORT") or str(DEFAULT_PORT)),
            token=environ.get("VCM_AUTH_TOKEN") or None,
        )


def parse_port(text: str) -> int:
    """A TCP port number; ValueError names the bad value."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {text!r}")
    return port
