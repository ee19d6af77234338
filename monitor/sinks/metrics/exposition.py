"""The exposition text of a snapshot (Prometheus text format or OpenMetrics), written in
pieces so that a scrape never holds the event loop for long."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

from monitor import __version__
from monitor.config import Probe
from monitor.probes.kind import Gauge, LabelledGauge, PhaseGauge
from monitor.probes.kinds import KINDS
from monitor.result import Result
from monitor.sinks.metrics.series import (
    DURATION_BUCKETS,
    EVENT_BUCKETS,
    LAG_BUCKETS,
    Buckets,
    Snapshot,
    _items,
    _ProbeSeries,
    exemplar,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# A piece of a scrape: about 1,000 lines, ~125 KB, about a millisecond of formatting; the
# loop runs between two pieces.
CHUNK_LINES = 1000


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
