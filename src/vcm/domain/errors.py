"""The errors a use case can raise; the protocol maps each to a wire code."""


class VcmError(Exception):
    """Base of every error vcm reports to its callers."""

    @property
    def message(self) -> str:
        return str(self)


class InvalidRequest(VcmError):
    pass


class BoxNotFound(VcmError):
    def __init__(self, box_id: str) -> None:
        super().__init__(f"no box with boxID '{box_id}'")
        self.box_id = box_id


class VmNotFound(VcmError):
    def __init__(self, vm_id: str) -> None:
        super().__init__(f"no VM with vmID '{vm_id}'")
        self.vm_id = vm_id


class BoxUnavailable(VcmError):
    pass


class PoolExhausted(VcmError):
    pass


class BackendError(VcmError):
    """Vagrant (or the simulated backend) failed; the message quotes it."""


class Unsupported(VcmError):
    """The provider (or backend) cannot do this at all; the message names it."""


class WrongState(InvalidRequest):
    """The VM is not in a state the command can act on."""


class StateError(VcmError):
    """The state file could not be read or written."""


class Cancelled(VcmError):
    """A running command was stopped on request."""


class OperationNotFound(VcmError):
    def __init__(self, operation_id: str) -> None:
        super().__init__(f"no operation with operationID '{operation_id}'")
        self.operation_id = operation_id
