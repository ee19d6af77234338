"""The surfacer: results in, series kept, a snapshot out to each scrape."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable

from monitor.config import Config, Probe
from monitor.probes.kinds import KINDS
from monitor.result import Result
from monitor.sinks.metrics.exposition import _escape, _event_keys, _labels, format_snapshot
from monitor.sinks.metrics.series import (
    DURATION_BUCKETS,
    EVENT_BUCKETS,
    LAG_BUCKETS,
    SKIP_REASONS,
    Buckets,
    Snapshot,
    _counted,
    _ProbeSeries,
)
from monitor.targets import target_of

# How many probes' series a scrape takes a step (``Surfacer.snapshot_in_steps``).
SNAPSHOT_STEP = 250


class Surfacer:
    """Holds the per-probe state and writes it out. Updates come from the event loop."""

    def __init__(self, location: str | None = None,
                 shard: tuple[int, int] | None = None,
                 external_url: str | None = None) -> None:
        self._lock = threading.Lock()
        self.location = location
        self.shard = shard
        # The alert rules read it to link each page to the probe's page here.
        self.external_url = external_url
        self._series: dict[str, _ProbeSeries] = {}
        self.lag = Buckets(LAG_BUCKETS)
        self.skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self.reload_ok = 0
        self.reload_ok_at = 0.0
        self._daemon_labels = f'location="{_escape(location)}"' if location else ""
        # Set when spans are exported over OTLP (monitor.sinks.otel): its counters.
        self.otlp_stats: Callable[[], tuple[int, dict[str, int]]] | None = None
        self._configured = 0  # probes, not runs: a negative probe's variants count once

    # ------------------------------------------------------------------ updates

    def configure(self, config: Config) -> None:
        """Adopt a (re)loaded config: keep the state of probes that stay, drop the rest."""
        static = tuple(config.label_names)
        # ``variant`` only when some probe has variants: its values are the closed set of
        # VARIANTS, so the label stays bounded.
        variant = ("variant",) if any(p.variant for p in config.probes) else ()
        names = ("probe", "type", "target", *variant, *static) + (
            ("location",) if self.location else ())
        with self._lock:
            self._configured = len({p.name for p in config.probes})
            old = self._series
            self._series = {}
            for probe in config.probes:
                labels = _labels(names, self._label_values(probe, static, bool(variant)))
                prev = old.get(probe.key)
                if prev is not None and prev.type == probe.type:
                    # Counters continue even if a label value changed: a series with new
                    # labels is a new series to Prometheus, and rate() starts it cleanly.
                    prev = _unshared(prev)
                    prev.labels, prev.interval = labels, probe.interval
                    allowed = _event_keys(probe)
                    if prev.events is not None:
                        prev.events = {k: b for k, b in prev.events.items() if k in allowed}
                    self._series[probe.key] = prev
                else:
                    self._series[probe.key] = _ProbeSeries(labels, probe.type, probe.interval)

    def _label_values(self, probe: Probe, static: tuple[str, ...],
                      with_variant: bool) -> tuple[str, ...]:
        own = dict(probe.labels)
        variant = (probe.variant or "",) if with_variant else ()
        values = (probe.name, probe.type, target_of(probe.spec.url), *variant,
                  *(own.get(k, "") for k in static))
        return values + ((self.location,) if self.location else ())

    def observe(self, result: Result) -> None:
        with self._lock:
            series = self._series.get(result.key)
            if series is None:  # removed by a reload while it ran
                return
            if series.held:
                series = self._series[result.key] = _unshared(series)
            series.runs = _counted(series.runs, result.outcome)
            if result.attempt > 1:
                retries = series.retries
                if retries is None:
                    retries = series.retries = {}
                retries[result.outcome] = retries.get(result.outcome, 0) + 1
            if not result.final:
                # A failure not yet confirmed: counted, but the gauges (and so dashboards
                # and alerts) wait for the run's final attempt.
                return
            series.last = result
            tid = result.trace_id
            at = result.started_at + result.duration_seconds
            series.duration.observe(result.duration_seconds, tid, at)
            if result.steps:
                steps = series.steps
                if steps is None:
                    steps = series.steps = {}
                for step in result.steps:
                    b = steps.get(step.name)
                    if b is None:
                        b = steps[step.name] = Buckets(DURATION_BUCKETS)
                    b.observe(step.duration_seconds, tid, at)
            if result.events:
                events = series.events
                if events is None:
                    events = series.events = {}
                for ev in result.events:
                    b = events.get((ev.step, ev.event))
                    if b is None:
                        b = events[(ev.step, ev.event)] = Buckets(EVENT_BUCKETS)
                    b.observe(ev.seconds, tid, at)
            kind = KINDS.get(result.type)
            for h in kind.histograms if kind is not None else ():
                value = result.measure(h.measure)
                if value is None:
                    continue
                if series.measured is None:
                    series.measured = {}
                b = series.measured.get(h.name)
                if b is None:
                    b = series.measured[h.name] = Buckets(h.buckets)
                b.observe(value, tid, at)
            if result.success:
                series.last_success = at

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

    # ------------------------------------------------------------------ export

    def snapshot(self) -> Snapshot:
        """Everything to export, taken at once (held until :meth:`release`)."""
        steps = self.snapshot_in_steps(None)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                snap: Snapshot = done.value
                return snap

    def snapshot_in_steps(self, per_step: int | None = SNAPSHOT_STEP
                          ) -> Generator[None, None, Snapshot]:
        """The snapshot, taken ``per_step`` probes at a time (all at once for ``None``):
        the caller (the ``/metrics`` handler) lets the event loop run between two steps,
        so that a scrape of 10,000 probes never holds it for the tens of milliseconds the
        whole copy took. Each probe's series is taken whole in one step (its buckets, sum
        and count agree), as it is at that step; the probes are those configured when the
        snapshot began, the daemon's own series are copied last. The series are held
        until :meth:`release` (or for good, at the price of a copy of each series changed
        after it: never wrong, only the cost a snapshot of copies had)."""
        with self._lock:
            live = list(self._series.values())
            configured = self._configured
        step = per_step or max(len(live), 1)
        taken: list[_ProbeSeries] = []
        try:
            for i in range(0, len(live), step):
                if i:
                    yield
                with self._lock:
                    for s in live[i:i + step]:
                        while s.newer is not None:  # changed since the snapshot began
                            s = s.newer
                        s.held += 1
                        taken.append(s)
        except GeneratorExit:  # abandoned half-way (the scraper went away)
            self._let_go(taken)
            raise
        with self._lock:
            snap = Snapshot(taken, self._daemon_labels, self.lag.copy(), dict(self.skipped),
                            self.reload_ok, self.reload_ok_at, configured,
                            shard=self.shard, external_url=self.external_url)
        if self.otlp_stats is not None:
            snap.otlp = self.otlp_stats()
        return snap

    def release(self, snap: Snapshot) -> None:
        """The scrape of ``snap`` is written out: its series may change in place again."""
        if not snap.released:
            snap.released = True
            self._let_go(snap.series)

    def _let_go(self, taken: Iterable[_ProbeSeries]) -> None:
        with self._lock:
            for s in taken:
                if s.held:
                    s.held -= 1

    def render(self, openmetrics: bool = False) -> bytes:
        snap = self.snapshot()
        try:
            return format_snapshot(snap, openmetrics)
        finally:
            self.release(snap)


def _unshared(series: _ProbeSeries) -> _ProbeSeries:
    """``series``, or when a scrape holds it, a copy to change in its place (``newer``)."""
    if not series.held:
        return series
    copy = series.newer = series.snapshot()
    return copy

