"""Split a byte stream into JSON objects by where each object ends, not by newlines."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

MAX_DEPTH = 100

_WHITESPACE = b" \t\r\n"
_OUTSIDE_STRING = re.compile(rb'[{}\[\]"]')
_INSIDE_STRING = re.compile(rb'\\.|"', re.DOTALL)
_OPENER_OF = {ord("}"): ord("{"), ord("]"): ord("[")}


class FrameKind(enum.Enum):
    OBJECT = "object"
    INVALID = "invalid"
    TOO_LARGE = "too large"


@dataclass(frozen=True)
class Frame:
    kind: FrameKind
    data: bytes = b""
    reason: str = ""


class _Mode(enum.Enum):
    SEEK = "seek"
    SKIP_LINE = "skip line"
    OBJECT = "object"
    DISCARD = "discard"


class JsonObjectSplitter:
    """Feed bytes in any chunks; get back complete objects and what could not be one.

    Memory stays bounded: an object over `limit` bytes or nested deeper than MAX_DEPTH is
    reported once, then skipped to its end without being kept.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buffer = bytearray()
        self._position = 0
        self._mode = _Mode.SEEK
        self._openers = bytearray()
        self._depth = 0
        self._in_string = False

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = list(self._frames())
        if self._mode is not _Mode.OBJECT:
            del self._buffer[: self._position]
            self._position = 0
        return frames

    def finish(self) -> list[Frame]:
        """The input has ended; an object still open is incomplete."""
        incomplete = self._mode is _Mode.OBJECT
        self._buffer.clear()
        self._position = 0
        self._mode = _Mode.SEEK
        if incomplete:
            return [Frame(FrameKind.INVALID, reason="the input ended inside a JSON object")]
        return []

    def _frames(self) -> Iterator[Frame]:
        while self._position < len(self._buffer):
            if self._mode is _Mode.SEEK:
                yield from self._seek()
            elif self._mode is _Mode.SKIP_LINE:
                self._skip_line()
            else:
                frame = self._scan()
                if frame is not None:
                    yield frame
                elif self._mode in (_Mode.OBJECT, _Mode.DISCARD):
                    return

    def _seek(self) -> Iterator[Frame]:
        buffer = self._buffer
        while self._position < len(buffer) and buffer[self._position] in _WHITESPACE:
            self._position += 1
        if self._position == len(buffer):
            return
        if buffer[self._position] != ord("{"):
            self._mode = _Mode.SKIP_LINE
            yield Frame(FrameKind.INVALID, reason="a request must be a JSON object")
            return
        del buffer[: self._position]
        self._position = 0
        self._mode = _Mode.OBJECT
        self._openers.clear()
        self._depth = 0
        self._in_string = False

    def _skip_line(self) -> None:
        end = self._buffer.find(b"\n", self._position)
        if end < 0:
            self._position = len(self._buffer)
        else:
            self._position = end + 1
            self._mode = _Mode.SEEK

    def _scan(self) -> Frame | None:
        """Advance through the current object; a frame once it ends or turns out bad."""
        buffer = self._buffer
        while True:
            if self._in_string:
                match = _INSIDE_STRING.search(buffer, self._position)
                if match is None:
                    lone_backslash = self._position < len(buffer) and buffer[-1] == ord("\\")
                    self._position = len(buffer) - lone_backslash
                    return self._oversize()
                self._position = match.end()
                self._in_string = match.group() != b'"'
                continue
            match = _OUTSIDE_STRING.search(buffer, self._position)
            if match is None:
                self._position = len(buffer)
                return self._oversize()
            self._position = match.end()
            char = match.group()[0]
            if char == ord('"'):
                self._in_string = True
            elif char in _OPENER_OF.values():
                frame = self._open(char)
                if frame is not None:
                    return frame
            else:
                frame = self._close(char)
                if frame is not None or self._depth == 0:
                    return frame

    def _open(self, char: int) -> Frame | None:
        self._depth += 1
        if self._mode is _Mode.DISCARD:
            return None
        if self._depth > MAX_DEPTH:
            self._mode = _Mode.DISCARD
            return Frame(FrameKind.INVALID, reason=f"JSON nested deeper than {MAX_DEPTH} levels")
        self._openers.append(char)
        return None

    def _close(self, char: int) -> Frame | None:
        if self._mode is _Mode.OBJECT and self._openers.pop() != _OPENER_OF[char]:
            self._mode = _Mode.SKIP_LINE
            return Frame(FrameKind.INVALID, reason="mismatched brackets in JSON")
        self._depth -= 1
        if self._depth > 0:
            return None
        if self._mode is _Mode.DISCARD:
            self._mode = _Mode.SEEK
            return None
        self._mode = _Mode.SEEK
        data = bytes(buffer := self._buffer[: self._position])
        del self._buffer[: len(buffer)]
        self._position = 0
        if len(data) > self._limit:
            return self._too_large()
        return Frame(FrameKind.OBJECT, data)

    def _oversize(self) -> Frame | None:
        if self._mode is _Mode.OBJECT and self._position > self._limit:
            self._mode = _Mode.DISCARD
            return self._too_large()
        return None

    def _too_large(self) -> Frame:
        return Frame(FrameKind.TOO_LARGE, reason=f"a request may be at most {self._limit} bytes")
