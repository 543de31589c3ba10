"""The socket server fuzzed with bad input: a fixed corpus of raw bytes, then hypothesis.

Every request must get exactly one reply: one line of strict JSON (no NaN, valid UTF-8) with a
boolean "error". Afterwards the server must still answer a well-formed request on the same
connection and on a new one, and bad requests must leave the state as it was: the replies to
`info box all` and `info VM all`, and the bytes of state.json.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcm.adapters.host_files import FilesRoot
from vcm.adapters.json_store import JsonStateStore
from vcm.adapters.protocol import ERROR_CODES, RequestHandler
from vcm.adapters.simulated import SimulatedVagrant
from vcm.adapters.socket_server import ServerThread, SocketServer
from vcm.domain.allocation import IpPool
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService

LIMIT = 64 * 1024
TIMEOUT = 20.0
BOX = "vcm/bookworm-test"
CODES = {*ERROR_CODES.values(), "INTERNAL"}
KNOWN_COMMANDS = {
    *("create", "start", "stop", "halt", "shutdown", "destroy", "info"),
    *("suspend", "resume", "reload", "provision", "snapshot", "exec", "ssh-info"),
    *("operation", "watch"),
}
ENVELOPE_FIELDS = {"command", "id", "token", "progress", "async"}
ALL_FORMS = {"destroy all", "halt all", "shutdown all", "stop all"}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Json = Any
FieldPath = tuple[str | int, ...]
VM_ID: FieldPath = ("vmID",)
SUBCOMMAND: FieldPath = ("subcommand",)


# -- the server and a raw client --------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def strict_reply(line: bytes) -> dict[str, Any]:
    """One reply line as RFC 8259 JSON: UTF-8, an object, a boolean error, a known code."""
    reply = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    assert isinstance(reply, dict), line
    assert isinstance(reply.get("error"), bool), line
    assert isinstance(reply.get("message"), str), line
    if reply["error"]:
        assert reply.get("code") in CODES, line
    return reply


class Connection:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending = b""
        self._sentinels = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self._pending:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError(f"closed before a full reply; got {self._pending[:200]!r}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def reply(self) -> dict[str, Any]:
        return strict_reply(self.line())

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.send(json.dumps(request).encode())
        return self.reply()

    def exchange(self, payload: bytes) -> list[dict[str, Any]]:
        """Send payload, a newline and a sentinel request; the replies before the sentinel's."""
        self._sentinels += 1
        sentinel = f"sentinel-{self._sentinels}"
        self.send(payload + b"\n" + _info("VM all", sentinel))
        replies = []
        while (reply := self.reply()).get("id") != sentinel:
            replies.append(reply)
        assert reply["error"] is False, reply
        return replies

    def until_eof(self, payload: bytes) -> list[dict[str, Any]]:
        """Send payload, half-close, and read every reply up to the server's close."""
        self.send(payload)
        self.sock.shutdown(socket.SHUT_WR)
        replies = []
        while True:
            try:
                replies.append(self.reply())
            except ConnectionError:
                break
        assert self._pending == b"", f"a partial reply line: {self._pending[:200]!r}"
        return replies

    def close(self) -> None:
        self.sock.close()


def _info(subcommand: str, request_id: str | None = None) -> bytes:
    request: dict[str, Any] = {"command": "info", "subcommand": subcommand}
    if request_id is not None:
        request["id"] = request_id
    return json.dumps(request).encode()


@dataclass
class Target:
    """A running server, the state it must keep, and how many cases it was fed."""

    address: tuple[str, int]
    state_file: Path
    baseline: tuple[dict[str, Any], dict[str, Any], bytes] | None = None
    cases: int = 0
    open: list[Connection] = field(default_factory=list)

    def connect(self) -> Connection:
        connection = Connection(self.address)
        self.open.append(connection)
        return connection

    def observe(self) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        connection = self.connect()
        try:
            boxes = connection.ask({"command": "info", "subcommand": "box all"})
            vms = connection.ask({"command": "info", "subcommand": "VM all"})
        finally:
            connection.close()
        return boxes, vms, self.state_file.read_bytes()

    def assert_unchanged(self) -> None:
        assert self.observe() == self.baseline, "a bad request changed the state"


@contextmanager
def serving(state_dir: Path) -> Iterator[Target]:
    state_file = state_dir / "state.json"
    service = VcmService(
        registry=Registry(JsonStateStore(state_file)),
        vagrant=SimulatedVagrant(),
        host_files=FilesRoot(None),
        pool=IpPool.with_host_sides(IPv4Network("192.168.33.0/24")),
        domain="example.com",
    )
    thread = ServerThread(
        SocketServer(
            RequestHandler(service), host="127.0.0.1", port=0, max_request_bytes=LIMIT, workers=4
        ),
        grace=5,
    )
    thread.start()
    target = Target(thread.address, state_file)
    try:
        yield target
    finally:
        for connection in target.open:
            connection.close()
        thread.stop()


def seed(target: Target) -> None:
    """Two boxes, a running VM and a stopped one: the state no bad request may touch."""
    connection = target.connect()
    box_id = connection.ask({"command": "create", "box": BOX, "shell": ["true"]})["boxID"]
    connection.ask({"command": "create", "box": "other/box", "network": "none"})
    connection.ask({"command": "start", "boxID": box_id})
    stopped = connection.ask({"command": "start", "boxID": box_id})["vmID"]
    assert connection.ask({"command": "stop", "vmID": stopped})["state"] == "stopped"
    connection.close()
    target.baseline = target.observe()


@pytest.fixture(scope="module")
def target(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Target]:
    with serving(tmp_path_factory.mktemp("fuzz")) as running:
        seed(running)
        yield running
        running.assert_unchanged()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\ntest_fuzz_protocol: {running.cases} fuzz cases run")


@pytest.fixture
def wire(target: Target) -> Iterator[Connection]:
    """One connection per test; at the end it and a new one must still serve, state unchanged."""
    connection = target.connect()
    yield connection
    assert connection.exchange(b"") == []
    target.assert_unchanged()


# -- the fixed corpus -------------------------------------------------------------------------

# One base request per command and form: valid as it stands (it is never sent unchanged), plus
# where each of its fields sits and which JSON kinds that field accepts.
STR = frozenset({"string"})
BASES: list[tuple[dict[str, Any], dict[FieldPath, frozenset[str]]]] = [
    (
        {
            "command": "create",
            "box": BOX,
            "files": [{"destination": "/tmp/x", "content": "x"}],
            "puppet": [{"manifest": "notice('x')"}],
            "shell": ["true", {"inline": "true"}],
            "network": "private",
            "hostname": "dynamic",
            "id": 1,
            "token": "t",
        },
        {
            ("command",): STR,
            ("box",): STR,
            ("files",): frozenset({"array"}),
            ("files", 0): frozenset({"object"}),
            ("files", 0, "destination"): STR,
            ("files", 0, "content"): STR,
            ("puppet",): frozenset({"array"}),
            ("puppet", 0): frozenset({"object"}),
            ("puppet", 0, "manifest"): STR,
            ("shell",): frozenset({"array"}),
            ("shell", 0): frozenset({"string", "object"}),
            ("shell", 1): frozenset({"string", "object"}),
            ("shell", 1, "inline"): STR,
            ("network",): STR,
            ("hostname",): STR,
            ("id",): frozenset({"string", "int", "float", "null"}),
            ("token",): frozenset({"string", "null"}),
        },
    ),
    (
        {
            "command": "create",
            "box": BOX,
            "files": [{"destination": "/tmp/x", "source": "x.txt"}],
            "puppet": [{"path": "site.pp"}],
            "shell": [{"path": "setup.sh"}],
        },
        {
            ("files", 0, "source"): STR,
            ("puppet", 0, "path"): STR,
            ("shell", 0, "path"): STR,
        },
    ),
    ({"command": "start", "boxID": "b_1"}, {("boxID",): STR}),
    ({"command": "start", "vmID": "b_1_1"}, {("vmID",): STR}),
    *[({"command": verb, "vmID": "b_1_1"}, {VM_ID: STR}) for verb in ("stop", "halt", "shutdown")],
    *[({"command": verb, "subcommand": "all"}, {SUBCOMMAND: STR}) for verb in ("stop", "halt")],
    ({"command": "destroy", "vmID": "b_1_1"}, {("vmID",): STR}),
    ({"command": "destroy", "boxID": "b_1"}, {("boxID",): STR}),
    ({"command": "destroy", "subcommand": "all"}, {("subcommand",): STR}),
    *[({"command": form, "subcommand": "all"}, {SUBCOMMAND: STR}) for form in ALL_FORMS],
    ({"command": "info", "subcommand": "VM all"}, {("subcommand",): STR}),
]

# One value of each JSON kind, and a few awkward ones.
VALUES_BY_KIND: dict[str, list[Json]] = {
    "null": [None],
    "bool": [True, False],
    "int": [0, -1, 10**300],
    "float": [1.5, -0.0, 1e308],
    "string": [],
    "array": [[], [1], [[[]]], ["all"]],
    "object": [{}, {"a": 1}, {"command": "destroy all"}],
}
# Strings that the field's type accepts but its value does not.
WRONG_STRINGS: dict[FieldPath, list[str]] = {
    ("network",): ["public", "PRIVATE", ""],
    ("subcommand",): ["ALL", "VM all", ""],
}


def kind_of(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def with_value(base: dict[str, Any], path: FieldPath, value: Json) -> dict[str, Any]:
    request = copy.deepcopy(base)
    holder: Any = request
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = value
    return request


def wrong_values(command: str, path: FieldPath, accepted: frozenset[str]) -> list[Json]:
    values = [value for kind, vs in VALUES_BY_KIND.items() if kind not in accepted for value in vs]
    if command != "info":
        values += WRONG_STRINGS.get(path[-1:], [])
    return values


def wrong_typed_requests() -> Iterator[tuple[str, bytes]]:
    for base, fields in BASES:
        for path, accepted in fields.items():
            for value in wrong_values(base["command"], path, accepted):
                name = f"{base['command']}.{'.'.join(map(str, path))}={json.dumps(value)[:20]}"
                yield name, json.dumps(with_value(base, path, value)).encode()


def unknown_field_requests() -> Iterator[tuple[str, bytes]]:
    for base, _ in BASES:
        yield f"{base['command']}+unknown", json.dumps({**base, "extra": 1}).encode()
        yield f"{base['command']}+vmid-case", json.dumps({**base, "VMID": "x"}).encode()
    nested = BASES[0][0]
    for path in (("files", 0), ("puppet", 0), ("shell", 1)):
        request = copy.deepcopy(nested)
        holder: Any = request
        for step in path:
            holder = holder[step]
        holder["mode"] = "0777"
        yield f"create.{path[0]}+unknown", json.dumps(request).encode()


def deep(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return ('{"command": "info", "x": ' + opener * depth + closer * depth + "}").encode()


# (name, payload, the code of each reply it must get; None is a success)
CORPUS: list[tuple[str, bytes, list[str | None]]] = [
    ("invalid utf-8 line", b"\xff\xfe\xfd", ["INVALID_JSON"]),
    (
        "invalid utf-8 in a string",
        b'{"command": "info", "subcommand": "VM \xc3\x28"}',
        ["INVALID_JSON"],
    ),
    ("overlong utf-8", b'{"command": "info", "subcommand": "\xc0\xaf"}', ["INVALID_JSON"]),
    ("utf-16 request", json.dumps({"command": "info"}).encode("utf-16"), ["INVALID_JSON"]),
    ("a bare word", b"hello", ["INVALID_JSON"]),
    ("broken json in braces", b'{"command": }', ["INVALID_JSON"]),
    ("single quotes", b"{'command': 'info'}", ["INVALID_JSON"]),
    ("trailing comma", b'{"command": "info", "subcommand": "VM all",}', ["INVALID_JSON"]),
    ("comment", b'{"command": "info" /* hi */}', ["INVALID_JSON"]),
    ("mismatched brackets", b'{"command": ["info"}]', ["INVALID_JSON"]),
    ("stray closer", b"}", ["INVALID_JSON"]),
    ("object then garbage", _info("VM all") + b"}", [None, "INVALID_JSON"]),
    ("array", b'[{"command": "destroy all"}]', ["INVALID_JSON"]),
    ("string", b'"destroy all"', ["INVALID_JSON"]),
    ("number", b"12121", ["INVALID_JSON"]),
    ("null", b"null", ["INVALID_JSON"]),
    ("true", b"true", ["INVALID_JSON"]),
    ("empty object", b"{}", ["INVALID_REQUEST"]),
    ("no command", b'{"vmID": "x"}', ["INVALID_REQUEST"]),
    ("command null", b'{"command": null}', ["INVALID_REQUEST"]),
    ("unknown command", b'{"command": "reboot", "vmID": "x"}', ["UNKNOWN_COMMAND"]),
    ("command case", b'{"command": "INFO", "subcommand": "VM all"}', ["UNKNOWN_COMMAND"]),
    ("command padded", b'{"command": " destroy all"}', ["UNKNOWN_COMMAND"]),
    (
        "all form with another subcommand",
        b'{"command": "destroy all", "subcommand": "x"}',
        ["INVALID_REQUEST"],
    ),
    (
        "two targets",
        b'{"command": "destroy", "vmID": "a_1_1", "boxID": "a_1"}',
        ["INVALID_REQUEST"],
    ),
    ("no target", b'{"command": "stop"}', ["INVALID_REQUEST"]),
    ("start all", b'{"command": "start", "subcommand": "all"}', ["INVALID_REQUEST"]),
    ("info without subcommand", b'{"command": "info"}', ["INVALID_REQUEST"]),
    ("info nonsense", b'{"command": "info", "subcommand": "everything"}', ["INVALID_REQUEST"]),
    ("info unknown vm", _info("VM nope_1_1"), ["VM_NOT_FOUND"]),
    ("info unknown box", _info("box nope_1"), ["BOX_NOT_FOUND"]),
    ("raw NUL", b"\x00", ["INVALID_JSON"]),
    ("raw NUL in a string", b'{"command": "info\x00", "subcommand": "VM all"}', ["INVALID_JSON"]),
    ("escaped NUL in the box", b'{"command": "create", "box": "a\\u0000b"}', ["INVALID_REQUEST"]),
    (
        "escaped NUL in a script",
        b'{"command": "create", "box": "a/b", "shell": ["x\\u0000"]}',
        ["INVALID_REQUEST"],
    ),
    ("escaped NUL in a command", b'{"command": "info\\u0000"}', ["UNKNOWN_COMMAND"]),
    ("nested 101 deep", deep(100), ["INVALID_JSON"]),
    ("nested 100000 deep", deep(100_000), ["INVALID_JSON"]),
    ("nested objects 5000 deep", deep(5000, '{"a":', "}"), ["INVALID_JSON"]),
    ("nested 99 deep, unknown field", deep(98), ["INVALID_REQUEST"]),
    ("a 4301-digit number", b'{"command": "info", "id": ' + b"9" * 4301 + b"}", ["INVALID_JSON"]),
    ("a huge exponent box", b'{"command": "create", "box": 1e99999999}', ["INVALID_JSON"]),
    (
        "a 60 KB box name",
        json.dumps({"command": "create", "box": "a" * 60_000}).encode(),
        ["INVALID_REQUEST"],
    ),
    ("a 60 KB vmID", _info("VM " + "v" * 60_000), ["VM_NOT_FOUND"]),
    (
        "a 60 KB hostname",
        json.dumps({"command": "create", "box": BOX, "hostname": "h" * 60_000}).encode(),
        ["INVALID_REQUEST"],
    ),
    (
        "a 60 KB unknown key",
        json.dumps({"command": "info", "k" * 60_000: 1}).encode(),
        ["INVALID_REQUEST"],
    ),
    ("bad id type", b'{"command": "destroy all", "id": [1]}', ["INVALID_REQUEST"]),
    ("bool id", b'{"command": "destroy all", "id": true}', ["INVALID_REQUEST"]),
    (
        "token given but not needed, wrong type",
        b'{"command": "destroy all", "token": 5}',
        ["INVALID_REQUEST"],
    ),
    ("only whitespace", b" \t\r\n" * 1000, []),
]
CORPUS += [(name, payload, ["INVALID_REQUEST"]) for name, payload in wrong_typed_requests()]
CORPUS += [(name, payload, ["INVALID_REQUEST"]) for name, payload in unknown_field_requests()]

# Input that ends inside an object, a string or an escape: answered when the client half-closes.
TRUNCATED = [
    b"{",
    b'{"command": "info"',
    b'{"command": "info", "subcommand": "VM all',
    b'{"command": "info", "subcommand": "\\',
    b'{"a": [[[[',
    b'{"a": "}' + b"\n" * 10,
    deep(150)[:-60],
]


def codes(replies: list[dict[str, Any]]) -> list[str | None]:
    return [reply.get("code") if reply["error"] else None for reply in replies]


# -- the tests --------------------------------------------------------------------------------


def test_every_corpus_entry_gets_exactly_its_replies(target: Target, wire: Connection) -> None:
    for name, payload, expected in CORPUS:
        replies = wire.exchange(payload)
        assert codes(replies) == expected, f"{name}: {replies}"
        target.cases += 1
    assert len(CORPUS) > 400


def test_the_corpus_byte_by_byte_gets_the_same_replies(target: Target, wire: Connection) -> None:
    small = [(name, payload) for name, payload, _ in CORPUS if len(payload) < 300][:150]
    whole = [wire.exchange(payload) for _, payload in small]
    for (name, payload), expected in zip(small, whole, strict=True):
        for byte in payload + b"\n":
            wire.send(bytes([byte]))
        assert wire.exchange(b"") == expected, name
        target.cases += 1


@pytest.mark.parametrize("payload", TRUNCATED)
def test_input_that_ends_inside_a_request_gets_one_reply(target: Target, payload: bytes) -> None:
    assert codes(target.connect().until_eof(payload)) == ["INVALID_JSON"]
    target.cases += 1
    target.assert_unchanged()


def test_a_request_far_over_the_limit_gets_one_too_large_reply(
    target: Target, wire: Connection
) -> None:
    huge_string = json.dumps({"command": "create", "box": "a" * (16 * LIMIT)}).encode()
    huge_array = b'{"command": "create", "box": [' + b"[1]," * (4 * LIMIT) + b"1]}"
    newlines = b'{"command": "create", "box": "' + b"\\n\n" * (4 * LIMIT) + b'"}'
    for payload in (huge_string, huge_array, newlines):
        assert codes(wire.exchange(payload)) == ["REQUEST_TOO_LARGE"]
        target.cases += 1
    assert codes(wire.exchange(b"x" * (16 * LIMIT))) == ["INVALID_JSON"]
    assert codes(wire.exchange(b" " * (16 * LIMIT))) == []
    target.cases += 2


def test_thousands_of_tiny_requests_on_one_connection_are_answered_in_order(
    target: Target, wire: Connection
) -> None:
    count = 3000
    requests = [b"{}", b"x\n", b'{"command":"info","subcommand":"VM all","id":%d}']
    stream = b"".join(requests[n % 3].replace(b"%d", str(n).encode()) for n in range(count))
    sender = threading.Thread(target=wire.send, args=(stream,))
    sender.start()
    replies = [wire.reply() for _ in range(count)]
    sender.join(TIMEOUT)
    expected = [("INVALID_REQUEST", None), ("INVALID_JSON", None), (None, None)]
    for n, reply in enumerate(replies):
        code, _ = expected[n % 3]
        assert (reply.get("code") if reply["error"] else None) == code, (n, reply)
        if code is None:
            assert reply["id"] == n
    target.cases += count


def test_odd_but_valid_ids_are_echoed_exactly(target: Target, wire: Connection) -> None:
    for request_id in (10**4000, -(2**63), 0.1, 1e-300, "", "x" * 1000, "\u2028", "\U0001f600"):
        wire.send(
            json.dumps({"command": "info", "subcommand": "box all", "id": request_id}).encode()
        )
        assert wire.reply()["id"] == request_id
        target.cases += 1


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_ids_are_refused_or_echoed_as_json(target: Target, number: bytes) -> None:
    target.cases += 1
    replies = target.connect().exchange(
        b'{"command": "info", "subcommand": "VM all", "id": ' + number + b"}"
    )
    assert [(reply["error"], reply["code"]) for reply in replies] == [(True, "INVALID_JSON")]


@pytest.mark.parametrize(
    "payload",
    [
        b'{"command": "info", "subcommand": "VM all", "id": "\\ud800"}',
        b'{"command": "info", "subcommand": "VM \\udfff"}',
        b'{"command": "stop", "vmID": "\\ud800"}',
        b'{"command": "destroy", "boxID": "\\ud800"}',
    ],
)
def test_lone_surrogates_get_one_reply_and_keep_the_connection(
    target: Target, payload: bytes
) -> None:
    target.cases += 1
    replies = target.connect().exchange(payload)
    assert [(reply["error"], reply["code"]) for reply in replies] == [(True, "INVALID_REQUEST")]


def test_a_box_with_a_lone_surrogate_is_refused_or_listed(tmp_path: Path) -> None:
    with serving(tmp_path) as fresh:
        connection = fresh.connect()
        created = connection.ask({"command": "create", "box": BOX, "shell": ["echo \ud800"]})
        if created["error"]:
            assert created["code"] == "INVALID_REQUEST"
        listed = connection.exchange(_info("box all"))
        assert len(listed) == 1, listed
        assert listed[0]["error"] is False, listed


# -- hypothesis -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_CASES = [
    (base, path, accepted) for base, fields in BASES for path, accepted in fields.items()
]


@FUZZ
@given(case=st.sampled_from(FIELD_CASES), value=json_values)
def test_a_wrong_typed_field_is_an_invalid_request(
    target: Target, case: tuple[dict[str, Any], FieldPath, frozenset[str]], value: Json
) -> None:
    base, path, accepted = case
    if kind_of(value) in accepted or (kind_of(value) == "int" and "float" in accepted):
        value = [value]
    connection = target.connect()
    payload = json.dumps(with_value(base, path, value)).encode()
    assert codes(connection.exchange(payload)) == ["INVALID_REQUEST"], payload
    connection.close()
    target.cases += 1
    target.assert_unchanged()


@FUZZ
@given(
    base=st.sampled_from([base for base, _ in BASES]),
    key=st.text(min_size=1, max_size=12).filter(lambda k: k not in ENVELOPE_FIELDS),
    value=json_values,
)
def test_an_unknown_field_is_an_invalid_request(
    target: Target, base: dict[str, Any], key: str, value: Json
) -> None:
    known = set(base) | {"files", "puppet", "shell", "network", "hostname", "vmID", "boxID"}
    if key in known or key == "subcommand":
        key = f"x-{key}"
    connection = target.connect()
    payload = json.dumps({**base, key: value}).encode()
    assert codes(connection.exchange(payload)) == ["INVALID_REQUEST"], payload
    connection.close()
    target.cases += 1
    target.assert_unchanged()


@FUZZ
@given(
    command=st.text(max_size=30).filter(lambda c: c not in KNOWN_COMMANDS | ALL_FORMS),
    rest=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k not in ENVELOPE_FIELDS),
        json_values,
        max_size=4,
    ),
)
def test_an_unknown_command_is_unknown(target: Target, command: str, rest: dict[str, Json]) -> None:
    connection = target.connect()
    payload = json.dumps({"command": command, **rest}).encode()
    assert codes(connection.exchange(payload)) == ["UNKNOWN_COMMAND"], payload
    connection.close()
    target.cases += 1
    target.assert_unchanged()


@FUZZ
@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_json_that_is_not_an_object_is_invalid_json(target: Target, value: Json) -> None:
    connection = target.connect()
    assert codes(connection.exchange(json.dumps(value).encode())) == ["INVALID_JSON"]
    connection.close()
    target.cases += 1


@FUZZ
@given(
    inside=st.binary(min_size=1, max_size=40).filter(
        lambda b: b'"' not in b and b"\\" not in b and not _is_utf8(b)
    )
)
def test_invalid_utf8_inside_a_request_is_invalid_json(target: Target, inside: bytes) -> None:
    connection = target.connect()
    payload = b'{"command": "create", "box": "' + inside + b'"}'
    assert codes(connection.exchange(payload)) == ["INVALID_JSON"], payload
    connection.close()
    target.cases += 1
    target.assert_unchanged()


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(FUZZ, max_examples=300)
@given(
    data=st.binary(max_size=300)
    | st.lists(st.sampled_from(list(b'{}[]":,\\\n x0')), max_size=80).map(bytes)
)
def test_random_bytes_get_only_valid_replies_and_change_nothing(
    target: Target, data: bytes
) -> None:
    replies = target.connect().until_eof(data)
    if data.strip(b" \t\r\n"):
        assert replies, f"no reply to {data!r}"
    assert all(reply["error"] is True for reply in replies), replies
    target.cases += 1
    target.assert_unchanged()
