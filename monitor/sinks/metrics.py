"""The Prometheus surfacer: results in, ``/metrics`` out.

Probe series are kept as plain numbers per probe and written out only at scrape time. A
result update is a handful of additions, and a reload can change the set of static label
names, or drop a removed probe's series, without resetting every counter.

The exposition text is written here rather than through prometheus-client's
``generate_latest``: the benchmark (bench/, "fidelity") measured 272-316 µs per probe per
scrape that way, all of it blocking the event loop and so delaying probe starts and skewing
their timings; a label string built once per probe and f-strings cost about 20 µs. The
tests parse the output with prometheus-client's own parser.

A scrape takes the probes' series and formats them on the event loop, in steps of about a
millisecond each with the loop free to run in between (``snapshot_in_steps``,
``iter_exposition``; the ``/metrics`` handler takes the turns): the copy of 10,000 probes
in one piece held the loop for tens of milliseconds. A snapshot holds the series as they
are, not copies: a series held by a scrape is copied only when a run or a reload changes it
meanwhile (the copy becomes the live series, the scrape keeps the one it took), and the
scrape lets go of them when it is written out (``Surfacer.release``). A copy of every
series each scrape was ~700 bytes a probe, 7 MiB at 10,000 probes made and freed every
scrape, and the pools it left part-used grew the heap by 6-7 MiB over ten scrapes (issue
24). The formatting used to run in a worker
thread; measured at 1,250 probes (35 ms of formatting), the loop's longest gaps were alike
either way: what stalled runs during scrapes was the full garbage collections the copies
set off (see :mod:`monitor.gcpolicy`). On the loop, every step's hold is bounded and no
thread hands the GIL back and forth.
"""

from __future__ import annotations

import bisect
import math
import struct
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from monitor import __version__
from monitor.config import Config, Probe
from monitor.outcomes import Outcome
from monitor.probes.kind import Gauge, LabelledGauge, PhaseGauge
from monitor.probes.kinds import KINDS
from monitor.result import Result
from monitor.targets import target_of

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Agents take seconds to minutes: "time to agent_completed" is an SLO on this scale.
EVENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SKIP_REASONS = ("overlap", "misfire")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# A piece of a scrape: about 1,000 lines, ~125 KB, about a millisecond of formatting; the
# loop runs between two pieces. The copy before it: as many probes a step.
CHUNK_LINES = 1000
SNAPSHOT_STEP = 250


def _num(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


_LE = (*(f'le="{_num(b)}"' for b in DURATION_BUCKETS), 'le="+Inf"')
_EVENT_LE = (*(f'le="{_num(b)}"' for b in EVENT_BUCKETS), 'le="+Inf"')
_LAG_LE = (*(f'le="{_num(b)}"' for b in LAG_BUCKETS), 'le="+Inf"')


# An exemplar as OpenMetrics writes it: (trace id, observed value, unix time).
Exemplar = tuple[str, float, float]
# An exemplar as a bucket keeps it: the trace id's 16 bytes, then the value and the time as
# two doubles (``_packed``): 72 bytes where the tuple, its id string and its two floats were
# ~200, and a probe's histogram holds two or three of them (~4 MiB of 10,000 probes, issue
# 24). The tuple stays for an id that is not 32 lowercase hex digits (never from
# monitor.trace), so that what is written out is always the id as the run had it.
_TIMES = struct.Struct("<dd")


def _packed(trace_id: str, value: float, at: float) -> bytes | Exemplar:
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        return (trace_id, value, at)
    if len(raw) != 16 or raw.hex() != trace_id:
        return (trace_id, value, at)
    return raw + _TIMES.pack(value, at)


def exemplar(kept: bytes | Exemplar) -> Exemplar:
    """A bucket's exemplar as (trace id, value, unix time), however it is kept."""
    if isinstance(kept, bytes):
        value, at = _TIMES.unpack_from(kept, 16)
        return kept[:16].hex(), value, at
    return kept


class Buckets:
    """Histogram state: per-bucket counts (not cumulative), sum, count, and per bucket the
    latest observation that had a trace id (its exemplar; the list exists once one has).

    Both lists reach only as far as the highest bucket observed (the buckets after it count
    0 and have no exemplar): a probe's runs fall in the first few of the 14 buckets, and two
    lists of 14 were ~340 bytes a probe, ~2 MiB more of 10,000 probes (issue 24)."""

    __slots__ = ("bounds", "count", "counts", "exemplars", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts: list[int] = []
        self.sum = 0.0
        self.count = 0
        self.exemplars: list[bytes | Exemplar | None] | None = None

    def observe(self, value: float, trace_id: str | None = None, at: float = 0.0) -> None:
        i = bisect.bisect_left(self.bounds, value)
        counts = self.counts
        if i < len(counts):
            counts[i] += 1
        else:  # a new list of exactly the length asked (appending would leave room)
            self.counts = counts + [0] * (i - len(counts)) + [1]
        self.sum += value
        self.count += 1
        if trace_id is not None:
            ex = self.exemplars
            if ex is None:
                ex = self.exemplars = [None] * (i + 1)
            elif i >= len(ex):
                ex = self.exemplars = ex + [None] * (i + 1 - len(ex))
            ex[i] = _packed(trace_id, value, at)

    def copy(self) -> Buckets:
        other = Buckets(self.bounds)
        other.counts, other.sum, other.count = list(self.counts), self.sum, self.count
        if self.exemplars is not None:
            other.exemplars = list(self.exemplars)
        return other


# Runs by outcome, in the order the outcomes were first seen. Nearly every probe has seen
# one outcome only: (outcome, runs), 64 bytes, where a dict of one entry was ~200 (~1.4 MiB
# of 10,000 probes, issue 24); a dict from the second outcome on; () before the first run.
Counts = dict[Outcome, int] | tuple[Outcome, int] | tuple[()]


def _counted(counts: Counts, outcome: Outcome) -> Counts:
    """``counts`` with one more run of ``outcome`` (the dict is changed in place)."""
    if isinstance(counts, dict):
        counts[outcome] = counts.get(outcome, 0) + 1
        return counts
    if not counts:
        return (outcome, 1)
    if counts[0] is outcome:
        return (outcome, counts[1] + 1)
    return {counts[0]: counts[1], outcome: 1}


def _items(counts: Counts) -> Iterable[tuple[Outcome, int]]:
    if isinstance(counts, dict):
        return counts.items()
    return (counts,) if counts else ()


@dataclass(slots=True)  # 10,000 of these
class _ProbeSeries:
    labels: str  # the rendered label pairs, built once per (re)configuration
    type: str
    interval: float
    last: Result | None = None
    last_success: float | None = None
    runs: Counts = ()
    # The maps below are made at their first entry: most probes never retry, and have no
    # steps or events (three empty dicts were 1.8 MiB of 10,000 probes, issue 24).
    retries: dict[Outcome, int] | None = None
    duration: Buckets = field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    steps: dict[str, Buckets] | None = None
    # (step, event) → time from the step's start to the event; events are the configured
    # types (never what a server sent), so the label values are bounded by the config.
    events: dict[tuple[str, str], Buckets] | None = None
    # The histograms the probe's kind declares, by family name (created on first use).
    measured: dict[str, Buckets] | None = None
    # Scrapes in progress that hold this series: while any does, it is never changed (a
    # change goes to a copy, ``newer``, which takes its place among the live series).
    held: int = 0
    newer: _ProbeSeries | None = None

    def snapshot(self) -> _ProbeSeries:
        return _ProbeSeries(self.labels, self.type, self.interval, self.last, self.last_success,
                            dict(self.runs) if isinstance(self.runs, dict) else self.runs,
                            None if self.retries is None else dict(self.retries),
                            self.duration.copy(),
                            None if self.steps is None
                            else {k: b.copy() for k, b in self.steps.items()},
                            None if self.events is None
                            else {k: b.copy() for k, b in self.events.items()},
                            None if self.measured is None
                            else {k: b.copy() for k, b in self.measured.items()})


@dataclass
class Snapshot:
    series: list[_ProbeSeries]  # held until Surfacer.release: never changed meanwhile
    daemon_labels: str
    lag: Buckets
    skipped: dict[str, int]
    reload_ok: int
    reload_ok_at: float
    configured: int
    otlp: tuple[int, dict[str, int]] | None = None  # spans exported, dropped by reason
    shard: tuple[int, int] | None = None  # --shard I/N
    external_url: str | None = None
    released: bool = False


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


def wants_openmetrics(accept: str | None) -> bool:
    """Content negotiation as Prometheus's own client does it: OpenMetrics when the scraper
    lists ``application/openmetrics-text`` (and does not refuse it with ``q=0``), the
    classic text format otherwise. Prometheus asks for OpenMetrics first by default."""
    for item in (accept or "").split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        if kind.lower() != "application/openmetrics-text":
            continue
        q = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(q) > 0:
                return True
        except ValueError:
            return True
    return False


def _event_keys(probe: Probe) -> set[tuple[str, str]]:
    """The (step, event) pairs ``probe``'s config can produce."""
    return probe.spec.kind_spec.event_keys()


def _families() -> tuple[list[tuple[str, str, dict[str, Gauge | PhaseGauge | LabelledGauge]]],
                         list[tuple[str, str, tuple[float, ...]]]]:
    """The gauge and histogram families the kinds declare, each once (several kinds may
    share one, e.g. an HTTP status), in the order the kinds are registered:
    (name, doc, {kind: its gauge of that family}) and (name, doc, buckets)."""
    gauges: dict[str, tuple[str, str, dict[str, Gauge | PhaseGauge | LabelledGauge]]] = {}
    histograms: dict[str, tuple[str, str, tuple[float, ...]]] = {}
    for kind in KINDS.values():
        for g in kind.gauges:
            gauges.setdefault(g.name, (g.name, g.doc, {}))[2][kind.name] = g
        for h in kind.histograms:
            histograms.setdefault(h.name, (h.name, h.doc, h.buckets))
    return list(gauges.values()), list(histograms.values())


_GAUGES, _HISTOGRAMS = _families()


def _le(buckets: Sequence[float]) -> tuple[str, ...]:
    return (*(f'le="{_num(b)}"' for b in buckets), 'le="+Inf"')


def format_snapshot(snap: Snapshot, openmetrics: bool = False) -> bytes:
    """The exposition of a snapshot, in one piece: the Prometheus text format 0.0.4, or
    OpenMetrics 1.0 text with exemplars when ``openmetrics``."""
    return b"".join(iter_exposition(snap, openmetrics=openmetrics))


def iter_exposition(snap: Snapshot, chunk_lines: int = CHUNK_LINES,
                    openmetrics: bool = False) -> Iterator[bytes]:
    """The exposition of ``format_snapshot`` in pieces of about ``chunk_lines`` lines.

    At 10,000 probes the whole text is about 32 MB; built as one list of lines, one string
    and one bytes object it peaked at 120 MB and left the heap that much larger for good.
    In pieces, a scrape holds a few hundred KB at a time.

    OpenMetrics differs in three places only: a counter's family is named without
    ``_total`` in HELP and TYPE, histogram buckets carry the run's trace id as an exemplar
    (``# {trace_id="..."} value timestamp``), and the text ends with ``# EOF``.
    """
    out: list[str] = []
    add = out.append
    series = snap.series
    ran = [s for s in series if s.last is not None]

    def flush() -> bytes:
        data = "".join(out).encode("utf-8")
        out.clear()
        return data

    def cut() -> Iterator[bytes]:
        # Between series only, so that a piece always ends with a whole line.
        if len(out) >= chunk_lines:
            yield flush()

    def head(name: str, kind: str, doc: str) -> None:
        if openmetrics and kind == "counter":
            name = name.removesuffix("_total")
        add(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")

    def histogram(name: str, labels: str, b: Buckets, les: Sequence[str]) -> None:
        _histogram(add, name, labels, b, les, openmetrics)

    def gauge(name: str, doc: str, rows: Iterable[tuple[str, float]]) -> Iterator[bytes]:
        head(name, "gauge", doc)
        for labels, value in rows:
            add(f"{name}{{{labels}}} {_num(value)}\n" if labels else f"{name} {_num(value)}\n")
            yield from cut()

    def kind_gauge(name: str, doc: str, by_kind: dict[str, Gauge | PhaseGauge | LabelledGauge]
                   ) -> Iterator[bytes]:
        # A family a kind declares: the series of the probes of every kind declaring it.
        head(name, "gauge", doc)
        for s in ran:
            g = by_kind.get(s.type)
            if g is None or s.last is None:
                continue
            if isinstance(g, PhaseGauge):
                # Every phase is written, 0 where a run did not reach it: stable series.
                phases = dict(s.last.phases)
                for ph in g.phases:
                    add(f'{name}{{{s.labels},phase="{ph}"}} {_num(phases.get(ph, 0.0))}\n')
            elif isinstance(g, LabelledGauge):
                for label, row in g.rows(s.last):
                    add(f'{name}{{{s.labels},{g.label}="{_escape(label)}"}} {_num(row)}\n')
            else:
                value = g.value(s.last)
                if value is not None:
                    add(f"{name}{{{s.labels}}} {_num(value)}\n")
            yield from cut()

    def last(s: _ProbeSeries) -> Result:
        assert s.last is not None
        return s.last

    yield from gauge("probe_success", "1 if the last run succeeded",
                     ((s.labels, 1.0 if last(s).success else 0.0) for s in ran))
    yield from gauge("probe_duration_seconds", "duration of the last run",
                     ((s.labels, last(s).duration_seconds) for s in ran))
    for name, doc, by_kind in _GAUGES:
        yield from kind_gauge(name, doc, by_kind)
    yield from gauge("probe_ssl_earliest_cert_expiry", "earliest certificate notAfter, unix s",
                     ((s.labels, s.last.cert_expiry) for s in ran
                      if s.last is not None and s.last.cert_expiry is not None))
    head("synthmon_probe_outcome", "gauge", "1 for the last run's outcome, 0 for others seen")
    for s in ran:
        current = last(s).outcome
        for oc, _ in _items(s.runs):
            add(f'synthmon_probe_outcome{{{s.labels},outcome="{oc.value}"}} '
                f"{'1.0' if oc is current else '0.0'}\n")
        yield from cut()
    head("synthmon_probe_runs_total", "counter", "probe runs by outcome")
    for s in series:
        for oc, n in _items(s.runs):
            add(f'synthmon_probe_runs_total{{{s.labels},outcome="{oc.value}"}} {_num(n)}\n')
        yield from cut()
    head("synthmon_probe_retries_total", "counter",
         "retries of failed runs, by the outcome of the retry (success: a blip healed)")
    for s in series:
        for oc, n in s.retries.items() if s.retries is not None else ():
            add(f'synthmon_probe_retries_total{{{s.labels},outcome="{oc.value}"}} {_num(n)}\n')
        yield from cut()
    head("synthmon_probe_duration_seconds", "histogram", "probe run duration")
    for s in series:
        if s.duration.count:
            histogram("synthmon_probe_duration_seconds", s.labels, s.duration, _LE)
        yield from cut()
    head("synthmon_probe_step_duration_seconds", "histogram",
         "duration of each step of a run (WebSocket steps, a flow's steps)")
    for s in series:
        for step, b in s.steps.items() if s.steps is not None else ():
            histogram("synthmon_probe_step_duration_seconds",
                      f'{s.labels},step="{_escape(step)}"', b, _LE)
        yield from cut()
    head("synthmon_probe_event_seconds", "histogram",
         "time from the start of an events wait (a WebSocket step, a stream) to each "
         "expected event")
    for s in series:
        for (step, event), b in s.events.items() if s.events is not None else ():
            _histogram(add, "synthmon_probe_event_seconds",
                       f'{s.labels},step="{_escape(step)}",event="{_escape(event)}"', b,
                       _EVENT_LE)
        yield from cut()
    for name, doc, buckets in _HISTOGRAMS:
        head(name, "histogram", doc)
        les = _le(buckets)
        for s in series:
            kept = s.measured.get(name) if s.measured is not None else None
            if kept is not None and kept.count:
                histogram(name, s.labels, kept, les)
            yield from cut()
    yield from gauge("synthmon_probe_last_run_timestamp_seconds", "end of the last run",
                     ((s.labels, last(s).started_at + last(s).duration_seconds) for s in ran))
    yield from gauge("synthmon_probe_last_success_timestamp_seconds",
                     "end of the last successful run",
                     ((s.labels, s.last_success) for s in series if s.last_success is not None))
    yield from gauge("synthmon_probe_interval_seconds", "configured interval",
                     ((s.labels, s.interval) for s in series))

    dl = snap.daemon_labels
    sep = "," if dl else ""
    head("synthmon_build_info", "gauge", "synthmon version")
    add(f'synthmon_build_info{{version="{_escape(__version__)}"{sep}{dl}}} 1.0\n')
    if snap.external_url is not None:
        head("synthmon_external_url_info", "gauge",
             "where people reach this synthmon (--external-url): the alerts link to it")
        add(f'synthmon_external_url_info{{url="{_escape(snap.external_url)}"{sep}{dl}}} 1.0\n')
    yield from gauge("synthmon_config_last_reload_successful",
                     "1 if the last config (re)load succeeded", [(dl, float(snap.reload_ok))])
    yield from gauge("synthmon_config_last_reload_success_timestamp_seconds",
                     "time of the last successful config load", [(dl, snap.reload_ok_at)])
    yield from gauge("synthmon_probes_configured", "probes this daemon runs",
                     [(dl, snap.configured)])
    if snap.shard is not None:
        # What the fleet's rules (deploy/prometheus/fleet.yml) need to tell a shard that is
        # down from one that a resharding removed, and a location whose shards do not add
        # up to one copy of probes.yaml (two daemons on one index, daemons disagreeing on N).
        index, count = snap.shard
        yield from gauge("synthmon_shards",
                         "number of shards the probes are split into (--shard I/N: N); "
                         "label shard: this daemon's I",
                         [(f'shard="{index}"{sep}{dl}', float(count))])
    head("synthmon_scheduler_lag_seconds", "histogram",
         "actual start minus planned start of probe runs")
    histogram("synthmon_scheduler_lag_seconds", dl, snap.lag, _LAG_LE)
    head("synthmon_probe_skipped_total", "counter", "probe runs not started")
    for reason, n in snap.skipped.items():
        add(f'synthmon_probe_skipped_total{{reason="{_escape(reason)}"{sep}{dl}}} {_num(n)}\n')
    if snap.otlp is not None:
        exported, dropped = snap.otlp
        head("synthmon_otlp_spans_exported_total", "counter", "spans accepted by the collector")
        add(f"synthmon_otlp_spans_exported_total{{{dl}}} {_num(exported)}\n" if dl else
            f"synthmon_otlp_spans_exported_total {_num(exported)}\n")
        head("synthmon_otlp_spans_dropped_total", "counter",
             "spans not exported: queue_full (the collector is slow or down) or export_failed")
        for reason, n in dropped.items():
            add(f'synthmon_otlp_spans_dropped_total{{reason="{reason}"{sep}{dl}}} {_num(n)}\n')
    if openmetrics:
        add("# EOF\n")
    yield flush()


def _histogram(emit: Callable[[str], None], name: str, labels: str, b: Buckets,
               les: Sequence[str], exemplars: bool = False) -> None:
    sep = "," if labels else ""
    acc = 0
    counts, seen = b.counts, len(b.counts)
    kept_ex = b.exemplars if exemplars and b.exemplars is not None else ()
    for i, le in enumerate(les):
        if i < seen:
            acc += counts[i]
        kept = kept_ex[i] if i < len(kept_ex) else None
        if kept is None:
            emit(f"{name}_bucket{{{labels}{sep}{le}}} {_num(acc)}\n")
        else:
            ex = exemplar(kept)
            # The trace id is 32 hex digits from monitor.trace: nothing to escape.
            emit(f'{name}_bucket{{{labels}{sep}{le}}} {_num(acc)} # {{trace_id="{ex[0]}"}} '
                 f"{_num(ex[1])} {ex[2]:.3f}\n")
    braced = f"{{{labels}}}" if labels else ""
    emit(f"{name}_count{braced} {_num(b.count)}\n")
    emit(f"{name}_sum{braced} {_num(b.sum)}\n")
