"""Real Vagrant through python-vagrant: one project directory per VM, a fixed Vagrantfile."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from importlib import resources
from ipaddress import IPv4Network
from pathlib import Path
from typing import IO, Any

import vagrant

from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.host_files import FilesRoot
from vcm.domain.cancel import current_scope
from vcm.domain.errors import BackendError, BoxUnavailable, Cancelled, InvalidRequest
from vcm.domain.ports import Machine, MachineStatus, Progress

log = logging.getLogger(__name__)

MACHINE_FILE = "machine.json"
KILL_AFTER_SECONDS = 15
CANCEL_GRACE_SECONDS = 60
STRAY_POLL_SECONDS = 1.0
TIMED_OUT = (124, 137)
_STATUS = {
    "running": MachineStatus.RUNNING,
    "not_created": MachineStatus.NOT_CREATED,
    "not created": MachineStatus.NOT_CREATED,
    "stopped": MachineStatus.STOPPED,
    "poweroff": MachineStatus.STOPPED,
    "shutoff": MachineStatus.STOPPED,
    "saved": MachineStatus.STOPPED,
}


def template_text() -> str:
    return (resources.files("vcm.adapters") / "vagrant_template" / "Vagrantfile").read_text()


class _TimedVagrant(vagrant.Vagrant):
    """python-vagrant has no timeouts; run every command under coreutils' `timeout`."""

    def __init__(self, *, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout

    def _make_vagrant_command(self, args: list[str | None]) -> list[str]:
        command: list[str] = super()._make_vagrant_command(args)
        return ["timeout", f"--kill-after={KILL_AFTER_SECONDS}", f"{self.timeout:g}", *command]

    def _stream_vagrant_command(self, args: list[str | None]) -> Iterator[str]:
        """python-vagrant's streaming, with the process interruptible by the cancel scope."""
        command = self._make_vagrant_command(args)
        with (
            self.err_cm() as stderr,
            subprocess.Popen(
                command, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=stderr
            ) as process,
            current_scope().interruptible(lambda: interrupt(process)),
        ):
            assert process.stdout is not None
            with process.stdout:
                for line in iter(process.stdout.readline, b""):
                    yield line.decode(errors="replace")
            process.wait()
        if process.returncode != 0:
            raise subprocess.CalledProcessError(process.returncode, command)


def interrupt(process: subprocess.Popen[bytes]) -> None:
    """Interrupt vagrant as Ctrl-C at a terminal would, so that it cleans up after itself.

    `timeout` leads the process group; every other member gets one SIGINT (timeout would
    forward its own twice, and a second SIGINT makes Vagrant exit without cleaning up). If it
    has not ended after CANCEL_GRACE_SECONDS, the whole group is killed.
    """
    for pid in group_members(process.pid):
        if pid != process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
    log.info("interrupted vagrant (process group %d) on request", process.pid)
    timer = threading.Timer(CANCEL_GRACE_SECONDS, _kill_if_running, (process,))
    timer.daemon = True
    timer.start()


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        log.warning("vagrant ignored the interrupt; killing process group %d", process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def group_members(pgid: int) -> list[int]:
    """The pids of the processes in process group `pgid` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


class _CapturedStderr:
    """An err_cm for python-vagrant that keeps what Vagrant wrote to stderr."""

    def __init__(self) -> None:
        self.text = ""

    @contextlib.contextmanager
    def __call__(self) -> Iterator[IO[str]]:
        with tempfile.TemporaryFile(mode="w+") as file:
            try:
                yield file
            finally:
                file.seek(0)
                self.text = file.read()


class VagrantCli:
    def __init__(
        self,
        *,
        machines_dir: Path,
        files: FilesRoot,
        provider: str | None,
        guest: str | None,
        lxc_bridge: str,
        up_timeout: float,
        command_timeout: float,
        box_add_timeout: float,
    ) -> None:
        self._dir = machines_dir
        self._files = files
        self._provider = provider
        self._guest = guest
        self._lxc_bridge = lxc_bridge
        self._up_timeout = up_timeout
        self._command_timeout = command_timeout
        self._box_add_timeout = box_add_timeout
        self._box_lock = threading.Lock()
        self._env = {
            **os.environ,
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "VAGRANT_NO_COLOR": "1",
            **({"VAGRANT_DEFAULT_PROVIDER": provider} if provider else {}),
        }

    def ensure_box(self, box: str) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        with self._box_lock:
            if self._has_box(box):
                return
            log.info("box %s is not installed; vagrant box add %s", box, box)
            try:
                self._run(
                    self._dir,
                    self._box_add_timeout,
                    "box add",
                    lambda v: v.box_add(box, None, provider=self._provider),
                )
            except BackendError as error:
                raise BoxUnavailable(f"Vagrant cannot get box '{box}': {error}") from error

    def create(self, machine: Machine, progress: Progress) -> None:
        root = self._dir / machine.vm_id
        self._write_project(root, machine)
        self._up(root, progress, provision=True)

    def boot(self, vm_id: str, progress: Progress) -> None:
        self._up(self._project(vm_id), progress, provision=False)

    def halt(self, vm_id: str) -> None:
        root = self._project(vm_id)
        try:
            self._run(root, self._command_timeout, "halt", lambda v: v.halt())
        except BackendError as error:
            log.warning("%s: graceful halt failed (%s); forcing it", vm_id, error)
            self._run(root, self._command_timeout, "halt --force", lambda v: v.halt(force=True))

    def destroy(self, vm_id: str) -> None:
        root = self._dir / vm_id
        if not root.is_dir():
            return
        self._wait_for_strays(root)
        if (root / "Vagrantfile").exists():
            self._run(root, self._command_timeout, "destroy", lambda v: v.destroy())
        shutil.rmtree(root)

    def status(self, vm_id: str) -> MachineStatus:
        root = self._dir / vm_id
        if not (root / "Vagrantfile").exists():
            return MachineStatus.NOT_CREATED
        self._wait_for_strays(root)
        statuses = self._run(root, self._command_timeout, "status", lambda v: v.status())
        state = statuses[0].state if statuses else "not_created"
        return _STATUS.get(state, MachineStatus.OTHER)

    def machines(self) -> list[str]:
        if not self._dir.is_dir():
            return []
        return sorted(entry.name for entry in self._dir.iterdir() if entry.is_dir())

    def _wait_for_strays(self, root: Path) -> None:
        """Let a vagrant left running in `root` (by a daemon that was killed) finish first.

        Callers hold the VM's lock, so any process working in its directory is not ours; judging
        or destroying the machine under it would race Vagrant's own machine lock.
        """
        deadline = time.monotonic() + self._up_timeout + KILL_AFTER_SECONDS
        while pids := processes_in(root):
            if time.monotonic() > deadline:
                raise BackendError(f"processes {pids} still work in {root}; try again later")
            log.info(
                "%s: waiting for vagrant left running by an earlier daemon (pids %s)",
                root.name,
                pids,
            )
            time.sleep(STRAY_POLL_SECONDS)

    def _has_box(self, box: str) -> bool:
        boxes = self._run(self._dir, self._command_timeout, "box list", lambda v: v.box_list())
        return any(item.name == box and self._provider in (None, item.provider) for item in boxes)

    def _project(self, vm_id: str) -> Path:
        root = self._dir / vm_id
        if not (root / "Vagrantfile").exists():
            raise BackendError(f"Vagrant has no project for {vm_id} (expected {root})")
        return root

    def _up(self, root: Path, progress: Progress, *, provision: bool) -> None:
        current_scope().check("vagrant up")
        recent: deque[str] = deque(maxlen=20)

        def up(v: vagrant.Vagrant) -> None:
            lines = v.up(provider=self._provider, no_provision=not provision, stream_output=True)
            for line in lines:
                text = line.rstrip()
                recent.append(text)
                progress(text)

        self._run(root, self._up_timeout, "up", up, recent)

    def _run(
        self,
        root: Path,
        timeout: float,
        what: str,
        action: Any,
        recent: deque[str] | None = None,
    ) -> Any:
        stderr = _CapturedStderr()
        client = _TimedVagrant(timeout=timeout, root=str(root), env=self._env, err_cm=stderr)
        try:
            return action(client)
        except subprocess.CalledProcessError as error:
            if current_scope().cancelled:
                raise Cancelled(f"vagrant {what} was interrupted on request") from error
            if error.returncode in TIMED_OUT:
                raise BackendError(f"vagrant {what} timed out after {timeout:g} s") from error
            said = _error_exit(error.output) or stderr.text.strip() or "\n".join(recent or ())
            raise BackendError(
                f"vagrant {what} failed (exit {error.returncode}): {said or 'no output'}"
            ) from error
        except (RuntimeError, OSError) as error:
            raise BackendError(f"vagrant {what} could not run: {error}") from error

    def _write_project(self, root: Path, machine: Machine) -> None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        spec = {
            "box": machine.definition.box,
            "hostname": machine.hostname,
            "guest": self._guest,
            "network": self._network(machine),
            "provisioners": self._provisioners(machine, root),
        }
        write_atomically(root / MACHINE_FILE, json.dumps(spec, indent=2))
        (root / "Vagrantfile").write_text(template_text())

    def _network(self, machine: Machine) -> dict[str, str] | None:
        if machine.ip is None:
            return None
        netmask = str(IPv4Network(f"0.0.0.0/{machine.prefix_length}").netmask)
        return {"ip": str(machine.ip), "netmask": netmask, "lxc_bridge": self._lxc_bridge}

    def _provisioners(self, machine: Machine, root: Path) -> list[dict[str, str]]:
        """Copy every provisioner's input into the project; machine.json names them."""
        definition = machine.definition
        assets = root / "assets"
        items: list[dict[str, str]] = []
        for item in definition.files:
            source = self._materialize(root, assets / str(len(items)), item.source, item.content)
            items.append({"type": "file", "source": source, "destination": item.destination})
        for puppet in definition.puppet:
            manifest = assets / str(len(items)) / "site.pp"
            self._materialize(root, manifest, puppet.path, puppet.manifest)
            items.append(
                {
                    "type": "puppet",
                    "manifests_path": manifest.parent.relative_to(root).as_posix(),
                    "manifest_file": manifest.name,
                }
            )
        for shell in definition.shell:
            script = self._materialize(root, assets / f"{len(items)}.sh", shell.path, shell.inline)
            items.append({"type": "shell", "path": script})
        return items

    def _materialize(self, root: Path, target: Path, path: str | None, text: str | None) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        if path is not None:
            try:
                shutil.copyfile(self._files.resolve(path), target)
            except InvalidRequest as error:
                raise BackendError(f"provisioner input is gone: {error}") from error
        else:
            target.write_text(text or "", encoding="utf-8")
        return target.relative_to(root).as_posix()


def processes_in(directory: Path) -> list[int]:
    """The pids of processes whose working directory is `directory` (Linux /proc)."""
    target = os.path.realpath(directory)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd") == target:
                    pids.append(int(entry.name))
    return sorted(pids)


def _error_exit(output: bytes | None) -> str:
    """The message of a machine-readable `error-exit` record, if Vagrant printed one."""
    for line in (output or b"").decode(errors="replace").splitlines():
        fields = line.split(",", 4)
        if len(fields) == 5 and fields[2] == "error-exit":
            return (
                fields[4].split(",", 1)[-1].replace("%!(VAGRANT_COMMA)", ",").replace("\\n", "\n")
            )
    return ""
