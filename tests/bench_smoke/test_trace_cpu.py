"""The quick benchmark of trace context's CPU: off, on, and exported over OTLP."""

from __future__ import annotations

from pathlib import Path

from .quick import TRACE, quick_bench


def test_quick_trace_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    _, doc = quick_bench(tmp_path, TRACE)
    results = doc["results"]
    for mode in ("off", "on", "otlp"):
        assert results["trace_cpu"][f"http_{mode}"]["runs"] > 0
        assert results["trace_cpu"][f"ws_{mode}"]["runs"] > 0
    assert results["trace_cpu"]["otlp_requests"] > 0  # the export really ran
