"""`python -m bench.run --all | --tiny [--only NAMES] [--results DIR] | --render`.

--all   every benchmark at full size (real Vagrant included: minutes); results in bench/results,
        then bench/README.md's results section is rendered from them.
--tiny  every benchmark once at a tiny size, to prove the harness still works; results go to a
        temporary directory unless --results names one, and the README is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import control_plane, persistence, startup, vagrant_real
from bench.common import DEFAULT_RESULTS, Result, machine_info, now, write_result
from bench.report import render

Runner = Callable[[bool], Result]


def _control_plane(tiny: bool) -> Result:
    return control_plane.run(control_plane.TINY if tiny else control_plane.FULL, _label(tiny))


def _persistence(tiny: bool) -> Result:
    return persistence.run(persistence.TINY if tiny else persistence.FULL, _label(tiny))


def _startup(tiny: bool) -> Result:
    return startup.run(startup.TINY if tiny else startup.FULL, _label(tiny))


def _vagrant(tiny: bool) -> Result:
    why_not = vagrant_real.available()
    if why_not:
        result = Result("1_3_real_vagrant", "1-3. On real Vagrant", _label(tiny), {})
        result.notes.append(f"skipped: {why_not}")
        return result
    return vagrant_real.run(vagrant_real.TINY if tiny else vagrant_real.FULL, _label(tiny))


def _label(tiny: bool) -> str:
    return "tiny" if tiny else "full"


BENCHMARKS: dict[str, Runner] = {
    "vagrant": _vagrant,
    "control_plane": _control_plane,
    "persistence": _persistence,
    "startup": _startup,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--all", action="store_true", help="full run, then render the README")
    mode.add_argument("--tiny", action="store_true", help="each benchmark once, tiny")
    mode.add_argument("--render", action="store_true", help="only render the README")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--results", type=Path, help="where the JSON results go")
    args = parser.parse_args(argv)

    results_dir: Path = args.results or (
        Path(tempfile.mkdtemp(prefix="vcm-bench-tiny-")) if args.tiny else DEFAULT_RESULTS
    )
    if args.render:
        render(results_dir)
        return 0
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    results_dir.mkdir(parents=True, exist_ok=True)
    meta = {"machine": machine_info(), "command": command, "started": now()}
    (results_dir / "machine.json").write_text(json.dumps(meta, indent=2) + "\n")
    for name in names:
        began = time.perf_counter()
        load = os.getloadavg()
        print(f"[bench] {name} ({'tiny' if args.tiny else 'full'}) ...", file=sys.stderr)
        result = BENCHMARKS[name](args.tiny)
        result.params["loadavg_before"] = " ".join(f"{value:.2f}" for value in load)
        path = write_result(results_dir, result)
        took = time.perf_counter() - began
        print(f"[bench] {name}: {took:.0f} s -> {path}", file=sys.stderr)
        for target in result.targets:
            verdict = {True: "met", False: "MISSED", None: "-"}[target.met]
            print(f"  [{verdict}] {target.number} {target.what}: {target.figure}", file=sys.stderr)
    if args.all:
        render(results_dir)
        print(f"[bench] rendered {Path('bench/README.md')}", file=sys.stderr)
    print(results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
