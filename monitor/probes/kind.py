"""What a probe kind declares about itself, for the parts that never branch on a kind.

Each kind's package (``monitor/probes/<key>/``) exports one :class:`ProbeKind`: its runner,
the phases its runs report, the metric families it exports beyond the ones every kind
shares, the attributes and events of its span, and the words the status page and ``once``
use for its answer. The metrics, the spans, the status page and the incidents read these
declarations (:mod:`monitor.probes.kinds`) the way Cloudprober's surfacers read a probe's
EventMetrics, or blackbox_exporter's probers register their own gauges: the sinks never
ask which kind a run was.

Everything here is plain data and pure functions of a :class:`~monitor.result.Result`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from monitor.config import Probe
from monitor.probes.context import ProbeContext
from monitor.result import Result

Runner = Callable[[Probe, ProbeContext], Awaitable[Result]]
NOT_RUN = "not run"  # a config_error: the probe sent nothing, so nothing answered
SpanValue = str | int | bool | float


@dataclass(frozen=True, slots=True)
class Gauge:
    """A gauge of the last run: one series per probe of the kind, ``value(result)`` (None:
    not written for that run)."""

    name: str
    doc: str
    value: Callable[[Result], float | None]


@dataclass(frozen=True, slots=True)
class PhaseGauge:
    """A gauge of the last run with a ``phase`` label: every phase written (0 where a run
    did not reach it), so that series stay stable."""

    name: str
    doc: str
    phases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabelledGauge:
    """A gauge of the last run with one label of its own (a flow's ``step``):
    ``rows(result)`` gives (label value, value) for every value the probe's config can
    produce, so that the label stays bounded and series stable."""

    name: str
    doc: str
    label: str
    rows: Callable[[Result], Iterable[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class Histogram:
    """A histogram of every final run, observing the run's measure ``measure`` (runs
    without it are not observed), with its trace id as exemplar."""

    name: str
    doc: str
    measure: str
    buckets: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """An event on the run's span: ``offset`` seconds after the run started."""

    name: str
    offset: float
    attributes: dict[str, SpanValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wording:
    """How a kind's runs are spoken of. ``noun``: "WebSocket"; ``answer_label``: the row
    under which ``answer(result)`` (one phrase on how the target answered, None when the
    detail says it already) stands on the status page and in the results API."""

    noun: str
    answer_label: str
    answer: Callable[[Result], str | None]


def _no_attributes(result: Result) -> dict[str, SpanValue]:
    return {}


def _no_events(result: Result) -> tuple[SpanEvent, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class ProbeKind:
    """One probe kind, as everything outside its package sees it."""

    name: str  # the key in probes.yaml and the ``type`` label
    runner: Runner
    phases: tuple[str, ...]  # the ``phase`` label values of its runs, in order
    gauges: tuple[Gauge | PhaseGauge | LabelledGauge, ...] = ()
    histograms: tuple[Histogram, ...] = ()
    span_attributes: Callable[[Result], dict[str, SpanValue]] = _no_attributes
    span_events: Callable[[Result], tuple[SpanEvent, ...]] = _no_events
    words: Wording = Wording("probe", "answer", lambda r: None)
    # Its runs upgrade the connection (a 101 proves route and credentials): the incidents'
    # cross-check of routes and credentials compares such probes.
    upgrades: bool = False
    # Imports what its runs need, for a kind whose runner is imported at its first use
    # (monitor.preload calls it before the first run of a config with such probes or steps).
    load: Callable[[], object] | None = None


__all__ = ["NOT_RUN", "Gauge", "Histogram", "LabelledGauge", "PhaseGauge", "ProbeKind",
           "Runner", "SpanEvent", "SpanValue", "Wording"]
