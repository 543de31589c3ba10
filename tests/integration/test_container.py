from __future__ import annotations

from pathlib import Path

from vcm.adapters.simulated import SimulatedVagrant
from vcm.adapters.vagrant_cli import VagrantCli
from vcm.domain.model import BoxDefinition
from vcm.entrypoints.container import bootstrap
from vcm.entrypoints.settings import Provider, Settings


def test_every_setting_reaches_the_vagrant_adapter(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path,
        provider=Provider.LXC,
        guest="debian",
        lxc_bridge="br9",
        up_timeout=5,
        files_root=tmp_path,
    )
    vagrant = bootstrap(settings).vagrant()
    assert isinstance(vagrant, VagrantCli)
    assert vars(vagrant)["_provider"] == "lxc"
    assert vars(vagrant)["_guest"] == "debian"
    assert vars(vagrant)["_lxc_bridge"] == "br9"
    assert vars(vagrant)["_up_timeout"] == 5
    assert vars(vagrant)["_dir"] == tmp_path / "machines"


def test_the_library_door_runs_the_use_cases_in_process(tmp_path: Path) -> None:
    container = bootstrap(Settings(state_dir=tmp_path, driver="simulated"))
    assert isinstance(container.vagrant(), SimulatedVagrant)
    vcm = container.service()
    box = vcm.create_box(BoxDefinition("vcm/bookworm-test"))
    vm = vcm.start_vm(box.box_id)
    assert (vm.vm_id, str(vm.ip)) == ("vcm_bookworm_test_1_1", "192.168.33.2")
    assert (
        bootstrap(Settings(state_dir=tmp_path, driver="simulated")).service().get_vm(vm.vm_id).ip
        == vm.ip
    )


def test_overrides_replace_a_provider_by_name(tmp_path: Path) -> None:
    fake = SimulatedVagrant(boxes=frozenset({"only/this"}))
    vcm = bootstrap(Settings(state_dir=tmp_path), vagrant=fake).service()
    assert vcm.create_box(BoxDefinition("only/this")).box_id == "only_this_1"
