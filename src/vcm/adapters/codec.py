"""Plain-JSON forms of box definitions and VMs, shared by the state file and the protocol."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from vcm.domain.model import (
    Box,
    BoxDefinition,
    FileProvisioner,
    Network,
    PuppetProvisioner,
    Resources,
    ShellProvisioner,
    Vm,
    VmState,
)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def definition_to_json(definition: BoxDefinition) -> dict[str, Any]:
    return {
        "box": definition.box,
        "files": [_without_none(vars(item)) for item in definition.files],
        "puppet": [_without_none(vars(item)) for item in definition.puppet],
        "shell": [_without_none(vars(item)) for item in definition.shell],
        "network": str(definition.network),
        "hostname": definition.hostname,
        "cpus": definition.resources.cpus,
        "memory": definition.resources.memory,
    }


def definition_from_json(data: dict[str, Any]) -> BoxDefinition:
    return BoxDefinition(
        box=data["box"],
        files=tuple(FileProvisioner(**item) for item in data["files"]),
        puppet=tuple(PuppetProvisioner(**item) for item in data["puppet"]),
        shell=tuple(ShellProvisioner(**item) for item in data["shell"]),
        network=Network(data["network"]),
        hostname=data["hostname"],
        resources=Resources(cpus=data.get("cpus"), memory=data.get("memory")),
    )


def box_to_json(box: Box) -> dict[str, Any]:
    return {
        "boxID": box.box_id,
        "definition": definition_to_json(box.definition),
        "vms_started": box.vms_started,
        "removing": box.removing,
    }


def box_from_json(data: dict[str, Any]) -> Box:
    return Box(
        box_id=data["boxID"],
        definition=definition_from_json(data["definition"]),
        vms_started=data["vms_started"],
        removing=data["removing"],
    )


def vm_to_json(vm: Vm) -> dict[str, Any]:
    return {
        "vmID": vm.vm_id,
        "boxID": vm.box_id,
        "box": vm.box,
        "IP": str(vm.ip) if vm.ip is not None else None,
        "hostname": vm.hostname,
        "state": str(vm.state),
        "provisioned": vm.provisioned,
        "detail": vm.detail,
    }


def vm_from_json(data: dict[str, Any]) -> Vm:
    return Vm(
        vm_id=data["vmID"],
        box_id=data["boxID"],
        box=data["box"],
        ip=IPv4Address(data["IP"]) if data["IP"] is not None else None,
        hostname=data["hostname"],
        state=VmState(data["state"]),
        provisioned=data["provisioned"],
        detail=data["detail"],
    )
