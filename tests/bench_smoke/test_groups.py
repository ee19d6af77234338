"""The smoke test's groups hold every benchmark, and `python -m bench` without ``--only``
runs every benchmark there is (each one's real quick run is in a test file of its group),
and ``--only`` runs the one named, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cases import CASES
from tests.support.servers import ROOT

from .quick import BENCHMARKS, GROUPS

# `python -m bench` with each benchmark's function replaced by one that records its call:
# what is tested is the driver's choice of benchmarks, not the benchmarks (run for real by
# the group files). In a process of its own: the driver pins itself to a core.
RECORDING_DRIVER = """
import sys
from bench import cases, main
for name in list(cases.CASES):
    cases.CASES[name] = lambda ctx, name=name: {"status": "ok", "rows": [
        cases.row(f"ran {name}", 1.0)]}
raise SystemExit(main.main(sys.argv[1:]))
"""


def test_the_groups_are_every_benchmark_once() -> None:
    names = [name for group in GROUPS for name in group]
    assert len(names) == len(set(names))
    assert set(CASES) == BENCHMARKS


def test_without_only_every_benchmark_runs(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", RECORDING_DRIVER, "--quick", "--output",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())["results"]
    assert list(results) == list(CASES)
    for name in CASES:
        assert f"ran {name}" in done.stdout
        assert results[name]["status"] == "ok"


def test_only_runs_the_named_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "startup", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(json.loads(out.read_text())["results"]) == {"startup"}
