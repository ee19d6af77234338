"""deploy/prometheus/alerts.yml: promtool check + unit tests, and the conventions around it."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .support import (
    ALERTS,
    ALERTS_TEST,
    FLEET_ALERTS,
    RUNBOOK_URL,
    RUNBOOKS,
    alert_names,
    alert_rules,
    binary,
    free_port,
    load_yaml,
    parse_duration,
    run,
    running_prometheus,
    write_fast_rules,
    write_test_prometheus_config,
)

PROMETHEUS_CONFIG = ALERTS.parent / "prometheus.yml"
TARGET_PAGES = "synthmon-probe-failures"  # the group of the pages about a target
EVALUATION_INTERVAL = parse_duration(load_yaml(PROMETHEUS_CONFIG)["global"]["evaluation_interval"])

RUNBOOK_SECTIONS = ("## What it means", "## Check first", "## Likely causes", "## Resolve")
# alerts about the daemon itself: no probe/target labels to name
DAEMON_ALERTS = {
    "SynthmonMonitorDown",
    "SynthmonMonitorAbsent",
    "SynthmonConfigReloadFailed",
    "SynthmonSchedulerLagging",
    "SynthmonProbeRunsSkipped",
}


def test_promtool_check_rules() -> None:
    result = run([binary("promtool"), "check", "rules", str(ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run([binary("promtool"), "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _cases() -> list[tuple[str, list[object]]]:
    doc = load_yaml(ALERTS_TEST)
    return [
        (case["alertname"], case.get("exp_alerts") or [])
        for test in doc["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_unit_tests_load_the_shipped_rules() -> None:
    doc = load_yaml(ALERTS_TEST)
    assert doc["rule_files"] == [ALERTS.name]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    names = set(alert_names())
    cases = _cases()
    firing = {name for name, exp in cases if exp}
    quiet = {name for name, exp in cases if not exp}
    assert names - firing == set(), "alerts without a test case where they fire"
    assert names - quiet == set(), "alerts without a test case where they stay quiet"
    assert {name for name, _ in cases} - names == set(), "test cases for unknown alerts"


def test_alert_names_are_unique() -> None:
    names = alert_names()
    assert len(names) == len(set(names))


def test_alert_labels_and_annotations() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"Synthmon[A-Z][A-Za-z0-9]+", name), name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"] == RUNBOOK_URL.format(name), name


def test_pages_about_a_target_fire_at_their_first_evaluation() -> None:
    """The pages about a target's regression wait for nothing more than a confirmed failure
    (synthmon's retry and the quorum of locations): `for: 0s`, or they cannot reach
    PagerDuty within 120 s of the onset. Every other alert waits at least one evaluation."""
    groups = {g["name"]: g["rules"] for g in load_yaml(ALERTS)["groups"]}
    target_pages = [r["alert"] for r in groups[TARGET_PAGES]]
    assert {"SynthmonProbeFailing", "SynthmonTokenReflected",
            "SynthmonWebSocketRouteLikelyMissing"} <= set(target_pages)
    for name, rules in groups.items():
        for rule in rules:
            wait = parse_duration(rule.get("for", "0s"))
            if name == TARGET_PAGES:
                assert rule["labels"]["severity"] == "page", rule["alert"]
                assert wait == 0, rule["alert"]
            else:
                assert wait >= EVALUATION_INTERVAL, rule["alert"]


def test_per_probe_alerts_link_the_evidence() -> None:
    """Every alert about one probe links its page on the synthmon that ran it (from
    synthmon_external_url_info), variants included."""
    for rule in alert_rules():
        if rule["alert"] in DAEMON_ALERTS or "TLSCert" in rule["alert"]:
            continue
        url = rule["annotations"].get("evidence_url", "")
        assert "synthmon_external_url_info{instance=%q}" in url, rule["alert"]
        assert 'probe/{{ $labels.probe }}{{ with $labels.variant }}@{{ . }}{{ end }}' in url, \
            rule["alert"]


def test_per_probe_summaries_name_probe_and_target() -> None:
    for rule in alert_rules():
        summary = rule["annotations"]["summary"]
        if rule["alert"] in DAEMON_ALERTS:
            assert "$labels.instance" in summary or "absent(" in rule["expr"], rule["alert"]
            continue
        assert "$labels.probe" in summary, rule["alert"]
        assert "$labels.target" in summary, rule["alert"]


def test_every_alert_has_a_runbook() -> None:
    for name in alert_names():
        path = RUNBOOKS / f"{name}.md"
        assert path.is_file(), f"missing runbook {path}"
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"# {name}"), path
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{path}: missing section {section!r}"
        assert "synthmon once" in text or "curl" in text or "kubectl" in text, path


def test_no_stray_runbooks() -> None:
    names = set(alert_names()) | set(alert_names(FLEET_ALERTS))
    stray = {p.stem for p in RUNBOOKS.glob("Synthmon*.md")} - names
    assert stray == set()


def test_fast_rules_scale_for_and_ranges_only(tmp_path: Path) -> None:
    fast = write_fast_rules(tmp_path)
    result = run([binary("promtool"), "check", "rules", str(fast)])
    assert result.returncode == 0, result.stdout + result.stderr
    original, shortened = alert_rules(), alert_rules(fast)
    assert len(original) == len(shortened)
    ranges = re.compile(r"\[(\w+)\]")
    for before, after in zip(original, shortened, strict=True):
        assert before["alert"] == after["alert"]
        assert ranges.sub("[]", before["expr"]) == ranges.sub("[]", after["expr"])
        assert [parse_duration(r) / 60 for r in ranges.findall(before["expr"])] == \
            pytest.approx([parse_duration(r) for r in ranges.findall(after["expr"])], abs=1e-3)
        assert before["labels"] == after["labels"]
        assert before["annotations"] == after["annotations"]
        assert parse_duration(after["for"]) == parse_duration(before["for"]) / 60


def test_compose_prometheus_config_is_valid() -> None:
    result = run([binary("promtool"), "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert load_yaml(PROMETHEUS_CONFIG)["rule_files"] == [ALERTS.name]
    jobs = [job["job_name"] for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]]
    assert "synthmon" in jobs


def test_real_prometheus_loads_the_rules_and_fires(tmp_path: Path) -> None:
    """The shipped rules (with fast `for:`) in a real Prometheus: every rule loads and
    evaluates, and a synthmon target that cannot be scraped fires SynthmonMonitorDown."""
    rules = write_fast_rules(tmp_path)
    config = write_test_prometheus_config(
        tmp_path,
        synthmon_targets=[f"127.0.0.1:{free_port()}"],  # nothing listens there
        alertmanager_target=f"127.0.0.1:{free_port()}",
        rule_files=[rules],
    )
    with running_prometheus(config, tmp_path) as prometheus:
        deadline = time.monotonic() + 20
        firing: list[str] = []
        while time.monotonic() < deadline:
            groups = _get(f"{prometheus}/api/v1/rules")["data"]["groups"]
            loaded = [r for g in groups for r in g["rules"]]
            alerts = _get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]
            firing = [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"]
            evaluated = all(r.get("lastEvaluation", "").startswith("20") for r in loaded)
            if "SynthmonMonitorDown" in firing and evaluated:
                break
            time.sleep(0.25)
        assert sorted(r["name"] for r in loaded) == sorted(alert_names())
        bad = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
        assert bad == []
        assert "SynthmonMonitorDown" in firing
        assert "SynthmonMonitorAbsent" not in firing


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]
