"""The real daemon as a subprocess, and a small blocking client for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import vcm

LISTENING = "vcm listening on"
RECONCILED = "reconciled state with the backend"
VCM_SRC = Path(vcm.__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Daemon:
    """`python -m vcm.entrypoints.daemon` on a port chosen here, so a client can poll it."""

    def __init__(self, state_dir: Path, **settings: str) -> None:
        self.state_dir = state_dir
        self.host = "127.0.0.1"
        self.port = free_port()
        self.env = {
            **os.environ,
            "VCM_HOST": self.host,
            "VCM_PORT": str(self.port),
            "VCM_STATE_DIR": str(state_dir),
            "VCM_CONFIG_FILE": str(state_dir / "absent.toml"),
            # the daemon runs the same vcm this process imports (PYTHONPATH may name a scratch copy)
            "PYTHONPATH": os.pathsep.join(
                [str(VCM_SRC), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **settings,
        }
        self.process: subprocess.Popen[str] | None = None
        self.launched = 0.0
        self._lines: list[str] = []
        self._times: list[float] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> str:
        return "".join(self._lines)

    def launch(self) -> Daemon:
        """Start the process and return at once; see wait_accepting()."""
        self._lines.clear()
        self._times.clear()
        self.launched = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vcm.entrypoints.daemon"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        return self

    def start(self, timeout: float = 60.0) -> Daemon:
        self.launch()
        self.wait_accepting(timeout)
        return self

    def wait_accepting(self, timeout: float = 60.0) -> float:
        """Poll connect() until the daemon accepts; seconds from launch to then."""
        deadline = time.perf_counter() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return time.perf_counter() - self.launched
            except OSError:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"the daemon exited:\n{self.log[-5000:]}") from None
                if time.perf_counter() > deadline:
                    self.kill()
                    raise RuntimeError(f"the daemon did not accept:\n{self.log[-5000:]}") from None
                time.sleep(0.002)

    def wait_for_log(self, text: str, timeout: float = 600.0) -> float:
        """Seconds from launch to the first log line holding `text`."""
        deadline = time.perf_counter() + timeout
        while True:
            for line, when in zip(list(self._lines), list(self._times), strict=False):
                if text in line:
                    return when - self.launched
            assert self.process is not None
            if self.process.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"{text!r} never logged:\n{self.log[-5000:]}")
            time.sleep(0.01)

    def stop(self, timeout: float = 120.0) -> int:
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout: float) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()

    def _collect(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._times.append(time.perf_counter())
            self._lines.append(line)


class Wire:
    """A blocking client: one request out, its reply line back."""

    def __init__(self, host: str, port: int, timeout: float = 1200.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._pending = b""

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        self.sock.sendall(json.dumps(request).encode())
        while b"\n" not in self._pending:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def ok(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = self.ask(request)
        if reply.get("error") is not False:
            raise RuntimeError(f"{request} failed: {reply}")
        return reply

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def timed(wire: Wire, request: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    reply = wire.ok(request)
    return time.perf_counter() - began, reply
