from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vcm.adapters.framing import MAX_DEPTH, Frame, FrameKind, JsonObjectSplitter

SEED_CREATE = b"""{
\t"command": "create",
\t"box": "ubuntu/trusty64",
\t"files": [],
\t"puppet": [],
\t"shell": [],
\t"network": "private",
\t"hostname": "dynamic"
}"""


def frames_of(data: bytes, limit: int = 1024, chunk: int = 0) -> list[Frame]:
    splitter = JsonObjectSplitter(limit)
    step = chunk or len(data) or 1
    frames = [f for i in range(0, len(data), step) for f in splitter.feed(data[i : i + step])]
    return frames + splitter.finish()


def kinds(frames: list[Frame]) -> list[str]:
    return [frame.kind.name for frame in frames]


class TestObjects:
    def test_a_multi_line_object_with_tabs_is_one_request(self) -> None:
        [frame] = frames_of(SEED_CREATE)
        assert json.loads(frame.data)["command"] == "create"

    @pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
    def test_objects_split_at_any_byte_come_out_whole(self, chunk: int) -> None:
        data = SEED_CREATE + b'{"a":"}{\\"\\\\"}\n  {"b":[{}]}'
        frames = frames_of(data, chunk=chunk)
        assert [json.loads(f.data) for f in frames] == [
            json.loads(SEED_CREATE),
            {"a": '}{"\\'},
            {"b": [{}]},
        ]

    def test_back_to_back_objects_are_separate_requests(self) -> None:
        assert len(frames_of(b'{"a":1}{"b":2}{"c":3}')) == 3

    def test_multibyte_utf8_never_confuses_the_scanner(self) -> None:
        data = '{"name": "ü}]\\"€"}'.encode()
        [frame] = frames_of(data, chunk=1)
        assert json.loads(frame.data) == {"name": 'ü}]"€'}


class TestBadInput:
    def test_garbage_gets_one_invalid_frame_and_reading_resumes_after_the_newline(self) -> None:
        frames = frames_of(b'hello {"x": 1}\n{"ok": true}')
        assert kinds(frames) == ["INVALID", "OBJECT"]
        assert json.loads(frames[1].data) == {"ok": True}

    def test_mismatched_brackets_are_invalid(self) -> None:
        frames = frames_of(b'{"a": [1}\n{"ok": 1}')
        assert kinds(frames) == ["INVALID", "OBJECT"]

    def test_input_ending_inside_an_object_is_invalid(self) -> None:
        assert kinds(frames_of(b'{"a": ')) == ["INVALID"]

    def test_an_object_over_the_limit_is_reported_once_and_skipped(self) -> None:
        big = b'{"x": "' + b"a" * 5000 + b'"}'
        frames = frames_of(big + b'{"ok": 1}', limit=100, chunk=512)
        assert kinds(frames) == ["TOO_LARGE", "OBJECT"]

    def test_an_oversized_object_is_not_kept_in_memory(self) -> None:
        splitter = JsonObjectSplitter(100)
        splitter.feed(b'{"x": "')
        for _ in range(100):
            splitter.feed(b"a" * 10_000)
        assert len(splitter._buffer) < 20_000

    def test_deep_nesting_is_refused_and_skipped(self) -> None:
        deep = b'{"a":' + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5) + b"}"
        assert kinds(frames_of(deep + b'{"ok":1}', limit=10_000)) == ["INVALID", "OBJECT"]

    def test_endless_opening_brackets_keep_memory_bounded(self) -> None:
        splitter = JsonObjectSplitter(1000)
        for _ in range(200):
            splitter.feed(b"[" * 5000)
        assert len(splitter._buffer) < 10_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.text(),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(),
                lambda children: st.lists(children) | st.dictionaries(st.text(), children),
                max_leaves=10,
            ),
        ),
        max_size=5,
    ),
    st.integers(1, 50),
    st.sampled_from([b"", b" ", b"\n", b"\t\r\n"]),
)
def test_any_sequence_of_objects_survives_any_chunking(
    objects: list[dict[str, object]], chunk: int, separator: bytes
) -> None:
    data = separator.join(json.dumps(o, indent=1).encode() for o in objects)
    frames = frames_of(data, limit=1 << 20, chunk=chunk)
    assert all(frame.kind is FrameKind.OBJECT for frame in frames)
    assert [json.loads(frame.data) for frame in frames] == objects


@given(st.binary(max_size=300), st.integers(1, 40))
def test_arbitrary_bytes_never_raise(data: bytes, chunk: int) -> None:
    frames_of(data, limit=100, chunk=chunk)
