"""End to end: each page alert about a target becomes ONE PagerDuty incident under its own
name, within the 2-minute budget counted from the ONSET, at the shipped settings
time-compressed; a blip never pages; two locations quorum.

One stack for the whole module (tests/alerting/stack.py): two locations, each a staging
simulator and a daemon running the shipped probes.yaml with --external-url; the real
Prometheus and Alertmanager with the shipped files; PagerDuty's Events API v2 and the
ticket webhook as local receivers. Every duration of the alerting path is the shipped one
divided by ``FACTOR`` (the probe timeout aside, see ``scaled_probe_env``), so the budget of
the issue, at most 120 s from the onset to the PagerDuty trigger and from healing to the
resolve, is ``120 / FACTOR`` here; what the probes' attempts themselves took (the
target's answers) is counted uncompressed. Every regression is switched on just after the
run of the probe it names has answered: that probe's next run is a whole interval away,
the worst case of that hop. Measured times go to tests/artifacts/e2e-alerting-times.json.

Timing: nothing waits for a fixed time except the quiet periods in which nothing may
happen; every other wait polls with a generous deadline. Under a loaded machine the
budget holds because the compressed hops are still long compared with the stack's own
delays (a scrape every 0.5 s, a rule evaluation every 0.5 s).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import ROOT, http_get

from .dashboard_queries import dashboard_queries, variable_queries
from .stack import (
    FLOW_PAGE,
    ROUTING_KEY,
    SCENARIOS,
    Scenario,
    Stack,
    alerting_stack,
    is_trigger,
    probe_summaries,
    wait_until,
)
from .support import ALERTMANAGER, ALERTS, DASHBOARD, load_yaml

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "tests" / "artifacts"
# Real seconds divided by this. 20: a 60 s interval is 3 s, the 2-minute budget 6 s.
FACTOR = float(os.environ.get("SYNTHMON_E2E_FACTOR", "20"))
BUDGET = 120.0 / FACTOR
# How long to watch for a page that must not come, once the failure is visible in
# Prometheus: 90 s real, more than scrape + evaluation + group_wait.
NO_PAGE_WATCH = 0.75 * BUDGET
# Generous bounds for waits that are not the budget under test.
STARTUP_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0

# Panels that cannot have data against the plain-HTTP simulator: the daemon exports
# probe_ssl_earliest_cert_expiry only for probes that completed a TLS handshake.
NO_DATA_WITHOUT_TLS = ("probe_ssl_earliest_cert_expiry",)

TIMES: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with alerting_stack(tmp_path_factory.mktemp("e2e"), FACTOR,
                        startup_timeout=STARTUP_TIMEOUT) as running:
        assert running.probes >= 10, "the shipped probes.yaml"
        yield running


def _sleep_until_just_after_the_next_run(stack: Stack, key: str) -> float:
    """The onset that waits longest for the probe's next run: just after its run has had
    its answer (0.05 s compressed, 1 s real). Returns the onset's wall-clock time."""
    return stack.sleep_until_just_after_the_next_run(key, 0.05)


def real_seconds(compressed: float, attempts: float) -> float:
    """A compressed delay scaled back to real seconds. The time the probe attempts
    themselves took is what the target answered (plus the probes' own fixed waits, like
    the 2 s a negative probe gives the server to refuse after accepting): not a configured
    duration, so not compressed, and counted as it is."""
    return attempts + (compressed - attempts) * FACTOR


def _record(name: str, **times: Any) -> None:
    TIMES[name] = {**times, "factor": FACTOR, "budget_seconds": BUDGET}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "e2e-alerting-times.json").write_text(json.dumps(TIMES, indent=2) + "\n")


def _fired(stack: Stack, alertname: str, since: float) -> list[dict[str, str]]:
    """Every ALERTS series of ``alertname`` Prometheus had since ``since`` (wall clock)."""
    window = f"{int(time.time() - since) + 1}s"
    return [r["metric"] for r in stack.vector(
        f'max_over_time(ALERTS{{alertname="{alertname}"}}[{window}])')]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.mode for s in SCENARIOS])
def test_e2e_every_page_once_under_its_name_within_two_minutes_of_the_onset(
        stack: Stack, scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    stack.wait_quiet(f"before {scenario.mode}", WAIT_TIMEOUT)
    start = len(stack.pagerduty.snapshot())
    onset = _sleep_until_just_after_the_next_run(stack, scenario.probe)
    stack.set_mode(scenario.mode)
    try:
        trigger = stack.pagerduty.wait_for(
            lambda e: is_trigger(e, scenario.alertname), timeout=WAIT_TIMEOUT, start=start)
        named = stack.pagerduty.wait_for(
            lambda e: is_trigger(e, scenario.alertname)
            and bool(probe_summaries([e], scenario.probe)), timeout=WAIT_TIMEOUT, start=start)
        # Both locations confirmed it (the quorum) and page: the probe's alerts from both.
        wait_until(lambda: all(
            any(f"({loc.name})" in p for p in _probes_named(stack, start, scenario.probe))
            for loc in stack.locations), WAIT_TIMEOUT,
            f"{scenario.mode}: {scenario.probe} not paged from every location",
            lambda: json.dumps(stack.pagerduty.snapshot()[start:], indent=1)[-4000:])
        firing = {(r["metric"]["alertname"], r["metric"]["location"]): r["metric"]
                  for r in stack.vector('ALERTS{alertstate="firing"}')
                  if _key(r["metric"]) == scenario.probe}
        if scenario.flow_step is not None:  # the flow broke too, before healing
            stopped = (f'probe_flow_failed_step{{probe="e2e-chat", step="{scenario.flow_step}"}}'
                       ' == 1 and on(probe, instance) probe_success == 0')
            wait_until(lambda: len(stack.vector(stopped)) == len(stack.locations),
                       WAIT_TIMEOUT, f"{scenario.mode}: the flow did not stop at "
                       f"{scenario.flow_step} in every location")
    finally:
        healed = time.time()
        stack.set_mode("healthy")
    first = stack.first_failing_run(onset, trigger["_received_wall"])
    # The onset -> the incident's first page, and -> the first page naming the probe:
    # compressed, and in real seconds with the attempts' own durations counted as they are.
    to_trigger = trigger["_received_wall"] - onset
    to_named = named["_received_wall"] - onset
    own = stack.first_failing_run(onset, named["_received_wall"],
                                  probe_key=scenario.probe).attempts_seconds
    trigger_real = real_seconds(to_trigger, first.attempts_seconds)
    named_real = real_seconds(to_named, own)

    resolve = stack.pagerduty.wait_for(
        lambda e: e.get("event_action") == "resolve" and e.get("dedup_key") == trigger["dedup_key"],
        timeout=WAIT_TIMEOUT, start=start)
    to_resolve = resolve["_received_wall"] - healed
    stack.wait_quiet(f"after {scenario.mode}", WAIT_TIMEOUT)

    # ONE incident under its own name: every trigger (the first, and updates as more probes
    # and locations join) and the resolve carry one dedup_key, and no other alert paged;
    # the generic page (and for the route, the bare 403) never even fired in Prometheus.
    events = stack.pagerduty.snapshot()[start:]
    # The flow stopped at its WebSocket step by the same cause pages nothing of its own:
    # synthmon ran it after the WebSocket probes, and their page holds it back.
    assert {e["dedup_key"] for e in events} == {trigger["dedup_key"]}, _digest(events)
    assert {e["payload"]["class"] for e in events} == {scenario.alertname}, _digest(events)
    if scenario.flow_step is not None:
        assert _fired(stack, FLOW_PAGE, onset) == [], scenario.mode  # not even in Prometheus
    for other in ("SynthmonProbeFailing", "SynthmonWebSocketHandshakeForbidden"):
        if other != scenario.alertname:
            assert [a for a in _fired(stack, other, onset)
                    if _key(a) == scenario.probe] == [], (other, scenario.mode)
    for loc in stack.locations:  # both locations confirmed it: the quorum was met
        alert = firing[(scenario.alertname, loc.name)]
        assert alert["severity"] == "page"
        for key, value in scenario.labels:
            assert alert[key] == value

    _check_texts(stack, scenario, trigger, events)
    _record(scenario.mode, alert=scenario.alertname, probe=scenario.probe,
            first_failing_run=f"{first.probe} ({first.location})",
            onset_to_trigger_seconds=round(to_trigger, 2),
            onset_to_probe_named_seconds=round(to_named, 2),
            heal_to_resolve_seconds=round(to_resolve, 2),
            onset_to_trigger_real_seconds=round(trigger_real, 1),
            onset_to_probe_named_real_seconds=round(named_real, 1),
            heal_to_resolve_real_seconds=round(to_resolve * FACTOR, 1),
            triggers=sum(is_trigger(e) for e in events),
            title=trigger["payload"]["summary"])
    with capsys.disabled():
        print(f"\n[e2e x{FACTOR:g}] {scenario.mode}: onset -> trigger {to_trigger:.2f}s "
              f"(= {trigger_real:.0f}s real), -> {scenario.probe} named {to_named:.2f}s "
              f"(= {named_real:.0f}s real), heal -> resolve {to_resolve:.2f}s "
              f"(= {to_resolve * FACTOR:.0f}s real); budget {BUDGET:.1f}s")
    assert trigger_real <= 120, f"{scenario.mode}: trigger {to_trigger:.2f}s after the onset"
    assert named_real <= 120, f"{scenario.mode}: {scenario.probe} named {to_named:.2f}s after"
    assert to_resolve <= BUDGET, f"{scenario.mode}: resolve after {to_resolve:.2f}s"


def _key(labels: dict[str, str]) -> str:
    variant = labels.get("variant")
    return f"{labels['probe']}@{variant}" if variant else labels["probe"]


def _probes_named(stack: Stack, start: int, key: str) -> list[str]:
    return [p for e in stack.pagerduty.snapshot()[start:] if is_trigger(e)
            for p in e["payload"]["custom_details"]["probes"].split("; ")
            if p.split(" (")[0] == key]


def _digest(events: list[dict[str, Any]]) -> str:
    return json.dumps(
        [(e["dedup_key"][:8], e["event_action"], e["payload"]["class"],
          e["payload"]["custom_details"]["probes"], e["payload"]["custom_details"]["firing"],
          e["payload"]["custom_details"]["resolved"]) for e in events], indent=1)


def _check_texts(stack: Stack, scenario: Scenario, trigger: dict[str, Any],
                 events: list[dict[str, Any]]) -> None:
    """What the person paged reads: the incident's title (the first firing alert's summary,
    "+N more firing" counting firing alerts only), the summary of every firing alert and
    nothing of resolved ones, the runbook and the probe's page on the synthmon that saw it."""
    payload = trigger["payload"]
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["_path"] == "/v2/enqueue"
    assert payload["severity"] == "critical"  # severity=page, as alertmanager.yml maps it
    details = payload["custom_details"]
    assert details["alertname"] == scenario.alertname
    assert details["runbook_url"].endswith(f"/docs/runbooks/{scenario.alertname}.md")
    assert (ROOT / "docs" / "runbooks" / f"{scenario.alertname}.md").is_file()
    for event in (e for e in events if is_trigger(e)):
        d = event["payload"]["custom_details"]
        summaries = [s for s in d["summaries"].split("; ") if s]
        firing = int(d["firing"])
        assert len(summaries) == firing == len([p for p in d["probes"].split("; ") if p])
        title = event["payload"]["summary"]
        assert title.split(" (+")[0] == summaries[0]
        more = re.search(r"\(\+(\d+) more firing in this incident\)$", title)
        assert (int(more.group(1)) if more else 0) == firing - 1, (title, firing)
        links = {link["text"]: link["href"] for link in event.get("links", [])}
        assert links["runbook"] == d["runbook_url"]
        evidence = links["evidence (synthmon)"]
        assert evidence == d["evidence_url"]
        daemon = urllib.parse.urlsplit(evidence)
        assert any(loc.daemon.url == f"{daemon.scheme}://{daemon.netloc}"
                   for loc in stack.locations), evidence
        status, page = http_get(evidence)
        assert status == 200 and "<html" in page.lower(), evidence
    mine = probe_summaries(events, scenario.probe)
    assert mine, _digest(events)
    name, _, variant = scenario.probe.partition("@")
    for text in mine:
        assert re.search(rf"(?i)probe {re.escape(name)}", text), text
        if variant:
            assert f"{name}@{variant}" in text, text
        target = urllib.parse.urlsplit(stack.specs[scenario.probe].spec.url).path
        assert target in text, (target, text)
        assert re.search(r"\(from (eu-west|us-east)\)", text), text
        for piece in scenario.summary_has:
            assert piece in text, (piece, text)
        # Joined, never run together or repeated: "auth_not_enforcedauth_not_enforced"
        assert not re.search(r"([a-z_]{4,})\1", text), text


def test_e2e_a_blip_shorter_than_the_retry_delay_never_pages(stack: Stack) -> None:
    """The primary route breaks for 60% of the retry delay, timed to the runs of the probes
    of that path (their phases are known), until failed attempts have been retried
    successfully (so blips did hit runs); then as long as a page would take. Prometheus
    never saw a failure and PagerDuty got nothing."""
    stack.wait_quiet("before the blips", WAIT_TIMEOUT)
    start = len(stack.pagerduty.snapshot())
    healed_before = stack.retries_healed()
    began = time.time()
    blips = 0
    while stack.retries_healed() < healed_before + 2 and blips < 10:
        stack.sleep_until_just_before_the_next_run(
            ("ws-golden-path", "ws-subprotocol-only")[blips % 2])
        stack.set_mode("ws_route_missing")
        time.sleep(0.6 * stack.retry_delay)
        stack.set_mode("healthy")
        blips += 1
        time.sleep(2 * stack.retry_delay)  # the retries of the attempts it hit are done
    assert stack.retries_healed() >= healed_before + 2, f"no blip hit a run in {blips} blips"
    time.sleep(NO_PAGE_WATCH)  # as long as a page of the last blip could take
    # since the blips began, not a second earlier (the scenario before may have failed then)
    window = f"{int(time.time() - began)}s"
    lowest = stack.vector(f'min_over_time(probe_success{{job="synthmon"}}[{window}])')
    assert lowest and all(float(r["value"][1]) == 1.0 for r in lowest), [
        (r["metric"]["probe"], r["metric"].get("location")) for r in lowest
        if float(r["value"][1]) != 1.0]
    assert stack.pagerduty.snapshot()[start:] == []
    _record("blip", blips=blips, blip_seconds=0.6 * stack.retry_delay,
            retries_healed=stack.retries_healed() - healed_before, pages=0)


def test_e2e_quorum_one_location_does_not_page_two_do(stack: Stack,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The upgrade answered with 200 JSON from one location only: the failure is confirmed
    there (Prometheus sees it, the ticket's condition holds) and nothing pages for as long
    as a page would take. Then the second location fails too: one incident, both
    locations, within the budget from that second onset."""
    stack.wait_quiet("before the quorum test", WAIT_TIMEOUT)
    first, second = stack.locations
    start = len(stack.pagerduty.snapshot())
    _sleep_until_just_after_the_next_run(stack, "ws-golden-path")
    stack.set_mode("upgrade_json", only=first.name)
    try:
        failing = ('probe_websocket_status_code{probe="ws-golden-path", '
                   f'location="{first.name}"}} == 200')
        wait_until(lambda: stack.vector(failing), WAIT_TIMEOUT,
                   f"{first.name}: the failure never reached Prometheus")
        seen = time.monotonic()
        one = f'ALERTS{{alertname="SynthmonProbeFailingFromOneLocation", location="{first.name}"}}'
        wait_until(lambda: stack.vector(one), WAIT_TIMEOUT,
                   "the one-location ticket's condition does not hold")
        time.sleep(max(0.0, NO_PAGE_WATCH - (time.monotonic() - seen)))
        assert stack.vector('ALERTS{alertname="SynthmonWebSocketNotUpgraded"}') == []
        assert stack.pagerduty.snapshot()[start:] == []

        onset = _sleep_until_just_after_the_next_run(stack, "ws-golden-path")
        stack.set_mode("upgrade_json", only=second.name)
        trigger = stack.pagerduty.wait_for(
            lambda e: is_trigger(e, "SynthmonWebSocketNotUpgraded"), timeout=WAIT_TIMEOUT,
            start=start)
        both = [f"ws-golden-path ({loc.name})" for loc in stack.locations]
        stack.pagerduty.wait_for(
            lambda e: e.get("dedup_key") == trigger["dedup_key"] and all(
                b in e["payload"]["custom_details"]["probes"] for b in both),
            timeout=WAIT_TIMEOUT, start=start)
    finally:
        stack.set_mode("healthy")
    stack.pagerduty.wait_for(
        lambda e: e.get("event_action") == "resolve" and e.get("dedup_key") == trigger["dedup_key"],
        timeout=WAIT_TIMEOUT, start=start)
    # the second location's first failing run: the one that completed the quorum
    run = stack.first_failing_run(onset, trigger["_received_wall"], [second])
    to_trigger = trigger["_received_wall"] - onset
    trigger_real = real_seconds(to_trigger, run.attempts_seconds)
    stack.wait_quiet("after the quorum test", WAIT_TIMEOUT)
    # The shipped flow stops at its WebSocket step too, and pages nothing of its own.
    assert {e["dedup_key"] for e in stack.pagerduty.snapshot()[start:]} == {trigger["dedup_key"]}
    _record("quorum", second_location_onset_to_trigger_seconds=round(to_trigger, 2),
            second_location_onset_to_trigger_real_seconds=round(trigger_real, 1))
    with capsys.disabled():
        print(f"\n[e2e x{FACTOR:g}] quorum: one location for {NO_PAGE_WATCH:.1f}s: no page; second "
              f"location's onset -> trigger {to_trigger:.2f}s (= {trigger_real:.0f}s real)")
    assert trigger_real <= 120


def _alertnames(matchers: list[str]) -> list[str]:
    """The alert names an Alertmanager matcher list selects by ``alertname`` (= or =~)."""
    names: list[str] = []
    for matcher in matchers:
        m = re.fullmatch(r'\s*alertname\s*(=~?)\s*"([^"]*)"\s*', matcher)
        if m:
            names += m.group(2).split("|") if m.group(1) == "=~" else [m.group(2)]
    return names


def test_e2e_inhibited_pages_resolve_before_their_inhibitors() -> None:
    """The rule order the recovery depends on: for every inhibit rule that names the
    alerts it inhibits, each of those is in the same rule group as its inhibitors and comes
    first, so Prometheus resolves it no later than them (groups run at independent offsets;
    within one, alerts are sent rule by rule in file order). Otherwise Alertmanager pages
    the inhibited alert as soon as its inhibitor resolves."""
    position = {rule["alert"]: (group["name"], i)
                for group in load_yaml(ALERTS)["groups"]
                for i, rule in enumerate(group["rules"]) if "alert" in rule}
    checked = 0
    for inhibit in load_yaml(ALERTMANAGER)["inhibit_rules"]:
        targets = _alertnames(inhibit.get("target_matchers", []))
        for target in targets:
            for source in _alertnames(inhibit.get("source_matchers", [])):
                assert source in position and target in position, (source, target)
                assert position[target][0] == position[source][0], (
                    f"{target} is inhibited by {source} but in another rule group")
                assert position[target][1] < position[source][1], (
                    f"{target} must come before its inhibitor {source}")
                checked += 1
    assert checked >= 9


def test_e2e_scenarios_cover_every_page_about_a_target() -> None:
    """Every page of the rule group about a target's regression has a scenario here (and
    so in bench/alert_timeline.py), the security matrix's variants included."""
    group = next(g for g in load_yaml(ALERTS)["groups"] if g["name"] == "synthmon-probe-failures")
    assert {r["alert"] for r in group["rules"]} == {s.alertname for s in SCENARIOS}
    assert any("@" in s.probe and s.alertname == "SynthmonAuthNotEnforced" for s in SCENARIOS)
    assert any("@" in s.probe and s.alertname == "SynthmonProbeFailing" for s in SCENARIOS)


# --------------------------------------------------------------------------- dashboard

def test_e2e_every_dashboard_query_returns_data(stack: Stack) -> None:
    """Every panel target of the Grafana dashboard (and every variable query), with the
    variables resolved as "All", parses in the real Prometheus and returns data."""
    queries = dashboard_queries(DASHBOARD, rate_interval="1m") + variable_queries(DASHBOARD)
    assert len(queries) >= 10
    without_tls = [q for q in queries if any(m in q for m in NO_DATA_WITHOUT_TLS)]
    with_data = [q for q in queries if q not in without_tls]
    assert without_tls, "the dashboard has a certificate expiry panel"

    for promql in without_tls:
        # Parses and evaluates; no data because the simulator speaks plain HTTP/ws, so no
        # probe has a certificate and probe_ssl_earliest_cert_expiry is never exported.
        answer = stack.query(promql)
        assert answer.get("status") == "success", (promql, answer)

    # Histograms need two scrapes inside their rate window; poll instead of guessing.
    missing: list[str] = list(with_data)

    def all_have_data() -> bool:
        for promql in list(missing):
            answer = stack.query(promql)
            assert answer.get("status") == "success", (promql, answer)
            if answer["data"]["result"]:
                missing.remove(promql)
        return not missing

    wait_until(all_have_data, 30, "dashboard queries without data",
               lambda: json.dumps(missing, indent=1))
