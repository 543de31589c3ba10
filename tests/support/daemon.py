"""Run the real daemon as a subprocess on a free port, for tests that talk to it over TCP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_LISTENING = re.compile(r"vcm listening on (\S+):(\d+)")


class DaemonProcess:
    def __init__(self, state_dir: Path, **settings: str) -> None:
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "VCM_PORT": "0",
            "VCM_STATE_DIR": str(state_dir),
            "VCM_CONFIG_FILE": str(state_dir / "absent.toml"),
            **settings,
        }
        self.host = "127.0.0.1"
        self.port = 0
        self._lines: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def log(self) -> str:
        return "".join(self._lines)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 30.0) -> DaemonProcess:
        if self.running:
            raise RuntimeError("this daemon is already running; stop or kill it first")
        self._lines.clear()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "vcm.entrypoints.daemon"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := _LISTENING.search(self.log):
                self.host, self.port = match.group(1), int(match.group(2))
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the daemon did not start listening:\n{self.log}")

    def rss_bytes(self) -> int:
        """The daemon's resident memory, from /proc."""
        assert self._process is not None
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        [line] = [line for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(line.split()[1]) * 1024

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged in {timeout} s:\n{self.log}")
            time.sleep(0.05)

    def stop(self, timeout: float = 120.0) -> int:
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        return self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout: float) -> int:
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signum)
        return self._process.wait(timeout)

    def _collect(self) -> None:
        assert self._process is not None
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._lines.append(line)
