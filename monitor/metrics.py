"""The Prometheus surfacer: results in, ``/metrics`` out.

Probe series are kept as plain numbers per probe and turned into metric families only at
scrape time (a custom collector). That keeps a result update to a handful of additions, and
lets a reload change the set of static label names, or drop a removed probe's series, without
rebuilding a registry and resetting every counter.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.config import Config, Probe
from monitor.outcomes import Outcome
from monitor.probes.context import target_of
from monitor.result import Result

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")
WS_PHASES = ("resolve", "connect", "tls", "handshake", "steps")
SKIP_REASONS = ("overlap", "misfire")


class Buckets:
    """Cumulative-at-scrape histogram state: per-bucket counts, sum, count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            acc += n
            out.append((_fmt(bound), acc))
        out.append(("+Inf", self.count))
        return out


def _fmt(bound: float) -> str:
    return repr(float(bound))


@dataclass
class _ProbeSeries:
    labels: tuple[str, ...]
    type: str
    interval: float
    last: Result | None = None
    last_success: float | None = None
    runs: dict[Outcome, int] = field(default_factory=dict)
    duration: Buckets = field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    steps: dict[str, Buckets] = field(default_factory=dict)


class Surfacer(Collector):
    """Holds the per-probe state and exports it. Thread-safe: scrapes may run in a thread."""

    def __init__(self, location: str | None = None) -> None:
        self._lock = threading.Lock()
        self.location = location
        self._series: dict[str, _ProbeSeries] = {}
        self._label_names: tuple[str, ...] = ("probe", "type", "target")
        self._static: tuple[str, ...] = ()
        self.lag = Buckets(LAG_BUCKETS)
        self.skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self.reload_ok = 0
        self.reload_ok_at = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # ------------------------------------------------------------------ updates

    def configure(self, config: Config) -> None:
        """Adopt a (re)loaded config: keep the state of probes that stay, drop the rest."""
        static = tuple(config.label_names)
        names = ("probe", "type", "target", *static) + (("location",) if self.location else ())
        with self._lock:
            old = self._series
            self._series = {}
            for probe in config.probes:
                values = self._label_values(probe, static)
                prev = old.get(probe.name)
                if prev is not None and prev.type == probe.type:
                    # Counters continue even if a label value changed: a series with new
                    # labels is a new series to Prometheus, and rate() starts it cleanly.
                    prev.labels, prev.interval = values, probe.interval
                    self._series[probe.name] = prev
                else:
                    self._series[probe.name] = _ProbeSeries(values, probe.type, probe.interval)
            self._static = static
            self._label_names = names

    def _label_values(self, probe: Probe, static: tuple[str, ...]) -> tuple[str, ...]:
        own = dict(probe.labels)
        values = (probe.name, probe.type, target_of(probe.spec.url),
                  *(own.get(k, "") for k in static))
        return values + ((self.location,) if self.location else ())

    def observe(self, result: Result) -> None:
        with self._lock:
            series = self._series.get(result.probe)
            if series is None:  # removed by a reload while it ran
                return
            series.last = result
            series.runs[result.outcome] = series.runs.get(result.outcome, 0) + 1
            series.duration.observe(result.duration_seconds)
            for step in result.steps:
                b = series.steps.get(step.name)
                if b is None:
                    b = series.steps[step.name] = Buckets(DURATION_BUCKETS)
                b.observe(step.duration_seconds)
            if result.success:
                series.last_success = result.started_at + result.duration_seconds

    def observe_lag(self, seconds: float) -> None:
        with self._lock:
            self.lag.observe(max(seconds, 0.0))

    def skip(self, reason: str) -> None:
        with self._lock:
            self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def reloaded(self, ok: bool) -> None:
        with self._lock:
            self.reload_ok = int(ok)
            if ok:
                self.reload_ok_at = time.time()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------ export

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            return list(self._collect())

    def _collect(self) -> Iterator[Metric]:
        names = list(self._label_names)
        dl = ["location"] if self.location else []
        dv = [self.location] if self.location else []

        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=names + list(extra))

        success = gauge("probe_success", "1 if the last run succeeded")
        duration = gauge("probe_duration_seconds", "duration of the last run")
        http_status = gauge("probe_http_status_code", "HTTP status of the last run, 0 if none")
        http_phase = gauge("probe_http_duration_seconds", "HTTP phases of the last run",
                           ["phase"])
        ws_status = gauge("probe_websocket_status_code",
                          "handshake answer: 101 when upgraded, 0 when no HTTP answer")
        ws_up = gauge("probe_websocket_connection_upgraded", "1 if the last handshake upgraded")
        ws_close = gauge("probe_websocket_close_code", "server close code, 0 if none")
        ws_phase = gauge("probe_websocket_duration_seconds", "WebSocket phases of the last run",
                         ["phase"])
        cert = gauge("probe_ssl_earliest_cert_expiry", "earliest certificate notAfter, unix s")
        outcome = gauge("synthmon_probe_outcome",
                        "1 for the last run's outcome, 0 for others seen", ["outcome"])
        runs = CounterMetricFamily("synthmon_probe_runs", "probe runs by outcome",
                                   labels=[*names, "outcome"])
        hist = HistogramMetricFamily("synthmon_probe_duration_seconds", "probe run duration",
                                     labels=names)
        step_hist = HistogramMetricFamily("synthmon_probe_step_duration_seconds",
                                          "WebSocket step duration", labels=[*names, "step"])
        last_run = gauge("synthmon_probe_last_run_timestamp_seconds", "end of the last run")
        last_ok = gauge("synthmon_probe_last_success_timestamp_seconds",
                        "end of the last successful run")
        interval = gauge("synthmon_probe_interval_seconds", "configured interval")

        for s in self._series.values():
            lv = list(s.labels)
            interval.add_metric(lv, s.interval)
            if s.last_success is not None:
                last_ok.add_metric(lv, s.last_success)
            for oc, n in s.runs.items():
                runs.add_metric([*lv, oc.value], n)
            if s.duration.count:
                hist.add_metric(lv, s.duration.cumulative(), s.duration.sum)
            for step, b in s.steps.items():
                step_hist.add_metric([*lv, step], b.cumulative(), b.sum)
            r = s.last
            if r is None:
                continue
            last_run.add_metric(lv, r.started_at + r.duration_seconds)
            success.add_metric(lv, 1.0 if r.success else 0.0)
            duration.add_metric(lv, r.duration_seconds)
            for oc in s.runs:
                outcome.add_metric([*lv, oc.value], 1.0 if oc is r.outcome else 0.0)
            phases = dict(r.phases)
            if r.cert_expiry is not None:
                cert.add_metric(lv, r.cert_expiry)
            if s.type == "http":
                http_status.add_metric(lv, float(r.status_code or 0))
                for ph in HTTP_PHASES:
                    http_phase.add_metric([*lv, ph], phases.get(ph, 0.0))
            else:
                ws_status.add_metric(lv, float(r.status_code or 0))
                ws_up.add_metric(lv, 1.0 if r.upgraded else 0.0)
                ws_close.add_metric(lv, float(r.close_code or 0))
                for ph in WS_PHASES:
                    ws_phase.add_metric([*lv, ph], phases.get(ph, 0.0))

        yield from (success, duration, http_status, http_phase, ws_status, ws_up, ws_close,
                    ws_phase, cert, outcome, runs, hist, step_hist, last_run, last_ok, interval)

        info = GaugeMetricFamily("synthmon_build_info", "synthmon version",
                                 labels=["version", *dl])
        info.add_metric([__version__, *dv], 1.0)
        reload_ok = GaugeMetricFamily("synthmon_config_last_reload_successful",
                                      "1 if the last config (re)load succeeded", labels=dl)
        reload_ok.add_metric(dv, float(self.reload_ok))
        reload_at = GaugeMetricFamily("synthmon_config_last_reload_success_timestamp_seconds",
                                      "time of the last successful config load", labels=dl)
        reload_at.add_metric(dv, self.reload_ok_at)
        configured = GaugeMetricFamily("synthmon_probes_configured",
                                       "probes this daemon runs", labels=dl)
        configured.add_metric(dv, float(len(self._series)))
        lag = HistogramMetricFamily("synthmon_scheduler_lag_seconds",
                                    "actual start minus planned start of probe runs", labels=dl)
        lag.add_metric(dv, self.lag.cumulative(), self.lag.sum)
        skipped = CounterMetricFamily("synthmon_probe_skipped", "probe runs not started",
                                      labels=["reason", *dl])
        for reason, n in self.skipped.items():
            skipped.add_metric([reason, *dv], n)
        yield from (info, reload_ok, reload_at, configured, lag, skipped)
