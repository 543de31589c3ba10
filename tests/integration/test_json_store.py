from __future__ import annotations

import json
import os
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from vcm.adapters.json_store import JsonStateStore
from vcm.domain.errors import StateError
from vcm.domain.model import (
    Box,
    BoxDefinition,
    FileProvisioner,
    Network,
    PuppetProvisioner,
    Resources,
    ShellProvisioner,
    State,
    Vm,
    VmState,
)


def sample_state() -> State:
    definition = BoxDefinition(
        "vcm/bookworm-test",
        files=(FileProvisioner("/tmp/a", content="x"), FileProvisioner("/tmp/b", source="b.txt")),
        puppet=(PuppetProvisioner(manifest="notify {'hi':}"),),
        shell=(ShellProvisioner(inline="echo 'quoted' \"$(x)\""), ShellProvisioner(path="s.sh")),
        network=Network.NONE,
        hostname="web",
    )
    vm = Vm(
        "vcm_1_1",
        "vcm_1",
        "vcm/bookworm-test",
        IPv4Address("192.168.33.2"),
        "web-1.example.com",
        VmState.STOPPED,
        provisioned=True,
        detail="halted by hand",
    )
    return State(7, {"vcm_1": Box("vcm_1", definition, vms_started=1)}, {"vcm_1_1": vm})


def test_what_is_saved_loads_back_equal(tmp_path: Path) -> None:
    store = JsonStateStore(tmp_path / "state.json")
    state = sample_state()
    store.save(state)
    assert JsonStateStore(tmp_path / "state.json").load() == state


def test_saves_after_changes_write_only_the_current_records(tmp_path: Path) -> None:
    store = JsonStateStore(tmp_path / "state.json")
    state = sample_state()
    store.save(state)
    vm = state.vms["vcm_1_1"]
    changed = state.copy()
    changed.vms["vcm_1_1"] = replace(vm, state=VmState.RUNNING, detail="")
    changed.vms["vcm_1_2"] = replace(vm, vm_id="vcm_1_2", ip=IPv4Address("192.168.33.3"))
    store.save(changed)
    assert JsonStateStore(tmp_path / "state.json").load() == changed
    del changed.vms["vcm_1_1"]
    del changed.boxes["vcm_1"]
    store.save(changed)
    assert JsonStateStore(tmp_path / "state.json").load() == changed
    saved = json.loads((tmp_path / "state.json").read_text())
    assert [vm["vmID"] for vm in saved["vms"]] == ["vcm_1_2"]
    assert saved["boxes"] == []


def test_a_missing_file_is_an_empty_state(tmp_path: Path) -> None:
    assert JsonStateStore(tmp_path / "none" / "state.json").load() == State()


@pytest.mark.parametrize("content", ["{not json", "[]", '{"schema": 99}', '{"schema": 1}', ""])
def test_a_corrupt_file_is_a_clear_error_and_is_left_alone(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content)
    with pytest.raises(StateError, match=str(path)):
        JsonStateStore(path).load()
    assert path.read_text() == content


def test_write_errors_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    store = JsonStateStore(path)
    store.save(sample_state())
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StateError, match="No space left"):
        store.save(State())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_file_records_its_schema(tmp_path: Path) -> None:
    store = JsonStateStore(tmp_path / "state.json")
    store.save(State())
    assert json.loads((tmp_path / "state.json").read_text())["schema"] == 1


def test_resources_and_new_states_round_trip(tmp_path: Path) -> None:
    store = JsonStateStore(tmp_path / "state.json")
    definition = BoxDefinition("vcm/bookworm-test", resources=Resources(cpus=2, memory=512))
    vm = Vm("vcm_1_1", "vcm_1", "vcm/bookworm-test", None, "vcm-1-1.example.com", VmState.SUSPENDED)
    store.save(State(1, {"vcm_1": Box("vcm_1", definition, 1)}, {vm.vm_id: vm}))
    loaded = store.load()
    assert loaded.boxes["vcm_1"].definition.resources == Resources(cpus=2, memory=512)
    assert loaded.vms["vcm_1_1"].state == VmState.SUSPENDED


def test_a_state_file_from_before_resources_still_loads(tmp_path: Path) -> None:
    store = JsonStateStore(tmp_path / "state.json")
    store.save(State(1, {"vcm_1": Box("vcm_1", BoxDefinition("vcm/bookworm-test"), 0)}, {}))
    document = json.loads(store.path.read_text())
    for box in document["boxes"]:
        del box["definition"]["cpus"]
        del box["definition"]["memory"]
    store.path.write_text(json.dumps(document))
    assert store.load().boxes["vcm_1"].definition.resources == Resources()
