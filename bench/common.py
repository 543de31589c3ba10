"""Shared pieces: statistics, the result files, and what machine the figures come from."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_RESULTS = BENCH_DIR / "results"

Json = dict[str, Any]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def secs(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds:.2f} s"


def rate(per_second: float) -> str:
    return "-" if math.isnan(per_second) else f"{per_second:,.0f}/s"


@dataclass
class Target:
    """One target of issue 8 and whether this run met it."""

    number: str
    what: str
    figure: str
    target: str
    met: bool | None  # None: a figure shown for context, not judged
    ratio: str = ""


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Result:
    name: str
    title: str
    size: str
    params: Json
    targets: list[Target] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: Json = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0

    def to_json(self) -> Json:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Json) -> Result:
        return cls(
            name=data["name"],
            title=data["title"],
            size=data["size"],
            params=data["params"],
            targets=[Target(**item) for item in data["targets"]],
            tables=[Table(**item) for item in data["tables"]],
            notes=list(data.get("notes", [])),
            raw=data.get("raw", {}),
            started=data.get("started", ""),
            seconds=data.get("seconds", 0.0),
        )


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def write_result(results_dir: Path, result: Result) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result.name}.json"
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def read_results(results_dir: Path) -> list[Result]:
    return [
        Result.from_json(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(results_dir.glob("*.json"))
        if path.name != "machine.json"
    ]


def _command_output(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({error})"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout else "unavailable"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' with uncommitted changes in src/' if dirty else ''}"


def machine_info() -> Json:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _memory_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "vagrant": _command_output("vagrant", "--version"),
        "docker": _command_output("docker", "version", "--format", "{{.Server.Version}}"),
        "vcm": _git_revision(),
    }


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_children_cpu_seconds(pid: int) -> float:
    """cutime + cstime: CPU of the children a live process has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[13]) + int(fields[14])) / ticks


def process_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a live process in MiB."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in values:
            values[key] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]
