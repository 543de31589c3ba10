"""What the `vcm` command prints: tables and colour on a terminal, plain text or JSON otherwise."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from vcm.client.errors import VcmError
from vcm.client.models import Box, FileProvisioner, PuppetProvisioner, ShellProvisioner, Vm

_STATE_STYLES = {
    "running": "green",
    "stopped": "yellow",
    "error": "bold red",
    "starting": "cyan",
    "stopping": "cyan",
    "destroying": "cyan",
    "suspended": "magenta",
    "suspending": "cyan",
    "resuming": "cyan",
    "reloading": "cyan",
    "provisioning": "cyan",
}

VM_COLUMNS = ("VMID", "STATE", "IP", "HOSTNAME", "BOX")
BOX_COLUMNS = ("BOXID", "BOX", "NETWORK", "HOSTNAME", "PROVISIONERS", "VMS")


class Output:
    """One command's output: results on stdout, errors, progress and the spinner on stderr."""

    def __init__(self, *, as_json: bool, stdout: Console, stderr: Console) -> None:
        self.as_json = as_json
        self._stdout = stdout
        self._stderr = stderr

    # Results

    def result(self, payload: Any, show: Callable[[], None]) -> None:
        """`payload` as JSON with --json; otherwise what `show` prints for people."""
        if self.as_json:
            self.json(payload)
        else:
            show()

    def json(self, payload: Any) -> None:
        self._stdout.out(json.dumps(payload, indent=2, ensure_ascii=False), highlight=False)

    def json_line(self, payload: Any) -> None:
        self._stdout.out(json.dumps(payload, ensure_ascii=False), highlight=False)

    def line(self, text: str) -> None:
        self._stdout.out(text, highlight=False)

    def raw(self, stdout: str, stderr: str) -> None:
        """A command's own output, as it wrote it."""
        self._stdout.file.write(stdout)
        self._stdout.file.flush()
        self._stderr.file.write(stderr)
        self._stderr.file.flush()

    def warn(self, text: str) -> None:
        self._stderr.print(Text(f"vcm: {text}"), style="yellow", highlight=False)

    def note(self, text: str) -> None:
        """A line for the person at a terminal, on stderr; nothing when stderr is not one."""
        if self._stderr.is_terminal:
            self._stderr.print(text, style="dim", highlight=False)

    def vm_table(self, vms: Sequence[Vm]) -> None:
        rows = [[vm.vm_id, str(vm.state), vm.ip or "-", vm.hostname, vm.box] for vm in vms]
        self._table(VM_COLUMNS, rows, state_column=1)

    def box_table(self, boxes: Sequence[Box]) -> None:
        rows = [
            [
                box.box_id,
                box.box,
                str(box.network),
                box.hostname,
                provisioner_summary(box),
                ", ".join(box.vm_ids) or "-",
            ]
            for box in boxes
        ]
        self._table(BOX_COLUMNS, rows)

    def fields(self, pairs: Sequence[tuple[str, str]]) -> None:
        width = max(len(name) for name, _ in pairs)
        for name, value in pairs:
            if self._stdout.is_terminal:
                label = Text(f"{name:<{width}}  ", style="bold")
                self._stdout.print(label + _styled_value(name, value), highlight=False)
            else:
                self.line(f"{name:<{width}}  {value}")

    def _table(
        self, columns: Sequence[str], rows: list[list[str]], state_column: int | None = None
    ) -> None:
        if not self._stdout.is_terminal:
            self.line(plain_table(columns, rows))
            return
        table = Table(*columns, box=None, header_style="bold", pad_edge=False)
        for row in rows:
            cells = [Text(cell) for cell in row]
            if state_column is not None:
                cells[state_column].stylize(_STATE_STYLES.get(row[state_column], ""))
            table.add_row(*cells)
        self._stdout.print(table)

    # Errors and progress

    def error(self, error: VcmError) -> None:
        self._stderr.print(Text(f"vcm: {error.message}"), style="red", highlight=False)
        for failure in error.failed:
            self._stderr.print(Text(f"  {failure.vm_id}: {failure.message}"), highlight=False)
        if self.as_json:
            self.json(error_json(error))

    def progress(self, text: str) -> None:
        self._stderr.print(Text(text), style="dim", highlight=False)

    def follow(self, line: str) -> None:
        """One line of Vagrant's output, as it comes (``start --follow``), on stderr."""
        self._stderr.print(Text(line), highlight=False)

    def flush(self) -> None:
        self._stdout.file.flush()

    @contextlib.contextmanager
    def working(self, text: str, *, quiet: bool = False) -> Iterator[None]:
        """A spinner with the elapsed time while a slow command runs, on a terminal only."""
        if quiet or not self._stderr.is_terminal:
            yield
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self._stderr, transient=True) as spinner:
            spinner.add_task(text, total=None)
            yield


def error_json(error: VcmError) -> dict[str, Any]:
    payload: dict[str, Any] = {"error": True, "code": error.code, "message": error.message}
    if error.done or error.failed:
        payload["VMS"] = list(error.done)
        payload["failed"] = [
            {"vmID": item.vm_id, "code": item.code, "message": item.message}
            for item in error.failed
        ]
    return payload


def plain_table(columns: Sequence[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(columns, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(columns), *rows]
    )


def provisioner_summary(box: Box) -> str:
    counts = [(len(box.files), "file"), (len(box.puppet), "puppet"), (len(box.shell), "shell")]
    return ", ".join(f"{count} {kind}" for count, kind in counts if count) or "-"


def vm_fields(vm: Vm) -> list[tuple[str, str]]:
    pairs = [
        ("vmID", vm.vm_id),
        ("state", str(vm.state)),
        ("IP", vm.ip or "-"),
        ("hostname", vm.hostname),
        ("box", vm.box),
        ("boxID", vm.box_id),
    ]
    if vm.detail:
        pairs.append(("detail", vm.detail))
    return pairs


def box_fields(box: Box) -> list[tuple[str, str]]:
    pairs = [
        ("boxID", box.box_id),
        ("box", box.box),
        ("network", str(box.network)),
        ("hostname", box.hostname),
        ("VMs", ", ".join(box.vm_ids) or "-"),
    ]
    if box.cpus is not None:
        pairs.append(("cpus", str(box.cpus)))
    if box.memory is not None:
        pairs.append(("memory", f"{box.memory} MiB"))
    pairs += [("file", describe_provisioner(item)) for item in box.files]
    pairs += [("puppet", describe_provisioner(item)) for item in box.puppet]
    pairs += [("shell", describe_provisioner(item)) for item in box.shell]
    return pairs


def describe_provisioner(item: FileProvisioner | PuppetProvisioner | ShellProvisioner) -> str:
    if isinstance(item, FileProvisioner):
        origin = f"host file {item.source}" if item.source else _text_size(item.content)
        return f"{item.destination} <- {origin}"
    if isinstance(item, PuppetProvisioner):
        return f"host file {item.path}" if item.path else _first_line(item.manifest)
    return f"host file {item.path}" if item.path else _first_line(item.inline)


def _text_size(text: str | None) -> str:
    return f"{len((text or '').encode())} bytes of content"


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines() or [""]
    return lines[0] + (" ..." if len(lines) > 1 else "")


def _styled_value(name: str, value: str) -> Text:
    return Text(value, style=_STATE_STYLES.get(value, "") if name == "state" else "")
