"""`vcm`: drive a vcm daemon from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from rich.console import Console

from vcm.client._output import Output, box_fields, vm_fields
from vcm.client._sync import Client
from vcm.client._wire import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_PORT,
    parse_flag,
    parse_port,
)
from vcm.client.errors import (
    BoxNotFound,
    BoxUnavailable,
    InvalidRequest,
    IpPoolExhausted,
    LocalFileError,
    OperationNotFound,
    ProtocolError,
    RequestTooLarge,
    Unauthorized,
    Unsupported,
    VagrantError,
    VcmConnectionError,
    VcmError,
    VcmTimeout,
    VmNotFound,
)
from vcm.client.models import (
    DYNAMIC_HOSTNAME,
    Box,
    BulkResult,
    Event,
    Network,
    OperationInfo,
    ProgressLine,
    Vm,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_NOT_FOUND = 4
EXIT_VAGRANT = 5
EXIT_POOL_EXHAUSTED = 6
EXIT_UNAUTHORIZED = 7
EXIT_UNSUPPORTED = 8
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[type[VcmError], int] = {
    InvalidRequest: EXIT_USAGE,
    RequestTooLarge: EXIT_USAGE,
    LocalFileError: EXIT_USAGE,
    VcmConnectionError: EXIT_CONNECTION,
    VcmTimeout: EXIT_CONNECTION,
    ProtocolError: EXIT_CONNECTION,
    VmNotFound: EXIT_NOT_FOUND,
    BoxNotFound: EXIT_NOT_FOUND,
    OperationNotFound: EXIT_NOT_FOUND,
    VagrantError: EXIT_VAGRANT,
    BoxUnavailable: EXIT_VAGRANT,
    IpPoolExhausted: EXIT_POOL_EXHAUSTED,
    Unauthorized: EXIT_UNAUTHORIZED,
    Unsupported: EXIT_UNSUPPORTED,
}
"""The exit status for each kind of error; any other `VcmError` exits with EXIT_ERROR."""

EPILOG = f"""\
environment:
  VCM_HOST, VCM_PORT   the daemon's address (default {DEFAULT_HOST}:{DEFAULT_PORT})
  VCM_AUTH_TOKEN       the token, for a daemon that needs one
  VCM_TLS              1 or true: connect with TLS (as --tls)
  VCM_TLS_CA           a PEM file of CA certificates to trust (as --tls-ca)
  NO_COLOR             no colour even on a terminal

exit status:
  {EXIT_OK}    success
  {EXIT_ERROR}    another error from the daemon (INTERNAL, INVALID_JSON, UNKNOWN_COMMAND,
       CANCELLED, ...)
  {EXIT_USAGE}    usage: bad arguments, an unreadable local file, or the daemon refused the
       values (INVALID_REQUEST, REQUEST_TOO_LARGE)
  {EXIT_CONNECTION}    connection: the daemon cannot be reached, broke the connection, sent a
       bad reply, did not reply within --timeout, or its TLS certificate did
       not verify
  {EXIT_NOT_FOUND}    not found: no such VM, box or operation (VM_NOT_FOUND, BOX_NOT_FOUND,
       OPERATION_NOT_FOUND)
  {EXIT_VAGRANT}    Vagrant failed (VAGRANT_ERROR, BOX_UNAVAILABLE)
  {EXIT_POOL_EXHAUSTED}    no free IP address left (IP_POOL_EXHAUSTED)
  {EXIT_UNAUTHORIZED}    missing or wrong token (UNAUTHORIZED)
  {EXIT_UNSUPPORTED}    the daemon's provider cannot do that, e.g. snapshots (UNSUPPORTED)
  {EXIT_INTERRUPTED}  interrupted (the daemon goes on with a command already sent)

With --json, results are JSON on stdout; an error is also printed there as
{{"error": true, "code": ..., "message": ...}}.

'vcm exec' exits with the status of the command it ran in the VM (124 if it timed
out), like ssh; the statuses above then only mean vcm's own errors if it printed one.
"""


def exit_code(error: VcmError) -> int:
    """The exit status for `error`, by the most specific class listed in EXIT_CODES."""
    for kind in type(error).__mro__:
        if kind in EXIT_CODES:
            return EXIT_CODES[kind]
    return EXIT_ERROR


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, with the usage exit status."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _common(defaults: bool) -> _Parser:
    """The options every command takes, before or after its name.

    The top-level parser holds the real defaults; the commands' copies leave them alone.
    """

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    env_host = os.environ.get("VCM_HOST") or DEFAULT_HOST
    env_port = os.environ.get("VCM_PORT") or str(DEFAULT_PORT)
    options = _Parser(add_help=False)
    group = options.add_argument_group("connection and output")
    group.add_argument("--json", action="store_true", default=default(False), help="print JSON")
    group.add_argument(
        "--host",
        default=default(env_host),
        help=f"the daemon's host ($VCM_HOST, default {env_host})",
    )
    group.add_argument(
        "--port",
        type=_port,
        default=default(env_port),
        help=f"the daemon's port ($VCM_PORT, default {env_port})",
    )
    group.add_argument(
        "--token",
        default=default(os.environ.get("VCM_AUTH_TOKEN") or None),
        help="the daemon's token ($VCM_AUTH_TOKEN)",
    )
    group.add_argument(
        "--tls",
        action="store_true",
        default=default(False),
        help="connect with TLS, verifying the daemon's certificate ($VCM_TLS=1)",
    )
    group.add_argument(
        "--tls-ca",
        default=default(os.environ.get("VCM_TLS_CA") or None),
        metavar="FILE",
        help="trust the CA certificates in PEM FILE instead of the system's; implies --tls "
        "($VCM_TLS_CA)",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=default(None),
        metavar="SECONDS",
        help="give up waiting for a reply after this long (default: wait)",
    )
    group.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=default(DEFAULT_CONNECT_TIMEOUT),
        metavar="SECONDS",
        help=f"give up connecting after this long (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    return options


def _port(text: str) -> int:
    try:
        return parse_port(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _file_spec(text: str) -> tuple[Path, str]:
    source, _, destination = text.rpartition(":")
    if not source or not destination:
        raise argparse.ArgumentTypeError(f"expected SRC:DEST, got {text!r}")
    return Path(source), destination


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vcm",
        description="Drive a vcm daemon: define boxes, start, stop and destroy VMs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common(defaults=False)

    def command(name: str, summary: str, run: _Command) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary, parents=[common])
        sub.set_defaults(run=run)
        return sub

    _add_create(command("create", "define a box: a Vagrant box plus provisioners", _create))
    start = command("start", "start a new VM from a box, or a stopped VM again", _start)
    start.add_argument("target", metavar="BOXID|VMID")
    how = start.add_mutually_exclusive_group()
    how.add_argument("--follow", action="store_true", help="print Vagrant's output as it comes")
    how.add_argument(
        "--async",
        dest="background",
        action="store_true",
        help="start in the background: print the operation ID at once (see 'vcm wait')",
    )
    for name in ("stop", "halt"):
        _add_target(command(name, "shut a VM down (or every VM, with --all)", _stop))
    destroy = _add_target(command("destroy", "destroy a VM, a box and its VMs, or all", _destroy))
    destroy.add_argument("--box", metavar="BOXID", help="destroy the box and all its VMs")
    for verb, summary in (
        ("suspend", "suspend a running VM (if its provider can)"),
        ("resume", "resume a suspended VM"),
        ("reload", "restart a VM, applying its definition again (no provisioning)"),
        ("provision", "run the provisioners of a running VM again"),
    ):
        command(verb, summary, _vm_command).add_argument("vm_id", metavar="VMID")
    snapshot = command("snapshot", "save, restore, delete or list a VM's snapshots", _snapshot)
    snapshot.add_argument("action", choices=["save", "restore", "delete", "list"])
    snapshot.add_argument("vm_id", metavar="VMID")
    snapshot.add_argument("name", nargs="?", metavar="NAME", help="the snapshot (not for list)")
    run = command("exec", "run a command in a running VM: vcm exec VMID -- ARGV...", _exec)
    run.add_argument("vm_id", metavar="VMID")
    run.add_argument("argv", nargs="+", metavar="ARG", help="the program and its arguments")
    run.add_argument(
        "--command-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="end the command after this long (the daemon's default: 60)",
    )
    info = command("ssh-info", "how to ssh into a running VM from the daemon's host", _ssh)
    info.add_argument("vm_id", metavar="VMID")
    command("ls", "list the VMs", _ls)
    command("boxes", "list the boxes", _boxes)
    show = command("show", "show one VM or box", _show)
    show.add_argument("target", metavar="VMID|BOXID")
    watch = command("watch", "print lifecycle events as they happen, until Ctrl-C", _watch)
    watch.add_argument("--box", metavar="BOXID", help="only events about this box and its VMs")
    watch.add_argument("--vm", metavar="VMID", help="only events about this VM")
    wait = command("wait", "wait for a background operation and print how it ended", _wait)
    wait.add_argument("operation_id", metavar="OPID")
    wait.add_argument(
        "--for", dest="wait_for", type=_seconds, metavar="SECONDS", help="give up after this long"
    )
    cancel = command("cancel", "cancel a background start", _cancel)
    cancel.add_argument("operation_id", metavar="OPID")
    return parser


def _add_create(create: argparse.ArgumentParser) -> None:
    create.add_argument("box", metavar="BOX", help="a Vagrant box name, such as debian/bookworm64")
    create.add_argument(
        "--file",
        dest="files",
        action="append",
        type=_file_spec,
        default=[],
        metavar="SRC:DEST",
        help="copy local file SRC to DEST in the guest (its text is sent to the daemon)",
    )
    provisioners = (
        ("--shell", "shell", Path, "FILE", "run local shell script FILE in the guest"),
        ("--shell-inline", "shell", str, "TEXT", "run shell script TEXT in the guest"),
        ("--puppet", "puppet", Path, "FILE", "apply local Puppet manifest FILE in the guest"),
        ("--puppet-inline", "puppet", str, "TEXT", "apply Puppet manifest TEXT in the guest"),
    )
    for flag, dest, kind, metavar, summary in provisioners:
        create.add_argument(
            flag, dest=dest, action="append", type=kind, default=[], metavar=metavar, help=summary
        )
    create.add_argument(
        "--network",
        choices=[str(network) for network in Network],
        default=str(Network.PRIVATE),
        help="private: an address from the daemon's pool (default); none: no private network",
    )
    create.add_argument("--cpus", type=int, metavar="N", help="CPUs each VM may use")
    create.add_argument("--memory", type=int, metavar="MIB", help="memory each VM may use, in MiB")
    create.add_argument(
        "--hostname",
        default=DYNAMIC_HOSTNAME,
        metavar="dynamic|PREFIX",
        help="'dynamic' (from the vmID, default) or a DNS label: VMs are PREFIX-1, PREFIX-2, ...",
    )


def _add_target(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sub.add_argument("vm_id", nargs="?", metavar="VMID")
    sub.add_argument("--all", action="store_true", help="act on every VM")
    return sub


# The commands: each talks to the daemon and prints its result.

_Command = Callable[[Client, argparse.Namespace, Output], None]


def _create(client: Client, args: argparse.Namespace, out: Output) -> None:
    created = client.create_box(
        args.box,
        files=args.files,
        puppet=args.puppet,
        shell=args.shell,
        network=args.network,
        hostname=args.hostname,
        cpus=args.cpus,
        memory=args.memory,
    )
    if out.as_json:
        out.json(created.to_json())
    else:
        out.line(created.box_id)
        out.note(created.message)


def _start(client: Client, args: argparse.Namespace, out: Output) -> None:
    existing = _find_vm(client, args.target)
    if args.background:
        _start_in_background(client, args.target if existing is None else None, existing, out)
        return
    follow = out.follow if args.follow else None
    if existing is not None:
        with out.working(f"starting VM {existing.vm_id}", quiet=args.follow):
            vm = client.start_existing_vm(existing.vm_id, progress=follow)
    else:
        with out.working(f"starting a new VM from box {args.target}", quiet=args.follow):
            vm = _start_from_box(client, args.target, follow)
    _print_vm(out, vm)


def _start_in_background(
    client: Client, box_id: str | None, existing: Vm | None, out: Output
) -> None:
    if existing is not None:
        operation = client.start_existing_vm_async(existing.vm_id)
    else:
        assert box_id is not None
        operation = client.start_vm_async(box_id)
    info = operation.info
    out.result(info.to_json(), lambda: out.line(info.operation_id))
    out.note(f"started in the background as {info.operation_id}; 'vcm wait {info.operation_id}'")


def _start_from_box(
    client: Client, box_id: str, follow: Callable[[ProgressLine], None] | None = None
) -> Vm:
    try:
        return client.start_vm(box_id, progress=follow)
    except BoxNotFound as error:
        raise BoxNotFound(f"no box or VM with ID '{box_id}'", code=error.code) from error


def _stop(client: Client, args: argparse.Namespace, out: Output) -> None:
    vm_id = _one_target(args, "--all")
    if vm_id is None:
        with out.working("shutting down every VM"):
            halted = client.halt_all()
        _print_bulk(out, halted)
        return
    with out.working(f"shutting down VM {vm_id}"):
        stopped = client.stop_vm(vm_id)
    out.result(stopped.to_json(), lambda: out.line(stopped.message))


def _destroy(client: Client, args: argparse.Namespace, out: Output) -> None:
    vm_id = _one_target(args, "--box", "--all")
    if args.box is not None:
        with out.working(f"destroying box {args.box} and its VMs"):
            gone = client.destroy_box(args.box)
        out.result(gone.to_json(), lambda: out.line(gone.message))
    elif vm_id is None:
        with out.working("destroying every VM"):
            destroyed_all = client.destroy_all()
        _print_bulk(out, destroyed_all)
    else:
        with out.working(f"destroying VM {vm_id}"):
            destroyed = client.destroy_vm(vm_id)
        out.result(destroyed.to_json(), lambda: out.line(destroyed.message))


def _vm_command(client: Client, args: argparse.Namespace, out: Output) -> None:
    verb = args.command
    with out.working(f"{verb} VM {args.vm_id}"):
        vm = getattr(client, f"{verb}_vm")(args.vm_id)
    _print_vm(out, vm)


def _print_vm(out: Output, vm: Vm) -> None:
    if out.as_json:
        out.json(vm.to_json())
    else:
        out.line(vm.vm_id)
        out.note(f"{vm.vm_id} is {vm.state}: IP {vm.ip or '-'}, hostname {vm.hostname}")


def _snapshot(client: Client, args: argparse.Namespace, out: Output) -> None:
    if args.action == "list":
        if args.name is not None:
            raise _UsageError("'snapshot list' takes no NAME")
        names = client.list_snapshots(args.vm_id)
        out.result(names, lambda: out.line("\n".join(names)) if names else None)
        return
    if args.name is None:
        raise _UsageError(f"'snapshot {args.action}' needs a NAME")
    with out.working(f"snapshot {args.action} {args.name} of VM {args.vm_id}"):
        done = getattr(client, f"{args.action}_snapshot")(args.vm_id, args.name)
    out.result(done.to_json(), lambda: out.line(done.message))


def _exec(client: Client, args: argparse.Namespace, out: Output) -> None:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise _UsageError("'exec' needs the program to run after VMID")
    result = client.exec(args.vm_id, argv, timeout=args.command_timeout)
    if out.as_json:
        out.json(result.to_json())
    else:
        out.raw(result.stdout, result.stderr)
    for stream, cut in (("stdout", result.stdout_truncated), ("stderr", result.stderr_truncated)):
        if cut:
            out.warn(f"the command's {stream} was cut off at the daemon's limit")
    if result.timed_out:
        out.warn(f"the command timed out in {args.vm_id}")
    if result.exit_status != 0:
        raise _CommandExit(result.exit_status)


def _ssh(client: Client, args: argparse.Namespace, out: Output) -> None:
    info = client.ssh_info(args.vm_id)
    pairs = [
        ("host", info.host),
        ("port", str(info.port)),
        ("user", info.user),
        ("key", info.key_path),
        ("ssh", " ".join(info.command())),
    ]
    out.result(info.to_json(), lambda: out.fields(pairs))


def _ls(client: Client, _args: argparse.Namespace, out: Output) -> None:
    vms = client.list_vms()
    out.result([vm.to_json() for vm in vms], lambda: out.vm_table(vms))


def _boxes(client: Client, _args: argparse.Namespace, out: Output) -> None:
    boxes = client.list_boxes()
    out.result([box.to_json() for box in boxes], lambda: out.box_table(boxes))


def _show(client: Client, args: argparse.Namespace, out: Output) -> None:
    found: Vm | Box | None = _find_vm(client, args.target)
    if found is None:
        try:
            found = client.get_box(args.target)
        except BoxNotFound as error:
            raise VmNotFound(f"no VM or box with ID '{args.target}'") from error
    shown = found
    out.result(
        shown.to_json(),
        lambda: out.fields(vm_fields(shown) if isinstance(shown, Vm) else box_fields(shown)),
    )


def _watch(client: Client, args: argparse.Namespace, out: Output) -> None:
    for event in client.watch(box_id=args.box, vm_id=args.vm):
        if out.as_json:
            out.json_line(event.to_json())
        else:
            out.line(describe_event(event))
        out.flush()


def describe_event(event: Event) -> str:
    about = event.vm_id or event.box_id or ""
    details = [
        f"{name}={event.fields[name]}"
        for name in ("state", "IP", "operationID", "command", "detail", "message")
        if event.fields.get(name) not in (None, "")
    ]
    return "  ".join(part for part in (event.time, event.kind, about, " ".join(details)) if part)


def _wait(client: Client, args: argparse.Namespace, out: Output) -> None:
    operation = client.operation(args.operation_id)
    with out.working(f"waiting for {args.operation_id} ({operation.info.command})"):
        info = operation.wait(args.wait_for)
    _print_operation(info, out)
    if not info.done:
        raise VcmTimeout(f"operation {info.operation_id} is still running")
    operation.result()


def _cancel(client: Client, args: argparse.Namespace, out: Output) -> None:
    info = client.operation(args.operation_id).cancel()
    _print_operation(info, out)


def _print_operation(info: OperationInfo, out: Output) -> None:
    def show() -> None:
        what = f"{info.operation_id} ({info.command} {info.target})".replace(" )", ")")
        out.line(f"{what} {info.state}")
        if info.reply is not None and info.reply.get("message"):
            out.note(str(info.reply["message"]))

    out.result(info.to_json(), show)


def _find_vm(client: Client, vm_id: str) -> Vm | None:
    try:
        return client.get_vm(vm_id)
    except VmNotFound:
        return None


def _one_target(args: argparse.Namespace, *flags: str) -> str | None:
    """The VMID, or None for a flag; exactly one of them must be given."""
    given = [args.vm_id is not None] + [
        getattr(args, flag.lstrip("-"), None) not in (None, False) for flag in flags
    ]
    if sum(given) != 1:
        raise _UsageError(f"'{args.command}' needs exactly one of VMID, {', '.join(flags)}")
    vm_id: str | None = args.vm_id
    return vm_id


def _print_bulk(out: Output, result: BulkResult) -> None:
    def show() -> None:
        out.line(result.message)
        for vm_id in result.vm_ids:
            out.line(f"  {vm_id}")

    out.result(result.to_json(), show)


class _UsageError(Exception):
    pass


class _CommandExit(Exception):
    """`vcm exec` ends with the status of the command it ran."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# Running


def main(argv: Sequence[str] | None = None) -> int:
    """Run `vcm` with `argv` (default: the process's arguments); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.tls = (
            args.tls
            or args.tls_ca is not None
            or parse_flag("VCM_TLS", os.environ.get("VCM_TLS", ""))
        )
    except ValueError as error:
        parser.error(str(error))
    stdout, stderr = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    out = Output(as_json=args.json, stdout=stdout, stderr=stderr)
    try:
        with _client(args, out) as client:
            args.run(client, args, out)
    except _UsageError as error:
        parser.exit(EXIT_USAGE, f"vcm: {error} (see 'vcm {args.command} --help')\n")
    except _CommandExit as ended:
        return ended.status
    except VcmError as error:
        out.error(error)
        return exit_code(error)
    except KeyboardInterrupt:
        if args.command in ("watch", "wait"):
            return EXIT_INTERRUPTED
        stderr.print(
            f"vcm: interrupted; a '{args.command}' the daemon already received goes on",
            highlight=False,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    return EXIT_OK


def _client(args: argparse.Namespace, out: Output) -> Client:
    return Client(
        args.host,
        args.port,
        timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        token=args.token,
        on_progress=None if getattr(args, "follow", False) else out.progress,
        tls=args.tls,
        tls_ca=args.tls_ca,
    )


def _silence_stdout() -> None:
    """After the reader of a pipe went away, keep Python from complaining at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _version() -> str:
    try:
        return version("vcm")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
