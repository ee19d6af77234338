"""The alerting stack as shipped, on loopback, at any speed: what the end-to-end test
(tests/alerting/test_e2e.py, time-compressed) and the real-time measurement
(bench/alert_timeline.py, at the shipped settings) both run.

Two locations (``synthmon run --location``), each a staging simulator and a daemon running
the shipped probes.yaml; the real Prometheus loading deploy/prometheus/alerts.yml and the
real Alertmanager loading deploy/alertmanager/alertmanager.yml, PagerDuty's Events API v2
and the ticket webhook being local :class:`~tests.alerting.support.EventSink` receivers.

``factor`` divides every duration of the alerting path, generated from the shipped files
(tests/alerting/support.py): the probe interval and retry delay (probes.yaml's defaults),
Prometheus's scrape and evaluation intervals (deploy/prometheus/prometheus.yml), every
``for:`` (alerts.yml), Alertmanager's timers (alertmanager.yml). ``factor=1`` is the
shipped settings themselves.

:data:`SCENARIOS` is the one list of page alerts about a target and the simulator mode
that causes each, with what its page must say.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import Probe, load_text
from monitor.scheduler import FOLLOWS, ROUND_SPREAD, next_run, rounds
from tests.support.servers import (
    ROOT,
    DaemonProc,
    SimProc,
    free_port,
    http_get,
    simulator_process,
    start_daemon,
)

from .support import (
    EventSink,
    failed_runs,
    running_alertmanager,
    running_prometheus,
    scaled_probe_env,
    stream_hold,
    write_fast_rules,
    write_scaled_prometheus_config,
    write_test_alertmanager_config,
)

PROBES = ROOT / "probes.yaml"
ROUTING_KEY = "synthmon-e2e-routing-key-0123456789"
LOCATIONS = ("eu-west", "us-east")


class StackError(AssertionError):
    """A wait of the stack that did not end as it must (fails a test, ends a measurement)."""


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               detail: Callable[[], object] = lambda: "", poll: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; raise with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"{what} (waited {timeout:.0f}s) {detail()}")
        time.sleep(poll)


@dataclass
class Location:
    name: str
    sim: SimProc
    daemon: DaemonProc


@dataclass(frozen=True)
class FailedRun:
    probe: str  # its key: probe or probe@variant
    location: str
    started_at: float  # wall clock: the start of its first attempt
    attempts_seconds: float  # how long its attempts themselves took (the target's answers)


@dataclass
class Stack:
    locations: list[Location]
    prometheus: str
    alertmanager: str
    pagerduty: EventSink
    tickets: EventSink
    probes: int  # per location (variants count one each)
    factor: float
    interval: float  # the probes' interval, scaled
    retry_delay: float
    specs: dict[str, Probe]  # the probes the daemons run, by key
    stream_hold: float  # how long the simulators hold a buffered stream

    def next_run(self, key: str, after: float) -> float:
        """When the daemons next run probe ``key``, at or after ``after`` (wall clock):
        every location in the same second, on the probe's phase (monitor.scheduler)."""
        return next_run(self.specs[key], after, rounds(self.specs.values()).get(key))

    # ------------------------------------------------------------------ the simulators

    def set_mode(self, mode: str, only: str | None = None) -> None:
        """Switch the simulators' mode; a buffered stream is held as long as suits the
        probes' timing (:func:`~tests.alerting.support.stream_hold`)."""
        for loc in self.locations:
            if only is None or loc.name == only:
                loc.sim.set_mode(mode, stream_hold=self.stream_hold)

    def sleep_until_just_before_the_next_run(self, probe: str, ahead: float = 0.05) -> None:
        """Wait until ``ahead`` seconds before the next run of probe (key) ``probe``."""
        at = self.next_run(probe, time.time() + 2 * ahead) - ahead
        time.sleep(max(0.0, at - time.time()))

    def sleep_until_just_after_the_next_run(self, probe: str, after: float) -> float:
        """Wait until ``after`` seconds past the start of the next run of the probe and of
        every probe of its round (their answers are in by then): the onset that waits
        longest for those probes' next runs. Returns the time of the onset (wall clock)."""
        at = self.next_run(probe, time.time() + ROUND_SPREAD + 0.2)
        in_round = rounds(self.specs.values())
        key = in_round.get(probe, "").removesuffix(FOLLOWS)
        # The round's probes, and those that follow it (the shipped flow) after their
        # first steps: an onset before the flow's WebSocket step would reach the flow
        # before the round's probes (README, "Alert timeline"). Counted as two spreads of a
        # round, which the flow's login and thread take well within.
        spread = min(ROUND_SPREAD, 0.05 * self.interval)
        # the round's runs of this interval: within 1.5 spreads before ``at`` (which may be
        # the flow's), never as far as the previous interval's
        last = max([at] + [self.next_run(k, at - 2 * spread - 0.01)
                           + (2 * spread if in_round[k].endswith(FOLLOWS) else 0.0)
                           for k in self.specs
                           if key and in_round.get(k, "").removesuffix(FOLLOWS) == key])
        time.sleep(max(0.0, last + after - time.time()))
        return time.time()

    # ------------------------------------------------------------------ the daemons

    def results(self, loc: Location) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(http_get(loc.daemon.url + "/api/v1/results")[1])
        return payload

    def first_failing_run(self, since: float, until: float,
                          locations: Sequence[Location] | None = None,
                          probe_key: str | None = None) -> FailedRun:
        """The first run that failed after ``since`` (wall clock), over every probe (or the
        one ``probe_key``) and location (or ``locations``): a run whose first attempt failed
        (one whose first attempt passed did not fail). The earliest is taken, whichever
        probe and location triggered the page, so the measured delay is never shorter than
        the real one."""
        found = [FailedRun(probe["probe"], loc.name, started, took)
                 for loc in locations or self.locations
                 for probe in self.results(loc)["probes"]
                 if probe_key is None or probe["probe"] == probe_key
                 for started, took in failed_runs(probe, since, until)]
        if not found:
            raise StackError("no failed run found in the daemons' history")
        return min(found, key=lambda r: r.started_at)

    def retries_healed(self) -> float:
        """Retries that succeeded (a failure not confirmed), summed over the locations."""
        total = 0.0
        for loc in self.locations:
            text = http_get(loc.daemon.url + "/metrics")[1]
            total += sum(float(m.group(1)) for m in re.finditer(
                r'^synthmon_probe_retries_total\{[^}]*outcome="success"[^}]*\} (\S+)$', text,
                re.M))
        return total

    # ------------------------------------------------------------------ Prometheus

    def query(self, promql: str) -> dict[str, Any]:
        """The JSON answer of /api/v1/query (errors included: a 400 carries the parse
        error)."""
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
            answer.setdefault("status", f"http {exc.code}")
        return answer

    def vector(self, promql: str) -> list[dict[str, Any]]:
        answer = self.query(promql)
        if answer.get("status") != "success":
            raise StackError(f"{promql}: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def prom_alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.prometheus}/api/v1/alerts", timeout=10) as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())["data"]["alerts"]
        return alerts

    def page_alerts(self) -> list[dict[str, Any]]:
        """Page alerts Prometheus has pending or firing (ALERTS)."""
        return self.vector('ALERTS{severity="page"}')

    # ------------------------------------------------------------------ Alertmanager

    def am_alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.alertmanager}/api/v2/alerts",
                                    timeout=10) as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())
        return alerts

    # ------------------------------------------------------------------ all of it

    def wait_quiet(self, what: str, timeout: float) -> None:
        """Every probe of every location succeeds in Prometheus, no page alert is pending
        or firing, and Alertmanager holds no active page alert (so the next trigger opens
        a new incident)."""
        def quiet() -> bool:
            ok = self.vector('probe_success{job="synthmon"} == 1')
            active = [a for a in self.am_alerts() if a["status"]["state"] == "active"
                      and a["labels"].get("severity") == "page"]
            return (len(ok) == self.probes * len(self.locations) and not self.page_alerts()
                    and not active)

        def detail() -> str:
            failing = self.vector('synthmon_probe_outcome{outcome!="success"} == 1')
            return (f"failing: {[(r['metric']['probe'], r['metric']['outcome']) for r in failing]}"
                    f"; page alerts: {[r['metric'] for r in self.page_alerts()]}\n"
                    f"daemon log tail:\n{self.locations[0].daemon.logs()[-3000:]}")

        wait_until(quiet, timeout, f"{what}: the stack did not settle healthy", detail)


@contextlib.contextmanager
def _daemon(sim: SimProc, workdir: Path, location: str, factor: float) -> Iterator[DaemonProc]:
    port = free_port()
    daemon = start_daemon(PROBES, sim.env(**scaled_probe_env(factor)), workdir,
                          "--location", location, port=port,
                          external_url=f"http://127.0.0.1:{port}/")
    try:
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=5)


def _hostport(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


@contextlib.contextmanager
def alerting_stack(workdir: Path, factor: float, locations: Sequence[str] = LOCATIONS,
                   startup_timeout: float = 60.0) -> Iterator[Stack]:
    """The stack, started and healthy (every probe passing, nothing alerting)."""
    env = scaled_probe_env(factor)
    with contextlib.ExitStack() as stack_:
        locs = []
        for name in locations:
            sim = stack_.enter_context(simulator_process(_mkdir(workdir / name)))
            daemon = stack_.enter_context(_daemon(sim, workdir / name, name, factor))
            locs.append(Location(name, sim, daemon))
        pagerduty = stack_.enter_context(EventSink())
        tickets = stack_.enter_context(EventSink())
        am_config = write_test_alertmanager_config(
            workdir / "alertmanager", pagerduty_url=f"{pagerduty.url}/v2/enqueue",
            webhook_url=f"{tickets.url}/hook", routing_key=ROUTING_KEY, factor=factor)
        alertmanager = stack_.enter_context(running_alertmanager(am_config, workdir))
        rules = write_fast_rules(workdir / "rules", scale=1 / factor)
        prom_config = write_scaled_prometheus_config(
            workdir / "prometheus", factor=factor,
            synthmon_targets=[_hostport(loc.daemon.url) for loc in locs],
            alertmanager_target=_hostport(alertmanager), rule_files=[rules])
        prometheus = stack_.enter_context(running_prometheus(prom_config, workdir))
        payload: dict[str, Any] = json.loads(http_get(locs[0].daemon.url + "/api/v1/results")[1])
        specs = {p.key: p for p in load_text(PROBES.read_text(encoding="utf-8"),
                                             env=locs[0].sim.env(**env)).probes}
        result = Stack(locs, prometheus, alertmanager, pagerduty, tickets,
                       len(payload["probes"]), factor,
                       float(env["PROBE_INTERVAL"].removesuffix("s")),
                       float(env["PROBE_RETRY_DELAY"].removesuffix("s")), specs,
                       stream_hold(env))
        result.wait_quiet("startup", startup_timeout)
        yield result


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- scenarios

@dataclass(frozen=True)
class Scenario:
    mode: str             # simulator mode
    alertname: str        # the page PagerDuty must get (and no other)
    probe: str            # a probe (key) it pages for: its summary is checked
    summary_has: tuple[str, ...]  # in that probe's summary, besides its name and target
    labels: tuple[tuple[str, str], ...] = ()  # extra labels the firing alert must carry
    # fire too in Prometheus for the probe, held back by Alertmanager (none: the generic
    # and the bare-403 alerts leave out what a specific one covers)
    inhibited: tuple[str, ...] = ()
    # The shipped flow (e2e-chat) breaks too, at this step, by the same cause: it must stop
    # there, and its page (SynthmonFlowStepFailing) must not go out: one cause, one incident
    # (synthmon runs the flow just after the WebSocket probes of its host, whose page holds
    # it back).
    flow_step: str | None = None

    @property
    def name(self) -> str:
        return self.mode


# Every page about a target's regression, each caused by a simulator mode, with what the
# person paged must read in the summary of the probe named.
SCENARIOS: tuple[Scenario, ...] = (
    # The incident: 403 on /api/v1/websocket while /ws of the same host accepts the same
    # token. The route diagnosis pages; the bare 403 and the generic failure do not fire.
    Scenario("ws_route_missing", "SynthmonWebSocketRouteLikelyMissing", "ws-golden-path",
             ("HTTP 403", "ws-alternate-path (/ws) upgrades on another path of the same host"),
             flow_step="chat"),
    # 403 on every path: the credentials are the suspect.
    Scenario("auth_rejected_before_accept", "SynthmonWebSocketHandshakeForbidden",
             "ws-golden-path", ("answered HTTP 403 instead of 101",
                                "no other path of the host upgrades"), flow_step="chat"),
    Scenario("upgrade_json", "SynthmonWebSocketNotUpgraded", "ws-golden-path",
             ("HTTP 200", "instead of 101"), flow_step="chat"),
    Scenario("subprotocol_mismatch", "SynthmonWebSocketSubprotocolMismatch", "ws-golden-path",
             ("subprotocol",)),
    Scenario("close_1008", "SynthmonWebSocketAuthRejected", "ws-golden-path",
             ("close code 1008",), flow_step="chat"),
    Scenario("events_missing", "SynthmonGoldenPathEventsMissing", "ws-golden-path",
             ("events", "unexpected_message")),
    # A negative probe (a JWT signed with the wrong secret) got in: the security page.
    Scenario("auth_not_enforced", "SynthmonAuthNotEnforced", "ws-rejects-bad-token",
             ("SECURITY", "invalid credentials"), (("category", "security"),)),
    # One variant of the security matrix got in: named PROBE@VARIANT.
    Scenario("auth_query_token", "SynthmonAuthNotEnforced", "ws-fails-closed@token_in_query_only",
             ("SECURITY", "variant token_in_query_only"), (("category", "security"),)),
    # A stream answered with JSON instead of text/event-stream, and one held back and
    # released whole (issue 22's stream pages).
    Scenario("stream_json", "SynthmonStreamBroken", "chat-stream", ("does not stream",
                                                                     "not_event_stream")),
    # The simulators hold it a third longer than the stream's first-event budget, both
    # scaled with the probes' timeout (Stack.set_mode).
    Scenario("stream_buffered", "SynthmonStreamBuffered", "chat-stream",
             ("buffered on the way",)),
    # The jwt.<token> offer echoed back as the subprotocol (and a header on /api/threads).
    Scenario("token_echo", "SynthmonTokenReflected", "ws-golden-path",
             ("SECURITY", "in a response header"), (("category", "security"),)),
    # A REST route on the WebSocket path (405): no specific alert, the generic one, for
    # the positive probes and every variant of the negative one alike.
    Scenario("upgrade_405", "SynthmonProbeFailing", "ws-fails-closed@no_token",
             ("is failing: handshake_rejected, status 405",), flow_step="chat"),
    # One step of the end-to-end flow breaks: its page names the step (issue 23).
    Scenario("thread_create_fails", "SynthmonFlowStepFailing", "e2e-chat",
             ("fails at step create-thread", "unexpected_status")),
)
FLOW_PAGE = "SynthmonFlowStepFailing"


def is_trigger(event: dict[str, Any], alertname: str | None = None) -> bool:
    payload = event.get("payload") or {}
    return event.get("event_action") == "trigger" and (
        alertname is None or payload.get("class") == alertname)


def probe_summaries(events: Sequence[dict[str, Any]], probe: str) -> list[str]:
    """The summaries of ``probe`` (a key: NAME or NAME@VARIANT) that the PagerDuty triggers
    carried: each says "probe KEY" (another probe may be named as its evidence)."""
    pattern = re.compile(rf"(?i)\bprobe {re.escape(probe)}(?![\w@-])")
    return [s for e in events if is_trigger(e)
            for s in e["payload"]["custom_details"]["summaries"].split("; ")
            if pattern.search(s)]
