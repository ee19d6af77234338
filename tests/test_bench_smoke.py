"""The benchmarks at tiny sizes, so that `python -m bench` cannot rot.

Behaviour only: the script exits 0 and writes results.json with every benchmark's keys.
The numbers of a quick run mean nothing and are not checked. Needs neither nginx nor
blackbox_exporter (without them the baselines are reported as not run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.servers import ROOT

BENCHMARKS = {"http_cpu", "http_at_once", "ws_cpu", "sse_cpu", "trace_cpu", "scheduler",
              "shards", "fidelity", "memory", "startup", "password_flood", "floods"}


def test_quick_bench_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(out)],
        # 300 s: the quick bench gained sse_cpu, floods and password_flood this session and
        # took 93-167 s beside the suite's other workers; the smoke test asserts that it runs.
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HTTP probe CPU/run" in done.stdout  # the table was printed

    doc = json.loads(out.read_text())
    assert doc["meta"]["quick"] is True
    results = doc["results"]
    assert set(results) == BENCHMARKS
    for name, res in results.items():
        assert res["status"] == "ok", (name, res)
        assert res["rows"], name
        for row in res["rows"]:
            assert {"metric", "synthmon", "baseline", "ratio", "target", "pass"} <= set(row)

    assert results["http_cpu"]["synthmon"]["cpu_per_run_ms"] > 0
    assert results["http_cpu"]["synthmon"]["runs"] > 0
    at_once = results["http_at_once"]["per_window"]
    assert at_once and any(w["synthmon_runs"] > 0 for w in at_once)
    assert results["ws_cpu"]["synthmon"]["runs"] > 0
    assert results["ws_cpu"]["floor"]["ok"] > 0
    assert results["scheduler"]["scheduler_only"] and results["scheduler"]["daemon"]
    assert all(r["runs"] > 0 for r in results["shards"]["per_level"].values())
    assert results["fidelity"]["synthmon"]["samples"] > 0
    assert all(r["rss_warm_mib"] > 0 for r in results["memory"]["per_size"].values())
    assert results["startup"]["ready_seconds"] > 0
    for mode in ("off", "on", "otlp"):
        assert results["trace_cpu"][f"http_{mode}"]["runs"] > 0
        assert results["trace_cpu"][f"ws_{mode}"]["runs"] > 0
    assert results["trace_cpu"]["otlp_requests"] > 0  # the export really ran
    assert results["startup"]["first_result_seconds"] >= results["startup"]["ready_seconds"]
    sse = results["sse_cpu"]
    assert sse["sse_ms_per_run"] > 0 and sse["bare_ms_per_run"] > 0
    assert sse["outcomes"].get("success", 0) >= 1  # the stream probe really passed
    flood = results["password_flood"]
    assert flood["other_address_status"] and set(flood["other_address_status"]) == {200}
    assert flood["flood_answers"].get("401", 0) > 0  # the flood's passwords were checked
    floods = results["floods"]["per_flood"]
    assert set(floods) == {"ws/flood_small"}
    assert all(f["peak_cost_mib"] > 0 and f["runs"] for f in floods.values())

    if doc["meta"]["blackbox"]:
        assert results["http_cpu"]["blackbox"]["runs"] > 0
        assert results["fidelity"]["blackbox"]["samples"] > 0
    else:
        assert "blackbox" not in results["http_cpu"]
        assert any("blackbox" in n for n in doc["meta"]["notes"])


def test_only_runs_the_named_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "startup", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(json.loads(out.read_text())["results"]) == {"startup"}
