from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.fakes import FakeVagrant
from vcm.adapters.protocol import ERROR_CODES, RequestHandler, encode, error_code
from vcm.domain import errors
from vcm.domain.service import VcmService

SEED_CREATE = """{
\t"command": "create",
\t"box": "vcm/bookworm-test",
\t"files": [],
\t"puppet": [],
\t"shell": [],
\t"network": "private",
\t"hostname": "dynamic"
}"""


@pytest.fixture
def handler(service: VcmService) -> RequestHandler:
    return RequestHandler(service)


def ask(handler: RequestHandler, request: dict[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(request, dict):
        request = json.dumps(request)
    raw = request.encode() if isinstance(request, str) else request
    reply = handler.handle(raw)
    assert json.loads(encode(reply)) == reply
    return reply


def create(handler: RequestHandler, **fields: Any) -> str:
    reply = ask(handler, {"command": "create", "box": "vcm/bookworm-test", **fields})
    assert reply["error"] is False, reply
    return str(reply["boxID"])


class TestSeedExamples:
    def test_create_replies_with_the_box_id(self, handler: RequestHandler) -> None:
        reply = ask(handler, SEED_CREATE)
        assert reply["error"] is False
        assert reply["boxID"] == "vcm_bookworm_test_1"
        assert reply["message"]

    def test_start_replies_with_the_seed_fields(self, handler: RequestHandler) -> None:
        box_id = create(handler)
        reply = ask(handler, {"command": "start", "boxID": box_id})
        assert reply == {
            "error": False,
            "vmID": f"{box_id}_1",
            "boxID": box_id,
            "box": "vcm/bookworm-test",
            "IP": "192.168.33.2",
            "hostname": "vcm-bookworm-test-1-1.example.com",
            "state": "running",
            "message": f"started VM {box_id}_1 successfully",
        }

    def test_stop_replies_as_the_seed_shows(self, handler: RequestHandler) -> None:
        box_id = create(handler)
        ask(handler, {"command": "start", "boxID": box_id})
        reply = ask(handler, '{\n\t"command": "stop",\n\t"vmID": "vcm_bookworm_test_1_1"\n}')
        assert reply["error"] is False
        assert (reply["vmID"], reply["boxID"]) == ("vcm_bookworm_test_1_1", box_id)
        assert reply["message"] == "shutdown VM vcm_bookworm_test_1_1 successfully"

    def test_info_vm_all_lists_every_vm(self, handler: RequestHandler) -> None:
        box_id = create(handler)
        for _ in range(2):
            ask(handler, {"command": "start", "boxID": box_id})
        reply = ask(handler, {"command": "info", "subcommand": "VM all"})
        assert reply["error"] is False
        assert [vm["vmID"] for vm in reply["VMS"]] == [f"{box_id}_1", f"{box_id}_2"]
        assert set(reply["VMS"][0]) == {"vmID", "boxID", "box", "IP", "hostname", "state"}
        assert reply["message"] == "listed information on 2 active VMs"


class TestInfo:
    def test_one_vm_has_the_same_shape(self, handler: RequestHandler) -> None:
        box_id = create(handler)
        ask(handler, {"command": "start", "boxID": box_id})
        reply = ask(handler, {"command": "info", "subcommand": f"VM {box_id}_1"})
        assert len(reply["VMS"]) == 1

    def test_boxes_list_their_definition_and_vms(self, handler: RequestHandler) -> None:
        box_id = create(handler, shell=["echo hi", {"inline": "true"}], hostname="web")
        ask(handler, {"command": "start", "boxID": box_id})
        [box] = ask(handler, {"command": "info", "subcommand": "box all"})["boxes"]
        assert box["shell"] == [{"inline": "echo hi"}, {"inline": "true"}]
        assert box["hostname"] == "web"
        assert box["vmIDs"] == [f"{box_id}_1"]
        assert ask(handler, {"command": "info", "subcommand": f"box {box_id}"})["boxes"] == [box]

    @pytest.mark.parametrize(
        ("subcommand", "code"),
        [
            ("VM nope_1_1", "VM_NOT_FOUND"),
            ("box nope_1", "BOX_NOT_FOUND"),
            ("VMs", "INVALID_REQUEST"),
            ("", "INVALID_REQUEST"),
            ("cpu all", "INVALID_REQUEST"),
        ],
    )
    def test_bad_targets(self, handler: RequestHandler, subcommand: str, code: str) -> None:
        reply = ask(handler, {"command": "info", "subcommand": subcommand})
        assert (reply["error"], reply["code"]) == (True, code)


class TestAllForms:
    @pytest.mark.parametrize(
        "request_",
        [{"command": "destroy all"}, {"command": "destroy", "subcommand": "all"}],
    )
    def test_destroy_all_both_forms(
        self, handler: RequestHandler, request_: dict[str, Any]
    ) -> None:
        box_id = create(handler)
        ask(handler, {"command": "start", "boxID": box_id})
        reply = ask(handler, request_)
        assert reply["VMS"] == [f"{box_id}_1"]
        assert ask(handler, {"command": "info", "subcommand": "VM all"})["VMS"] == []

    @pytest.mark.parametrize("command", ["halt all", "shutdown all", "stop all"])
    def test_stopping_all(self, handler: RequestHandler, command: str) -> None:
        box_id = create(handler)
        ask(handler, {"command": "start", "boxID": box_id})
        assert ask(handler, {"command": command})["VMS"] == [f"{box_id}_1"]
        [vm] = ask(handler, {"command": "info", "subcommand": "VM all"})["VMS"]
        assert vm["state"] == "stopped"

    def test_partial_failure_is_an_error_listing_both(
        self, handler: RequestHandler, vagrant: FakeVagrant
    ) -> None:
        box_id = create(handler)
        for _ in range(2):
            ask(handler, {"command": "start", "boxID": box_id})
        vagrant.fail("destroy", f"{box_id}_2")
        reply = ask(handler, {"command": "destroy all"})
        assert reply["error"] is True
        assert reply["code"] == "VAGRANT_ERROR"
        assert reply["VMS"] == [f"{box_id}_1"]
        assert reply["failed"][0]["vmID"] == f"{box_id}_2"
        assert "simulated" in reply["failed"][0]["message"]

    def test_destroy_box(self, handler: RequestHandler) -> None:
        box_id = create(handler)
        ask(handler, {"command": "start", "boxID": box_id})
        reply = ask(handler, {"command": "destroy", "boxID": box_id})
        assert (reply["error"], reply["boxID"], reply["VMS"]) == (False, box_id, [f"{box_id}_1"])
        assert ask(handler, {"command": "info", "subcommand": "box all"})["boxes"] == []


class TestBadRequests:
    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            (b"not json", "INVALID_JSON"),
            (b'{"command": "info",}', "INVALID_JSON"),
            (b"\xff\xfe{}", "INVALID_JSON"),
            (b"[1, 2]", "INVALID_JSON"),
            (b'{"command": "' + b"9" * 5000 + b'"}', "UNKNOWN_COMMAND"),
            (b'{"x": ' + b"9" * 5000 + b"}", "INVALID_JSON"),
            (b"{}", "INVALID_REQUEST"),
            (b'{"command": 5}', "INVALID_REQUEST"),
            (b'{"command": "reboot"}', "UNKNOWN_COMMAND"),
            (b'{"command": "create"}', "INVALID_REQUEST"),
            (b'{"command": "create", "box": "x", "colour": "red"}', "INVALID_REQUEST"),
            (b'{"command": "create", "box": ["x"]}', "INVALID_REQUEST"),
            (b'{"command": "create", "box": "x", "network": "public"}', "INVALID_REQUEST"),
            (
                b'{"command": "create", "box": "x", "files": [{"destination": "/a"}]}',
                "INVALID_REQUEST",
            ),
            (b'{"command": "create", "box": "x", "shell": [5]}', "INVALID_REQUEST"),
            (b'{"command": "create", "box": "--force"}', "INVALID_REQUEST"),
            (b'{"command": "start"}', "INVALID_REQUEST"),
            (b'{"command": "start", "boxID": "a", "vmID": "b"}', "INVALID_REQUEST"),
            (b'{"command": "start", "boxID": 12}', "INVALID_REQUEST"),
            (b'{"command": "stop", "boxID": "a_1"}', "INVALID_REQUEST"),
            (b'{"command": "destroy", "subcommand": "everything"}', "INVALID_REQUEST"),
            (b'{"command": "destroy all", "subcommand": "box"}', "INVALID_REQUEST"),
            (b'{"command": "info"}', "INVALID_REQUEST"),
            (b'{"command": "info", "subcommand": "VM all", "id": [1]}', "INVALID_REQUEST"),
            (b'{"command": "info", "subcommand": "VM all", "id": true}', "INVALID_REQUEST"),
            (b'{"command": "stop", "vmID": "x_1_1"}', "VM_NOT_FOUND"),
            (b'{"command": "start", "boxID": "x_1"}', "BOX_NOT_FOUND"),
            (b'{"command": "create", "box": "ubuntu/trusty64"}', "BOX_UNAVAILABLE"),
        ],
    )
    def test_gets_a_clear_error_and_changes_nothing(
        self, handler: RequestHandler, raw: bytes, code: str
    ) -> None:
        reply = ask(handler, raw)
        assert reply["error"] is True
        assert reply["code"] == code, reply
        assert reply["message"]
        assert ask(handler, {"command": "info", "subcommand": "box all"})["boxes"] == []

    def test_the_message_names_the_bad_field(self, handler: RequestHandler) -> None:
        reply = ask(handler, {"command": "create", "box": "x", "network": 1})
        assert "network" in reply["message"]


class TestEnvelope:
    def test_the_id_is_echoed_on_success_and_failure(self, handler: RequestHandler) -> None:
        assert ask(handler, {"command": "info", "subcommand": "VM all", "id": 42})["id"] == 42
        assert ask(handler, {"command": "nope", "id": "abc"})["id"] == "abc"
        assert list(ask(handler, {"command": "nope", "id": "abc"}))[:2] == ["error", "id"]

    def test_a_token_is_required_when_configured(self, service: VcmService) -> None:
        handler = RequestHandler(service, token="s3cret")
        denied = ask(handler, {"command": "create", "box": "vcm/bookworm-test"})
        assert denied["code"] == "UNAUTHORIZED"
        wrong = ask(handler, {"command": "create", "box": "vcm/bookworm-test", "token": "x"})
        assert wrong["code"] == "UNAUTHORIZED"
        assert (
            ask(handler, {"command": "info", "subcommand": "box all", "token": "s3cret"})["boxes"]
            == []
        )
        assert "s3cret" not in json.dumps(denied)


def test_every_domain_error_has_a_wire_code() -> None:
    domain_errors = [
        e
        for e in vars(errors).values()
        if isinstance(e, type) and issubclass(e, errors.VcmError) and e is not errors.VcmError
    ]
    assert all(error in ERROR_CODES for error in domain_errors)
    assert error_code(RuntimeError("boom")) == "INTERNAL"


def test_an_unexpected_exception_becomes_internal(
    handler: RequestHandler, vagrant: FakeVagrant
) -> None:
    def explode(box: str) -> None:
        raise RuntimeError("boom")

    vagrant.ensure_box = explode  # type: ignore[method-assign]
    reply = ask(handler, {"command": "create", "box": "vcm/bookworm-test"})
    assert (reply["error"], reply["code"]) == (True, "INTERNAL")


class TestLifecycleCommands:
    def started(self, handler: RequestHandler, **fields: Any) -> str:
        box_id = create(handler, **fields)
        return str(ask(handler, {"command": "start", "boxID": box_id})["vmID"])

    def test_suspend_resume_reload_provision_reply_with_the_vm(
        self, handler: RequestHandler
    ) -> None:
        vm_id = self.started(handler)
        for command, done, state in [
            ("suspend", "suspended", "suspended"),
            ("resume", "resumed", "running"),
            ("reload", "reloaded", "running"),
            ("provision", "provisioned", "running"),
        ]:
            reply = ask(handler, {"command": command, "vmID": vm_id})
            assert (reply["error"], reply["vmID"], reply["state"]) == (False, vm_id, state)
            assert reply["message"] == f"{done} VM {vm_id} successfully"
        info = ask(handler, {"command": "info", "subcommand": f"VM {vm_id}"})
        assert info["VMS"][0]["state"] == "running"

    def test_a_suspended_vm_shows_in_info(self, handler: RequestHandler) -> None:
        vm_id = self.started(handler)
        ask(handler, {"command": "suspend", "vmID": vm_id})
        info = ask(handler, {"command": "info", "subcommand": "VM all"})
        assert [vm["state"] for vm in info["VMS"]] == ["suspended"]

    def test_snapshots(self, handler: RequestHandler) -> None:
        vm_id = self.started(handler)
        saved = ask(
            handler, {"command": "snapshot", "subcommand": "save", "vmID": vm_id, "name": "a"}
        )
        assert (saved["error"], saved["name"], saved["state"]) == (False, "a", "running")
        listed = ask(handler, {"command": "snapshot", "subcommand": "list", "vmID": vm_id})
        assert (listed["snapshots"], listed["message"]) == (["a"], f"VM {vm_id} has 1 snapshot")
        restored = ask(
            handler, {"command": "snapshot", "subcommand": "restore", "vmID": vm_id, "name": "a"}
        )
        assert restored["error"] is False
        deleted = ask(
            handler, {"command": "snapshot", "subcommand": "delete", "vmID": vm_id, "name": "a"}
        )
        assert deleted["message"] == f"deleted snapshot a of VM {vm_id}"
        assert (
            ask(handler, {"command": "snapshot", "subcommand": "list", "vmID": vm_id})["snapshots"]
            == []
        )

    @pytest.mark.parametrize(
        "request_fields",
        [
            {"command": "snapshot", "subcommand": "save"},
            {"command": "snapshot", "subcommand": "list", "name": "a"},
            {"command": "snapshot", "subcommand": "rename", "name": "a"},
            {"command": "snapshot", "subcommand": "save", "name": "a b"},
            {"command": "snapshot", "subcommand": "save", "name": 1},
            {"command": "suspend", "vmID": 7},
            {"command": "suspend", "vmID": None},
            {"command": "reload", "force": True},
            {"command": "exec", "argv": "uname -a"},
            {"command": "exec", "argv": ["uname", 1]},
            {"command": "exec", "argv": ["true"], "timeout": 1.5},
            {"command": "exec", "argv": ["true"], "timeout": 0},
            {"command": "exec", "argv": []},
            {"command": "ssh-info", "user": "root"},
            {"command": "create", "box": "vcm/bookworm-test", "cpus": "2"},
            {"command": "create", "box": "vcm/bookworm-test", "cpus": True},
            {"command": "create", "box": "vcm/bookworm-test", "cpus": 0},
            {"command": "create", "box": "vcm/bookworm-test", "memory": 1.5},
            {"command": "create", "box": "vcm/bookworm-test", "memory": 10},
        ],
    )
    def test_bad_requests_are_refused_and_change_nothing(
        self, handler: RequestHandler, vagrant: FakeVagrant, request_fields: dict[str, Any]
    ) -> None:
        vm_id = self.started(handler)
        calls = list(vagrant.calls)
        if request_fields["command"] != "create":
            request_fields = {"vmID": vm_id, **request_fields}
        reply = ask(handler, {k: v for k, v in request_fields.items() if v is not None})
        assert (reply["error"], reply["code"]) == (True, "INVALID_REQUEST"), reply
        assert vagrant.calls == calls
        assert len(ask(handler, {"command": "info", "subcommand": "box all"})["boxes"]) == 1

    def test_a_command_in_the_wrong_state_is_an_invalid_request(
        self, handler: RequestHandler
    ) -> None:
        vm_id = self.started(handler)
        ask(handler, {"command": "stop", "vmID": vm_id})
        reply = ask(handler, {"command": "exec", "vmID": vm_id, "argv": ["true"]})
        assert reply["code"] == "INVALID_REQUEST"
        assert "is stopped; exec needs it running" in reply["message"]

    def test_what_the_provider_cannot_do_is_unsupported(
        self, handler: RequestHandler, vagrant: FakeVagrant
    ) -> None:
        vm_id = self.started(handler)
        vagrant.unsupported.add("snapshot")
        reply = ask(handler, {"command": "snapshot", "subcommand": "list", "vmID": vm_id})
        assert reply == {
            "error": True,
            "code": "UNSUPPORTED",
            "message": "the fake provider cannot snapshot",
        }

    def test_exec_and_ssh_info_replies(self, handler: RequestHandler) -> None:
        vm_id = self.started(handler)
        reply = ask(handler, {"command": "exec", "vmID": vm_id, "argv": ["echo", "a b"]})
        assert reply == {
            "error": False,
            "vmID": vm_id,
            "exitStatus": 0,
            "stdout": "echo a b\n",
            "stderr": "",
            "stdoutTruncated": False,
            "stderrTruncated": False,
            "timedOut": False,
            "message": f"echo in VM {vm_id} exited 0",
        }
        info = ask(handler, {"command": "ssh-info", "vmID": vm_id})
        assert {k: info[k] for k in ("host", "port", "user", "keyPath")} == {
            "host": "127.0.0.1",
            "port": 2222,
            "user": "vagrant",
            "keyPath": f"/keys/{vm_id}",
        }

    def test_box_entries_carry_the_resources(self, handler: RequestHandler) -> None:
        sized = create(handler, cpus=1, memory=256)
        plain = create(handler)
        boxes = ask(handler, {"command": "info", "subcommand": "box all"})["boxes"]
        assert [(b["boxID"], b["cpus"], b["memory"]) for b in boxes] == [
            (sized, 1, 256),
            (plain, None, None),
        ]


def test_unsupported_has_its_own_wire_code() -> None:
    assert error_code(errors.Unsupported("x")) == "UNSUPPORTED"
    assert error_code(errors.WrongState("x")) == "INVALID_REQUEST"
