"""The benchmarks at tiny sizes (``python -m bench --quick``), so that `python -m bench`
cannot rot.

Behaviour only: the script exits 0 and writes results.json with every benchmark's keys.
The numbers of a quick run mean nothing and are not checked. Needs neither nginx nor
blackbox_exporter (without them the baselines are reported as not run).

The benchmarks run in three groups, a test file each (GROUPS), so that the suite's workers
(a test file to a worker) run them side by side: a quick benchmark is mostly fixed windows
of time, not CPU. test_groups.py holds the groups to every benchmark there is, and
`python -m bench` without ``--only`` to running every one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.servers import ROOT

PROBE_CPU = ("http_cpu", "http_at_once", "ws_cpu", "sse_cpu")
TRACE = ("trace_cpu",)
SCALE_AND_RESOURCES = ("scheduler", "shards", "fidelity", "memory", "startup",
                       "password_flood", "floods")
GROUPS = (PROBE_CPU, TRACE, SCALE_AND_RESOURCES)
BENCHMARKS = {name for group in GROUPS for name in group}


def quick_bench(tmp_path: Path, only: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """``python -m bench --quick --only NAME...``: its stdout and results.json, after
    checking what every benchmark's results must hold."""
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *(f"--only={n}" for n in only),
         "--output", str(out)],
        # 300 s: the quick bench took 93-234 s beside the suite's other workers, the
        # tracing benchmark half of it; the smoke test asserts that it runs.
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote {out}" in done.stdout

    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["meta"]["quick"] is True
    results = doc["results"]
    assert set(results) == set(only)
    for name, res in results.items():
        assert res["status"] == "ok", (name, res)
        assert res["rows"], name
        for row in res["rows"]:
            assert {"metric", "synthmon", "baseline", "ratio", "target", "pass"} <= set(row)
    return done.stdout, doc
