"""The shapes of the requests on the wire, checked strictly: unknown fields and wrong types fail."""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from vcm.domain.errors import InvalidRequest
from vcm.domain.model import (
    BoxDefinition,
    FileProvisioner,
    Network,
    PuppetProvisioner,
    Resources,
    ShellProvisioner,
)

RequestId = StrictStr | StrictInt | StrictFloat
_Model = TypeVar("_Model", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Envelope(_Strict):
    """The fields every request may carry."""

    command: StrictStr
    id: RequestId | None = None
    token: StrictStr | None = None
    progress: StrictBool = False
    background: StrictBool = Field(False, alias="async")


class _FileItem(_Strict):
    destination: StrictStr
    source: StrictStr | None = None
    content: StrictStr | None = None


class _ShellItem(_Strict):
    inline: StrictStr | None = None
    path: StrictStr | None = None


class _PuppetItem(_Strict):
    manifest: StrictStr | None = None
    path: StrictStr | None = None


class CreateRequest(Envelope):
    box: StrictStr
    files: list[_FileItem] = []
    puppet: list[_PuppetItem] = []
    shell: list[StrictStr | _ShellItem] = []
    network: Literal["private", "none"] = "private"
    hostname: StrictStr = "dynamic"
    cpus: StrictInt | None = None
    memory: StrictInt | None = None

    def definition(self) -> BoxDefinition:
        return BoxDefinition(
            box=self.box,
            files=tuple(FileProvisioner(**item.model_dump()) for item in self.files),
            puppet=tuple(PuppetProvisioner(**item.model_dump()) for item in self.puppet),
            shell=tuple(
                ShellProvisioner(inline=item)
                if isinstance(item, str)
                else ShellProvisioner(**item.model_dump())
                for item in self.shell
            ),
            network=Network(self.network),
            hostname=self.hostname,
            resources=Resources(cpus=self.cpus, memory=self.memory),
        )


class TargetRequest(Envelope):
    """start, stop, halt, shutdown and destroy: one VM, one box, or all."""

    vmID: StrictStr | None = None  # noqa: N815
    boxID: StrictStr | None = None  # noqa: N815
    subcommand: Literal["all"] | None = None


class VmRequest(Envelope):
    """suspend, resume, reload, provision and ssh-info: one VM."""

    vmID: StrictStr  # noqa: N815


class SnapshotRequest(VmRequest):
    subcommand: Literal["save", "restore", "delete", "list"]
    name: StrictStr | None = None


class ExecRequest(VmRequest):
    argv: list[StrictStr]
    timeout: StrictInt = 60


class InfoRequest(Envelope):
    subcommand: StrictStr


MAX_WAIT_SECONDS = 3600


class OperationRequest(Envelope):
    operationID: StrictStr | None = None  # noqa: N815
    subcommand: Literal["all"] | None = None
    wait: StrictInt | StrictFloat | None = Field(None, ge=0, le=MAX_WAIT_SECONDS)
    cancel: StrictBool = False


class WatchRequest(Envelope):
    boxID: StrictStr | None = None  # noqa: N815
    vmID: StrictStr | None = None  # noqa: N815


def parse(model: type[_Model], data: dict[str, object]) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidRequest(describe(error)) from error


def describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors()[:3]:
        where = ".".join(str(part) for part in detail["loc"] if not _is_union_tag(part))
        if detail["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}'")
        else:
            problems.append(f"'{where}': {detail['msg']}")
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _is_union_tag(part: object) -> bool:
    return part in ("str", "_ShellItem", "int", "float")
