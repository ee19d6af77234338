"""A probe's series as the surfacer keeps them between scrapes: histograms with their
exemplars, runs by outcome, and the snapshot a scrape holds."""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from monitor.outcomes import Outcome
from monitor.result import Result

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Agents take seconds to minutes: "time to agent_completed" is an SLO on this scale.
EVENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SKIP_REASONS = ("overlap", "misfire")




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

