"""End to end: a WebSocket regression becomes a PagerDuty incident, and the dashboard works.

One stack for the whole module (starting Prometheus alone takes ~5 s before its first
scrape): the staging simulator, the daemon running the shipped probes.yaml every second,
the real Prometheus (1 s scrape and evaluation) loading deploy/prometheus/alerts.yml with
only the ``for:`` durations shortened (a minute becomes a second), and the real
Alertmanager loading deploy/alertmanager/alertmanager.yml with its PagerDuty ``url`` and
ticket webhook pointed at local :class:`EventSink` receivers. Everything on loopback.

For each regression of the incident the simulator is flipped into its mode; PagerDuty must
get a ``trigger`` of the specific alert whose summary says what broke, then, once the
simulator is healthy again, a ``resolve`` with the same ``dedup_key``. The time from the
flip to the trigger is printed (and written to tests/artifacts/e2e-alerting-times.json);
the README's "Alerts" section reports it. Then every panel query of the Grafana dashboard
runs against this Prometheus.

Timing: nothing waits for a fixed time; every wait polls for content with a generous
deadline, so a slow machine makes the test slower, not flaky.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import (
    ROOT,
    DaemonProc,
    SimProc,
    http_get,
    simulator_process,
    start_daemon,
)

from .dashboard_queries import dashboard_queries, variable_queries
from .support import (
    ALERTMANAGER,
    ALERTS,
    DASHBOARD,
    EventSink,
    load_yaml,
    running_alertmanager,
    running_prometheus,
    write_fast_rules,
    write_test_alertmanager_config,
    write_test_prometheus_config,
)

pytestmark = pytest.mark.e2e

PROBES = ROOT / "probes.yaml"
ARTIFACTS = ROOT / "tests" / "artifacts"
ROUTING_KEY = "synthmon-e2e-routing-key-0123456789"

# Generous bounds: the expected path is ~1 s probe interval + 1 s scrape + 1-3 s rule
# evaluations with the shortened `for:` + 1 s group_wait, i.e. well under 10 s.
STARTUP_TIMEOUT = 60.0
TRIGGER_TIMEOUT = 30.0
RESOLVE_TIMEOUT = 30.0
QUIET_TIMEOUT = 30.0

# Panels that cannot have data against the plain-HTTP simulator: the daemon exports
# probe_ssl_earliest_cert_expiry only for probes that completed a TLS handshake.
NO_DATA_WITHOUT_TLS = ("probe_ssl_earliest_cert_expiry",)

# Alertmanager re-evaluates every group this often: far below the 1 s rule evaluation, so
# an inhibited page that resolves after its inhibitor (rule order, see alerts.yml) is sent
# in between every time instead of once in a while.
GROUP_INTERVAL = "100ms"

TIMES: dict[str, dict[str, Any]] = {}


# --------------------------------------------------------------------------- the stack

@dataclass
class Stack:
    sim: SimProc
    daemon: DaemonProc
    prometheus: str
    alertmanager: str
    pagerduty: EventSink
    tickets: EventSink
    probes: int





@contextlib.contextmanager
def _daemon(sim: SimProc, workdir: Path) -> Iterator[DaemonProc]:
    env = sim.env(PROBE_INTERVAL="1s", PROBE_TIMEOUT="0.9s")
    daemon = start_daemon(PROBES, env, workdir)
    try:
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=5)


def _hostport(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def query(prometheus: str, promql: str) -> dict[str, Any]:
    """The JSON answer of /api/v1/query (errors included: a 400 carries the parse error)."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read() or b"{}")
        answer.setdefault("status", f"http {exc.code}")
    return answer


def vector(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = query(prometheus, promql)
    assert answer.get("status") == "success", (promql, answer)
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               detail: Callable[[], object] = lambda: "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} (waited {timeout:.0f}s) {detail()}", pytrace=False)
        time.sleep(0.2)


def _am_alerts(stack: Stack) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{stack.alertmanager}/api/v2/alerts", timeout=10) as response:
        alerts: list[dict[str, Any]] = json.loads(response.read())
    return alerts


def _inhibited(stack: Stack, alertname: str, probe: str) -> list[str]:
    """The alerts inhibiting ``alertname`` for ``probe`` in Alertmanager (empty if none)."""
    for alert in _am_alerts(stack):
        labels = alert["labels"]
        if labels.get("alertname") == alertname and labels.get("probe") == probe:
            status = alert["status"]
            if status["state"] == "suppressed":
                return list(status["inhibitedBy"])
    return []


def _page_alerts(stack: Stack) -> list[dict[str, Any]]:
    """Page alerts Prometheus has pending or firing (ALERTS)."""
    return vector(stack.prometheus, 'ALERTS{severity="page"}')


def _wait_quiet(stack: Stack, what: str) -> None:
    """Every probe succeeds in Prometheus and no page alert is pending or firing."""
    def quiet() -> bool:
        ok = vector(stack.prometheus, 'probe_success{job="synthmon"} == 1')
        return len(ok) == stack.probes and not _page_alerts(stack)

    def detail() -> str:
        failing = vector(stack.prometheus, 'synthmon_probe_outcome{outcome!="success"} == 1')
        return (f"failing: {[(r['metric']['probe'], r['metric']['outcome']) for r in failing]}; "
                f"page alerts: {[r['metric'] for r in _page_alerts(stack)]}\n"
                f"daemon log tail:\n{stack.daemon.logs()[-3000:]}")

    wait_until(quiet, QUIET_TIMEOUT if what != "startup" else STARTUP_TIMEOUT,
               f"{what}: the stack did not settle healthy", detail)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("e2e")
    with contextlib.ExitStack() as stack_:
        sim = stack_.enter_context(simulator_process(workdir))
        daemon = stack_.enter_context(_daemon(sim, workdir))
        pagerduty = stack_.enter_context(EventSink())
        tickets = stack_.enter_context(EventSink())
        am_config = write_test_alertmanager_config(
            workdir / "alertmanager", pagerduty_url=f"{pagerduty.url}/v2/enqueue",
            webhook_url=f"{tickets.url}/hook", routing_key=ROUTING_KEY,
            group_interval=GROUP_INTERVAL)
        alertmanager = stack_.enter_context(running_alertmanager(am_config, workdir))
        rules = write_fast_rules(workdir / "rules")
        prom_config = write_test_prometheus_config(
            workdir / "prometheus", synthmon_targets=[_hostport(daemon.url)],
            alertmanager_target=_hostport(alertmanager), rule_files=[rules])
        prometheus = stack_.enter_context(running_prometheus(prom_config, workdir))
        probes = len(json.loads(http_get(daemon.url + "/api/v1/results")[1])["probes"])
        assert probes >= 10, "the shipped probes.yaml"
        result = Stack(sim, daemon, prometheus, alertmanager, pagerduty, tickets, probes)
        _wait_quiet(result, "startup")
        yield result


# --------------------------------------------------------------------------- scenarios

@dataclass(frozen=True)
class Scenario:
    mode: str             # simulator mode
    alertname: str        # the page PagerDuty must get
    probe: str            # for this probe
    summary_has: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()  # extra labels the firing alert must carry
    # pages that fire too for the probe and must be held back by Alertmanager
    inhibited: tuple[str, ...] = ("SynthmonProbeFailing",)


SCENARIOS = [
    # The incident: 403 on /api/v1/websocket while /ws accepts the same token. The route
    # diagnosis pages; the bare 403 alert and the generic failure are inhibited.
    Scenario("ws_route_missing", "SynthmonWebSocketRouteLikelyMissing", "ws-golden-path",
             ("ws-golden-path", "HTTP 403", "/api/v1/websocket", "alternate"),
             inhibited=("SynthmonWebSocketHandshakeForbidden", "SynthmonProbeFailing")),
    # The upgrade answered with a plain 200 and a JSON body.
    Scenario("upgrade_json", "SynthmonWebSocketNotUpgraded", "ws-golden-path",
             ("ws-golden-path", "HTTP 200", "/api/v1/websocket", "instead of 101")),
    # The negative probe (a JWT signed with the wrong secret) got in: the security page.
    Scenario("auth_not_enforced", "SynthmonAuthNotEnforced", "ws-rejects-bad-token",
             ("SECURITY", "ws-rejects-bad-token", "/api/v1/websocket"),
             (("category", "security"),)),
]


def _is_page(event: dict[str, Any], action: str, alertname: str, probe: str) -> bool:
    payload = event.get("payload") or {}
    return (event.get("event_action") == action
            and payload.get("class") == alertname
            and payload.get("component") == probe)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.mode for s in SCENARIOS])
def test_e2e_regression_pages_and_resolves(stack: Stack, scenario: Scenario,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _wait_quiet(stack, f"before {scenario.mode}")
    start = len(stack.pagerduty.snapshot())
    stack.sim.set_mode(scenario.mode)
    flipped = time.monotonic()
    try:
        trigger = stack.pagerduty.wait_for(
            lambda e: _is_page(e, "trigger", scenario.alertname, scenario.probe),
            timeout=TRIGGER_TIMEOUT, start=start)
        # Keep the regression until the less specific pages (the generic
        # SynthmonProbeFailing has a longer `for:`) fire too and Alertmanager holds them
        # inhibited by the specific page, so the "one page per regression" check below is
        # not vacuous, on the way in and on the way out.
        for name in scenario.inhibited:
            wait_until(
                functools.partial(_inhibited, stack, name, scenario.probe), TRIGGER_TIMEOUT,
                f"{scenario.mode}: {name} not inhibited in Alertmanager for {scenario.probe}",
                lambda: json.dumps(_am_alerts(stack), indent=1))
        firing = {r["metric"]["alertname"]: r["metric"] for r in vector(
            stack.prometheus, f'ALERTS{{alertstate="firing", probe="{scenario.probe}"}}')}
    finally:
        stack.sim.set_mode("healthy")
    healed = time.monotonic()
    to_trigger = trigger["_received"] - flipped

    # What the person paged reads: the probe, the target and what was seen.
    payload = trigger["payload"]
    for text in scenario.summary_has:
        assert text in payload["summary"], (text, payload["summary"])
    assert payload["severity"] == "critical"  # severity=page, as alertmanager.yml maps it
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["_path"] == "/v2/enqueue"
    details = payload["custom_details"]
    assert details["alertname"] == scenario.alertname
    assert details["probe"] == scenario.probe
    assert details["target"] == f"{stack.sim.ws_url}/api/v1/websocket"
    assert details["runbook_url"].endswith(f"/docs/runbooks/{scenario.alertname}.md")
    assert (ROOT / "docs" / "runbooks" / f"{scenario.alertname}.md").is_file()
    assert firing[scenario.alertname]["severity"] == "page"
    for key, value in scenario.labels:
        assert firing[scenario.alertname][key] == value

    resolve = stack.pagerduty.wait_for(
        lambda e: e.get("event_action") == "resolve" and e.get("dedup_key") == trigger["dedup_key"],
        timeout=RESOLVE_TIMEOUT, start=start)
    to_resolve = resolve["_received"] - healed
    _wait_quiet(stack, f"after {scenario.mode}")

    # Every incident opened during the scenario (other probes broken by the same mode
    # page in their own group, flushed on their own timer) is closed again.
    def incidents() -> tuple[set[str], set[str]]:
        events = stack.pagerduty.snapshot()[start:]
        return ({e["dedup_key"] for e in events if e.get("event_action") == "trigger"},
                {e["dedup_key"] for e in events if e.get("event_action") == "resolve"})

    wait_until(lambda: incidents()[0] <= incidents()[1], RESOLVE_TIMEOUT,
               f"{scenario.mode}: incidents left open",
               lambda: json.dumps(stack.pagerduty.snapshot()[start:], indent=1))

    # One incident per regression and probe, while failing and while recovering: the
    # specific page inhibits the generic SynthmonProbeFailing (which did fire, see above)
    # and, for the route, the bare 403 page, of the same probe. Other probes broken by the
    # same mode page with the same specific alert.
    events = stack.pagerduty.snapshot()[start:]
    pages = sorted({(e["payload"]["class"], e["payload"]["component"])
                    for e in events if e.get("event_action") == "trigger"})
    assert {name for name, _ in pages} == {scenario.alertname}, pages

    TIMES[scenario.mode] = {
        "alert": scenario.alertname, "probe": scenario.probe,
        "flip_to_trigger_seconds": round(to_trigger, 2),
        "heal_to_resolve_seconds": round(to_resolve, 2),
        "pages": [f"{name} ({probe})" for name, probe in pages],
        "summary": payload["summary"],
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "e2e-alerting-times.json").write_text(json.dumps(TIMES, indent=2) + "\n")
    with capsys.disabled():
        print(f"\n[e2e] {scenario.mode}: flip->trigger {to_trigger:.1f}s "
              f"({scenario.alertname}, {scenario.probe}), heal->resolve {to_resolve:.1f}s; "
              f"pages: {', '.join(f'{n} ({p})' for n, p in pages)}")


def _alertnames(matchers: list[str]) -> list[str]:
    """The alert names an Alertmanager matcher list selects by ``alertname`` (= or =~)."""
    names: list[str] = []
    for matcher in matchers:
        m = re.fullmatch(r'\s*alertname\s*(=~?)\s*"([^"]*)"\s*', matcher)
        if m:
            names += m.group(2).split("|") if m.group(1) == "=~" else [m.group(2)]
    return names


def test_e2e_inhibited_pages_resolve_before_their_inhibitors() -> None:
    """The rule order the recovery above depends on: for every inhibit rule that names the
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
    assert checked >= 8


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
        answer = query(stack.prometheus, promql)
        assert answer.get("status") == "success", (promql, answer)

    # Histograms need two scrapes inside their rate window; poll instead of guessing.
    missing: list[str] = list(with_data)

    def all_have_data() -> bool:
        for promql in list(missing):
            answer = query(stack.prometheus, promql)
            assert answer.get("status") == "success", (promql, answer)
            if answer["data"]["result"]:
                missing.remove(promql)
        return not missing

    wait_until(all_have_data, 30, "dashboard queries without data",
               lambda: json.dumps(missing, indent=1))
