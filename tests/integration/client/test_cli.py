"""`vcm` through its installed entry point, against real daemons (and a scripted one)."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.integration.client.conftest import StartDaemon
from tests.support.daemon import DaemonProcess
from tests.unit.client.fake_daemon import FakeDaemon, Request, error, line, reply
from tests.unit.client.test_wire import SPEC_ERRORS

VCM = Path(sys.executable).with_name("vcm")
BOX = "vcm/bookworm-test"

EXIT_CODES = {
    "INVALID_JSON": 1,
    "INVALID_REQUEST": 2,
    "UNKNOWN_COMMAND": 1,
    "REQUEST_TOO_LARGE": 2,
    "UNAUTHORIZED": 7,
    "BOX_NOT_FOUND": 4,
    "VM_NOT_FOUND": 4,
    "BOX_UNAVAILABLE": 5,
    "IP_POOL_EXHAUSTED": 6,
    "VAGRANT_ERROR": 5,
    "UNSUPPORTED": 8,
    "INTERNAL": 1,
    "CANCELLED": 1,
    "OPERATION_NOT_FOUND": 4,
}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def vcm(*args: str, port: int, host: str = "127.0.0.1", **env: str) -> Run:
    """Run the installed `vcm` with the daemon's address in the environment."""
    environ = {
        **{key: value for key, value in os.environ.items() if not key.startswith("VCM_")},
        "VCM_HOST": host,
        "VCM_PORT": str(port),
        **env,
    }
    done = subprocess.run(
        [str(VCM), *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def assert_one_error_line(run: Run, *fragments: str) -> None:
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in run.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_entry_point_is_installed() -> None:
    assert VCM.exists(), f"{VCM} missing: pip install -e '.[dev]'"


def test_help_documents_every_exit_status() -> None:
    run = vcm("--help", port=1)
    assert run.code == 0
    assert "exit status:" in run.stdout
    for status in (0, 1, 2, 3, 4, 5, 6, 7, 130):
        assert f"\n  {status} " in run.stdout, status
    for code in SPEC_ERRORS:
        assert code in run.stdout, code


class TestUsage:
    @pytest.mark.parametrize(
        "args",
        [
            ["create"],
            ["stop"],
            ["destroy"],
            ["destroy", "a_1_1", "--all"],
            ["frobnicate"],
            ["--port", "http", "ls"],
            ["create", BOX, "--file", "no-destination"],
            ["create", BOX, "--network", "public"],
            ["ls", "--timeout", "-1"],
        ],
    )
    def test_bad_arguments_exit_2_with_one_line(self, args: list[str]) -> None:
        run = vcm(*args, port=_free_port())
        assert run.code == 2, run
        assert_one_error_line(run, "vcm")

    def test_a_bad_port_in_the_environment_is_a_usage_error(self) -> None:
        run = subprocess.run(
            [str(VCM), "ls"],
            env={**os.environ, "VCM_PORT": "99999"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2
        assert "99999" in run.stderr

    def test_a_missing_local_file_is_a_usage_error(self, daemon: DaemonProcess) -> None:
        run = vcm("create", BOX, "--shell", "/nonexistent/setup.sh", port=daemon.port)
        assert run.code == 2
        assert_one_error_line(run, "/nonexistent/setup.sh")


class TestConnection:
    def test_nothing_listening_exits_3_and_says_where(self) -> None:
        port = _free_port()
        run = vcm("ls", port=port)
        assert run.code == 3
        assert_one_error_line(run, f"127.0.0.1:{port}", "Connection refused")
        assert run.stdout == ""

    def test_host_and_port_options_override_the_environment(self, daemon: DaemonProcess) -> None:
        run = vcm("ls", "--host", daemon.host, "--port", str(daemon.port), port=_free_port())
        assert run.code == 0, run

    def test_no_reply_within_the_timeout_exits_3(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_DELAY="3")
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        run = vcm("start", box_id, "--timeout", "0.5", port=daemon.port)
        assert run.code == 3
        assert_one_error_line(run, "within 0.5 s")


class TestCommands:
    def test_a_script_drives_two_vms_through_their_life(
        self, daemon: DaemonProcess, tmp_path: Path
    ) -> None:
        motd, script = tmp_path / "motd", tmp_path / "setup.sh"
        motd.write_text("hello\n")
        script.write_text("echo from a file\n")
        port = daemon.port
        create = vcm(
            "create",
            BOX,
            "--file",
            f"{motd}:/etc/motd",
            "--shell-inline",
            "echo first",
            "--shell",
            str(script),
            "--puppet-inline",
            "notify { 'hi': }",
            "--hostname",
            "web",
            port=port,
        )
        assert create.code == 0, create
        box_id = create.stdout.strip()
        assert box_id.startswith("vcm_bookworm_test_")

        box = vcm("show", box_id, "--json", port=port).json()
        assert box["files"] == [{"destination": "/etc/motd", "content": "hello\n"}]
        assert box["shell"] == [{"inline": "echo first"}, {"inline": "echo from a file\n"}]
        assert box["puppet"] == [{"manifest": "notify { 'hi': }"}]
        assert box["hostname"] == "web"

        first = vcm("start", box_id, port=port).stdout.strip()
        second = vcm("start", box_id, "--json", port=port).json()
        assert (first, second["vmID"]) == (f"{box_id}_1", f"{box_id}_2")
        assert second["hostname"] == "web-2.example.com"

        listing = vcm("ls", port=port)
        assert listing.code == 0
        header, *rows = listing.stdout.splitlines()
        assert header.split() == ["VMID", "STATE", "IP", "HOSTNAME", "BOX"]
        assert [row.split()[:2] for row in rows] == [
            [first, "running"],
            [second["vmID"], "running"],
        ]
        assert "\x1b[" not in listing.stdout

        assert vcm("stop", first, port=port).code == 0
        shown = vcm("show", first, port=port).stdout
        assert "stopped" in shown
        assert vcm("start", first, port=port).stdout.strip() == first
        assert vcm("show", first, "--json", port=port).json()["state"] == "running"

        assert vcm("destroy", first, port=port).code == 0
        assert [vm["vmID"] for vm in vcm("ls", "--json", port=port).json()] == [second["vmID"]]
        gone = vcm("destroy", "--box", box_id, "--json", port=port).json()
        assert gone == {
            "boxID": box_id,
            "VMS": [second["vmID"]],
            "message": f"removed box {box_id} and its 1 VM",
        }
        assert vcm("ls", "--json", port=port).json() == []
        assert vcm("boxes", "--json", port=port).json() == []

    def test_ls_json_pipes_into_json_tool(self, daemon: DaemonProcess) -> None:
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        vcm("start", box_id, port=daemon.port)
        pipeline = f"{shlex.quote(str(VCM))} ls --json | {shlex.quote(sys.executable)} -m json.tool"
        done = subprocess.run(
            pipeline,
            shell=True,
            env={**os.environ, "VCM_HOST": daemon.host, "VCM_PORT": str(daemon.port)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["vmID"] == f"{box_id}_1"

    def test_json_goes_before_or_after_the_command(self, daemon: DaemonProcess) -> None:
        assert vcm("--json", "ls", port=daemon.port).json() == []
        assert vcm("ls", "--json", port=daemon.port).json() == []

    def test_boxes_lists_each_box_in_a_table(self, daemon: DaemonProcess) -> None:
        box_id = vcm("create", BOX, "--network", "none", port=daemon.port).stdout.strip()
        header, row = vcm("boxes", port=daemon.port).stdout.splitlines()
        assert header.split() == ["BOXID", "BOX", "NETWORK", "HOSTNAME", "PROVISIONERS", "VMS"]
        assert row.split() == [box_id, BOX, "none", "dynamic", "-", "-"]

    def test_halt_all_and_destroy_all(self, daemon: DaemonProcess) -> None:
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        vm_ids = [vcm("start", box_id, port=daemon.port).stdout.strip() for _ in range(2)]
        halted = vcm("halt", "--all", "--json", port=daemon.port).json()
        assert sorted(halted["VMS"]) == vm_ids
        states = {vm["state"] for vm in vcm("ls", "--json", port=daemon.port).json()}
        assert states == {"stopped"}
        destroyed = vcm("destroy", "--all", port=daemon.port)
        assert destroyed.code == 0
        assert all(vm_id in destroyed.stdout for vm_id in vm_ids)
        assert vcm("ls", "--json", port=daemon.port).json() == []

    def test_a_success_prints_nothing_on_stderr_when_not_a_terminal(
        self, daemon: DaemonProcess
    ) -> None:
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        run = vcm("start", box_id, port=daemon.port)
        assert (run.code, run.stderr) == (0, "")


class TestDaemonErrors:
    def test_unknown_ids_exit_4(self, daemon: DaemonProcess) -> None:
        for args in (["show", "nope_1"], ["stop", "nope_1_1"], ["destroy", "--box", "nope_1"]):
            run = vcm(*args, port=daemon.port)
            assert run.code == 4, args
            assert_one_error_line(run, "nope_1")

    def test_show_all_is_not_taken_for_every_vm(self, daemon: DaemonProcess) -> None:
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        vcm("start", box_id, port=daemon.port)
        run = vcm("show", "all", port=daemon.port)
        assert run.code == 4
        assert_one_error_line(run, "no VM or box with ID 'all'")

    def test_start_of_an_unknown_id_exits_4(self, daemon: DaemonProcess) -> None:
        run = vcm("start", "nope_1", port=daemon.port)
        assert run.code == 4
        assert_one_error_line(run, "no box or VM with ID 'nope_1'")

    def test_an_error_with_json_is_also_json_on_stdout(self, daemon: DaemonProcess) -> None:
        run = vcm("stop", "nope_1_1", "--json", port=daemon.port)
        assert run.code == 4
        assert run.json() == {
            "error": True,
            "code": "VM_NOT_FOUND",
            "message": "no VM with vmID 'nope_1_1'",
        }

    def test_refused_values_exit_2(self, daemon: DaemonProcess) -> None:
        run = vcm("create", BOX, "--hostname", "not_a_label", port=daemon.port)
        assert run.code == 2
        assert_one_error_line(run, "not_a_label")

    def test_a_vagrant_failure_exits_5(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_FAILING_BOXES='["broken/box"]')
        box_id = vcm("create", "broken/box", port=daemon.port).stdout.strip()
        run = vcm("start", box_id, port=daemon.port)
        assert run.code == 5
        assert_one_error_line(run, "simulated failure")

    def test_a_box_vagrant_cannot_get_exits_5(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_BOXES=f'["{BOX}"]')
        run = vcm("create", "ubuntu/trusty64", port=daemon.port)
        assert run.code == 5
        assert_one_error_line(run, "ubuntu/trusty64")

    def test_an_exhausted_pool_exits_6(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_IP_POOL="192.168.33.0/29")
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        for _ in range(4):
            assert vcm("start", box_id, port=daemon.port).code == 0
        run = vcm("start", box_id, port=daemon.port)
        assert run.code == 6
        assert_one_error_line(run)

    def test_a_missing_or_wrong_token_exits_7(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_AUTH_TOKEN="open-sesame")
        assert vcm("ls", port=daemon.port).code == 7
        assert vcm("ls", "--token", "wrong", port=daemon.port).code == 7
        assert vcm("ls", "--token", "open-sesame", port=daemon.port).code == 0
        assert vcm("ls", port=daemon.port, VCM_AUTH_TOKEN="open-sesame").code == 0

    def test_a_request_over_the_size_limit_exits_2(
        self, start_daemon: StartDaemon, tmp_path: Path
    ) -> None:
        daemon = start_daemon(VCM_MAX_REQUEST_BYTES="1024")
        big = tmp_path / "big.txt"
        big.write_text("x" * 4096)
        run = vcm("create", BOX, "--file", f"{big}:/tmp/big.txt", port=daemon.port)
        assert run.code == 2
        assert_one_error_line(run, "1024")


class TestEveryErrorCode:
    @pytest.mark.parametrize(("code", "status"), EXIT_CODES.items())
    def test_maps_to_its_exit_status(self, code: str, status: int) -> None:
        def fail(request: Request) -> list[bytes]:
            return [error(request, code, f"the daemon said {code}")]

        with FakeDaemon(fail) as fake:
            run = vcm("ls", port=fake.port)
            as_json = vcm("ls", "--json", port=fake.port)
        assert run.code == status
        assert_one_error_line(run, f"the daemon said {code}")
        assert as_json.code == status
        assert as_json.json()["code"] == code

    def test_the_table_covers_every_code_of_the_protocol(self) -> None:
        assert EXIT_CODES.keys() == SPEC_ERRORS.keys()

    def test_a_bad_reply_exits_3(self) -> None:
        with FakeDaemon(lambda request: [b"<html>\n"]) as fake:
            run = vcm("ls", port=fake.port)
        assert run.code == 3
        assert_one_error_line(run, "not JSON")

    def test_a_partial_bulk_failure_lists_each_failed_vm(self) -> None:
        def partial(request: Request) -> list[bytes]:
            return [
                error(
                    request,
                    "VAGRANT_ERROR",
                    "destroyed 1 VM; 1 failed: exit 1",
                    VMS=["web_1_1"],
                    failed=[{"vmID": "web_1_2", "code": "VAGRANT_ERROR", "message": "exit 1"}],
                )
            ]

        with FakeDaemon(partial) as fake:
            run = vcm("destroy", "--all", port=fake.port)
            as_json = vcm("destroy", "--all", "--json", port=fake.port).json()
        assert run.code == 5
        assert "web_1_2: exit 1" in run.stderr
        assert as_json["VMS"] == ["web_1_1"]
        assert as_json["failed"] == [
            {"vmID": "web_1_2", "code": "VAGRANT_ERROR", "message": "exit 1"}
        ]


class TestProgress:
    def test_the_daemons_progress_lines_show_on_stderr(self) -> None:
        def with_progress(request: Request) -> list[bytes]:
            if request["command"] == "info":
                return [error(request, "VM_NOT_FOUND", "no VM")]
            return [
                line({"id": request["id"], "progress": "web_1_1: booting"}),
                reply(
                    request,
                    vmID="web_1_1",
                    boxID="web_1",
                    box="web",
                    IP=None,
                    hostname="web-1-1.example.com",
                    state="running",
                ),
            ]

        with FakeDaemon(with_progress) as fake:
            run = vcm("start", "web_1", port=fake.port)
        assert run.code == 0
        assert run.stdout.strip() == "web_1_1"
        assert "web_1_1: booting" in run.stderr

    def test_a_spinner_with_the_elapsed_time_on_a_terminal(self, start_daemon: StartDaemon) -> None:
        daemon = start_daemon(VCM_SIMULATED_DELAY="1.5")
        box_id = vcm("create", BOX, port=daemon.port).stdout.strip()
        output, status = _run_in_terminal(["start", box_id], daemon.port)
        assert status == 0
        assert f"starting a new VM from box {box_id}" in output
        assert "0:00:01" in output
        assert f"{box_id}_1" in output


def _run_in_terminal(args: list[str], port: int, limit: float = 30.0) -> tuple[str, int]:
    leader, follower = pty.openpty()
    environ = {**os.environ, "VCM_PORT": str(port), "TERM": "xterm-256color", "COLUMNS": "120"}
    environ.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [str(VCM), *args], env=environ, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        readable, _, _ = select.select([leader], [], [], 0.5)
        if not readable:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return output.decode(errors="replace"), process.wait(10)


class TestLifecycleCommands:
    def started(self, daemon: DaemonProcess) -> str:
        box_id = vcm("create", BOX, "--cpus", "1", "--memory", "128", port=daemon.port).stdout
        return vcm("start", box_id.strip(), port=daemon.port).stdout.strip()

    def test_suspend_resume_reload_provision(self, daemon: DaemonProcess) -> None:
        vm_id = self.started(daemon)
        for verb, state in [
            ("suspend", "suspended"),
            ("resume", "running"),
            ("reload", "running"),
            ("provision", "running"),
        ]:
            run = vcm(verb, vm_id, "--json", port=daemon.port)
            assert (run.code, run.json()["state"]) == (0, state), run
        vcm("suspend", vm_id, port=daemon.port)
        assert "suspended" in vcm("ls", port=daemon.port).stdout

    def test_snapshots(self, daemon: DaemonProcess) -> None:
        vm_id = self.started(daemon)
        assert vcm("snapshot", "save", vm_id, "clean", port=daemon.port).code == 0
        assert vcm("snapshot", "save", vm_id, "later", port=daemon.port).code == 0
        assert vcm("snapshot", "list", vm_id, port=daemon.port).stdout == "clean\nlater\n"
        restored = vcm("snapshot", "restore", vm_id, "clean", "--json", port=daemon.port)
        assert restored.json()["state"] == "running"
        vcm("snapshot", "delete", vm_id, "later", port=daemon.port)
        assert vcm("snapshot", "list", vm_id, "--json", port=daemon.port).json() == ["clean"]
        missing = vcm("snapshot", "save", vm_id, port=daemon.port)
        assert missing.code == 2
        assert_one_error_line(missing, "needs a NAME")
        bad = vcm("snapshot", "save", vm_id, "a b", port=daemon.port)
        assert bad.code == 2
        assert_one_error_line(bad, "snapshot name")

    def test_what_the_backend_cannot_do_exits_8(self, daemon: DaemonProcess) -> None:
        vm_id = self.started(daemon)
        run = vcm("exec", vm_id, "--", "uname", "-a", port=daemon.port)
        assert run.code == 8
        assert_one_error_line(run, "simulated backend has no guests")
        assert vcm("ssh-info", vm_id, port=daemon.port).code == 8

    def test_box_resources_show_in_json(self, daemon: DaemonProcess) -> None:
        vm_id = self.started(daemon)
        box = vcm("show", vm_id.rsplit("_", 1)[0], "--json", port=daemon.port).json()
        assert (box["cpus"], box["memory"]) == (1, 128)
        too_many = vcm("create", BOX, "--cpus", "100000", port=daemon.port)
        assert too_many.code == 2
        assert_one_error_line(too_many, "more than this host has")


class TestExecOutput:
    RESULT: ClassVar[dict[str, Any]] = {
        "vmID": "a_1_1",
        "exitStatus": 3,
        "stdout": "out\n",
        "stderr": "err\n",
        "stdoutTruncated": True,
        "stderrTruncated": False,
        "timedOut": False,
        "message": "sh exited 3",
    }

    def test_exec_prints_the_output_and_exits_with_the_commands_status(self) -> None:
        seen: list[Any] = []

        def answer(request: Request) -> list[bytes]:
            seen.append(request)
            return [reply(request, **self.RESULT)]

        with FakeDaemon(answer) as fake:
            run = vcm(
                "exec", "a_1_1", "--command-timeout", "9", "--", "sh", "-c", "x", port=fake.port
            )
        assert (run.code, run.stdout) == (3, "out\n")
        assert run.stderr.startswith("err\n")
        assert "stdout was cut off" in run.stderr
        assert seen[0]["argv"] == ["sh", "-c", "x"]
        assert seen[0]["timeout"] == 9
