"""deploy/prometheus/fleet-alerts.yml and deploy/prometheus/fleet/: promtool check and unit
tests, the conventions of alerts.yml, runbooks, and the configs as the central and location
Prometheus load them. The fleet running for real is tests/alerting/test_fleet.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .support import (
    ALERTS,
    FLEET_ALERTS,
    FLEET_ALERTS_TEST,
    FLEET_CENTRAL,
    FLEET_LOCATION,
    RUNBOOK_URL,
    RUNBOOKS,
    alert_names,
    alert_rules,
    binary,
    load_yaml,
    parse_duration,
    run,
)

RUNBOOK_SECTIONS = ("## What it means", "## Check first", "## Likely causes", "## Resolve")


def test_promtool_check_rules() -> None:
    result = run([binary("promtool"), "check", "rules", str(FLEET_ALERTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass_with_alerts_yml_loaded_too() -> None:
    assert load_yaml(FLEET_ALERTS_TEST)["rule_files"] == [ALERTS.name, FLEET_ALERTS.name]
    result = run([binary("promtool"), "test", "rules", FLEET_ALERTS_TEST.name],
                 cwd=FLEET_ALERTS_TEST.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_fleet_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = [(case["alertname"], case.get("exp_alerts") or [])
             for test in load_yaml(FLEET_ALERTS_TEST)["tests"]
             for case in test.get("alert_rule_test", [])]
    names = set(alert_names(FLEET_ALERTS))
    assert names <= {name for name, exp in cases if exp}
    assert names <= {name for name, exp in cases if not exp}
    # MonitorDown, which leaves a shard to ShardDown, is shown quiet for a shard and firing
    # for a daemon without --shard, with both files loaded
    assert {"SynthmonMonitorDown"} <= {name for name, exp in cases if exp}
    assert {"SynthmonMonitorDown"} <= {name for name, exp in cases if not exp}


def test_conventions_and_runbooks() -> None:
    evaluation = parse_duration(load_yaml(FLEET_CENTRAL)["global"]["evaluation_interval"])
    names = alert_names(FLEET_ALERTS)
    assert not set(names) & set(alert_names()), "a fleet alert named like one of alerts.yml"
    for rule in alert_rules(FLEET_ALERTS):
        name = rule["alert"]
        assert re.fullmatch(r"Synthmon[A-Z][A-Za-z0-9]+", name), name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"] == RUNBOOK_URL.format(name), name
        assert "$labels.location" in annotations["summary"], name
        assert parse_duration(rule["for"]) >= 2 * evaluation, name
        text = (RUNBOOKS / f"{name}.md").read_text(encoding="utf-8")
        assert text.startswith(f"# {name}"), name
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{name}: missing section {section!r}"


def test_monitor_down_leaves_shards_to_shard_down() -> None:
    (down,) = [r for r in alert_rules(ALERTS) if r["alert"] == "SynthmonMonitorDown"]
    assert 'ALERTS{alertname="SynthmonShardDown"}' in down["expr"]
    assert "SynthmonShardDown" in alert_names(FLEET_ALERTS)


def test_location_config_is_valid_and_scrapes_the_synthmon_job() -> None:
    result = run([binary("promtool"), "check", "config", str(FLEET_LOCATION)])
    assert result.returncode == 0, result.stdout + result.stderr
    doc = load_yaml(FLEET_LOCATION)
    assert "location" in doc["global"]["external_labels"]
    assert [j["job_name"] for j in doc["scrape_configs"]] == ["synthmon"]
    assert "rule_files" not in doc and "alerting" not in doc  # rules run centrally


def test_central_config_is_valid_federates_and_loads_both_rule_files(tmp_path: Path) -> None:
    for path in (FLEET_CENTRAL, ALERTS, FLEET_ALERTS):
        shutil.copy(path, tmp_path / path.name)
    result = run([binary("promtool"), "check", "config", str(tmp_path / FLEET_CENTRAL.name)])
    assert result.returncode == 0, result.stdout + result.stderr
    doc = load_yaml(FLEET_CENTRAL)
    assert doc["rule_files"] == [ALERTS.name, FLEET_ALERTS.name]
    (job,) = doc["scrape_configs"]
    assert job["job_name"] == "synthmon-federate"  # the job SynthmonLocationSilent watches
    assert job["metrics_path"] == "/federate"
    assert job["params"] == {"match[]": ['{job="synthmon"}']}
    assert job["honor_labels"] is True and job["honor_timestamps"] is False
    locations = [c["labels"]["location"] for c in job["static_configs"]]
    assert len(locations) == len(set(locations)) >= 2
    (silent,) = [r for r in alert_rules(FLEET_ALERTS) if r["alert"] == "SynthmonLocationSilent"]
    assert 'job="synthmon-federate"' in silent["expr"]
