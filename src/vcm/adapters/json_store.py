"""The state file: one JSON document, replaced atomically on every change."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.codec import box_from_json, box_to_json, vm_from_json, vm_to_json
from vcm.domain.errors import StateError, VcmError
from vcm.domain.model import Box, State, Vm

SCHEMA = 1
_Record = TypeVar("_Record")


class _Fragments(Generic[_Record]):
    """The JSON text of each record, kept while that very record object is in the state.

    Records are immutable and replaced on change, so one mutation re-encodes one record and
    the rest of the document is joined from text already made.
    """

    def __init__(self, to_json: Callable[[_Record], dict[str, Any]]) -> None:
        self._to_json = to_json
        self._records: dict[str, _Record] = {}
        self._texts: dict[str, str] = {}

    def join(self, records: dict[str, _Record]) -> str:
        known = self._records
        for key in [key for key, record in records.items() if known.get(key) is not record]:
            known[key] = records[key]
            self._texts[key] = json.dumps(self._to_json(records[key]), separators=(",", ":"))
        if len(known) != len(records):
            for key in known.keys() - records.keys():
                del known[key], self._texts[key]
        texts = self._texts
        return ",".join([texts[key] for key in records])


class JsonStateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._boxes = _Fragments[Box](box_to_json)
        self._vms = _Fragments[Vm](vm_to_json)

    def load(self) -> State:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State()
        except OSError as error:
            raise StateError(f"cannot read the state file {self.path}: {error}") from error
        try:
            return _state_from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError, VcmError) as error:
            raise StateError(
                f"the state file {self.path} is not valid vcm state ({error!r}); "
                "it was left untouched: repair it, or move it away to start empty"
            ) from error

    def save(self, state: State) -> None:
        document = (
            f'{{"schema":{SCHEMA},"box_counter":{int(state.box_counter)},'
            f'"boxes":[{self._boxes.join(state.boxes)}],"vms":[{self._vms.join(state.vms)}]}}'
        )
        try:
            write_atomically(self.path, document)
        except OSError as error:
            raise StateError(f"cannot write the state file {self.path}: {error}") from error


def _state_to_json(state: State) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "box_counter": state.box_counter,
        "boxes": [box_to_json(box) for box in state.boxes.values()],
        "vms": [vm_to_json(vm) for vm in state.vms.values()],
    }


def _state_from_json(data: dict[str, Any]) -> State:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"schema {data.get('schema')!r}, this vcm reads schema {SCHEMA}")
    boxes = (box_from_json(item) for item in data["boxes"])
    vms = (vm_from_json(item) for item in data["vms"])
    return State(
        box_counter=int(data["box_counter"]),
        boxes={box.box_id: box for box in boxes},
        vms={vm.vm_id: vm for vm in vms},
    )
