"""The quick benchmarks of a probe's CPU: HTTP alone and all at once, WebSocket, SSE."""

from __future__ import annotations

from pathlib import Path

from .quick import PROBE_CPU, quick_bench


def test_quick_probe_cpu_benchmarks_run_and_write_results(tmp_path: Path) -> None:
    stdout, doc = quick_bench(tmp_path, PROBE_CPU)
    assert "HTTP probe CPU/run" in stdout  # the table was printed
    results = doc["results"]
    assert results["http_cpu"]["synthmon"]["cpu_per_run_ms"] > 0
    assert results["http_cpu"]["synthmon"]["runs"] > 0
    at_once = results["http_at_once"]["per_window"]
    assert at_once and any(w["synthmon_runs"] > 0 for w in at_once)
    assert results["ws_cpu"]["synthmon"]["runs"] > 0
    assert results["ws_cpu"]["floor"]["ok"] > 0
    sse = results["sse_cpu"]
    assert sse["sse_ms_per_run"] > 0 and sse["bare_ms_per_run"] > 0
    assert sse["outcomes"].get("success", 0) >= 1  # the stream probe really passed
    if doc["meta"]["blackbox"]:
        assert results["http_cpu"]["blackbox"]["runs"] > 0
    else:
        assert "blackbox" not in results["http_cpu"]
        assert any("blackbox" in n for n in doc["meta"]["notes"])
