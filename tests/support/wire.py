"""A raw-socket client for tests: send bytes exactly as given, read reply lines."""

from __future__ import annotations

import json
import socket
from typing import Any


class Wire:
    def __init__(self, host: str, port: int, timeout: float = 600.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._pending = b""

    def send(self, data: bytes | str | dict[str, Any]) -> None:
        if isinstance(data, dict):
            data = json.dumps(data)
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def reply(self) -> dict[str, Any]:
        while b"\n" not in self._pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before a full reply; got {self._pending!r}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ask(self, data: bytes | str | dict[str, Any]) -> dict[str, Any]:
        self.send(data)
        return self.reply()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
