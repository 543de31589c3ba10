"""Real Vagrant through python-vagrant: one project directory per VM, a fixed Vagrantfile."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from importlib import resources
from ipaddress import IPv4Network
from pathlib import Path
from typing import IO, Any

import vagrant

from vcm.adapters.atomic_file import write_atomically
from vcm.adapters.host_files import FilesRoot
from vcm.adapters.resources import docker_update_args, provider_settings
from vcm.domain.cancel import current_scope
from vcm.domain.errors import BackendError, BoxUnavailable, Cancelled, InvalidRequest, Unsupported
from vcm.domain.ports import ExecResult, Machine, MachineStatus, Progress, SshInfo

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
    "saved": MachineStatus.SUSPENDED,
    "paused": MachineStatus.SUSPENDED,
    "frozen": MachineStatus.SUSPENDED,
}
# Vagrant's error classes for "this provider cannot do that", from `--machine-readable` output.
_UNSUPPORTED = frozenset(
    {
        "Vagrant::Errors::SnapshotNotSupported",
        "Vagrant::Errors::UnimplementedProviderAction",
        "VagrantPlugins::DockerProvider::Errors::SuspendNotSupported",
    }
)
EXEC_OUTPUT_LIMIT = 1024 * 1024
EXEC_PREAMBLE_LIMIT = 64 * 1024  # room for what the login prints before the marker
EXEC_CONNECT_GRACE = 60
DOCKER_ID = Path(".vagrant/machines/default/docker/id")


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
        if (root / DOCKER_ID).exists() and (
            args := docker_update_args(machine.definition.resources)
        ):
            self._docker_update(root, args)

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

    def suspend(self, vm_id: str) -> None:
        self._machine_readable(self._project(vm_id), "suspend", "suspend")

    def resume(self, vm_id: str) -> None:
        self._machine_readable(self._project(vm_id), "resume", "resume")

    def reload(self, vm_id: str, progress: Progress) -> None:
        self._stream(
            self._project(vm_id),
            self._up_timeout,
            "reload",
            lambda v: v.reload(provision=False, stream_output=True),
            progress,
        )

    def provision(self, vm_id: str, progress: Progress) -> None:
        self._stream(
            self._project(vm_id),
            self._up_timeout,
            "provision",
            lambda v: v._stream_vagrant_command(["provision"]),
            progress,
        )

    def snapshot_save(self, vm_id: str, name: str) -> None:
        self._machine_readable(self._project(vm_id), "snapshot save", "snapshot", "save", name)

    def snapshot_restore(self, vm_id: str, name: str) -> None:
        root = self._project(vm_id)
        self._machine_readable(
            root, "snapshot restore", "snapshot", "restore", "--no-provision", name
        )

    def snapshot_delete(self, vm_id: str, name: str) -> None:
        self._machine_readable(self._project(vm_id), "snapshot delete", "snapshot", "delete", name)

    def snapshot_list(self, vm_id: str) -> list[str]:
        output = self._machine_readable(self._project(vm_id), "snapshot list", "snapshot", "list")
        return _snapshot_names(output)

    def exec(self, vm_id: str, argv: list[str], timeout: int) -> ExecResult:
        """Run argv through `vagrant ssh -c`: the guest's login shell parses a quoted argv.

        A marker on stdout and stderr shows that the command itself started (whatever came
        before it is the login's own noise, and is dropped); without it, Vagrant or ssh failed.
        The guest's coreutils `timeout` ends the command; the host kills vagrant if it hangs on
        connecting.
        """
        root = self._project(vm_id)
        marker = f"vcm-exec-{uuid.uuid4().hex}"
        remote = (
            f"printf '%s\\n' {marker}; printf '%s\\n' {marker} >&2; "
            f"exec timeout --kill-after=5 -- {timeout} {shlex.join(argv)}"
        )
        limit = timeout + EXEC_CONNECT_GRACE
        command = ["timeout", f"--kill-after={KILL_AFTER_SECONDS}", str(limit)]
        command += [_vagrant_exe(), "ssh", "--no-tty", "-c", remote]
        began = time.monotonic()
        status, stdout, stderr = _run_bounded(command, root, self._env)
        elapsed = time.monotonic() - began
        line = f"{marker}\n".encode()
        if elapsed >= limit or line not in stderr[0]:
            said = stderr[0].decode(errors="replace").strip()
            raise BackendError(
                f"vagrant ssh could not run the command (exit {status}): {said or 'no output'}"
            )
        out, out_cut = _after_marker(stdout, line)
        err, err_cut = _after_marker(stderr, line)
        return ExecResult(
            exit_status=status,
            stdout=out,
            stderr=err,
            stdout_truncated=out_cut,
            stderr_truncated=err_cut,
            timed_out=status == 124 and elapsed >= timeout,
        )

    def ssh_info(self, vm_id: str) -> SshInfo:
        conf = self._run(
            self._project(vm_id), self._command_timeout, "ssh-config", lambda v: v.conf()
        )
        try:
            return SshInfo(conf["HostName"], int(conf["Port"]), conf["User"], conf["IdentityFile"])
        except (KeyError, ValueError, TypeError) as error:
            raise BackendError(f"vagrant ssh-config said nothing usable: {conf!r}") from error

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
        if self._box_on_disk(box):
            return True
        boxes = self._run(self._dir, self._command_timeout, "box list", lambda v: v.box_list())
        return any(item.name == box and self._provider in (None, item.provider) for item in boxes)

    def _box_on_disk(self, box: str) -> bool:
        """Whether Vagrant's box store holds `box` for our provider, without starting Ruby.

        The layout is VAGRANT_HOME/boxes/NAME/VERSION/PROVIDER/metadata.json, '/' in NAME being
        written '-VAGRANTSLASH-'. A miss is not final: `vagrant box list` decides then.
        """
        home = Path(self._env.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
        versions = home / "boxes" / box.replace("/", "-VAGRANTSLASH-")
        providers = [self._provider] if self._provider else ["*"]
        return any(any(versions.glob(f"*/{provider}/metadata.json")) for provider in providers)

    def _project(self, vm_id: str) -> Path:
        root = self._dir / vm_id
        if not (root / "Vagrantfile").exists():
            raise BackendError(f"Vagrant has no project for {vm_id} (expected {root})")
        return root

    def _up(self, root: Path, progress: Progress, *, provision: bool) -> None:
        current_scope().check("vagrant up")
        self._stream(
            root,
            self._up_timeout,
            "up",
            lambda v: v.up(provider=self._provider, no_provision=not provision, stream_output=True),
            progress,
        )

    def _stream(
        self,
        root: Path,
        timeout: float,
        what: str,
        start: Callable[[vagrant.Vagrant], Iterator[str]],
        progress: Progress,
    ) -> None:
        recent: deque[str] = deque(maxlen=20)

        def follow(v: vagrant.Vagrant) -> None:
            for line in start(v):
                text = line.rstrip()
                recent.append(text)
                progress(text)

        self._run(root, timeout, what, follow, recent)

    def _machine_readable(self, root: Path, what: str, *args: str) -> str:
        """Run a Vagrant command whose errors should name their class (to tell Unsupported)."""
        output: str = self._run(
            root,
            self._command_timeout,
            what,
            lambda v: v._run_vagrant_command([*args, "--machine-readable"]),
        )
        return output

    def _docker_update(self, root: Path, args: list[str]) -> None:
        container = (root / DOCKER_ID).read_text().strip()
        docker = shutil.which("docker") or "docker"
        command = ["timeout", f"{self._command_timeout:g}", docker, "update", *args, container]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackendError(
                f"docker update {' '.join(args)} failed (exit {done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip() or 'no output'}"
            )

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
            kind, said = _error_exit_record(error.output)
            said = said or stderr.text.strip() or "\n".join(recent or ())
            if kind in _UNSUPPORTED:
                raise Unsupported(
                    f"the {self._provider or 'default'} provider cannot {what}: "
                    f"{_first_sentence(said)}"
                ) from error
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
            "provider_settings": provider_settings(machine.definition.resources),
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


def _error_exit_record(output: bytes | str | None) -> tuple[str, str]:
    """The class and message of a machine-readable `error-exit` record, if Vagrant printed one."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    for fields in _records(output or ""):
        if fields[2] == "error-exit":
            return fields[3], _unescape(fields[4])
    return "", ""


def _records(output: str) -> list[list[str]]:
    return [fields for line in output.splitlines() if len(fields := line.split(",", 4)) == 5]


def _first_sentence(text: str) -> str:
    """Vagrant's reason without its advice (for a missing action it suspects a bug: it is not)."""
    flat = " ".join(text.split())
    head, found, _ = flat.partition(". ")
    return head + "." if found else flat


def _unescape(text: str) -> str:
    return text.replace("%!(VAGRANT_COMMA)", ",").replace("\\n", "\n")


def _snapshot_names(output: str) -> list[str]:
    """`vagrant snapshot list`: an empty `output` line, then one `detail` line per snapshot.

    Without snapshots it prints a non-empty `output` line ("No snapshots...") and a detail.
    """
    names: list[str] = []
    listing = False
    for fields in _records(output):
        if fields[2] != "ui":
            continue
        if fields[3] == "output":
            listing = fields[4].strip() == ""
        elif fields[3] == "detail" and listing:
            names.append(_unescape(fields[4]).strip())
    return [name for name in names if name]


def _after_marker(kept: tuple[bytes, bool], line: bytes) -> tuple[str, bool]:
    """The command's own output (after the marker line), cut at EXEC_OUTPUT_LIMIT bytes."""
    data, overflowed = kept
    before, found, after = data.partition(line)
    output = after if found else before
    cut = overflowed or len(output) > EXEC_OUTPUT_LIMIT
    return output[:EXEC_OUTPUT_LIMIT].decode(errors="replace"), cut


def _vagrant_exe() -> str:
    exe = shutil.which("vagrant")
    if exe is None:
        raise BackendError("the vagrant command is not on PATH")
    return exe


def _run_bounded(
    command: list[str], cwd: Path, env: dict[str, str]
) -> tuple[int, tuple[bytes, bool], tuple[bytes, bool]]:
    """Run `command`; keep the first bytes of stdout and of stderr, and whether more came."""
    try:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as error:
        raise BackendError(f"vagrant ssh could not run: {error}") from error
    assert process.stdout is not None
    assert process.stderr is not None
    kept: dict[str, tuple[bytes, bool]] = {}
    readers = [
        threading.Thread(target=_drain, args=(stream, kept, name))
        for name, stream in (("out", process.stdout), ("err", process.stderr))
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return process.wait(), kept["out"], kept["err"]


def _drain(stream: IO[bytes], kept: dict[str, tuple[bytes, bool]], name: str) -> None:
    limit = EXEC_PREAMBLE_LIMIT + EXEC_OUTPUT_LIMIT
    data = bytearray()
    total = 0
    with stream:
        while chunk := stream.read(65536):
            total += len(chunk)
            if len(data) < limit:
                data += chunk[: limit - len(data)]
    kept[name] = (bytes(data), total > limit)
