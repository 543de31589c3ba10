"""The benchmarks run once at a tiny size so the harness cannot rot. Only that they produce
figures is checked: speed is judged by the full run (bench/README.md), never by a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"1_3_real_vagrant", "4_control_plane", "5_persistence", "6_startup"}


def test_every_benchmark_produces_figures_at_a_tiny_size(tmp_path: Path) -> None:
    # Not marked `vagrant`: bench/vagrant_real.py takes the real-Vagrant lock itself.
    readme = REPO / "bench" / "README.md"
    published = readme.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tiny", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    results = {
        path.stem: json.loads(path.read_text())
        for path in tmp_path.glob("*.json")
        if path.name != "machine.json"
    }
    assert set(results) == EXPECTED
    skipped = [note for note in results["1_3_real_vagrant"]["notes"] if "skipped" in note]
    if os.environ.get("VCM_REQUIRE_VAGRANT") != "1" and skipped:
        del results["1_3_real_vagrant"]
    for name, result in results.items():
        assert result["targets"], f"{name} produced no figures: {result['notes']}"
        for target in result["targets"]:
            assert target["figure"], (name, target)
            assert "nan" not in target["figure"], (name, target)
    assert readme.read_text() == published, "a tiny run must leave the published figures alone"
