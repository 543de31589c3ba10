"""The exceptions the client raises: one per wire error code, all under `VcmError`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    """One VM that a command on all VMs (or on a whole box) could not act on."""

    vm_id: str
    code: str
    message: str


class VcmError(Exception):
    """Base of every error the client raises.

    `code` is the daemon's error code (such as ``"VM_NOT_FOUND"``) or, for errors found on this
    side of the socket, one of the client's own codes (``"CONNECTION_FAILED"``, ``"TIMEOUT"``,
    ``"PROTOCOL_ERROR"``, ``"LOCAL_FILE"``). `message` is for people and may change.

    A command on several VMs that partly failed raises the error of its first failure, with
    `done` (the vmIDs it did act on) and `failed` (one `Failure` per VM) filled in.
    """

    code: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        done: tuple[str, ...] = (),
        failed: tuple[Failure, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.done = done
        self.failed = failed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidJson(VcmError):
    """The daemon could not read the request as a JSON object."""

    code = "INVALID_JSON"


class InvalidRequest(VcmError):
    """A known command with missing, unknown or mistyped fields, or values the daemon refuses."""

    code = "INVALID_REQUEST"


class UnknownCommand(VcmError):
    """The daemon does not know the command (it may be older than this client)."""

    code = "UNKNOWN_COMMAND"


class RequestTooLarge(VcmError):
    """The request is over the daemon's size limit (`VCM_MAX_REQUEST_BYTES`)."""

    code = "REQUEST_TOO_LARGE"


class Unauthorized(VcmError):
    """The daemon needs a token and the request had none or a wrong one."""

    code = "UNAUTHORIZED"


class BoxNotFound(VcmError):
    """No box with that boxID (or it is being removed)."""

    code = "BOX_NOT_FOUND"


class VmNotFound(VcmError):
    """No VM with that vmID."""

    code = "VM_NOT_FOUND"


class BoxUnavailable(VcmError):
    """Vagrant does not have the box and cannot add it; the message quotes Vagrant."""

    code = "BOX_UNAVAILABLE"


class IpPoolExhausted(VcmError):
    """Every address of the daemon's pool is leased to a live VM."""

    code = "IP_POOL_EXHAUSTED"


class VagrantError(VcmError):
    """Vagrant failed; the message quotes what it said."""

    code = "VAGRANT_ERROR"


class Unsupported(VcmError):
    """The daemon's provider cannot do this at all (say, snapshots with docker); nothing changed."""

    code = "UNSUPPORTED"


class InternalError(VcmError):
    """The daemon failed for another reason, such as its state file not being writable."""

    code = "INTERNAL"


class Cancelled(VcmError):
    """The operation was cancelled on request (the result of a cancelled background start)."""

    code = "CANCELLED"


class OperationNotFound(VcmError):
    """No operation with that operationID (the daemon keeps a bounded history)."""

    code = "OPERATION_NOT_FOUND"


class VcmConnectionError(VcmError, ConnectionError):
    """The daemon could not be reached, or the connection broke before the reply came."""

    code = "CONNECTION_FAILED"


class VcmTimeout(VcmError, TimeoutError):
    """No reply within the operation timeout; the daemon may still be carrying the command out."""

    code = "TIMEOUT"


class ProtocolError(VcmError):
    """The daemon's reply does not follow the protocol."""

    code = "PROTOCOL_ERROR"


class LocalFileError(VcmError):
    """A local file could not be read: one given to `create_box` (as UTF-8 text), or the TLS CA."""

    code = "LOCAL_FILE"


ERRORS_BY_CODE: dict[str, type[VcmError]] = {
    kind.code: kind
    for kind in (
        InvalidJson,
        InvalidRequest,
        UnknownCommand,
        RequestTooLarge,
        Unauthorized,
        BoxNotFound,
        VmNotFound,
        BoxUnavailable,
        IpPoolExhausted,
        VagrantError,
        Unsupported,
        InternalError,
        Cancelled,
        OperationNotFound,
    )
}
"""The exception class for each error code of the protocol."""


def error_for(
    code: str,
    message: str,
    *,
    done: tuple[str, ...] = (),
    failed: tuple[Failure, ...] = (),
) -> VcmError:
    """The exception for a wire error; a code this client does not know gives a plain VcmError."""
    kind = ERRORS_BY_CODE.get(code, VcmError)
    return kind(message, code=code, done=done, failed=failed)
