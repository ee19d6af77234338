"""The quick benchmarks of scale and resources: the scheduler, shards, timing fidelity,
memory, start-up, a password flood, the hostile floods."""

from __future__ import annotations

from pathlib import Path

from .quick import SCALE_AND_RESOURCES, quick_bench


def test_quick_scale_and_resource_benchmarks_run_and_write_results(tmp_path: Path) -> None:
    _, doc = quick_bench(tmp_path, SCALE_AND_RESOURCES)
    results = doc["results"]
    assert results["scheduler"]["scheduler_only"] and results["scheduler"]["daemon"]
    assert all(r["runs"] > 0 for r in results["shards"]["per_level"].values())
    assert results["fidelity"]["synthmon"]["samples"] > 0
    assert all(r["rss_warm_mib"] > 0 for r in results["memory"]["per_size"].values())
    assert results["startup"]["ready_seconds"] > 0
    assert results["startup"]["first_result_seconds"] >= results["startup"]["ready_seconds"]
    flood = results["password_flood"]
    assert flood["other_address_status"] and set(flood["other_address_status"]) == {200}
    assert flood["flood_answers"].get("401", 0) > 0  # the flood's passwords were checked
    floods = results["floods"]["per_flood"]
    assert set(floods) == {"ws/flood_small"}
    assert all(f["peak_cost_mib"] > 0 and f["runs"] for f in floods.values())
    if doc["meta"]["blackbox"]:
        assert results["fidelity"]["blackbox"]["samples"] > 0
