"""Render the results of a run into bench/README.md, between the two markers."""

from __future__ import annotations

import json
from pathlib import Path

from bench.common import BENCH_DIR, Json, Result, Table, read_results

BEGIN = "<!-- results:begin (written by `python -m bench.run`; edit outside the markers) -->"
END = "<!-- results:end -->"
README = BENCH_DIR / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(_cell(c) for c in table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return [*lines, ""]


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "(context)"}[value]


def render_block(results: list[Result], machine: Json, command: str) -> str:
    lines = [BEGIN, ""]
    lines.append("| machine | |")
    lines.append("|---|---|")
    for key in ("nproc", "cpu", "memory", "kernel", "python", "vagrant", "docker", "vcm"):
        lines.append(f"| {key} | {_cell(str(machine.get(key, '?')))} |")
    dates = sorted(r.started for r in results if r.started)
    if dates:
        lines.append(f"| date | {dates[0]} to {dates[-1]} |")
    lines.append(f"| command | `{command}` |")
    loads = [f"{r.name}: {r.params.get('loadavg_before', '?')}" for r in results]
    lines.append(f"| load average before each benchmark | {_cell('; '.join(loads))} |")
    lines += ["", "### Targets", ""]
    lines.append("| # | measure | figure | ratio | target | result |")
    lines.append("|---|---|---|---|---|---|")
    for result in results:
        for t in result.targets:
            lines.append(
                f"| {t.number} | {_cell(t.what)} | {_cell(t.figure)} | {t.ratio or '-'} "
                f"| {_cell(t.target)} | {_met(t.met)} |"
            )
    for result in results:
        lines += ["", f"### {result.title}", ""]
        lines.append(
            f"Size `{result.size}`, {result.seconds:.0f} s, parameters "
            f"`{json.dumps({k: v for k, v in result.params.items() if k != 'loadavg_before'})}`."
        )
        lines.append("")
        for table in result.tables:
            lines += _table(table)
        lines += [f"- {note}" for note in result.notes]
    lines += ["", END]
    return "\n".join(lines)


def render(results_dir: Path, readme: Path = README) -> None:
    results = read_results(results_dir)
    meta = json.loads((results_dir / "machine.json").read_text(encoding="utf-8"))
    block = render_block(results, meta["machine"], meta["command"])
    text = readme.read_text(encoding="utf-8") if readme.exists() else f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + block + tail, encoding="utf-8")
