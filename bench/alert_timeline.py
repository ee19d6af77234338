"""The alert timeline measured in real time, at the shipped settings, with the real binaries.

    .venv/bin/python -m bench.alert_timeline              # every page alert, ~35 minutes
    .venv/bin/python -m bench.alert_timeline --only token_echo --only close_1008

Stands up the stack of the end-to-end test (tests/alerting/stack.py: two locations, each a
simulator and ``synthmon run`` with the shipped probes.yaml; the real Prometheus with
deploy/prometheus/alerts.yml and prometheus.yml; the real Alertmanager with
deploy/alertmanager/alertmanager.yml; PagerDuty's Events API v2 as a local receiver) with
nothing compressed (``--factor 1``), then for each page alert about a target
(tests.alerting.stack.SCENARIOS):

- waits until everything is healthy and quiet;
- switches both simulators into the regression just after the probe's run has answered
  (the ONSET): the probe's next run is a whole interval away, the worst case of that hop;
- measures from the onset: the first failing run, the incident's trigger at PagerDuty, and
  the first notification that names the probe;
- heals, and measures from the healing to PagerDuty's resolve;
- counts the incidents (dedup keys) and checks that no other alert paged: where the
  shipped flow (e2e-chat) stops at its WebSocket step by the same cause, it must have
  stopped there (seen in Prometheus) without a page of its own.

Then a blip (the route broken for 4 s around a run: its retry heals it) that must page
nothing, and every PagerDuty event outside the regressions counts as a false page.
Not part of ``make test`` (it takes real minutes); it prints a table and writes
bench/alert-timeline.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.alerting.stack import (
    SCENARIOS,
    Scenario,
    Stack,
    StackError,
    alerting_stack,
    is_trigger,
    probe_summaries,
    wait_until,
)

RESULTS = Path(__file__).resolve().parent / "alert-timeline.json"
BUDGET = 120.0
BLIP_SECONDS = 4.0


def _wait_event(stack: Stack, what: str, predicate: Any, start: int, timeout: float
                ) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((e for e in stack.pagerduty.snapshot()[start:] if predicate(e)), None)
    event: dict[str, Any] = wait_until(found, timeout, what, poll=0.05)
    return event


def measure(stack: Stack, scenario: Scenario, after_run: float) -> dict[str, Any]:
    """One regression, from its onset to its resolve (wall clock, real seconds)."""
    f = stack.factor
    stack.wait_quiet(f"before {scenario.mode}", timeout=4 * stack.interval + 120 / f)
    start = len(stack.pagerduty.snapshot())
    onset = stack.sleep_until_just_after_the_next_run(scenario.probe, after_run)
    stack.set_mode(scenario.mode)
    deadline = 3 * BUDGET / f
    try:
        trigger = _wait_event(stack, f"{scenario.mode}: no {scenario.alertname} trigger",
                              lambda e: is_trigger(e, scenario.alertname), start, deadline)
        named = _wait_event(
            stack, f"{scenario.mode}: no page names {scenario.probe}",
            lambda e: is_trigger(e, scenario.alertname) and probe_summaries([e], scenario.probe),
            start, deadline)
    finally:
        healed = time.time()
        stack.set_mode("healthy")
    flow_stopped = None
    if scenario.flow_step is not None:
        window = f"{int(time.time() - onset) + 1}s"
        flow_stopped = len(stack.vector(
            f'max_over_time(probe_flow_failed_step{{probe="e2e-chat", '
            f'step="{scenario.flow_step}"}}[{window}]) == 1'))
    first = stack.first_failing_run(onset, trigger["_received_wall"])
    resolve = _wait_event(
        stack, f"{scenario.mode}: no resolve",
        lambda e: e.get("event_action") == "resolve" and e["dedup_key"] == trigger["dedup_key"],
        start, deadline)
    stack.wait_quiet(f"after {scenario.mode}", timeout=4 * stack.interval + 120 / f)
    events = stack.pagerduty.snapshot()[start:]
    summaries = probe_summaries(events, scenario.probe)
    return {
        "mode": scenario.mode,
        "alert": scenario.alertname,
        "probe": scenario.probe,
        "onset_to_first_failing_run": round(first.started_at - onset, 1),
        "first_failing_run": f"{first.probe} ({first.location})",
        "onset_to_trigger": round(trigger["_received_wall"] - onset, 1),
        "onset_to_probe_named": round(named["_received_wall"] - onset, 1),
        "heal_to_resolve": round(resolve["_received_wall"] - healed, 1),
        "incidents": len({e["dedup_key"] for e in events}),
        # locations where the flow stopped at the step (None: the mode leaves it alone)
        "flow_stopped_at": None if flow_stopped is None else
        {"step": scenario.flow_step, "locations": flow_stopped},
        "alerts_paged": sorted({e["payload"]["class"] for e in events if is_trigger(e)}),
        "triggers": sum(is_trigger(e) for e in events),
        "title": trigger["payload"]["summary"],
        "summary": summaries[0] if summaries else None,
        "window": [start, len(events) + start],
    }


def blip(stack: Stack, probe: str = "ws-golden-path") -> dict[str, Any]:
    """The primary route broken for BLIP_SECONDS around a run of ``probe`` (from just
    before it to before its retry): the retry succeeds and nothing may page."""
    f = stack.factor
    stack.wait_quiet("before the blip", timeout=4 * stack.interval + 120 / f)
    start = len(stack.pagerduty.snapshot())
    healed_before = stack.retries_healed()
    stack.sleep_until_just_before_the_next_run(probe, ahead=0.5 / f)
    stack.set_mode("ws_route_missing")
    time.sleep(BLIP_SECONDS / f)
    stack.set_mode("healthy")
    time.sleep(BUDGET / f + 2 * stack.interval)  # as long as a page of it could take
    return {"blip_seconds": BLIP_SECONDS / f,
            "retries_that_healed": stack.retries_healed() - healed_before,
            "pages": len(stack.pagerduty.snapshot()[start:])}


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| regression (mode) | page | first failing run | trigger | page names the probe "
            "| resolve after healing | incidents | the flow (e2e-chat) |\n"
            "|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| `{r['mode']}` | {r['alert'].removeprefix('Synthmon')} ({r['probe']}) | "
        f"{r['onset_to_first_failing_run']:.1f} s | **{r['onset_to_trigger']:.1f} s** | "
        f"{r['onset_to_probe_named']:.1f} s | {r['heal_to_resolve']:.1f} s | "
        f"{r['incidents']} | {_flow(r)} |\n" for r in rows)


def _flow(row: dict[str, Any]) -> str:
    stopped = row.get("flow_stopped_at")
    if stopped is None:
        return "the page's own" if row["probe"] == "e2e-chat" else "—"
    paged = "SynthmonFlowStepFailing" in row["alerts_paged"]
    return (f"stopped at {stopped['step']} ({stopped['locations']} locations), "
            f"{'paged' if paged else 'no page of its own'}")


def main(argv: Sequence[str] | None = None) -> int:
    # Stopped (by `timeout`, or kill), it still stops the stack it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", action="append", default=[], metavar="MODE",
                        help="only this regression (repeatable); "
                             + ", ".join(s.mode for s in SCENARIOS))
    parser.add_argument("--factor", type=float, default=1.0,
                        help="divide every duration by this (1: the shipped settings)")
    parser.add_argument("--after-run", type=float, default=1.0,
                        help="seconds after the probe's run starts that the onset comes "
                             "(its answer is in by then: its next run is an interval away)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.mode in args.only]
    unknown = set(args.only) - {s.mode for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown regression(s): {', '.join(sorted(unknown))}")
    rows: list[dict[str, Any]] = []
    began = time.time()
    report: dict[str, Any] = {"factor": args.factor, "started": began, "rows": rows}
    with tempfile.TemporaryDirectory(prefix="synthmon-alert-timeline-") as tmp, \
            alerting_stack(Path(tmp), args.factor) as stack:
        for scenario in chosen:
            try:
                row = measure(stack, scenario, args.after_run / args.factor)
            except StackError as exc:
                row = {"mode": scenario.mode, "alert": scenario.alertname, "error": str(exc)}
                print(f"{scenario.mode}: {exc}", file=sys.stderr, flush=True)
            else:
                print(json.dumps(row), flush=True)
            rows.append(row)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
        if not args.only:
            report["blip"] = blip(stack)
            print(json.dumps(report["blip"]), flush=True)
        windows = [r["window"] for r in rows if "window" in r]
        events = stack.pagerduty.snapshot()
        report["false_pages"] = [
            {k: e.get(k) for k in ("event_action", "dedup_key")} | {"index": i}
            for i, e in enumerate(events)
            if not any(lo <= i < hi for lo, hi in windows)]
        report["minutes"] = round((time.time() - began) / 60, 1)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    measured = [r for r in rows if "error" not in r]
    print(table(measured))
    late = [r["mode"] for r in measured if r["onset_to_trigger"] > BUDGET / args.factor
            or r["onset_to_probe_named"] > BUDGET / args.factor]
    wrong = [r["mode"] for r in measured if r["incidents"] != 1
             or r["alerts_paged"] != [r["alert"]]
             or (r.get("flow_stopped_at") or {}).get("locations", 2) < 2]
    print(f"over the budget: {late or 'none'}; not one incident under its own name: "
          f"{wrong or 'none'}; failed: {[r['mode'] for r in rows if 'error' in r] or 'none'}; "
          f"false pages: {len(report['false_pages'])}; {report['minutes']} min")
    return 1 if late or wrong or len(measured) < len(rows) or report["false_pages"] else 0


if __name__ == "__main__":
    sys.exit(main())
