from __future__ import annotations

import json

import pytest

from vcm import client
from vcm.client._wire import (
    Endpoint,
    Interim,
    LineBuffer,
    ReplyReader,
    encode,
    raise_for_error,
    read_line,
)
from vcm.client.errors import ERRORS_BY_CODE, Failure, ProtocolError, VcmError
from vcm.client.models import ProgressLine

SPEC_ERRORS = {
    "INVALID_JSON": client.InvalidJson,
    "INVALID_REQUEST": client.InvalidRequest,
    "UNKNOWN_COMMAND": client.UnknownCommand,
    "REQUEST_TOO_LARGE": client.RequestTooLarge,
    "UNAUTHORIZED": client.Unauthorized,
    "BOX_NOT_FOUND": client.BoxNotFound,
    "VM_NOT_FOUND": client.VmNotFound,
    "BOX_UNAVAILABLE": client.BoxUnavailable,
    "IP_POOL_EXHAUSTED": client.IpPoolExhausted,
    "VAGRANT_ERROR": client.VagrantError,
    "UNSUPPORTED": client.Unsupported,
    "INTERNAL": client.InternalError,
    "CANCELLED": client.Cancelled,
    "OPERATION_NOT_FOUND": client.OperationNotFound,
}


class TestEncode:
    def test_a_request_is_one_json_line_with_its_id(self) -> None:
        data = encode({"command": "info", "subcommand": "VM all"}, 7, None)
        assert data.endswith(b"\n")
        assert data.count(b"\n") == 1
        assert json.loads(data) == {"command": "info", "subcommand": "VM all", "id": 7}

    def test_the_token_goes_with_the_request(self) -> None:
        assert json.loads(encode({"command": "info"}, 1, "s3cret"))["token"] == "s3cret"

    def test_text_stays_utf8_and_newlines_stay_escaped(self) -> None:
        data = encode({"command": "create", "shell": [{"inline": "echo é\nexit 0"}]}, 1, None)
        assert "é".encode() in data
        assert data.count(b"\n") == 1


class TestLineBuffer:
    def test_a_line_split_across_chunks_comes_out_once_complete(self) -> None:
        buffer = LineBuffer()
        buffer.feed(b'{"error": fa')
        assert buffer.pop() is None
        buffer.feed(b'lse}\n{"error": true')
        assert buffer.pop() == b'{"error": false}'
        assert buffer.pop() is None

    def test_several_lines_in_one_chunk_come_out_in_order(self) -> None:
        buffer = LineBuffer()
        buffer.feed(b"a\n\nb\nc")
        assert [buffer.pop(), buffer.pop(), buffer.pop()] == [b"a", b"b", None]

    def test_a_line_over_the_limit_is_a_protocol_error(self) -> None:
        with pytest.raises(ProtocolError, match="longer than 16 bytes"):
            LineBuffer(limit=16).feed(b"x" * 17)


class TestReadLine:
    def test_a_final_reply_has_error(self) -> None:
        assert read_line(b'{"error": false, "id": 3, "boxID": "b_1"}', 3) == {
            "error": False,
            "id": 3,
            "boxID": "b_1",
        }

    def test_a_reply_without_id_is_taken_as_the_current_one(self) -> None:
        reply = read_line(b'{"error": true, "code": "REQUEST_TOO_LARGE", "message": "m"}', 3)
        assert reply == {"error": True, "code": "REQUEST_TOO_LARGE", "message": "m"}

    def test_a_line_without_error_is_interim_progress(self) -> None:
        assert read_line(b'{"id": 3, "progress": "booting"}', 3) == Interim(ProgressLine("booting"))

    def test_a_progress_event_carries_its_vm_and_phase(self) -> None:
        item = read_line(
            b'{"id": 3, "event": "progress", "vmID": "b_1_1", "phase": "booting", '
            b'"line": "==> default: Starting container..."}',
            3,
        )
        assert isinstance(item, Interim)
        assert item.text == "==> default: Starting container..."
        assert (item.text.vm_id, item.text.phase) == ("b_1_1", "booting")

    def test_a_reply_for_another_request_is_a_protocol_error(self) -> None:
        with pytest.raises(ProtocolError, match="request 2"):
            read_line(b'{"error": false, "id": 2}', 3)

    @pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"error": "false"}', b"\xff\xfe"])
    def test_a_line_that_breaks_the_protocol_is_a_protocol_error(self, line: bytes) -> None:
        with pytest.raises(ProtocolError):
            read_line(line, 1)

    def test_the_reader_hands_progress_on_and_returns_the_final_reply(self) -> None:
        reader = ReplyReader()
        seen: list[str] = []
        reader.feed(b'{"id": 1, "progress": "importing"}\n{"id": 1, "prog')
        assert reader.reply_for(1, seen.append) is None
        reader.feed(b'ress": "booting"}\n{"error": false, "id": 1}\n')
        assert reader.reply_for(1, seen.append) == {"error": False, "id": 1}
        assert seen == ["importing", "booting"]


class TestErrors:
    def test_every_error_code_of_the_protocol_has_its_own_exception(self) -> None:
        assert ERRORS_BY_CODE == SPEC_ERRORS

    @pytest.mark.parametrize(("code", "kind"), SPEC_ERRORS.items())
    def test_an_error_reply_raises_the_exception_of_its_code(
        self, code: str, kind: type[VcmError]
    ) -> None:
        with pytest.raises(kind) as raised:
            raise_for_error({"error": True, "code": code, "message": f"it said {code}"})
        assert isinstance(raised.value, VcmError)
        assert raised.value.code == code
        assert raised.value.message == f"it said {code}"
        assert str(raised.value) == f"it said {code}"

    def test_a_code_this_client_does_not_know_is_still_a_vcm_error(self) -> None:
        with pytest.raises(VcmError) as raised:
            raise_for_error({"error": True, "code": "QUOTA_EXCEEDED", "message": "later"})
        assert type(raised.value) is VcmError
        assert raised.value.code == "QUOTA_EXCEEDED"

    def test_a_partial_bulk_failure_carries_what_was_done_and_what_failed(self) -> None:
        reply = {
            "error": True,
            "VMS": ["web_1_1"],
            "failed": [{"vmID": "web_1_2", "code": "VAGRANT_ERROR", "message": "exit 1"}],
            "code": "VAGRANT_ERROR",
            "message": "destroyed 1 VM; 1 failed: exit 1",
        }
        with pytest.raises(client.VagrantError) as raised:
            raise_for_error(reply)
        assert raised.value.done == ("web_1_1",)
        assert raised.value.failed == (Failure("web_1_2", "VAGRANT_ERROR", "exit 1"),)

    def test_a_success_raises_nothing(self) -> None:
        raise_for_error({"error": False, "message": "ok"})

    def test_client_side_errors_are_vcm_errors_and_standard_ones(self) -> None:
        assert issubclass(client.VcmConnectionError, ConnectionError)
        assert issubclass(client.VcmTimeout, TimeoutError)
        for kind in (client.VcmConnectionError, client.VcmTimeout, client.ProtocolError):
            assert issubclass(kind, VcmError)


class TestEndpoint:
    def test_defaults_without_environment(self) -> None:
        assert Endpoint.from_env({}) == Endpoint("127.0.0.1", 12121, None)

    def test_reads_host_port_and_token(self) -> None:
        environ = {"VCM_HOST": "10.0.0.5", "VCM_PORT": "4000", "VCM_AUTH_TOKEN": "t"}
        assert Endpoint.from_env(environ) == Endpoint("10.0.0.5", 4000, "t")

    @pytest.mark.parametrize("port", ["http", "0", "70000"])
    def test_a_bad_port_names_the_value(self, port: str) -> None:
        with pytest.raises(ValueError, match=repr(port)):
            Endpoint.from_env({"VCM_PORT": port})

    @pytest.mark.parametrize(
        ("environ", "tls", "tls_ca"),
        [
            ({"VCM_TLS": "1"}, True, None),
            ({"VCM_TLS": "TRUE"}, True, None),
            ({"VCM_TLS": "0"}, False, None),
            ({"VCM_TLS": "false"}, False, None),
            ({"VCM_TLS": ""}, False, None),
            ({"VCM_TLS_CA": "/etc/vcm/ca.pem"}, True, "/etc/vcm/ca.pem"),
            ({"VCM_TLS": "1", "VCM_TLS_CA": "ca.pem"}, True, "ca.pem"),
        ],
    )
    def test_reads_tls_and_a_ca_file_implies_tls(
        self, environ: dict[str, str], tls: bool, tls_ca: str | None
    ) -> None:
        endpoint = Endpoint.from_env(environ)
        assert (endpoint.tls, endpoint.tls_ca) == (tls, tls_ca)

    def test_a_bad_tls_value_names_the_variable_and_value(self) -> None:
        with pytest.raises(ValueError, match=r"VCM_TLS .*'maybe'"):
            Endpoint.from_env({"VCM_TLS": "maybe"})
