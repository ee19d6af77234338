#!/usr/bin/env python3
"""Write the hop-by-hop budgets of the README's alert timeline, computed from the shipped
files.

    .venv/bin/python scripts/gen_alert_budget.py           # rewrite the tables
    .venv/bin/python scripts/gen_alert_budget.py --check   # exit 1 if one is out of date

From the onset (the moment the backend broke) to the PagerDuty trigger, and from the
healing to the resolve, every wait on the way is a hop of up to its length: the probe's
interval, its attempts (each up to its timeout, a flow's cleanup steps after it), the retry
delay, the scrapes, the federation of a fleet, the rule evaluation, the page's ``for:``,
Alertmanager's ``group_wait``/``group_interval``. Each is read from the file that sets it:

- probes.yaml's probes (``monitor.config``, as the daemon loads them): interval, timeout,
  retries, retry_delay, and a flow's always steps' own time (``overrun``);
- deploy/prometheus/prometheus.yml (one Prometheus), deploy/prometheus/fleet/location.yml
  and fleet/central.yml (the fleet): scrape, federation and evaluation intervals, scrape
  timeouts;
- alerts.yml and fleet-alerts.yml: each page's ``for:``;
- alertmanager.yml: the page route's ``group_wait`` and ``group_interval``.

What no file sets is a constant here, with its reason (:data:`CLOCKS`, :data:`HANDOFF`).
The tables go between ``<!-- budget:NAME:start -->`` and ``<!-- budget:NAME:end -->`` in
README.md; tests/alerting/test_alert_budget.py asserts the 2-minute bound of issue 21 on
:func:`pages` and runs ``--check``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import Probe, load_text  # noqa: E402

README = ROOT / "README.md"
PROBES = ROOT / "probes.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
LOCATION = ROOT / "deploy" / "prometheus" / "fleet" / "location.yml"
CENTRAL = ROOT / "deploy" / "prometheus" / "fleet" / "central.yml"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
FLEET_ALERTS = ROOT / "deploy" / "prometheus" / "fleet-alerts.yml"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

BOUND = 120.0  # issue 21: every page about a target's regression within 2 minutes
TARGET_PAGES = "synthmon-probe-failures"  # alerts.yml's group of the pages about a target
# The locations run a probe in the same second (epoch-aligned phases): what separates their
# runs is their clocks (NTP keeps them well within a second) and the scheduler's lag.
CLOCKS = 1.0
# Prometheus -> Alertmanager, Alertmanager -> PagerDuty: one HTTP request each, sent at once.
HANDOFF = 1.0
# A healthy run of a shipped probe answers within this (the simulator and staging: ms).
HEALTHY_RUN = 1.0


# --------------------------------------------------------------------------- the inputs

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def seconds(text: object) -> float:
    """A Prometheus/Alertmanager duration (``1m30s``, ``500ms``) in seconds."""
    s, pos = 0.0, 0
    for m in _DURATION.finditer(str(text)):
        if m.start() != pos:
            break
        s, pos = s + int(m.group(1)) * _UNITS[m.group(2)], m.end()
    if pos != len(str(text)) or not str(text):
        raise ValueError(f"not a duration: {text!r}")
    return s


@dataclass(frozen=True)
class ProbeTimes:
    """The waits of one probe's run, as the daemon has them."""
    type: str  # its `type` label: http, websocket, sse, flow
    interval: float
    timeout: float
    retries: int
    retry_delay: float
    overrun: float  # a flow's always steps, each in its own time after the timeout


@dataclass(frozen=True)
class Polling:
    """The waits between a gauge set by synthmon and the page leaving Prometheus: one
    scrape (one Prometheus), or a location's scrape and the central one's federation."""
    scrape: float
    scrape_timeout: float
    federation: float | None  # None: one Prometheus, no federation
    federation_timeout: float | None
    evaluation: float


@dataclass(frozen=True)
class Route:
    group_wait: float
    group_interval: float


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def shipped_probes(path: Path = PROBES) -> dict[str, ProbeTimes]:
    """Every probe (by key) of probes.yaml at its shipped defaults, as the daemon loads it."""
    probes: list[Probe] = list(load_text(path.read_text(encoding="utf-8"), env={}).probes)
    return {p.key: ProbeTimes(p.type, p.interval, p.timeout, p.retries, p.retry_delay,
                              p.spec.kind_spec.overrun(p.timeout)) for p in probes}


def _scrape_job(doc: dict[str, Any], job: str) -> dict[str, Any]:
    (found,) = [j for j in doc["scrape_configs"] if j["job_name"] == job]
    return found


def single_polling(path: Path = PROMETHEUS) -> Polling:
    doc = _yaml(path)
    glob, job = doc["global"], _scrape_job(doc, "synthmon")
    scrape = seconds(job.get("scrape_interval", glob["scrape_interval"]))
    timeout = seconds(job.get("scrape_timeout", glob.get("scrape_timeout", "10s")))
    return Polling(scrape, min(timeout, scrape), None, None, seconds(glob["evaluation_interval"]))


def fleet_polling(location: Path = LOCATION, central: Path = CENTRAL) -> Polling:
    loc, cen = _yaml(location), _yaml(central)
    ljob, cjob = _scrape_job(loc, "synthmon"), _scrape_job(cen, "synthmon-federate")
    scrape = seconds(ljob.get("scrape_interval", loc["global"]["scrape_interval"]))
    stimeout = seconds(ljob.get("scrape_timeout", loc["global"].get("scrape_timeout", "10s")))
    fed = seconds(cjob.get("scrape_interval", cen["global"]["scrape_interval"]))
    ftimeout = seconds(cjob.get("scrape_timeout", cen["global"].get("scrape_timeout", "10s")))
    return Polling(scrape, min(stimeout, scrape), fed, min(ftimeout, fed),
                   seconds(cen["global"]["evaluation_interval"]))


def page_route(path: Path = ALERTMANAGER) -> Route:
    route = _yaml(path)["route"]
    (page,) = [r for r in route.get("routes", [])
               if 'severity="page"' in r.get("matchers", [])]
    return Route(seconds(page.get("group_wait", route["group_wait"])),
                 seconds(page.get("group_interval", route["group_interval"])))


def page_waits(path: Path, group: str | None = None) -> dict[str, float]:
    """The ``for:`` of every page of a rules file (of one group of it)."""
    return {r["alert"]: seconds(r.get("for", "0s"))
            for g in _yaml(path)["groups"] if group is None or g["name"] == group
            for r in g["rules"] if "alert" in r and r["labels"]["severity"] == "page"}


# --------------------------------------------------------------------------- the hops

@dataclass(frozen=True)
class Hop:
    what: str
    typical: float
    worst: float        # a target that answers at once (a 403, a 200, a close)
    hung: float         # a target that answers nothing: each attempt its whole timeout
    typical_words: str = ""  # shown instead of the number (e.g. "< 1 s")
    hung_words: str = ""  # what the hung case waits for (e.g. "(timeout)")


def _s(x: float) -> str:
    return f"{x:.0f} s" if x == int(x) else f"{x:.1f} s"


def trigger_hops(probe: ProbeTimes, polling: Polling, route: Route, wait: float = 0.0,
                 flow: bool = False) -> list[Hop]:
    """Onset -> PagerDuty trigger, for a page with ``for: wait`` about ``probe``."""
    p = probe
    hops = [Hop(f"the probe's next run (every {_s(p.interval)}, on its phase)",
                p.interval / 2, p.interval, p.interval)]
    attempt = p.timeout + (p.overrun if flow else 0.0)
    hung = "(timeout)" if not flow or not p.overrun else "(timeout, then the cleanup)"
    for n in range(p.retries + 1):
        if n:
            hops.append(Hop("`retry_delay`", p.retry_delay, p.retry_delay, p.retry_delay))
        what = ("first attempt fails: an answer (403, 200, a close) / a hung target"
                if n == 0 else "the retry fails: the final attempt sets the gauges")
        hops.append(Hop(what, 0.0, 0.0, attempt, "~0 s", hung))
    hops.append(Hop("the second location's run (the same second: epoch-aligned phases)",
                    0.0, CLOCKS, CLOCKS, "~0 s"))
    later = "the later of the two locations' scrapes (each at an offset of its own)"
    hops.append(Hop(later + ("" if polling.federation is None else
                             ", at their location's Prometheus"),
                    polling.scrape * 2 / 3, polling.scrape, polling.scrape))
    if polling.federation is not None:
        hops.append(Hop("the central Prometheus federates that location",
                        polling.federation / 2, polling.federation, polling.federation))
    hops.append(Hop("the next rule evaluation: the page fires" +
                    (f" (`for: {wait:g}s`)" if not wait else ""),
                    polling.evaluation / 2, polling.evaluation, polling.evaluation))
    if wait:
        # pending at that evaluation, firing at the first one `for:` later
        extra = -(-wait // polling.evaluation) * polling.evaluation
        hops.append(Hop(f"`for: {wait:g}s`", extra, extra, extra))
    hops += [Hop("Prometheus → Alertmanager", 0.0, HANDOFF, HANDOFF, "< 1 s"),
             Hop("`group_wait` (a new incident)", route.group_wait, route.group_wait,
                 route.group_wait),
             Hop("Alertmanager → PagerDuty `trigger`", 0.0, HANDOFF, HANDOFF, "< 1 s")]
    return hops


def resolve_hops(probe: ProbeTimes, polling: Polling, route: Route) -> list[Hop]:
    """Healing -> PagerDuty resolve: the alert resolves at the first evaluation after one
    location's success is seen (the quorum is broken), whatever its ``for:``."""
    p = probe
    # The last failing run's retry started before the healing: the next run is at most an
    # interval after that run's start, which is at least retry_delay before the retry.
    nxt = p.interval - p.retry_delay * p.retries
    hops = [Hop("the probe's next run (its last failing run's retry started before the "
                "healing)", nxt / 2, nxt, nxt),
            Hop("that run succeeds", 0.0, HEALTHY_RUN, HEALTHY_RUN, "~0 s"),
            Hop("next scrape of the first location to recover (one location breaks the "
                "quorum)" + ("" if polling.federation is None else
                             ", at its location's Prometheus"),
                polling.scrape / 2, polling.scrape, polling.scrape)]
    if polling.federation is not None:
        hops.append(Hop("the central Prometheus federates that location",
                        polling.federation / 2, polling.federation, polling.federation))
    hops += [Hop("next rule evaluation: the alert resolves", polling.evaluation / 2,
                 polling.evaluation, polling.evaluation),
             Hop("Prometheus → Alertmanager", 0.0, HANDOFF, HANDOFF, "< 1 s"),
             Hop("`group_interval` (resolved notifications wait for the group's next tick)",
                 route.group_interval / 2, route.group_interval, route.group_interval),
             Hop("Alertmanager → PagerDuty `resolve`", 0.0, HANDOFF, HANDOFF, "< 1 s")]
    return hops


def total(hops: Iterable[Hop], column: Callable[[Hop], float]) -> float:
    return sum(column(h) for h in hops)


@dataclass(frozen=True)
class PageBound:
    page: str
    setup: str      # "one Prometheus" | "fleet"
    probe: str      # the shipped probe with the longest worst case for this page
    worst: float    # onset -> trigger, worst case, the target hung


# The series each page about a target can fire for, by the probe's `type` (what its
# expression reads: probe_websocket_* only exist for WebSocket probes, a flow exports its
# outcome and probe_flow_*, SynthmonProbeFailing leaves flows out). A page of the group that
# is not here is an error (tests/alerting/test_alert_budget.py).
PAGE_TYPES: dict[str, frozenset[str]] = {
    "SynthmonProbeFailing": frozenset({"http", "websocket", "sse"}),
    "SynthmonWebSocketHandshakeForbidden": frozenset({"websocket"}),
    "SynthmonWebSocketRouteLikelyMissing": frozenset({"websocket"}),
    "SynthmonWebSocketNotUpgraded": frozenset({"websocket"}),
    "SynthmonWebSocketAuthRejected": frozenset({"websocket"}),
    "SynthmonWebSocketSubprotocolMismatch": frozenset({"websocket", "flow"}),
    "SynthmonGoldenPathEventsMissing": frozenset({"websocket"}),
    "SynthmonStreamBroken": frozenset({"sse"}),
    "SynthmonStreamBuffered": frozenset({"sse"}),
    "SynthmonFlowStepFailing": frozenset({"flow"}),
    "SynthmonAuthNotEnforced": frozenset({"http", "websocket", "sse", "flow"}),
    "SynthmonTokenReflected": frozenset({"http", "websocket", "sse", "flow"}),
}


def _probes_for(page: str, probes: dict[str, ProbeTimes]) -> dict[str, ProbeTimes]:
    """The shipped probes a page may be about."""
    if page not in PAGE_TYPES:
        raise SystemExit(f"{page}: which probe types it pages for is not in PAGE_TYPES")
    return {k: p for k, p in probes.items() if p.type in PAGE_TYPES[page]}


def pages(probes: dict[str, ProbeTimes] | None = None) -> list[PageBound]:
    """The worst case from the onset of every page about a target, with one Prometheus and
    in the fleet: the largest over the shipped probes it may be about, each attempt hung."""
    probes = shipped_probes() if probes is None else probes
    route, out = page_route(), []
    for setup, polling in (("one Prometheus", single_polling()), ("fleet", fleet_polling())):
        for page, wait in page_waits(ALERTS, TARGET_PAGES).items():
            worst = max(((k, total(trigger_hops(p, polling, route, wait, flow=bool(p.overrun)),
                                   lambda h: h.hung))
                         for k, p in _probes_for(page, probes).items()),
                        key=lambda kv: kv[1], default=None)
            if worst is None:
                continue  # no shipped probe of a type this page is about
            out.append(PageBound(page, setup, *worst))
    return out


def fleet_pages() -> dict[str, tuple[float, float]]:
    """The fleet's own pages, from the event (a shard killed / hung; a location's
    Prometheus down / hung) to PagerDuty: (worst, worst hung)."""
    f, route = fleet_polling(), page_route()
    assert f.federation is not None and f.federation_timeout is not None
    waits = page_waits(FLEET_ALERTS)
    after = route.group_wait + 2 * HANDOFF

    def fired(wait: float) -> float:
        return f.evaluation + -(-wait // f.evaluation) * f.evaluation

    shard = f.scrape + f.federation + fired(waits["SynthmonShardDown"]) + after
    silent = f.federation + fired(waits["SynthmonLocationSilent"]) + after
    return {"SynthmonShardDown": (shard, shard + f.scrape_timeout),
            "SynthmonLocationSilent": (silent, silent + f.federation_timeout)}


# --------------------------------------------------------------------------- the tables

def _typical(h: Hop) -> str:
    return h.typical_words or _s(round(h.typical))


def hop_table(first: str, hops: list[Hop], hung_too: bool) -> str:
    lines = [f"| {first} | typical | worst |", "|---|---|---|"]
    for h in hops:
        worst = _s(h.worst) if h.worst == h.hung or not hung_too else \
            f"~{_s(h.worst)} / {_s(h.hung)} {h.hung_words}".rstrip()
        lines.append(f"| {h.what} | {_typical(h)} | {worst} |")
    typ = total(hops, lambda h: h.typical)
    worst, hung = total(hops, lambda h: h.worst), total(hops, lambda h: h.hung)
    last = f"**{_s(worst)}**" if not hung_too else \
        f"**{_s(worst)}** for an answer, **{_s(hung)}** for a hung target"
    lines.append(f"| **total** | **~{_s(round(typ))}** | {last} |")
    return "\n".join(lines)


def tables() -> dict[str, str]:
    probes, route = shipped_probes(), page_route()
    # the probes' waits are the shipped defaults, the same for every probe but the flow's
    # cleanup: the plain probe and the flow with the longest cleanup stand for all
    plain = max((p for p in probes.values() if not p.overrun),
                key=lambda p: (p.interval, p.timeout))
    flows = [(k, p) for k, p in probes.items() if p.overrun]
    out: dict[str, str] = {}
    for name, polling in (("single", single_polling()), ("fleet", fleet_polling())):
        hops = trigger_hops(plain, polling, route)
        text = hop_table("Trigger: from the onset", hops, hung_too=True)
        if flows:
            key, flow = max(flows, key=lambda kv: kv[1].overrun)
            hung = total(trigger_hops(flow, polling, route, flow=True), lambda h: h.hung)
            text += (f"\n\nA flow's cleanup steps (`always`) run after its timeout, each "
                     f"attempt's: a hung flow ({key}, {_s(flow.overrun)} of cleanup) pages "
                     f"within **{_s(hung)}**.")
        out[f"{name}-trigger"] = text
        out[f"{name}-resolve"] = hop_table("Resolve: from the healing",
                                           resolve_hops(plain, polling, route), hung_too=False)
    rows = ["| page | `for` | probe (the longest) | one Prometheus | fleet |",
            "|---|---|---|---|---|"]
    bounds = pages(probes)
    waits = page_waits(ALERTS, TARGET_PAGES)
    for page, wait in waits.items():
        if not any(b.page == page for b in bounds):
            continue
        one = next(b for b in bounds if b.page == page and b.setup == "one Prometheus")
        fleet = next(b for b in bounds if b.page == page and b.setup == "fleet")
        rows.append(f"| `{page}` | {wait:g}s | {one.probe} ({probes[one.probe].type}) | "
                    f"{_s(one.worst)} | {_s(fleet.worst)} |")
    events = {"SynthmonShardDown": "a shard killed; hung",
              "SynthmonLocationSilent": "a location's Prometheus down; hung"}
    for page, (worst, hung) in fleet_pages().items():
        rows.append(f"| `{page}` | {page_waits(FLEET_ALERTS)[page]:g}s | ({events[page]}) | "
                    f"| {_s(worst)}; {_s(hung)} |")
    out["pages"] = "\n".join(rows)
    return out


def splice(text: str, name: str, generated: str) -> str:
    start, end = f"<!-- budget:{name}:start -->", f"<!-- budget:{name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise SystemExit(f"README.md needs the markers {start} and {end}, in that order")
    return text[:i + len(start)] + "\n" + generated + "\n" + text[j:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is out of date")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = current
    for name, generated in tables().items():
        wanted = splice(wanted, name, generated)
    if wanted == current:
        return 0
    if args.check:
        print("README.md: the alert timeline's budget is out of date; run "
              "scripts/gen_alert_budget.py", file=sys.stderr)
        return 1
    README.write_text(wanted, encoding="utf-8")
    print("README.md: alert budget updated")
    return 0


__all__ = ["BOUND", "Hop", "PageBound", "Polling", "ProbeTimes", "Route", "fleet_pages",
           "fleet_polling", "page_route", "pages", "resolve_hops", "shipped_probes",
           "single_polling", "trigger_hops"]

if __name__ == "__main__":
    sys.exit(main())
