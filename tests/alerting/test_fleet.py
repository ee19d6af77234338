"""The fleet of the README's "Outgrow one machine", with the real binaries, time-compressed:
two locations x two shards, a Prometheus per location, a central Prometheus, Alertmanager.

- Each location: a staging simulator (the target as seen from there: a regression can be
  injected into one location's path only), two daemons running the shipped probes.yaml with
  ``--location NAME --shard I/2``, and a Prometheus loading deploy/prometheus/fleet/location.yml
  that scrapes the two shards.
- The central Prometheus loads deploy/prometheus/fleet/central.yml: it federates every
  location's Prometheus, so it alone has all their series; it evaluates the rules
  (alerts.yml with its location quorum, fleet-alerts.yml) and talks to the real Alertmanager
  (deploy/alertmanager/alertmanager.yml), whose PagerDuty Events API v2 and ticket webhook
  are local :class:`EventSink` receivers.

Every duration of the path is the shipped one divided by ``FACTOR`` (as in test_e2e.py):
the probes' interval and retry delay, the scrape intervals and timeouts of both configs,
the central evaluation interval, every ``for:``, Alertmanager's timers. What is not
compressed (a daemon's start, the targets' answers) only makes the measured times longer;
where it would make a rule fire that does not at the shipped timings, the rule's ``for:``
has a floor (``FOR_FLOOR``) and the measured time is scaled back with that hop at its real
length. Times are written to tests/artifacts/fleet-times.json.

The tests run in file order on one stack: every probe once per location, a regression seen
from both locations (one page), from one (the ticket, no page), a shard killed (named within
the budget; its probes still page from the other location), then resharding one location
from 2 to 3 shards.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_file, load_text
from monitor.runname import split
from monitor.scheduler import in_shard, next_run, rounds
from tests.support.servers import (
    ROOT,
    DaemonProc,
    SimProc,
    free_port,
    http_get,
    http_post,
    simulator_process,
    start_daemon,
)

from .support import (
    FLEET_ALERTS,
    EventSink,
    alert_rules,
    first_failing_run,
    parse_duration,
    running_alertmanager,
    running_prometheus,
    scaled_probe_env,
    vector,
    wait_until,
    write_fast_rules,
    write_scaled_central_config,
    write_scaled_location_config,
    write_test_alertmanager_config,
)

pytestmark = pytest.mark.e2e

PROBES = ROOT / "probes.yaml"
ARTIFACTS = ROOT / "tests" / "artifacts"

FACTOR = float(os.environ.get("SYNTHMON_E2E_FACTOR", "20"))
BUDGET = 120.0 / FACTOR  # the 2 minutes of the issue, compressed
PROBE_ENV = scaled_probe_env(FACTOR)
INTERVAL = float(PROBE_ENV["PROBE_INTERVAL"].removesuffix("s"))
# Watching for a page that must not come: 90 s real, longer than a page takes.
NO_PAGE_WATCH = 0.75 * BUDGET
LOCATIONS = ("eu-west", "us-east")
SHARDS = 2
STARTUP_TIMEOUT = 60.0
WAIT_TIMEOUT = 30.0
# A regression that breaks the WebSocket upgrade (200 JSON instead of 101). Under --shard
# I/2 its probes sit on both shards (ws-golden-path and ws-header-only on 0,
# ws-subprotocol-only on 1): one page must gather them from four daemons.
MODE, PAGE = "upgrade_json", "SynthmonWebSocketNotUpgraded"
PROBE = "ws-golden-path"
WS_PROBES = ("ws-golden-path", "ws-header-only", "ws-subprotocol-only")  # MODE breaks these
# A shard restarted by resharding is away for one daemon start-up, which time compression
# does not shorten (about a second here, 6 s measured with three starting at once at a load
# average of 14): the fleet rules' `for:` are
# given at least this, and the time from a kill to its page is scaled back to real seconds
# with that hop counted at its shipped length.
FOR_FLOOR = 10.0
SHARD_DOWN_FOR = parse_duration(next(r["for"] for r in alert_rules(FLEET_ALERTS)
                                     if r["alert"] == "SynthmonShardDown"))
SHARD_DOWN_FOR_TEST = max(FOR_FLOOR, SHARD_DOWN_FOR / FACTOR)

TIMES: dict[str, dict[str, Any]] = {}


# --------------------------------------------------------------------------- the fleet

@dataclass
class Shard:
    location: str
    index: int
    count: int
    port: int
    daemon: DaemonProc

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Location:
    name: str
    sim: SimProc
    workdir: Path
    shards: list[Shard] = field(default_factory=list)
    prometheus: str = ""  # base URL of its Prometheus


@dataclass
class Fleet:
    locations: list[Location]
    central: str
    alertmanager: str
    pagerduty: EventSink
    tickets: EventSink
    keys: frozenset[tuple[str, str]]  # (probe, variant) of every series of probes.yaml
    names: frozenset[str]
    workdir: Path

    def location(self, name: str) -> Location:
        (found,) = [loc for loc in self.locations if loc.name == name]
        return found

    def set_mode(self, mode: str, only: str | None = None) -> None:
        for loc in self.locations:
            if only is None or loc.name == only:
                loc.sim.set_mode(mode)

    def results(self, shards: list[Shard] | None = None) -> list[dict[str, Any]]:
        every = shards if shards is not None else [s for loc in self.locations for s in loc.shards]
        return [json.loads(http_get(s.daemon.url + "/api/v1/results")[1]) for s in every
                if s.daemon.proc.poll() is None]


def _start_shard(loc: Location, index: int, count: int, port: int | None = None) -> Shard:
    port = port or free_port()
    logs = loc.workdir / f"shard-{index}-of-{count}-{time.monotonic_ns()}"
    logs.mkdir(parents=True)
    daemon = start_daemon(PROBES, loc.sim.env(**PROBE_ENV), logs, "--location", loc.name,
                          "--shard", f"{index}/{count}", port=port)
    return Shard(loc.name, index, count, port, daemon)


def _start_shards(loc: Location, count: int, ports: list[int | None]) -> list[Shard]:
    """Shards 0..count-1 of a location started together, as a StatefulSet's pods are
    (podManagementPolicy: Parallel): the location is short of a shard for one start-up."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda i: _start_shard(loc, i, count, ports[i]), range(count)))


def _stop(shard: Shard, sig: int = signal.SIGTERM) -> None:
    if shard.daemon.proc.poll() is None:
        shard.daemon.stop(sig)


def _point_prometheus(loc: Location) -> Path:
    """(Re)write the location's Prometheus config for its current shards."""
    return write_scaled_location_config(
        loc.workdir / "prometheus", factor=FACTOR, location=loc.name,
        synthmon_targets=[s.target for s in loc.shards])


def _reload_prometheus(loc: Location) -> None:
    status, body = http_post(loc.prometheus + "/-/reload")
    assert status == 200, body


def _hostport(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _page_alerts(fleet: Fleet) -> list[dict[str, Any]]:
    return vector(fleet.central, 'ALERTS{severity="page"}')


def _am_alerts(fleet: Fleet) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{fleet.alertmanager}/api/v2/alerts", timeout=10) as response:
        alerts: list[dict[str, Any]] = json.loads(response.read())
    return alerts


def _healthy(fleet: Fleet) -> list[dict[str, Any]]:
    return vector(fleet.central, 'probe_success{job="synthmon"} == 1')


def _wait_quiet(fleet: Fleet, what: str, timeout: float = WAIT_TIMEOUT) -> None:
    """Every series of probes.yaml succeeds from every location in the central Prometheus,
    no page is pending or firing there, and Alertmanager holds no active page."""
    def quiet() -> bool:
        active = [a for a in _am_alerts(fleet) if a["status"]["state"] == "active"
                  and a["labels"].get("severity") == "page"]
        return (len(_healthy(fleet)) == len(fleet.keys) * len(fleet.locations)
                and not _page_alerts(fleet) and not active)

    def detail() -> str:
        failing = vector(fleet.central, 'probe_success{job="synthmon"} != 1')
        return (f"healthy series {len(_healthy(fleet))} of "
                f"{len(fleet.keys) * len(fleet.locations)}; failing "
                f"{[(r['metric']['probe'], r['metric']['location']) for r in failing]}; "
                f"page alerts {[r['metric'] for r in _page_alerts(fleet)]}")

    wait_until(quiet, timeout, f"{what}: the fleet did not settle healthy", detail)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("fleet")
    env = {k: v for k, v in PROBE_ENV.items()}
    config = load_file(PROBES, env={**env, "JWT_SECRET_STAGING": "x" * 32})
    keys = frozenset((p.name, p.variant or "") for p in config.probes)
    with contextlib.ExitStack() as stack:
        pagerduty = stack.enter_context(EventSink())
        tickets = stack.enter_context(EventSink())
        am_config = write_test_alertmanager_config(
            workdir / "alertmanager", pagerduty_url=f"{pagerduty.url}/v2/enqueue",
            webhook_url=f"{tickets.url}/hook", factor=FACTOR)
        alertmanager = stack.enter_context(running_alertmanager(am_config, workdir))
        locations = []
        for name in LOCATIONS:
            loc_dir = workdir / name
            loc_dir.mkdir()
            loc = Location(name, stack.enter_context(simulator_process(loc_dir)), loc_dir)
            loc.shards = _start_shards(loc, SHARDS, [None] * SHARDS)
            loc.prometheus = stack.enter_context(running_prometheus(
                _point_prometheus(loc), loc_dir, "--web.enable-lifecycle"))
            locations.append(loc)
        rules = [write_fast_rules(workdir / "rules", scale=1 / FACTOR),
                 write_fast_rules(workdir / "rules", scale=1 / FACTOR, src=FLEET_ALERTS,
                                  name=FLEET_ALERTS.name, minimum=FOR_FLOOR)]
        central_config = write_scaled_central_config(
            workdir / "central", factor=FACTOR, rule_files=rules,
            locations={loc.name: _hostport(loc.prometheus) for loc in locations},
            alertmanager_target=_hostport(alertmanager))
        central = stack.enter_context(running_prometheus(central_config, workdir / "central"))
        result = Fleet(locations, central, alertmanager, pagerduty, tickets, keys,
                       frozenset(p.name for p in config.probes), workdir)
        try:
            _wait_quiet(result, "startup", STARTUP_TIMEOUT)
            yield result
        finally:
            for loc in locations:
                for shard in loc.shards:
                    with contextlib.suppress(Exception):
                        _stop(shard, signal.SIGKILL)


def _record(name: str, **times: Any) -> None:
    TIMES[name] = {**times, "factor": FACTOR, "budget_seconds": BUDGET}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "fleet-times.json").write_text(json.dumps(TIMES, indent=2) + "\n")


def _sleep_until_just_before_the_next_run(probe: str, ahead: float = 0.05) -> None:
    # The probe's phase (its round's: the same host name and credentials) is the same in
    # every location whatever the simulator's port.
    env = {**PROBE_ENV, "STAGING_URL": "http://127.0.0.1:1", "STAGING_WS_URL": "ws://127.0.0.1:1",
           "JWT_SECRET_STAGING": "fleet-phase-only-0123456789abcdef"}
    probes = load_text(PROBES.read_text(), env=env).probes
    spec = {p.key: p for p in probes}[probe]
    at = next_run(spec, time.time() + 2 * ahead, rounds(probes).get(probe)) - ahead
    time.sleep(max(0.0, at - time.time()))


def _is_trigger(event: dict[str, Any], alertname: str) -> bool:
    payload = event.get("payload") or {}
    return event.get("event_action") == "trigger" and payload.get("class") == alertname


def _names(payload: dict[str, Any]) -> set[str]:
    """The probes a daemon runs (by their names in probes.yaml: a negative probe's variants
    are one), from its /api/v1/results."""
    return {split(p["last"]["probe"])[0] for p in payload["probes"] if p["last"] is not None}


def _story(events: list[dict[str, Any]]) -> str:
    """What PagerDuty got, one line an event, for a failure message."""
    return "\n".join(
        f'{e["_received"] - events[0]["_received"]:6.2f}s {e["dedup_key"][:8]} '
        f'{e["event_action"]} {e.get("payload", {}).get("class")} '
        f'{e.get("payload", {}).get("custom_details", {}).get("probes")}' for e in events)


def _is_resolve(event: dict[str, Any], key: str) -> bool:
    return event.get("event_action") == "resolve" and event.get("dedup_key") == key


def _probes_of(event: dict[str, Any]) -> set[str]:
    """The firing probes an event names, as PROBE@LOCATION (the details say
    "PROBE (LOCATION); ...")."""
    found = re.findall(r"(\S+) \(([^)]+)\)", event["payload"]["custom_details"]["probes"])
    return {f"{probe}@{location}" for probe, location in found}


def _series_per_location(fleet: Fleet) -> dict[str, dict[tuple[str, str], int]]:
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for row in vector(fleet.central, 'count by (probe, variant, location) '
                      '(synthmon_probe_interval_seconds{job="synthmon"})'):
        m = row["metric"]
        counts.setdefault(m["location"], {})[(m["probe"], m.get("variant", ""))] = int(
            row["value"][1])
    return counts


# --------------------------------------------------------------------------- tests

def test_fleet_every_probe_runs_once_from_each_location(fleet: Fleet) -> None:
    """The central Prometheus has each series of probes.yaml exactly once per location, the
    two shards of each location split the file between them, and `up` names its location."""
    counts = _series_per_location(fleet)
    for loc in fleet.locations:
        got = counts.get(loc.name, {})
        assert got == dict.fromkeys(fleet.keys, 1), (
            loc.name, {k: n for k, n in got.items() if n != 1}, fleet.keys - got.keys(),
            got.keys() - fleet.keys)
    for loc in fleet.locations:
        shards = {r["metric"]["shard"]: float(r["value"][1]) for r in vector(
            fleet.central, f'synthmon_shards{{job="synthmon", location="{loc.name}"}}')}
        assert shards == {str(i): float(SHARDS) for i in range(SHARDS)}
        (total,) = vector(fleet.central, 'sum(synthmon_probes_configured{job="synthmon", '
                          f'location="{loc.name}"}})')
        assert float(total["value"][1]) == len(fleet.names)
        ups = vector(fleet.central, f'up{{job="synthmon", location="{loc.name}"}} == 1')
        assert sorted(r["metric"]["instance"] for r in ups) == sorted(
            s.target for s in loc.shards)
        owned = [_names(payload) for payload in fleet.results(loc.shards)]
        assert set().union(*owned) == fleet.names
        assert sum(map(len, owned)) == len(fleet.names)
        for shard, names in zip(loc.shards, owned, strict=True):
            assert names == {n for n in fleet.names if in_shard(n, (shard.index, SHARDS))}
    # the regression used below reaches probes on both shards
    assert {in_shard(p, (0, SHARDS)) for p in ("ws-golden-path", "ws-subprotocol-only")} == {
        True, False}


def test_fleet_regression_seen_from_both_locations_pages_once(
        fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """Both locations see the upgrade answered with 200: one PagerDuty incident gathering the
    probes of both shards from both locations, within the budget; one resolve."""
    _wait_quiet(fleet, "before the regression")
    start = len(fleet.pagerduty.snapshot())
    _sleep_until_just_before_the_next_run(PROBE)
    flipped = time.time()
    fleet.set_mode(MODE)
    try:
        trigger = fleet.pagerduty.wait_for(lambda e: _is_trigger(e, PAGE),
                                           timeout=WAIT_TIMEOUT, start=start)
        everywhere = {f"{p}@{loc.name}" for p in ("ws-golden-path", "ws-subprotocol-only")
                      for loc in fleet.locations}
        fleet.pagerduty.wait_for(
            lambda e: e.get("dedup_key") == trigger["dedup_key"] and everywhere <= _probes_of(e),
            timeout=WAIT_TIMEOUT, start=start)
    finally:
        fleet.set_mode("healthy")
    healed = time.time()
    first = first_failing_run(fleet.results(), flipped, trigger["_received_wall"])
    to_trigger = trigger["_received_wall"] - first.started_at
    trigger_real = first.attempts_seconds + (to_trigger - first.attempts_seconds) * FACTOR
    resolve = fleet.pagerduty.wait_for(
        lambda e: e.get("event_action") == "resolve" and e.get("dedup_key") == trigger["dedup_key"],
        timeout=WAIT_TIMEOUT, start=start)
    to_resolve = resolve["_received_wall"] - healed
    _wait_quiet(fleet, "after the regression")
    # the shipped flow stops at its WebSocket step too, and pages nothing of its own
    # (it runs after the WebSocket probes of its host, on whichever shard)
    events = fleet.pagerduty.snapshot()[start:]
    assert {e["dedup_key"] for e in events} == {trigger["dedup_key"]}, _story(events)
    assert {e["payload"]["class"] for e in events if "payload" in e} == {PAGE}
    _record("both_locations", first_failing_run_to_trigger_seconds=round(to_trigger, 2),
            first_failing_run_to_trigger_real_seconds=round(trigger_real, 1),
            heal_to_resolve_seconds=round(to_resolve, 2),
            heal_to_resolve_real_seconds=round(to_resolve * FACTOR, 1),
            probes=sorted(set().union(*(_probes_of(e) for e in events if "payload" in e))))
    with capsys.disabled():
        print(f"\n[fleet x{FACTOR:g}] both locations: first failing run -> trigger "
              f"{to_trigger:.2f}s (= {trigger_real:.0f}s real), heal -> resolve "
              f"{to_resolve:.2f}s (= {to_resolve * FACTOR:.0f}s real)")
    assert trigger_real <= 120
    assert to_resolve <= BUDGET


def test_fleet_regression_seen_from_one_location_is_the_ticket(
        fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """Only eu-west sees the regression: no page for as long as a page would take, and the
    one-location ticket reaches the ticket webhook, naming eu-west and the probe."""
    _wait_quiet(fleet, "before the one-location regression")
    one = LOCATIONS[0]
    start_pd, start_ticket = len(fleet.pagerduty.snapshot()), len(fleet.tickets.snapshot())
    fleet.set_mode(MODE, only=one)
    flipped = time.monotonic()
    try:
        failing = (f'probe_websocket_status_code{{probe="{PROBE}", location="{one}"}} == 200')
        wait_until(lambda: vector(fleet.central, failing), WAIT_TIMEOUT,
                   f"{one}: the failure never reached the central Prometheus")
        seen = time.monotonic()

        def ticket(event: dict[str, Any]) -> bool:
            return event.get("status") == "firing" and any(
                a["labels"].get("alertname") == "SynthmonProbeFailingFromOneLocation"
                and a["labels"].get("location") == one and a["labels"].get("probe") == PROBE
                for a in event.get("alerts", []))

        got = fleet.tickets.wait_for(ticket, timeout=2 * WAIT_TIMEOUT, start=start_ticket)
        time.sleep(max(0.0, NO_PAGE_WATCH - (time.monotonic() - seen)))
        assert vector(fleet.central, f'ALERTS{{alertname="{PAGE}"}}') == []
        assert fleet.pagerduty.snapshot()[start_pd:] == []
    finally:
        fleet.set_mode("healthy")
    _wait_quiet(fleet, "after the one-location regression")
    assert fleet.pagerduty.snapshot()[start_pd:] == []
    took = got["_received"] - flipped
    _record("one_location", switch_to_ticket_seconds=round(took, 2),
            switch_to_ticket_real_seconds=round(took * FACTOR, 1))
    with capsys.disabled():
        print(f"\n[fleet x{FACTOR:g}] one location: no page; ticket {took:.2f}s after the "
              f"switch (= {took * FACTOR:.0f}s real)")


def test_fleet_a_killed_shard_is_named_and_its_probes_still_page(
        fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL the us-east shard that runs ws-golden-path: a page names its location and
    shard within the budget. Its probes are not silently unwatched: the regression that
    eu-west alone sees now pages for them (they run from one location only), while the
    probe that us-east's other shard still runs stays a one-location failure."""
    _wait_quiet(fleet, "before the kill")
    loc = fleet.location(LOCATIONS[1])
    (victim,) = [s for s in loc.shards if in_shard(PROBE, (s.index, s.count))]
    (other,) = [s for s in loc.shards if s is not victim]
    start = len(fleet.pagerduty.snapshot())
    killed = time.time()
    _stop(victim, signal.SIGKILL)
    down = fleet.pagerduty.wait_for(lambda e: _is_trigger(e, "SynthmonShardDown"),
                                    timeout=WAIT_TIMEOUT, start=start)
    to_page = down["_received_wall"] - killed
    summary = down["payload"]["summary"]
    assert f"shard {victim.index}/{SHARDS} of location {loc.name} ({victim.target})" in summary
    mine = sorted(n for n in fleet.names if in_shard(n, (victim.index, SHARDS)))
    assert f"its {len(mine)} probes are not run from {loc.name} ({', '.join(mine[:5])}" in summary
    assert f"{len(mine)} of them still run from another location" in summary
    (firing,) = vector(fleet.central, 'ALERTS{alertname="SynthmonShardDown", '
                       'alertstate="firing"}')
    assert firing["metric"]["location"] == loc.name
    assert firing["metric"]["shard"] == str(victim.index)

    watched = [n for n in WS_PROBES if in_shard(n, (victim.index, SHARDS))]
    elsewhere = [n for n in WS_PROBES if in_shard(n, (other.index, SHARDS))]
    assert watched and elsewhere
    eu = LOCATIONS[0]
    fleet.set_mode(MODE, only=eu)
    try:
        page = fleet.pagerduty.wait_for(
            lambda e: _is_trigger(e, PAGE) and {f"{n}@{eu}" for n in watched} <= _probes_of(e),
            timeout=WAIT_TIMEOUT, start=start)
        # The probes us-east's live shard still runs (and sees succeed) make no quorum: they
        # are the one-location failure, never in the page.
        one = f'ALERTS{{alertname="SynthmonProbeFailingFromOneLocation", location="{eu}"}}'

        def shown() -> bool:
            return {r["metric"]["probe"] for r in vector(fleet.central, one)} >= set(elsewhere)

        wait_until(shown, WAIT_TIMEOUT, "the one-location failure never showed")
        time.sleep(NO_PAGE_WATCH / 2)  # updates of the incident would have come by now
        paged = set().union(*(_probes_of(e) for e in fleet.pagerduty.snapshot()[start:]
                              if e.get("dedup_key") == page["dedup_key"] and "payload" in e))
        assert not {f"{n}@{eu}" for n in elsewhere} & paged, paged
    finally:
        fleet.set_mode("healthy")
    back = _start_shard(loc, victim.index, victim.count, port=victim.port)
    loc.shards[loc.shards.index(victim)] = back
    for key in (down["dedup_key"], page["dedup_key"]):
        fleet.pagerduty.wait_for(functools.partial(_is_resolve, key=key), timeout=WAIT_TIMEOUT,
                                 start=start)
    _wait_quiet(fleet, "after the shard came back")
    events = fleet.pagerduty.snapshot()[start:]
    # one incident each: the shard (SynthmonMonitorDown left it to SynthmonShardDown) and
    # the regression its probes still paged for
    assert {e["payload"]["class"] for e in events if "payload" in e} == {
        "SynthmonShardDown", PAGE}, [e["payload"]["class"] for e in events if "payload" in e]
    assert {e["dedup_key"] for e in events} == {down["dedup_key"], page["dedup_key"]}
    to_page_real = (to_page - SHARD_DOWN_FOR_TEST) * FACTOR + SHARD_DOWN_FOR
    _record("shard_killed", kill_to_page_seconds=round(to_page, 2),
            shard_down_for_seconds=SHARD_DOWN_FOR_TEST,
            kill_to_page_real_seconds=round(to_page_real, 1), summary=summary)
    with capsys.disabled():
        print(f"\n[fleet x{FACTOR:g}] shard killed -> page {to_page:.2f}s (its `for:` "
              f"{SHARD_DOWN_FOR_TEST:g}s; = {to_page_real:.0f}s real): {summary}")
    assert to_page_real <= 120, f"the shard's page after {to_page:.2f}s"


def test_fleet_resharding_loses_no_probe_and_runs_none_twice(
        fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> None:
    """eu-west goes from 2 to 3 shards as the README says: its shards stop, the new ones
    start (two on the old addresses, one on a new), its Prometheus gets the new target list.
    Afterwards every series of probes.yaml is there once per location and ran again; at no
    point in between did the central Prometheus hold a probe twice for eu-west, did two
    daemons run one probe at the same time, or did anything page or ticket."""
    _wait_quiet(fleet, "before resharding")
    loc = fleet.location(LOCATIONS[0])
    start_pd, start_ticket = len(fleet.pagerduty.snapshot()), len(fleet.tickets.snapshot())
    before = {s.target: payload for s, payload in zip(loc.shards, fleet.results(loc.shards),
                                                       strict=True)}
    began = time.time()
    ports: list[int | None] = [*(s.port for s in loc.shards), free_port()]
    for shard in loc.shards:  # together, as a StatefulSet scaled to 0
        shard.daemon.proc.send_signal(signal.SIGTERM)
    for shard in loc.shards:
        assert shard.daemon.proc.wait(timeout=10) == 0  # a second SIGTERM would kill it
    stopped = time.time()
    new = _start_shards(loc, 3, ports)
    started = time.time()
    loc.shards = new
    _point_prometheus(loc)
    _reload_prometheus(loc)

    def settled() -> bool:
        counts = _series_per_location(fleet)
        fresh = vector(fleet.central, 'synthmon_probe_last_run_timestamp_seconds'
                       f'{{location="{loc.name}"}} > {started}')
        return (counts.get(loc.name) == dict.fromkeys(fleet.keys, 1)
                and len(fresh) == len(fleet.keys))

    wait_until(settled, WAIT_TIMEOUT, "eu-west did not come back with every probe once",
               lambda: _series_per_location(fleet).get(loc.name))
    _wait_quiet(fleet, "after resharding")
    ended = time.time()

    # the central view, at every step of the change: never two series of one probe in
    # eu-west, the other location untouched
    window = {"start": f"{began - 1:.3f}", "end": f"{ended:.3f}", "step": "0.25"}
    twice = vector(fleet.central, 'count by (probe, variant, location) '
                   '(synthmon_probe_interval_seconds{job="synthmon"}) > 1', **window)
    assert twice == [], twice
    shards = {r["metric"]["shard"]: float(r["value"][1]) for r in vector(
        fleet.central, f'synthmon_shards{{job="synthmon", location="{loc.name}"}}')}
    assert shards == {"0": 3.0, "1": 3.0, "2": 3.0}

    # the daemons: each probe in exactly one new shard, and no probe's runs by two daemons
    # overlapping in time (the old shards' runs all ended before the first new one began)
    after = fleet.results(new)
    owned = [_names(payload) for payload in after]
    assert set().union(*owned) == fleet.names
    assert sum(map(len, owned)) == len(fleet.names)
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for target, payload in [*before.items(), *zip([s.target for s in new], after,
                                                   strict=True)]:
        for probe in payload["probes"]:
            for run_ in probe["runs"]:
                spans.setdefault(f'{run_["probe"]}/{run_["variant"] or ""}', []).append(
                    (run_["started_at"], run_["started_at"] + run_["duration_seconds"], target))
    for key, runs in spans.items():
        runs.sort()
        for (_, end, a), (begin, _, b) in itertools.pairwise(runs):
            assert a == b or begin >= end, f"{key}: runs by {a} and {b} overlap"

    for alertname in ("SynthmonShardDown", "SynthmonShardsMismatched", "SynthmonMonitorDown"):
        assert not _fired_since(fleet, alertname, began), (alertname, _downs(fleet, loc, began))
    assert fleet.pagerduty.snapshot()[start_pd:] == []
    # Tickets may come for the earlier tests' regressions (the success ratio over 30m, 90 s
    # here, is low after them), none for the change itself.
    tickets = {a["labels"]["alertname"] for e in fleet.tickets.snapshot()[start_ticket:]
               for a in e["alerts"] if e["status"] == "firing"}
    assert tickets <= {"SynthmonProbeSuccessRatioLow"}, tickets
    _record("resharding", stopped_to_started_seconds=round(started - stopped, 2),
            change_to_settled_seconds=round(ended - began, 2))
    with capsys.disabled():
        print(f"\n[fleet x{FACTOR:g}] resharding eu-west 2 -> 3: shards down for "
              f"{started - stopped:.2f}s, settled {ended - began:.2f}s after the change; "
              "no probe lost, none twice, nothing paged")


def _downs(fleet: Fleet, loc: Location, since: float) -> object:
    """When each target of ``loc`` was down (up == 0) since ``since``, and the alerts."""
    window = {"start": f"{since:.3f}", "end": f"{time.time():.3f}", "step": "0.25"}
    downs = vector(fleet.central, f'up{{job="synthmon", location="{loc.name}"}} == 0', **window)
    alerts = vector(fleet.central, 'ALERTS{alertname="SynthmonShardDown"}', **window)
    return ([(r["metric"]["instance"], round(float(r["values"][0][0]) - since, 2),
              round(float(r["values"][-1][0]) - since, 2)) for r in downs],
            [(r["metric"], round(float(r["values"][0][0]) - since, 2),
              round(float(r["values"][-1][0]) - since, 2)) for r in alerts])


def _fired_since(fleet: Fleet, alertname: str, since: float) -> bool:
    window = {"start": f"{since:.3f}", "end": f"{time.time():.3f}", "step": "0.25"}
    return bool(vector(fleet.central,
                       f'ALERTS{{alertname="{alertname}", alertstate="firing"}}', **window))
