"""deploy/grafana: the dashboard's queries parse (promtool), use the contract's metric
names, cover what the issue asks for; the provisioning files point at them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from .dashboard_queries import dashboard_queries, panel_targets, panels, variable_queries
from .support import DASHBOARD, DEPLOY, binary, load_yaml, run

GRAFANA = DEPLOY / "grafana"

# metric names of the contract (PRODUCT.md); histograms with their series suffixes
METRICS = {
    "probe_success", "probe_duration_seconds", "probe_http_status_code",
    "probe_http_duration_seconds", "probe_websocket_status_code",
    "probe_websocket_connection_upgraded", "probe_websocket_close_code",
    "probe_websocket_duration_seconds", "probe_ssl_earliest_cert_expiry",
    "synthmon_probe_outcome", "synthmon_probe_runs_total",
    "synthmon_probe_last_run_timestamp_seconds", "synthmon_probe_last_success_timestamp_seconds",
    "synthmon_probe_interval_seconds", "synthmon_build_info",
    "synthmon_config_last_reload_successful",
    "synthmon_config_last_reload_success_timestamp_seconds", "synthmon_probes_configured",
    "synthmon_probe_skipped_total", "probe_sse_first_event_seconds",
    "probe_sse_max_gap_seconds", "probe_sse_events", "probe_flow_step_success",
    "probe_flow_failed_step",
    *(f"{h}_{s}" for h in ("synthmon_probe_duration_seconds",
                           "synthmon_probe_step_duration_seconds", "synthmon_probe_event_seconds",
                           "synthmon_probe_first_event_seconds",
                           "synthmon_scheduler_lag_seconds")
      for s in ("bucket", "sum", "count")),
}
PROMQL_WORDS = {
    "sum", "by", "on", "or", "and", "unless", "rate", "increase", "histogram_quantile",
    "time", "vector", "min", "max", "sort", "sort_desc", "le", "without", "ignoring",
    "group_left", "group_right", "avg", "count", "bool",
}


def _dashboard() -> dict:  # type: ignore[type-arg]
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_is_valid_json_with_a_stable_uid() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "synthmon"
    assert dashboard["title"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """promtool parses the PromQL of recording rules: one rule per panel query (and per
    variable selector)."""
    queries = dashboard_queries(DASHBOARD) + variable_queries(DASHBOARD)
    assert len(queries) >= 20
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
    ]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = run([binary("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_use_only_contract_metrics() -> None:
    for query in dashboard_queries(DASHBOARD):
        without_strings = re.sub(r'"[^"]*"', '""', query)
        without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
        without_ranges = re.sub(r"\[[^\]]*\]", "[]", without_labels)
        names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges))
        names -= PROMQL_WORDS
        # label names inside by (...) / on (...) clauses
        grouped = set()
        for clause in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", without_ranges):
            grouped |= {x.strip() for x in clause.split(",") if x.strip()}
        unknown = names - grouped - METRICS
        assert not unknown, f"unknown names {unknown} in {query}"


def test_variables_are_used_only_in_regex_matchers() -> None:
    """Query variables become `.*`: they must only appear as `label=~"$var"`."""
    dashboard = _dashboard()
    names = [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    exprs = [t["expr"] for _, t in panel_targets(dashboard)]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"])
    for expr in exprs:
        for name in [*names, "job"]:
            for m in re.finditer(rf"(\w+)\s*(=~|!~|=|!=)\s*\"\$\{{?{name}\b", expr):
                assert m.group(2) == "=~", f"{m.group(0)} in {expr}"


def test_the_panels_the_issue_asks_for() -> None:
    dashboard = _dashboard()
    exprs = "\n".join(t["expr"] for _, t in panel_targets(dashboard))
    titles = " | ".join(p.get("title", "") for p in panels(dashboard)).lower()
    assert "probe_success" in exprs and "status" in titles  # golden path at a glance
    assert 'outcome="success"' in exprs and "success ratio" in titles
    for q in ("0.5", "0.95", "0.99"):
        quantile = f"histogram_quantile({q}, sum by (le, probe, location) (rate("
        assert quantile + "synthmon_probe_duration_seconds_bucket" in exprs
    assert "probe_websocket_status_code" in exprs and "handshake status code" in titles
    assert "sum by (outcome) (increase(synthmon_probe_runs_total" in exprs  # outcomes
    assert "synthmon_probe_step_duration_seconds_bucket" in exprs  # event flow steps
    assert "synthmon_scheduler_lag_seconds_bucket" in exprs
    assert "probe_ssl_earliest_cert_expiry" in exprs
    # streams: p95 time to first event, the largest gap
    assert "histogram_quantile(0.95, sum by (le, probe, location) (rate(" \
        "synthmon_probe_first_event_seconds_bucket" in exprs
    assert "probe_sse_max_gap_seconds" in exprs and "time to first event" in titles
    # a flow's steps: pass/fail run after run, and a panel per step (repeated by step)
    assert "probe_flow_step_success" in exprs
    (per_step,) = [p for p in panels(dashboard) if p.get("repeat") == "flow_step"]
    assert "synthmon_probe_step_duration_seconds_bucket" in per_step["targets"][0]["expr"]
    assert 'step=~"$flow_step"' in per_step["targets"][0]["expr"]


def test_every_panel_uses_the_datasource_variable() -> None:
    for panel, target in panel_targets(_dashboard()):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_queries_resolve_variables() -> None:
    queries = dashboard_queries(DASHBOARD)
    assert all("$" not in q and "[[" not in q for q in queries)
    assert any('probe=~".*"' in q for q in queries)
    assert any('job=~"synthmon"' in q for q in queries)
    rate = dashboard_queries(DASHBOARD, rate_interval="30s")
    assert any("[30s]" in q for q in rate)


def test_resolve_rejects_unknown_variables() -> None:
    from .dashboard_queries import resolve

    with pytest.raises(ValueError, match="unknown dashboard variable"):
        resolve('up{x=~"$nope"}', _dashboard())


def test_grafana_provisioning() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "synthmon.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    grafana_volumes = compose["services"]["grafana"]["volumes"]
    assert any(
        v.startswith("./grafana/dashboards:") and v.split(":")[1] == provider["options"]["path"]
        for v in grafana_volumes
    ), grafana_volumes


def test_latency_panels_show_exemplars() -> None:
    """Every query of a run or step duration histogram, and of the time to a stream's
    first event, asks Grafana for its exemplars (the runs' trace ids), and no other query
    does (exemplars of gauges do not exist)."""
    targets = list(panel_targets(_dashboard()))
    latency = [t for _, t in targets
               if re.search(r"synthmon_probe_((step_)?duration|first_event)_seconds_bucket",
                            t["expr"])]
    assert len(latency) >= 5
    assert all(t.get("exemplar") is True for t in latency)
    assert all(not t.get("exemplar") for _, t in targets if t not in latency)
