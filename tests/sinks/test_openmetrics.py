"""OpenMetrics from our own formatter: parsed back with prometheus-client's strict
OpenMetrics parser, exemplars carrying the runs' trace ids, and content negotiation."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as classic_families

from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.result import Result, StepTiming
from monitor.sinks.metrics import (
    CONTENT_TYPE,
    DURATION_BUCKETS,
    OPENMETRICS_CONTENT_TYPE,
    Buckets,
    Surfacer,
    _histogram,
    _le,
    exemplar,
    wants_openmetrics,
)
from monitor.trace import TraceContext
from tests.support.servers import serving_daemon

CONFIG = """\
defaults: {labels: {environment: "stag\\"ing\\\\"}}
probes:
  - name: api
    http: {url: "http://127.0.0.1:8000/api/health"}
  - name: ws
    websocket: {url: "ws://127.0.0.1:8000/api/v1/websocket"}
  - name: never-ran
    http: {url: "http://127.0.0.1:8000/x"}
"""

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def run(probe: str, duration: float, trace: TraceContext | None,
        steps: tuple[StepTiming, ...] = ()) -> Result:
    return Result(probe=probe, type="http" if probe == "api" else "websocket", target="x",
                  outcome=Outcome.SUCCESS if duration < 1 else Outcome.TIMEOUT,
                  started_at=time.time(), duration_seconds=duration, steps=steps,
                  trace_id=trace and trace.trace_id, span_id=trace and trace.span_id)


def surfacer() -> tuple[Surfacer, dict[str, TraceContext]]:
    s = Surfacer(location="eu-1")
    s.configure(load_text(CONFIG, env={}))
    traces = {k: TraceContext.new() for k in ("fast", "slow", "ws", "untraced")}
    s.observe(run("api", 0.003, traces["fast"]))
    s.observe(run("api", 2.0, traces["slow"]))
    s.observe(run("api", 0.2, None))  # trace: false: counted, no exemplar
    s.observe(run("ws", 0.04, traces["ws"], steps=(StepTiming(0, "0-expect", 0.02),
                                                   StepTiming(1, 'we"ird\nstep', 0.3))))
    return s, traces


def exemplars(text: str, name: str) -> dict[str, tuple[str, float]]:
    """le → (trace id, value) of the exemplars on ``name``'s buckets."""
    found: dict[str, tuple[str, float]] = {}
    for fam in om_families(text):
        for x in fam.samples:
            if x.name == name and x.exemplar is not None:
                assert set(x.exemplar.labels) == {"trace_id"}
                assert x.exemplar.timestamp is not None
                found[x.labels["le"] + x.labels.get("step", "")] = (
                    x.exemplar.labels["trace_id"], x.exemplar.value)
    return found


def test_openmetrics_parses_strictly_and_has_the_same_samples_as_the_classic_text() -> None:
    s, _ = surfacer()
    om = s.render(openmetrics=True).decode()
    classic = s.render().decode()
    assert om.endswith("# EOF\n") and "# EOF" not in classic
    assert "# TYPE synthmon_probe_runs counter" in om
    assert "# TYPE synthmon_probe_runs_total counter" in classic

    def values(fams: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(x.name, tuple(sorted(x.labels.items()))): x.value
                for fam in fams for x in fam.samples  # type: ignore[attr-defined]
                if not x.name.endswith("_created")}

    assert values(om_families(om)) == values(classic_families(classic))


def test_duration_and_step_buckets_carry_the_trace_id_of_the_run_they_counted() -> None:
    s, traces = surfacer()
    om = s.render(openmetrics=True).decode()
    runs = exemplars(om, "synthmon_probe_duration_seconds_bucket")
    assert runs == {"0.005": (traces["fast"].trace_id, 0.003),
                    "2.5": (traces["slow"].trace_id, 2.0),
                    "0.05": (traces["ws"].trace_id, 0.04)}
    steps = exemplars(om, "synthmon_probe_step_duration_seconds_bucket")
    assert steps == {"0.0250-expect": (traces["ws"].trace_id, 0.02),
                     '0.5we"ird\nstep': (traces["ws"].trace_id, 0.3)}
    assert " # {" not in s.render().decode()  # the classic format has no exemplars


def test_the_latest_traced_run_in_a_bucket_is_its_exemplar() -> None:
    s, _ = surfacer()
    later = TraceContext.new()
    s.observe(run("api", 0.004, later))
    s.observe(run("api", 0.002, None))  # an untraced run does not wipe the exemplar
    runs = exemplars(s.render(openmetrics=True).decode(), "synthmon_probe_duration_seconds_bucket")
    assert runs["0.005"] == (later.trace_id, 0.004)


@pytest.mark.parametrize("trace_id", [
    "0af7651916cd43dd8448eb211c80319c",  # as monitor.trace makes them: kept packed
    "0AF7651916CD43DD8448EB211C80319C",  # anything else: kept as given, written as given
    "0af7651916cd43dd", "0af7 651916cd43dd8448eb211c80319c", "not hex", "",
])
def test_an_exemplar_is_written_as_the_run_had_it_however_the_bucket_keeps_it(
        trace_id: str) -> None:
    b = Buckets(DURATION_BUCKETS)
    at = time.time()
    b.observe(0.1234567890123, trace_id, at)
    assert b.exemplars is not None
    kept = b.exemplars[DURATION_BUCKETS.index(0.25)]
    assert kept is not None and exemplar(kept) == (trace_id, 0.1234567890123, at)
    lines: list[str] = []
    _histogram(lines.append, "h", 'probe="a"', b, _le(DURATION_BUCKETS), exemplars=True)
    assert f'h_bucket{{probe="a",le="0.25"}} 1.0 # {{trace_id="{trace_id}"}} 0.1234567890123 '\
           f"{at:.3f}\n" in lines


@pytest.mark.parametrize(("accept", "om"), [
    (PROMETHEUS_ACCEPT, True),
    ("application/openmetrics-text", True),
    ("text/plain;version=0.0.4;q=0.5, Application/OpenMetrics-Text; version=1.0.0", True),
    ("application/openmetrics-text;q=0, text/plain", False),
    ("application/openmetrics-text;q=zero", True),
    ("text/plain;version=0.0.4", False),
    ("*/*", False),
    ("", False),
    (None, False),
])
def test_negotiation(accept: str | None, om: bool) -> None:
    assert wants_openmetrics(accept) is om


async def test_metrics_endpoint_answers_what_the_scraper_asks_for(tmp_path: Path) -> None:
    path = tmp_path / "probes.yaml"
    path.write_text(CONFIG)
    daemon = Daemon(DaemonOptions(str(path)))
    trace = TraceContext.new()
    async with serving_daemon(daemon) as base, aiohttp.ClientSession() as session:
        daemon.record(run("api", 0.01, trace))
        async with session.get(f"{base}/metrics",
                               headers={"Accept": PROMETHEUS_ACCEPT}) as resp:
            assert resp.headers["Content-Type"] == OPENMETRICS_CONTENT_TYPE
            om = await resp.text()
        async with session.get(f"{base}/metrics") as resp:
            assert resp.headers["Content-Type"] == CONTENT_TYPE
            classic = await resp.text()
    assert exemplars(om, "synthmon_probe_duration_seconds_bucket") == {
        "0.01": (trace.trace_id, 0.01)}
    assert trace.trace_id not in classic
    list(classic_families(classic))


@pytest.mark.parametrize("values", [
    (), (0.001,), (0.001, 0.003, 0.02), (61.0,), (0.2, 0.001, 61.0, 0.05, 0.05),
])
def test_a_histogram_writes_every_bucket_however_few_it_has_seen(
        values: tuple[float, ...]) -> None:
    """A histogram's lists reach only its highest bucket observed (issue 24's memory): every
    bucket is still written, cumulative, and only the buckets with a traced run carry one."""
    b = Buckets(DURATION_BUCKETS)
    traced: dict[str, str] = {}
    for n, v in enumerate(values):
        trace = f"{n + 1:032x}" if n % 2 == 0 else None
        b.observe(v, trace, 1.0)
        le = next((f"{bound!r}" for bound in DURATION_BUCKETS if v <= bound), "+Inf")
        if trace is not None:
            traced[le] = trace
        else:
            traced.setdefault(le, "")
    for om in (False, True):
        lines: list[str] = []
        _histogram(lines.append, "h", "", b, _le(DURATION_BUCKETS), exemplars=om)
        want = [f'h_bucket{{le="{le}"}} '
                f"{float(sum(v <= bound for v in values))!r}"
                for le, bound in [*((f"{x!r}", x) for x in DURATION_BUCKETS),
                                  ("+Inf", float("inf"))]]
        got = [line.split(" #")[0].rstrip("\n") for line in lines[:-2]]
        assert got == want
        carried = {line.split('le="')[1].split('"')[0]: line.split('trace_id="')[1][:32]
                   for line in lines if " # " in line}
        assert carried == ({le: t for le, t in traced.items() if t} if om else {})
        assert lines[-2:] == [f"h_count {float(len(values))!r}\n",
                              f"h_sum {float(sum(values))!r}\n"]
