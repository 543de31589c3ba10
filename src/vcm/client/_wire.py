"""The protocol without the I/O: encode requests, split reply lines, turn replies into results.

The sync and async clients share everything here and only move bytes themselves.
"""

from __future__ import annotations

import json
import os
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vcm.client.errors import Failure, LocalFileError, ProtocolError, error_for
from vcm.client.models import ProgressLine

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 12121
DEFAULT_CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the connection (TCP, then any TLS handshake); operations are separate."""
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
    progress: Callable[[ProgressLine], None] | None = None
    """Where this call's progress lines go (besides the client's `on_progress`)."""

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

    def next_line(self) -> Reply | None:
        """The next whole line as a JSON object (such as an event), if one has arrived."""
        line = self._buffer.pop()
        return None if line is None else _decode(line)


def ignore_progress(text: str) -> None:
    """The default progress callback."""


def listener(on_progress: Callable[[str], None], call: Call[Any]) -> Callable[[str], None]:
    """Where the interim lines of `call` go: the client's callback, then the call's own."""
    per_call = call.progress
    if per_call is None:
        return on_progress

    def both(text: str) -> None:
        on_progress(text)
        per_call(text if isinstance(text, ProgressLine) else ProgressLine(text))

    return both


@dataclass(frozen=True)
class Interim:
    """A line the daemon sent before the final reply: progress text to show the user."""

    text: ProgressLine


def read_line(line: bytes, request_id: int) -> Reply | Interim:
    """The final reply to request `request_id`, or an interim progress line before it.

    A final reply has ``error``. A reply without ``id`` is accepted as the current one: the
    daemon cannot echo the id of a request it could not read (such as one too large).
    """
    reply = _decode(line)
    if "id" in reply and reply["id"] != request_id:
        raise ProtocolError(f"a reply for request {reply['id']!r} came while {request_id} waited")
    if "error" not in reply:
        return Interim(_progress(reply))
    if not isinstance(reply["error"], bool):
        raise ProtocolError(f"'error' must be a JSON boolean, not {reply['error']!r}")
    return reply


def _progress(line: Reply) -> ProgressLine:
    if line.get("event") == "progress":
        vm_id, phase = line.get("vmID"), line.get("phase")
        return ProgressLine(
            str(line.get("line", "")),
            vm_id=str(vm_id) if vm_id is not None else None,
            phase=str(phase) if phase is not None else None,
        )
    return ProgressLine(str(line.get("progress", line.get("message", ""))))


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


def closed_before_reply(host: str, port: int, command: str, *, maybe_tls: bool = False) -> str:
    """`maybe_tls`: a new plain-text connection was closed, as a daemon serving TLS does."""
    hint = " (if the daemon serves TLS, connect with TLS: --tls or VCM_TLS=1)" if maybe_tls else ""
    return (
        f"the vcm daemon at {describe_address(host, port)} closed the connection before "
        f"replying to '{command}'; it may or may not have carried it out{hint}"
    )


def timed_out(host: str, port: int, command: str, timeout: float | None) -> str:
    return (
        f"no reply from the vcm daemon at {describe_address(host, port)} to '{command}' "
        f"within {timeout or 0:g} s; the daemon may still be carrying it out"
    )


@dataclass(frozen=True)
class Endpoint:
    """Where the daemon is, the token it wants and how to reach it, as read from the environment."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    tls: bool = False
    tls_ca: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Endpoint:
        """`VCM_HOST`, `VCM_PORT`, `VCM_AUTH_TOKEN`, `VCM_TLS` and `VCM_TLS_CA`, each optional.

        A CA file (`VCM_TLS_CA`) implies TLS.
        """
        tls_ca = environ.get("VCM_TLS_CA") or None
        return cls(
            host=environ.get("VCM_HOST") or DEFAULT_HOST,
            port=parse_port(environ.get("VCM_PORT") or str(DEFAULT_PORT)),
            token=environ.get("VCM_AUTH_TOKEN") or None,
            tls=parse_flag("VCM_TLS", environ.get("VCM_TLS", "")) or tls_ca is not None,
            tls_ca=tls_ca,
        )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def parse_flag(name: str, text: str) -> bool:
    """An on/off setting such as ``VCM_TLS``: 1/true/yes/on or 0/false/no/off (or empty)."""
    word = text.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be 1/true/yes/on or 0/false/no/off, not {text!r}")
    return word in _TRUE


def parse_port(text: str) -> int:
    """A TCP port number; ValueError names the bad value."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"not a TCP port: {text!r}")
    return port


# TLS: the one place both clients get their context and their TLS error messages from.

TlsOption = bool | ssl.SSLContext
"""``tls=``: False for plain TCP, True for a verifying default context, or a context to use."""


def tls_context(tls: TlsOption, tls_ca: str | os.PathLike[str] | None) -> ssl.SSLContext | None:
    """The context to wrap connections in, or None for plain TCP.

    ``True`` is `ssl.create_default_context`: the certificate must chain to a trusted CA (the
    system's, or only those in `tls_ca`) and name the host connected to. A context is used as is.
    """
    if isinstance(tls, ssl.SSLContext):
        if tls_ca is not None:
            raise ValueError("tls_ca goes with tls=True; load the CA into your SSLContext instead")
        return tls
    if not tls:
        if tls_ca is not None:
            raise ValueError("tls_ca needs tls=True")
        return None
    try:
        return ssl.create_default_context(cafile=tls_ca)
    except OSError as error:  # ssl.SSLError included: not a PEM certificate
        name = os.fsdecode(tls_ca) if tls_ca is not None else "?"
        raise LocalFileError(f"cannot load the TLS CA file {name}: {_reason(error)}") from error


def tls_failed(host: str, port: int, error: OSError, connect_timeout: float) -> str:
    """Why the TLS handshake after the TCP connect failed, and what to check."""
    where = describe_address(host, port)
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS verification failed for the vcm daemon at {where}: {error.verify_message} "
            f"(its certificate must name {host} and be signed by a CA this client trusts: "
            "give it with --tls-ca or VCM_TLS_CA)"
        )
    reason = f"no answer within {connect_timeout:g} s" if isinstance(error, TimeoutError) else ""
    return (
        f"TLS handshake with the vcm daemon at {where} failed: {reason or _reason(error)} "
        "(does it serve TLS? vcmd does with VCM_TLS_CERT and VCM_TLS_KEY)"
    )


def _reason(error: OSError) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason).replace("_", " ").lower()
    return error.strerror or str(error) or type(error).__name__
