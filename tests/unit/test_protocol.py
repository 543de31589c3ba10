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
