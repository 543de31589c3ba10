"""A tiny scripted server on loopback, for replies the real daemon cannot be made to send."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

Request = dict[str, Any]
Script = Callable[[Request], list[bytes] | None]
"""Given a request, the raw bytes to send back (nothing: stay silent); None closes the line."""


def reply(request: Request, **fields: Any) -> bytes:
    """A success reply to `request`, echoing its id."""
    return line({"error": False, "id": request["id"], **fields})


def error(request: Request, code: str, message: str, **fields: Any) -> bytes:
    return line({"error": True, "id": request["id"], "code": code, "message": message, **fields})


def line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload) + "\n").encode()


def vm_entry(vm_id: str = "b_1_1", state: str = "running") -> dict[str, Any]:
    return {
        "vmID": vm_id,
        "boxID": vm_id.rsplit("_", 1)[0],
        "box": "b",
        "IP": "192.168.33.2",
        "hostname": vm_id.replace("_", "-") + ".example.com",
        "state": state,
    }


class FakeDaemon:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.connections = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._server.getsockname()[:2]
        threading.Thread(target=self._accept, daemon=True).start()

    def commands(self) -> list[str]:
        with self._lock:
            return [str(request.get("command")) for request in self.requests]

    def close_connections(self) -> None:
        """What a daemon restart does to its clients' idle connections."""
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            _hang_up(sock)

    def stop(self) -> None:
        self._server.close()
        self.close_connections()

    def __enter__(self) -> FakeDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        pending = b""
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            pending += data
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                if not self._answer(sock, json.loads(raw)):
                    return

    def _answer(self, sock: socket.socket, request: Request) -> bool:
        with self._lock:
            self.requests.append(request)
        answer = self.script(request)
        try:
            if answer is None:
                _hang_up(sock)
                return False
            for chunk in answer:
                sock.sendall(chunk)
        except OSError:
            return False
        return True


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
