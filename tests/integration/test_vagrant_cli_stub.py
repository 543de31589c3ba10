"""The Vagrant adapter against a stub `vagrant` on PATH: command lines, parsing, error mapping.

These check the adapter's own logic; tests/integration/test_real_vagrant.py runs the real binary.
"""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from vcm.adapters.host_files import FilesRoot
from vcm.adapters.vagrant_cli import VagrantCli, template_text
from vcm.domain.errors import BackendError, BoxUnavailable, Unsupported
from vcm.domain.model import (
    BoxDefinition,
    FileProvisioner,
    PuppetProvisioner,
    Resources,
    ShellProvisioner,
)
from vcm.domain.ports import Machine, MachineStatus

STUB = """#!/bin/bash
# `vagrant ssh --no-tty -c CMD`: the guest's shell runs CMD; here a local bash plays the guest.
[ "$1" = ssh ] && [ -f "$STUB_DIR/ssh.local" ] && exec bash -c "$4"
echo "$PWD|$*" >> "$STUB_DIR/calls"
sub="$1"; [ "$sub" = box ] && sub="box-$2"
[ -f "$STUB_DIR/$sub.sleep" ] && sleep "$(cat "$STUB_DIR/$sub.sleep")"
[ -f "$STUB_DIR/$sub.out" ] && cat "$STUB_DIR/$sub.out"
[ -f "$STUB_DIR/$sub.err" ] && cat "$STUB_DIR/$sub.err" >&2
exit "$(cat "$STUB_DIR/$sub.rc" 2>/dev/null || echo 0)"
"""

HOSTILE = 'x\'; system("touch /tmp/pwned") #{`id`} $(id)\n\x07'


class Stub:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def on(self, sub: str, out: str = "", err: str = "", rc: int = 0, sleep: float = 0) -> None:
        (self.dir / f"{sub}.out").write_text(out)
        (self.dir / f"{sub}.err").write_text(err)
        (self.dir / f"{sub}.rc").write_text(str(rc))
        if sleep:
            (self.dir / f"{sub}.sleep").write_text(str(sleep))

    def calls(self) -> list[tuple[str, str]]:
        path = self.dir / "calls"
        lines = path.read_text().splitlines() if path.exists() else []
        return [tuple(line.split("|", 1)) for line in lines]  # type: ignore[misc]


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stub:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vagrant").write_text(STUB)
    (bin_dir / "vagrant").chmod(0o755)
    control = tmp_path / "stub"
    control.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(control))
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "vagrant-home"))
    return Stub(control)


@pytest.fixture
def files(tmp_path: Path) -> FilesRoot:
    root = tmp_path / "files"
    root.mkdir()
    (root / "payload.txt").write_text("payload")
    (root / "setup.sh").write_text("echo from path")
    return FilesRoot(root)


def make_cli(tmp_path: Path, files: FilesRoot, timeout: float = 30) -> VagrantCli:
    return VagrantCli(
        machines_dir=tmp_path / "machines",
        files=files,
        provider="docker",
        guest="debian",
        lxc_bridge="vlxcbr1",
        up_timeout=timeout,
        command_timeout=timeout,
        box_add_timeout=timeout,
    )


def machine(definition: BoxDefinition | None = None) -> Machine:
    definition = definition or BoxDefinition("vcm/bookworm-test")
    return Machine("vcm_1_1", definition, "vcm-1-1.example.com", IPv4Address("192.168.34.2"), 24)


def test_create_writes_a_fixed_vagrantfile_and_the_spec_as_data(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    stub.on("up", out="==> default: Booting\n==> default: Running provisioner: shell...\n")
    definition = BoxDefinition(
        "vcm/bookworm-test",
        files=(
            FileProvisioner("/etc/payload", source="payload.txt"),
            FileProvisioner("/tmp/hostile", content=HOSTILE),
        ),
        puppet=(PuppetProvisioner(manifest=HOSTILE),),
        shell=(ShellProvisioner(inline=HOSTILE), ShellProvisioner(path="setup.sh")),
    )
    progress: list[str] = []
    make_cli(tmp_path, files).create(machine(definition), progress.append)
    root = tmp_path / "machines" / "vcm_1_1"
    assert (root / "Vagrantfile").read_text() == template_text()
    spec = json.loads((root / "machine.json").read_text())
    assert spec == {
        "box": "vcm/bookworm-test",
        "hostname": "vcm-1-1.example.com",
        "guest": "debian",
        "network": {"ip": "192.168.34.2", "netmask": "255.255.255.0", "lxc_bridge": "vlxcbr1"},
        "provisioners": [
            {"type": "file", "source": "assets/0", "destination": "/etc/payload"},
            {"type": "file", "source": "assets/1", "destination": "/tmp/hostile"},
            {"type": "puppet", "manifests_path": "assets/2", "manifest_file": "site.pp"},
            {"type": "shell", "path": "assets/3.sh"},
            {"type": "shell", "path": "assets/4.sh"},
        ],
        "provider_settings": {},
    }
    assert (root / "assets" / "0").read_text() == "payload"
    assert (root / "assets" / "2" / "site.pp").read_text() == HOSTILE
    assert (root / "assets" / "4.sh").read_text() == "echo from path"
    assert stub.calls() == [(str(root), "up --provider=docker")]
    assert progress == ["==> default: Booting", "==> default: Running provisioner: shell..."]
    assert not Path("/tmp/pwned").exists()


def test_a_failed_up_quotes_what_vagrant_said(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    stub.on("up", out="==> default: Importing\n", err="The provider 'docker' is not usable\n", rc=1)
    with pytest.raises(BackendError, match="vagrant up failed \\(exit 1\\): The provider"):
        make_cli(tmp_path, files).create(machine(), lambda line: None)


def test_a_hung_command_is_killed_at_its_timeout(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    stub.on("box-list", sleep=30)
    with pytest.raises(BackendError, match="timed out after 1 s"):
        make_cli(tmp_path, files, timeout=1).ensure_box("vcm/bookworm-test")


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("running", MachineStatus.RUNNING),
        ("stopped", MachineStatus.STOPPED),
        ("not_created", MachineStatus.NOT_CREATED),
        ("poweroff", MachineStatus.STOPPED),
        ("frozen", MachineStatus.SUSPENDED),
        ("saved", MachineStatus.SUSPENDED),
        ("aborted", MachineStatus.OTHER),
    ],
)
def test_status_reads_the_machine_readable_state(
    tmp_path: Path, stub: Stub, files: FilesRoot, state: str, expected: MachineStatus
) -> None:
    cli = make_cli(tmp_path, files)
    cli.create(machine(), lambda line: None)
    stub.on(
        "status", out=f"1700000000,default,provider-name,docker\n1700000000,default,state,{state}\n"
    )
    assert cli.status("vcm_1_1") == expected


def test_status_errors_quote_the_error_exit_record(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    cli = make_cli(tmp_path, files)
    cli.create(machine(), lambda line: None)
    stub.on(
        "status",
        out="1700000000,,error-exit,Vagrant::Errors::MachineLocked,"
        "Vagrant locked%!(VAGRANT_COMMA) try later\n",
        rc=1,
    )
    with pytest.raises(BackendError, match="Vagrant locked, try later"):
        cli.status("vcm_1_1")


def test_a_vm_without_a_project_is_not_created(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    assert make_cli(tmp_path, files).status("nothing_1_1") == MachineStatus.NOT_CREATED
    assert stub.calls() == []


def test_ensure_box_adds_only_a_missing_box(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    stub.on(
        "box-list", out="1,,box-name,vcm/bookworm-test\n1,,box-provider,docker\n1,,box-version,0\n"
    )
    cli = make_cli(tmp_path, files)
    cli.ensure_box("vcm/bookworm-test")
    assert [call for _, call in stub.calls()] == ["box list --machine-readable"]
    cli.ensure_box("other/box")
    assert stub.calls()[-1][1] == "box add other/box --provider docker"


def test_a_box_in_vagrants_box_store_needs_no_vagrant_call(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    stored = tmp_path / "vagrant-home" / "boxes" / "vcm-VAGRANTSLASH-bookworm-test" / "0"
    (stored / "lxc").mkdir(parents=True)
    (stored / "lxc" / "metadata.json").write_text('{"provider": "lxc"}')
    cli = make_cli(tmp_path, files)
    cli.ensure_box("vcm/bookworm-test")
    assert stub.calls()[-1][1].startswith("box add vcm/bookworm-test")
    (stored / "docker").mkdir()
    (stored / "docker" / "metadata.json").write_text('{"provider": "docker"}')
    calls = len(stub.calls())
    cli.ensure_box("vcm/bookworm-test")
    assert len(stub.calls()) == calls


def test_a_box_for_another_provider_does_not_count(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    stub.on(
        "box-list", out="1,,box-name,vcm/bookworm-test\n1,,box-provider,lxc\n1,,box-version,0\n"
    )
    make_cli(tmp_path, files).ensure_box("vcm/bookworm-test")
    assert stub.calls()[-1][1].startswith("box add vcm/bookworm-test")


def test_a_box_vagrant_cannot_add_is_unavailable_with_its_reason(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    stub.on(
        "box-add",
        err="The box 'ubuntu/trusty64' could not be found or could not be "
        "accessed in the remote catalog.\n",
        rc=1,
    )
    with pytest.raises(BoxUnavailable, match="could not be found or could not be accessed"):
        make_cli(tmp_path, files).ensure_box("ubuntu/trusty64")


def test_destroy_removes_the_project(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    cli = make_cli(tmp_path, files)
    cli.create(machine(), lambda line: None)
    assert cli.machines() == ["vcm_1_1"]
    cli.destroy("vcm_1_1")
    assert cli.machines() == []
    assert stub.calls()[-1][1] == "destroy --force"
    cli.destroy("vcm_1_1")


def test_boot_never_provisions_again(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    cli = make_cli(tmp_path, files)
    cli.create(machine(), lambda line: None)
    cli.boot("vcm_1_1", lambda line: None)
    assert stub.calls()[-1][1] == "up --no-provision --provider=docker"


def test_halt_falls_back_to_force(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    cli = make_cli(tmp_path, files)
    cli.create(machine(), lambda line: None)
    stub.on("halt", err="guest did not answer", rc=1)
    with pytest.raises(BackendError, match="halt --force failed"):
        cli.halt("vcm_1_1")
    assert [call for _, call in stub.calls()][-2:] == ["halt", "halt --force"]


def created(tmp_path: Path, stub: Stub, files: FilesRoot, **kwargs: Any) -> VagrantCli:
    cli = make_cli(tmp_path, files, **kwargs)
    cli.create(machine(), lambda line: None)
    return cli


def test_resources_reach_machine_json_as_data(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    definition = BoxDefinition("vcm/bookworm-test", resources=Resources(cpus=2, memory=512))
    make_cli(tmp_path, files).create(machine(definition), lambda line: None)
    spec = json.loads((tmp_path / "machines" / "vcm_1_1" / "machine.json").read_text())
    assert spec["provider_settings"]["virtualbox"] == {"cpus": 2, "memory": 512}
    assert spec["provider_settings"]["lxc"]["customize"][-1] == [
        "cgroup.memory.limit_in_bytes",
        "512M",
    ]


@pytest.mark.parametrize(
    ("error_class", "action"),
    [
        ("VagrantPlugins::DockerProvider::Errors::SuspendNotSupported", "suspend"),
        ("Vagrant::Errors::UnimplementedProviderAction", "suspend"),
    ],
)
def test_a_provider_that_cannot_suspend_is_unsupported_by_name(
    tmp_path: Path, stub: Stub, files: FilesRoot, error_class: str, action: str
) -> None:
    cli = created(tmp_path, stub, files)
    said = "Suspend is not supported.\\nThis is probably a bug%!(VAGRANT_COMMA) report it."
    stub.on(action, out=f"1700000000,,error-exit,{error_class},{said}\n", rc=1)
    with pytest.raises(Unsupported) as raised:
        cli.suspend("vcm_1_1")
    assert str(raised.value) == "the docker provider cannot suspend: Suspend is not supported."
    assert stub.calls()[-1][1] == "suspend --machine-readable"


def test_snapshot_commands_and_the_listing(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    cli = created(tmp_path, stub, files)
    cli.snapshot_save("vcm_1_1", "clean")
    cli.snapshot_restore("vcm_1_1", "clean")
    cli.snapshot_delete("vcm_1_1", "clean")
    assert [call for _, call in stub.calls()][-3:] == [
        "snapshot save clean --machine-readable",
        "snapshot restore --no-provision clean --machine-readable",
        "snapshot delete clean --machine-readable",
    ]
    stub.on(
        "snapshot",
        out="1,default,ui,output,\n1,default,ui,detail,clean\n1,default,ui,detail,later\n",
    )
    assert cli.snapshot_list("vcm_1_1") == ["clean", "later"]
    stub.on(
        "snapshot",
        out="1,default,ui,output,==> default: No snapshots have been taken yet!\n"
        "1,default,ui,detail,    default: Snapshots are useful\n",
    )
    assert cli.snapshot_list("vcm_1_1") == []
    stub.on(
        "snapshot",
        out="1,,error-exit,Vagrant::Errors::SnapshotNotSupported,This provider doesn't "
        "support snapshots.\n",
        rc=1,
    )
    with pytest.raises(Unsupported, match="docker provider cannot snapshot list: This provider"):
        cli.snapshot_list("vcm_1_1")


def test_reload_and_provision_stream_their_output(
    tmp_path: Path, stub: Stub, files: FilesRoot
) -> None:
    cli = created(tmp_path, stub, files)
    stub.on("reload", out="==> default: Restarting\n")
    stub.on("provision", out="==> default: Running provisioner: shell...\n")
    lines: list[str] = []
    cli.reload("vcm_1_1", lines.append)
    cli.provision("vcm_1_1", lines.append)
    assert [call for _, call in stub.calls()][-2:] == ["reload --no-provision", "provision"]
    assert lines == ["==> default: Restarting", "==> default: Running provisioner: shell..."]


def test_ssh_info_reads_ssh_config(tmp_path: Path, stub: Stub, files: FilesRoot) -> None:
    cli = created(tmp_path, stub, files)
    stub.on(
        "ssh-config",
        out="Host default\n  HostName 127.0.0.1\n  User vagrant\n  Port 2200\n"
        '  IdentityFile "/m/private key"\n',
    )
    info = cli.ssh_info("vcm_1_1")
    assert (info.host, info.port, info.user, info.key_path) == (
        "127.0.0.1",
        2200,
        "vagrant",
        "/m/private key",
    )


class TestExecQuoting:
    """The stub hands `-c CMD` to a local bash, as the guest's login shell would."""

    @pytest.fixture
    def cli(self, tmp_path: Path, stub: Stub, files: FilesRoot) -> VagrantCli:
        cli = created(tmp_path, stub, files)
        (stub.dir / "ssh.local").write_text("")
        return cli

    def test_argv_arrives_exactly_as_sent(self, cli: VagrantCli) -> None:
        argv = ["printf", "[%s]\\n", HOSTILE, "$(id)", "a b", "*", "-n", "'"]
        result = cli.exec("vcm_1_1", argv, 10)
        assert result.exit_status == 0
        assert result.stdout == "".join(f"[{arg}]\n" for arg in argv[2:])
        assert result.stderr == ""
        assert not Path("/tmp/pwned").exists()

    def test_what_the_login_prints_before_the_command_is_dropped(
        self, cli: VagrantCli, stub: Stub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        profile = tmp_path / "profile"
        profile.write_text("echo motd of the day; echo login warning >&2\n")
        monkeypatch.setenv("BASH_ENV", str(profile))
        result = cli.exec("vcm_1_1", ["echo", "only this"], 10)
        assert (result.stdout, result.stderr) == ("only this\n", "")

    def test_exit_status_and_stderr(self, cli: VagrantCli) -> None:
        result = cli.exec("vcm_1_1", ["sh", "-c", "echo oops >&2; exit 7"], 10)
        assert (result.exit_status, result.stdout, result.stderr) == (7, "", "oops\n")

    def test_output_is_cut_at_the_limit(self, cli: VagrantCli) -> None:
        result = cli.exec("vcm_1_1", ["head", "-c", "1500000", "/dev/zero"], 10)
        assert (len(result.stdout), result.stdout_truncated) == (1024 * 1024, True)
        assert result.exit_status == 0

    def test_a_command_over_its_timeout_is_ended(self, cli: VagrantCli) -> None:
        result = cli.exec("vcm_1_1", ["sleep", "20"], 1)
        assert (result.timed_out, result.exit_status) == (True, 124)

    def test_vagrant_failing_before_the_command_is_a_backend_error(
        self, cli: VagrantCli, stub: Stub
    ) -> None:
        (stub.dir / "ssh.local").unlink()
        stub.on("ssh", err="The provider for this Vagrant-managed machine is not ready", rc=1)
        with pytest.raises(BackendError, match="could not run the command \\(exit 1\\): The"):
            cli.exec("vcm_1_1", ["true"], 10)
