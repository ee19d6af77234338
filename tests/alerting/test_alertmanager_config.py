"""deploy/alertmanager/alertmanager.yml: amtool check-config, routing, and real deliveries.

The last tests run the real Alertmanager binary on loopback with the shipped config (only
the PagerDuty URL, the webhook URL, the key file and the timers changed) and check the
Events API v2 trigger/resolve pair and the inhibition of the generic page.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .support import (
    ALERTMANAGER,
    ALERTS,
    ALERTS_TEST,
    EventSink,
    alert_rules,
    binary,
    load_yaml,
    parse_duration,
    post_alerts,
    run,
    running_alertmanager,
    write_test_alertmanager_config,
)


def _routes_test(*labels: str, receiver: str) -> None:
    result = run(
        [
            binary("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            f"--verify.receivers={receiver}",
            *labels,
        ]
    )
    assert result.returncode == 0, (
        f"{labels} routed to {result.stdout.strip()!r}, expected {receiver!r}\n{result.stderr}"
    )
    assert result.stdout.strip() == receiver


def test_amtool_check_config() -> None:
    result = run([binary("amtool"), "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_page_routes_to_pagerduty() -> None:
    _routes_test(
        "alertname=SynthmonWebSocketHandshakeForbidden",
        "severity=page",
        "probe=ws-golden-path",
        receiver="pagerduty",
    )
    _routes_test(
        "alertname=SynthmonAuthNotEnforced", "severity=page", "category=security",
        receiver="pagerduty",
    )


def test_ticket_routes_to_ticket_receiver() -> None:
    _routes_test(
        "alertname=SynthmonTLSCertExpiringSoon", "severity=ticket", "probe=api-health",
        receiver="ticket",
    )


def test_unknown_severity_is_not_dropped() -> None:
    _routes_test("alertname=Something", "severity=info", receiver="ticket")


def test_every_severity_used_by_the_rules_has_a_route() -> None:
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    expected = {"page": "pagerduty", "ticket": "ticket"}
    assert severities == set(expected)
    for severity, receiver in expected.items():
        _routes_test("alertname=X", f"severity={severity}", receiver=receiver)


def test_pagerduty_receiver_settings() -> None:
    doc = load_yaml(ALERTMANAGER)
    assert doc["route"]["group_by"] == ["alertname", "probe"]  # tickets: one per probe
    # pages: one incident per cause, however many probes and locations fail with it
    (page,) = [r for r in doc["route"]["routes"] if r["matchers"] == ['severity="page"']]
    assert page["group_by"] == ["alertname", "environment"]
    (pagerduty,) = [r for r in doc["receivers"] if r["name"] == "pagerduty"]
    (config,) = pagerduty["pagerduty_configs"]
    assert config["routing_key_file"].startswith("/")
    assert "routing_key" not in config and "service_key" not in config  # no inline secret
    assert config["send_resolved"] is True
    assert "summary" in config["description"]
    assert doc["global"]["pagerduty_url"].endswith("/v2/enqueue")  # Events API v2


def _alertnames(matchers: list[str], rules: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for matcher in matchers:
        m = re.fullmatch(r'alertname(=~|=)"(.+)"', matcher)
        if m:
            names |= set(m.group(2).split("|")) if m.group(1) == "=~" else {m.group(2)}
    unknown = names - set(rules)
    assert not unknown, f"inhibit rule names unknown alerts {unknown}"
    return names


def test_inhibit_rules_name_existing_alerts_that_fire_first() -> None:
    """Every alert named in an inhibit rule exists, and a source waits no longer (`for:`)
    than its targets, so it is firing by the time a target would be sent."""
    doc = load_yaml(ALERTMANAGER)
    rules = {r["alert"]: r for r in alert_rules()}
    for inhibit in doc["inhibit_rules"]:
        sources = _alertnames(inhibit["source_matchers"], rules)
        targets = _alertnames(inhibit["target_matchers"], rules)
        # one probe (or daemon), or, for a flow's step, the environment and location
        assert {"probe", "instance", "environment"} & set(inhibit["equal"]), inhibit
        for source in sources:
            for target in targets:
                assert parse_duration(rules[source]["for"]) <= parse_duration(
                    rules[target]["for"]
                ), (source, target)


def test_every_specific_page_inhibits_the_generic_one() -> None:
    """Every page about a target with a name of its own holds the generic one back for the
    same probe and location (its expression leaves them out too:
    test_every_outcome_pages_once.py), TokenReflected included."""
    doc = load_yaml(ALERTMANAGER)
    rules = {r["alert"]: r for r in alert_rules()}
    (inhibit,) = [
        i for i in doc["inhibit_rules"]
        if _alertnames(i["target_matchers"], rules) == {"SynthmonProbeFailing"}
    ]
    assert inhibit["equal"] == ["probe", "location"]
    (group,) = [g for g in load_yaml(ALERTS)["groups"] if g["name"] == "synthmon-probe-failures"]
    specific = {r["alert"] for r in group["rules"]} - {"SynthmonProbeFailing"}
    assert "SynthmonTokenReflected" in specific
    assert _alertnames(inhibit["source_matchers"], rules) == specific


FLOW_WS_OUTCOMES = re.compile(r'outcome=~"(.+)"')


def test_the_websocket_pages_hold_back_a_flow_stopped_the_same_way() -> None:
    """The Alertmanager side of what SynthmonFlowStepFailing's expression does: the same
    WebSocket pages, of WebSocket probes, for the same outcomes, in the same environment
    and location."""
    doc = load_yaml(ALERTMANAGER)
    rules = {r["alert"]: r for r in alert_rules()}
    (inhibit,) = [i for i in doc["inhibit_rules"]
                  if _alertnames(i["target_matchers"], rules) == {"SynthmonFlowStepFailing"}]
    assert inhibit["equal"] == ["environment", "location"]
    assert 'type="websocket"' in inhibit["source_matchers"]
    (group,) = [g for g in load_yaml(ALERTS)["groups"] if g["name"] == "synthmon-probe-failures"]
    websocket = {r["alert"] for r in group["rules"]
                 if "WebSocket" in r["alert"] or "GoldenPath" in r["alert"]}
    assert _alertnames(inhibit["source_matchers"], rules) == websocket - {
        "SynthmonWebSocketSubprotocolMismatch"}  # a flow's subprotocol pages under it
    expr = rules["SynthmonFlowStepFailing"]["expr"]
    (outcomes,) = [m.group(1) for t in inhibit["target_matchers"]
                   if (m := FLOW_WS_OUTCOMES.fullmatch(t))]
    assert expr.count(f'outcome=~"{outcomes}"') == 2  # the flow's and the WebSocket probes'


# --------------------------------------------------------------------------- real Alertmanager

PROBE_LABELS = {
    "probe": "ws-golden-path",
    "type": "websocket",
    "target": "wss://staging.example.com/api/v1/websocket",
    "environment": "staging",
    "job": "synthmon",
    "instance": "127.0.0.1:9115",
}


def _alert(name: str, severity: str, summary: str, *, starts: datetime,
           ends: datetime | None = None, **labels: str) -> dict[str, Any]:
    """An alert as Prometheus posts it. ``starts`` is when it started firing: an old one
    would make Alertmanager flush a new group at once, skipping group_wait and racing its
    inhibitor (as it does after a restart)."""
    return {
        "labels": {"alertname": name, "severity": severity, **PROBE_LABELS, **labels},
        "annotations": {
            "summary": summary,
            "description": f"description of {name}",
            "runbook_url": f"https://github.com/synthmon/synthmon/blob/main/docs/runbooks/{name}.md",
        },
        "startsAt": starts.isoformat(),
        "endsAt": (ends or starts + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph",
    }


def _rendered_summary(alertname: str) -> str:
    """The summary Prometheus renders for ``alertname`` on the incident's series: the one
    alerts.test.yml expects, which promtool checks against the rule (test_rules.py)."""
    for test in load_yaml(ALERTS_TEST)["tests"]:
        for case in test.get("alert_rule_test", []):
            if case["alertname"] == alertname and case["exp_alerts"]:
                labels = case["exp_alerts"][0]["exp_labels"]
                if labels.get("probe") == PROBE_LABELS["probe"] and "location" not in labels:
                    return str(case["exp_alerts"][0]["exp_annotations"]["summary"])
    raise AssertionError(f"alerts.test.yml has no firing case of {alertname} for the probe")


def _am_alerts(alertmanager: str, alertname: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts?{query}", timeout=5) as resp:
        return list(json.load(resp))


def _wait_inhibited(alertmanager: str, alertname: str, timeout: float = 20.0) -> None:
    """Alertmanager itself reports ``alertname`` suppressed by an inhibiting alert."""
    deadline = time.monotonic() + timeout
    while True:
        alerts = _am_alerts(alertmanager, alertname)
        states = [(a["status"]["state"], bool(a["status"]["inhibitedBy"])) for a in alerts]
        if states and all(st == ("suppressed", True) for st in states):
            return
        assert time.monotonic() < deadline, f"{alertname} not inhibited: {alerts}"
        time.sleep(0.1)


_BARRIERS = itertools.count()


def _barrier(alertmanager: str, pagerduty: EventSink, tickets: EventSink
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What each receiver got before a page and a ticket posted now were delivered.

    The two go to groups of their own (a probe that no inhibit rule touches), created after
    every group of the test: Alertmanager flushes a group group_wait after its first alert,
    so by the time these arrive, the test's groups have been flushed too and anything they
    were going to send was sent. Order, not a pause long enough on a quiet machine."""
    n = next(_BARRIERS)
    now = datetime.now(UTC)
    page, ticket = f"barrier-page-{n}", f"barrier-ticket-{n}"
    post_alerts(alertmanager, [
        _alert("SynthmonTestBarrier", "page", "barrier", starts=now, probe=page),
        _alert("SynthmonTestBarrier", "ticket", "barrier", starts=now, probe=ticket),
    ])

    def ours(e: dict[str, Any], probe: str) -> bool:
        return probe in json.dumps(e)

    pagerduty.wait_for(lambda e: ours(e, page))
    tickets.wait_for(lambda e: ours(e, ticket))
    return ([e for e in pagerduty.snapshot() if "barrier-" not in json.dumps(e)],
            [e for e in tickets.snapshot() if "barrier-" not in json.dumps(e)])


@pytest.fixture
def stack(tmp_path: Path):  # type: ignore[no-untyped-def]
    with EventSink() as pagerduty, EventSink() as tickets:
        config = write_test_alertmanager_config(
            tmp_path, pagerduty_url=f"{pagerduty.url}/v2/enqueue", webhook_url=f"{tickets.url}/hook"
        )
        result = run([binary("amtool"), "check-config", str(config)])
        assert result.returncode == 0, result.stdout + result.stderr
        with running_alertmanager(config, tmp_path) as alertmanager:
            yield alertmanager, pagerduty, tickets


def test_page_triggers_and_resolves_one_pagerduty_incident(stack) -> None:  # type: ignore[no-untyped-def]
    alertmanager, pagerduty, tickets = stack
    name = "SynthmonWebSocketHandshakeForbidden"
    summary = _rendered_summary(name)
    # the generic page for the same probe is inhibited by the specific one
    t0 = datetime.now(UTC)
    post_alerts(alertmanager, [
        _alert(name, "page", summary, starts=t0),
        _alert("SynthmonProbeFailing", "page", "Probe ws-golden-path is failing", starts=t0),
        _alert("SynthmonProbeSuccessRatioLow", "ticket", "ratio low", starts=t0),
    ])
    trigger = pagerduty.wait_for(lambda e: e.get("event_action") == "trigger")
    _wait_inhibited(alertmanager, "SynthmonProbeFailing")
    _wait_inhibited(alertmanager, "SynthmonProbeSuccessRatioLow")
    assert trigger["_path"] == "/v2/enqueue"
    assert trigger["routing_key"] == "synthmon-e2e-routing-key-0123456789"
    assert trigger["payload"]["summary"] == summary
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["class"] == name
    assert trigger["payload"]["component"] == "ws-golden-path"
    details = trigger["payload"]["custom_details"]
    assert details["target"] == PROBE_LABELS["target"]
    assert details["runbook_url"].endswith(f"/docs/runbooks/{name}.md")
    assert any(link["href"].endswith(f"{name}.md") for link in trigger.get("links", []))

    # The probe recovers: Prometheus resolves every alert of the probe at the same
    # evaluation. Inhibited ones first: Alertmanager stores a batch one alert at a time and
    # a flush (every second here) in between could see a target without its source.
    now = datetime.now(UTC)
    post_alerts(alertmanager, [
        _alert("SynthmonProbeSuccessRatioLow", "ticket", "ratio low", starts=t0, ends=now),
        _alert("SynthmonProbeFailing", "page", "Probe ws-golden-path is failing",
               starts=t0, ends=now),
        _alert(name, "page", summary, starts=t0, ends=now),
    ])
    resolve = pagerduty.wait_for(lambda e: e.get("event_action") == "resolve")
    assert resolve["dedup_key"] == trigger["dedup_key"]

    events, hooks = _barrier(alertmanager, pagerduty, tickets)  # nothing else arrived
    assert [e["event_action"] for e in events] == ["trigger", "resolve"], events
    assert all(e["payload"]["class"] == name for e in events if "payload" in e), events
    assert not any("ProbeFailing" in str(e) for e in events)
    assert hooks == []  # the ticket for a paging probe is inhibited too


def test_ticket_goes_to_the_webhook_not_pagerduty(stack) -> None:  # type: ignore[no-untyped-def]
    alertmanager, pagerduty, tickets = stack
    post_alerts(alertmanager, [
        _alert("SynthmonTLSCertExpiringSoon", "ticket", "TLS certificate expires in 9d",
               starts=datetime.now(UTC), probe="api-health", type="http", target="https://staging.example.com/api/health"),
    ])
    hook = tickets.wait_for(lambda e: e.get("status") == "firing")
    assert hook["_path"] == "/hook"
    assert hook["commonLabels"]["alertname"] == "SynthmonTLSCertExpiringSoon"
    pages, _ = _barrier(alertmanager, pagerduty, tickets)
    assert pages == []


def test_route_missing_pages_instead_of_the_403(stack) -> None:  # type: ignore[no-untyped-def]
    """The incident: 403 on the primary path while /ws accepts. One page per probe, the
    route-missing diagnosis, whose summary names the probe and the 403."""
    alertmanager, pagerduty, tickets = stack
    t0 = datetime.now(UTC)
    summary = _rendered_summary("SynthmonWebSocketRouteLikelyMissing")
    assert "ws-golden-path" in summary and "HTTP 403" in summary  # the rule's own words
    # The inhibiting page first, as Prometheus sends it (its `for:` is shorter): the
    # inhibitor learns of a new alert asynchronously, and on a loaded machine a target
    # posted in the same batch could be flushed before it had.
    post_alerts(alertmanager, [
        _alert("SynthmonWebSocketRouteLikelyMissing", "page", summary, starts=t0)])
    trigger = pagerduty.wait_for(lambda e: e.get("event_action") == "trigger")
    post_alerts(alertmanager, [
        _alert("SynthmonWebSocketHandshakeForbidden", "page", "handshake 403", starts=t0),
        _alert("SynthmonProbeFailing", "page", "failing", starts=t0),
    ])
    assert trigger["payload"]["summary"] == summary
    _wait_inhibited(alertmanager, "SynthmonWebSocketHandshakeForbidden")
    _wait_inhibited(alertmanager, "SynthmonProbeFailing")
    pages, _ = _barrier(alertmanager, pagerduty, tickets)
    assert [e["payload"]["class"] for e in pages] == ["SynthmonWebSocketRouteLikelyMissing"]


def test_a_page_names_firing_alerts_only(stack) -> None:  # type: ignore[no-untyped-def]
    """One incident per cause keeps the group's resolved alerts until its next notification:
    a page about what fires now must not carry them. Three probes page, two of them
    recover, a fourth starts failing: its page says "+1 more firing" (not "+3", which counted
    the resolved ones and the first), and names the two that fire, not the two that healed.
    The resolve that ends the incident carries what recovered."""
    alertmanager, pagerduty, _ = stack
    name = "SynthmonWebSocketNotUpgraded"
    t0 = datetime.now(UTC)

    def alert(probe: str, ends: datetime | None = None) -> dict[str, Any]:
        return _alert(name, "page", f"WebSocket probe {probe}: answered 200", starts=t0,
                      ends=ends, probe=probe)

    post_alerts(alertmanager, [alert(p) for p in ("p1", "p2", "p3")])
    first = pagerduty.wait_for(lambda e: e.get("event_action") == "trigger"
                               and e["payload"]["custom_details"]["firing"] == "3")
    assert first["payload"]["summary"].endswith("(+2 more firing in this incident)")
    healed = datetime.now(UTC)
    post_alerts(alertmanager, [alert("p2", healed), alert("p3", healed)])
    post_alerts(alertmanager, [alert("p4")])
    update = pagerduty.wait_for(
        lambda e: e.get("event_action") == "trigger" and "p4" in json.dumps(e))
    details = update["payload"]["custom_details"]
    assert update["dedup_key"] == first["dedup_key"]
    assert details["firing"] == "2"
    assert update["payload"]["summary"].endswith("(+1 more firing in this incident)"), update
    assert "p2" not in details["summaries"] and "p3" not in details["summaries"], details
    assert details["probes"].split("; ")[:2] == ["p1", "p4"], details
    gone = datetime.now(UTC)
    post_alerts(alertmanager, [alert("p1", gone), alert("p4", gone)])
    resolve = pagerduty.wait_for(lambda e: e.get("event_action") == "resolve")
    assert resolve["dedup_key"] == first["dedup_key"]
    assert resolve["payload"]["summary"].startswith("resolved: WebSocket probe ")


def test_a_flow_stopped_by_the_websockets_cause_is_held_back(stack) -> None:  # type: ignore[no-untyped-def]
    """The WebSocket probes' page is out (synthmon runs the flow after them); the flow,
    stopped at its WebSocket step the same way in the same environment and location, does
    not open a second incident. A flow stopped elsewhere in the suite, or the same way in
    another location, still pages."""
    alertmanager, pagerduty, tickets = stack
    t0 = datetime.now(UTC)
    name = "SynthmonWebSocketNotUpgraded"
    post_alerts(alertmanager, [_alert(name, "page", _rendered_summary(name), starts=t0,
                                      location="eu-west")])
    pagerduty.wait_for(lambda e: e.get("event_action") == "trigger")
    flow = {"probe": "e2e-chat", "type": "flow", "target": "https://staging.example.com/auth/login"}
    post_alerts(alertmanager, [
        _alert("SynthmonFlowStepFailing", "page", "flow at chat: not_upgraded", starts=t0,
               step="chat", outcome="not_upgraded", location="eu-west", **flow),
    ])
    _wait_inhibited(alertmanager, "SynthmonFlowStepFailing")
    events, _ = _barrier(alertmanager, pagerduty, tickets)
    assert {e["payload"]["class"] for e in events} == {name}, events

    post_alerts(alertmanager, [
        _alert("SynthmonFlowStepFailing", "page", "flow at create-thread: unexpected_status",
               starts=t0, step="create-thread", outcome="unexpected_status",
               location="eu-west", **flow),
        _alert("SynthmonFlowStepFailing", "page", "flow at chat elsewhere: not_upgraded",
               starts=t0, step="chat", outcome="not_upgraded", location="us-east", **flow),
    ])
    flow_page = pagerduty.wait_for(lambda e: e.get("event_action") == "trigger"
                                   and e["payload"]["class"] == "SynthmonFlowStepFailing")
    assert "flow at chat: not_upgraded" not in json.dumps(flow_page)
    assert flow_page["payload"]["custom_details"]["firing"] == "2"
