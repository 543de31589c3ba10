from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vcm.client import _calls
from vcm.client.errors import BoxNotFound, LocalFileError, ProtocolError, VmNotFound
from vcm.client.models import (
    Box,
    FileProvisioner,
    Network,
    PuppetProvisioner,
    ShellProvisioner,
    Vm,
    VmState,
)


def _vm_entry(state: str = "running") -> dict[str, Any]:
    return {
        "vmID": "a_1_1",
        "boxID": "a_1",
        "box": "a",
        "IP": "192.168.33.2",
        "hostname": "a-1-1.example.com",
        "state": state,
    }


def _create(**options: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "files": (),
        "puppet": (),
        "shell": (),
        "network": Network.PRIVATE,
        "hostname": "dynamic",
    }
    return _calls.create_box("vcm/bookworm-test", **{**defaults, **options}).payload


class TestCreateBox:
    def test_defaults_send_every_field_of_the_seed_request(self) -> None:
        assert _create() == {
            "command": "create",
            "box": "vcm/bookworm-test",
            "files": [],
            "puppet": [],
            "shell": [],
            "network": "private",
            "hostname": "dynamic",
        }

    def test_local_files_are_sent_as_their_content(self, tmp_path: Path) -> None:
        payload = tmp_path / "motd"
        payload.write_text("hello from the host\n")
        assert _create(files=[(payload, "/etc/motd"), (str(payload), "/tmp/again")])["files"] == [
            {"destination": "/etc/motd", "content": "hello from the host\n"},
            {"destination": "/tmp/again", "content": "hello from the host\n"},
        ]

    def test_a_string_is_a_script_and_a_path_is_a_local_script(self, tmp_path: Path) -> None:
        script = tmp_path / "setup.sh"
        script.write_text("apt-get install -y nginx\n")
        assert _create(shell=["echo hi", script])["shell"] == [
            {"inline": "echo hi"},
            {"inline": "apt-get install -y nginx\n"},
        ]

    def test_puppet_manifests_from_text_and_local_files(self, tmp_path: Path) -> None:
        manifest = tmp_path / "site.pp"
        manifest.write_text("package { 'nginx': }\n")
        assert _create(puppet=["notify { 'hi': }", manifest])["puppet"] == [
            {"manifest": "notify { 'hi': }"},
            {"manifest": "package { 'nginx': }\n"},
        ]

    def test_provisioner_objects_pass_through_for_daemon_side_paths(self) -> None:
        payload = _create(
            files=[FileProvisioner(destination="/etc/app.conf", source="app.conf")],
            shell=[ShellProvisioner(path="setup.sh")],
            puppet=[PuppetProvisioner(path="site.pp")],
            network=Network.NONE,
            hostname="web",
        )
        assert payload["files"] == [{"destination": "/etc/app.conf", "source": "app.conf"}]
        assert payload["shell"] == [{"path": "setup.sh"}]
        assert payload["puppet"] == [{"path": "site.pp"}]
        assert (payload["network"], payload["hostname"]) == ("none", "web")

    def test_a_missing_local_file_names_it(self, tmp_path: Path) -> None:
        with pytest.raises(LocalFileError, match=r"gone\.sh"):
            _create(shell=[tmp_path / "gone.sh"])

    def test_a_binary_local_file_is_refused(self, tmp_path: Path) -> None:
        binary = tmp_path / "blob"
        binary.write_bytes(b"\xff\xfe\x00")
        with pytest.raises(LocalFileError, match="not UTF-8"):
            _create(files=[(binary, "/tmp/blob")])


class TestParse:
    def test_a_start_reply_becomes_a_vm(self) -> None:
        reply = {
            "error": False,
            "vmID": "web_1_1",
            "boxID": "web_1",
            "box": "web",
            "IP": "192.168.33.2",
            "hostname": "web-1-1.example.com",
            "state": "running",
            "message": "started VM web_1_1 successfully",
        }
        assert _calls.start_vm("web_1").result(reply) == Vm(
            "web_1_1", "web_1", "web", "192.168.33.2", "web-1-1.example.com", VmState.RUNNING
        )

    def test_a_seed_reply_without_state_means_running(self) -> None:
        reply = {"error": False, "vmID": "a_1_1", "boxID": "a_1", "box": "a", "IP": None}
        vm = _calls.start_vm("a_1").result({**reply, "hostname": "a-1-1.example.com"})
        assert (vm.state, vm.ip) == (VmState.RUNNING, None)

    def test_a_state_this_client_does_not_know_still_parses(self) -> None:
        reply = {"error": False, "VMS": [_vm_entry(state="migrating")]}
        [vm] = _calls.list_vms().result(reply)
        assert vm.state == "migrating"
        assert str(vm.state) == "migrating"
        assert vm.state != VmState.RUNNING

    def test_a_box_entry_becomes_a_box(self) -> None:
        entry = {
            "boxID": "web_3",
            "box": "web",
            "files": [{"destination": "/etc/motd", "content": "hi"}],
            "puppet": [{"manifest": "notify {'x':}"}],
            "shell": [{"inline": "echo hi"}, "echo short form"],
            "network": "none",
            "hostname": "dynamic",
            "vmIDs": ["web_3_1"],
        }
        box = _calls.get_box("web_3").result({"error": False, "boxes": [entry]})
        assert box == Box(
            box_id="web_3",
            box="web",
            files=(FileProvisioner(destination="/etc/motd", content="hi"),),
            puppet=(PuppetProvisioner(manifest="notify {'x':}"),),
            shell=(ShellProvisioner(inline="echo hi"), ShellProvisioner(inline="echo short form")),
            network=Network.NONE,
            hostname="dynamic",
            vm_ids=("web_3_1",),
        )
        assert box.to_json()["shell"][1] == {"inline": "echo short form"}

    def test_the_wire_form_of_a_vm_uses_the_protocol_names(self) -> None:
        [vm] = _calls.list_vms().result({"error": False, "VMS": [_vm_entry()]})
        assert vm.to_json() == _vm_entry()

    @pytest.mark.parametrize(
        "reply",
        [
            {"error": False},
            {"error": False, "VMS": "none"},
            {"error": False, "VMS": [{"vmID": "a_1_1"}]},
            {"error": False, "VMS": [{**_vm_entry(), "state": 3}]},
        ],
    )
    def test_a_reply_missing_fields_is_a_protocol_error(self, reply: dict[str, Any]) -> None:
        with pytest.raises(ProtocolError):
            _calls.list_vms().result(reply)

    def test_get_vm_expects_exactly_one_entry(self) -> None:
        with pytest.raises(ProtocolError, match="one entry"):
            _calls.get_vm("a_1_1").result({"error": False, "VMS": []})

    @pytest.mark.parametrize("target", ["all", "", " ", "a_1 b_1"])
    def test_get_never_asks_for_all_or_for_nothing(self, target: str) -> None:
        with pytest.raises(VmNotFound):
            _calls.get_vm(target)
        with pytest.raises(BoxNotFound):
            _calls.get_box(target)

    def test_only_info_counts_as_safe_to_resend(self) -> None:
        assert _calls.list_vms().read_only
        assert _calls.get_box("b_1").read_only
        assert _calls.raw("info", {"subcommand": "VM all"}).read_only
        assert not _calls.start_vm("b_1").read_only
        assert not _calls.raw("destroy", {"vmID": "b_1_1"}).read_only


class TestLifecycleCalls:
    @pytest.mark.parametrize("verb", ["suspend", "resume", "reload", "provision"])
    def test_vm_commands_send_the_vm_id_and_read_a_vm(self, verb: Any) -> None:
        call = _calls.vm_command(verb, "a_1_1")
        assert call.payload == {"command": verb, "vmID": "a_1_1"}
        vm = call.result({"error": False, **_vm_entry(state="suspended")})
        assert vm.state == VmState.SUSPENDED
        assert not call.read_only

    def test_resources_are_sent_only_when_given(self) -> None:
        sized = _calls.create_box(
            "b", files=(), puppet=(), shell=(), network="private", hostname="dynamic", cpus=2
        )
        assert (sized.payload["cpus"], "memory" in sized.payload) == (2, False)

    def test_snapshot_calls(self) -> None:
        call = _calls.snapshot("restore", "a_1_1", "clean")
        assert call.payload == {
            "command": "snapshot",
            "subcommand": "restore",
            "vmID": "a_1_1",
            "name": "clean",
        }
        done = call.result(
            {"error": False, "vmID": "a_1_1", "boxID": "a_1", "name": "clean", "state": "stopped"}
        )
        assert (done.name, done.state) == ("clean", VmState.STOPPED)
        listed = _calls.list_snapshots("a_1_1").result({"error": False, "snapshots": ["x", "y"]})
        assert listed == ["x", "y"]

    def test_exec_sends_argv_and_reads_the_result(self) -> None:
        call = _calls.exec_in_vm("a_1_1", ("ls", "-l"), 5)
        assert call.payload == {
            "command": "exec",
            "vmID": "a_1_1",
            "argv": ["ls", "-l"],
            "timeout": 5,
        }
        assert "timeout" not in _calls.exec_in_vm("a_1_1", ["true"], None).payload
        reply = {
            "error": False,
            "vmID": "a_1_1",
            "exitStatus": 2,
            "stdout": "",
            "stderr": "no such file\n",
            "stdoutTruncated": False,
            "stderrTruncated": False,
            "timedOut": False,
            "message": "ls exited 2",
        }
        result = call.result(reply)
        assert (result.exit_status, result.stderr) == (2, "no such file\n")
        assert result.to_json() == {k: v for k, v in reply.items() if k != "error"}
        with pytest.raises(ProtocolError, match="exitStatus"):
            call.result({**reply, "exitStatus": "2"})

    def test_ssh_info_gives_an_ssh_command(self) -> None:
        reply = {
            "error": False,
            "vmID": "a_1_1",
            "host": "10.0.3.5",
            "port": 22,
            "user": "vagrant",
            "keyPath": "/k/private_key",
        }
        info = _calls.ssh_info("a_1_1").result(reply)
        assert info.command() == ["ssh", "-i", "/k/private_key", "-p", "22", "vagrant@10.0.3.5"]
        assert _calls.ssh_info("a_1_1").read_only

    def test_box_resources_are_read(self) -> None:
        entry = {
            "boxID": "b_1",
            "box": "b",
            "files": [],
            "puppet": [],
            "shell": [],
            "network": "private",
            "hostname": "dynamic",
            "cpus": 2,
            "memory": 512,
            "vmIDs": [],
        }
        box = _calls.get_box("b_1").result({"error": False, "boxes": [entry]})
        assert (box.cpus, box.memory) == (2, 512)
        assert box.to_json() == entry
