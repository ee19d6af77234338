"""Immutable records of what one probe run saw.

A probe returns exactly one :class:`Result`; sinks (metrics, log, history) read it and
never change it. Every string a server chose is :data:`~monitor.keep.Kept` here: redacted,
without control characters and bounded by :mod:`monitor.keep`, the only place that makes
one, so that the records cannot be built from a raw server string.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.frozen import fast_init
from monitor.keep import EMPTY, Kept, KeptHeaders
from monitor.limits import EXCERPT_BYTES, LOCATION_CHARS, TRANSCRIPT_BYTES, TRANSCRIPT_FRAMES
from monitor.outcomes import Outcome
from monitor.runname import run_name


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The answer to one plain GET of a WebSocket URL after a non-101 handshake."""

    status_code: int | None
    content_type: Kept | None
    body_excerpt: Kept | None
    hint: Kept
    error: Kept | None = None


@dataclass(frozen=True, slots=True)
class FrameTypes:
    """One message that arrived during an events step, and the type it carries under each
    candidate path (None: the path is absent), so that a drifted envelope shows."""

    offset_ms: float
    types: tuple[tuple[str, Kept | None], ...]  # (dotted path, value there)


@dataclass(frozen=True, slots=True)
class EventMatch:
    """How an expected event was recognised: under which path, by which spelling."""

    event: str
    path: str
    spelling: Kept


@dataclass(frozen=True, slots=True)
class Redirect:
    """One redirect answer of a run: its status and its Location as sent (kept: redacted,
    at most LOCATION_CHARS characters, control characters made visible)."""

    status: int
    location: Kept


@fast_init
@dataclass(frozen=True, slots=True)
class Evidence:
    """What the server actually answered, kept for the status page and the log."""

    detail: Kept = EMPTY
    status_code: int | None = None
    headers: KeptHeaders = ()  # at most HEADERS_KEPT, HEADERS_BYTES in all (monitor.limits)
    headers_omitted: int = 0  # headers of the answer beyond those
    content_type: Kept | None = None
    body_excerpt: Kept | None = None  # the first EXCERPT_BYTES
    close_code: int | None = None
    close_reason: Kept | None = None
    step: int | None = None
    step_name: str | None = None  # from the config
    last_message: Kept | None = None  # the first EXCERPT_BYTES
    subprotocol: Kept | None = None
    events_seen: tuple[Kept, ...] = ()  # in order, at most EVENTS_SEEN_KEPT
    events_seen_omitted: int = 0  # messages of the step beyond those
    diagnosis: Diagnosis | None = None
    # A plain-words hint on what the answer means (a refusal, a close, an envelope drift).
    hint: Kept | None = None
    retry_after: Kept | None = None  # kept from a 429 or 503 answer
    reflected_in: Kept | None = None  # token_reflected: the header name, never its value
    event_matches: tuple[EventMatch, ...] = ()
    duplicates: tuple[tuple[str, int], ...] = ()  # expected event → repeats counted
    frames_seen: tuple[FrameTypes, ...] = ()  # an events step that failed: what did come
    frames_seen_omitted: int = 0  # messages of that step beyond FRAMES_KEPT
    # The history dropped the bulk of this run's evidence (headers, bodies, frames, the
    # transcript) to stay within HISTORY_EVIDENCE_BYTES for its probe.
    trimmed: bool = False
    # The redirects answered before the final answer, in order (follow_redirects; at most
    # max_redirects + 1 of them): where a redirect loop or an https -> http hop shows.
    redirects: tuple[Redirect, ...] = ()


_NO_EVIDENCE = Evidence()


@dataclass(frozen=True, slots=True)
class StepTiming:
    index: int
    name: str
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class EventTiming:
    """Time from an events step's start to the first arrival of one expected event."""

    step: str
    event: str
    seconds: float


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a run made of steps of other kinds (a flow): what it did and what it
    saw. ``outcome`` is None for a step that did not run (``detail`` says why)."""

    index: int
    name: str
    type: str  # the step's kind
    outcome: Outcome | None
    duration_seconds: float = 0.0
    always: bool = False
    status_code: int | None = None
    close_code: int | None = None
    evidence: Evidence = field(default_factory=lambda: _NO_EVIDENCE)  # redacted, bounded
    values: tuple[str, ...] = ()  # the names of the values it extracted (never the values)

    @property
    def ran(self) -> bool:
        return self.outcome is not None

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.SUCCESS


@fast_init  # a stream's transcript makes one an event (up to TRANSCRIPT_FRAMES)
@dataclass(frozen=True, slots=True)
class Frame:
    """One WebSocket frame (or stream event) of a run's transcript; ``data`` is its
    redacted start."""

    direction: str  # "sent" | "received"
    offset_ms: float  # since the handshake began
    kind: str  # "text" | "binary" | "ping" | "pong" | "close"
    size: int  # bytes of the whole payload
    data: Kept  # the first TRANSCRIPT_BYTES bytes, redacted (binary: hex)


@fast_init
@dataclass(frozen=True, slots=True)
class Result:
    probe: str
    type: str  # the probe's kind (monitor.probes.kinds): "http", "websocket", ...
    target: str
    outcome: Outcome
    started_at: float  # unix time
    duration_seconds: float
    status_code: int | None = None
    close_code: int | None = None
    upgraded: bool = False
    phases: tuple[tuple[str, float], ...] = ()
    steps: tuple[StepTiming, ...] = ()
    cert_expiry: float | None = None  # unix time of the earliest notAfter
    evidence: Evidence = field(default_factory=Evidence)
    # Which try of its run this is (1 = the scheduled one; see monitor.runtime). Only a
    # final attempt is the run's result: sinks set gauges and streaks from final ones only.
    attempt: int = 1
    final: bool = True
    # The run's W3C trace (monitor.trace): sent in traceparent, exported as exemplar and span.
    trace_id: str | None = None
    span_id: str | None = None  # of the run's client span, the parent the target saw
    variant: str | None = None  # a negative probe's variant (see monitor/auth/variants.py)
    events: tuple[EventTiming, ...] = ()
    transcript: tuple[Frame, ...] = ()  # messages or events: at most TRANSCRIPT_FRAMES
    transcript_omitted: int = 0  # frames beyond those
    # Numbers a kind measures beyond phases and steps, by name (e.g. a stream's time to its
    # first event): what its gauges and histograms are made of (monitor.probes.kind).
    measures: tuple[tuple[str, float], ...] = ()
    # A run made of steps (a flow): the name of the step whose failure is the outcome, and
    # what every step did (monitor.probes.flow).
    step: str | None = None
    step_results: tuple[StepResult, ...] = ()

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def measure(self, name: str) -> float | None:
        """The measure ``name`` of this run, or None when the run did not get that far."""
        for key, value in self.measures:
            if key == name:
                return value
        return None

    @property
    def key(self) -> str:
        """The run's name in every output (monitor.runname): ``probe`` or ``probe@variant``;
        what history and series are kept under."""
        return run_name(self.probe, self.variant)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["probe"] = self.key  # the run's one name; ``variant`` stays a field of its own
        data["outcome"] = self.outcome.value
        data["success"] = self.success
        data["phases"] = dict(self.phases)
        data["measures"] = dict(self.measures)
        data["evidence"]["headers"] = dict(self.evidence.headers)
        for step in data["step_results"]:
            step["evidence"]["headers"] = dict(step["evidence"]["headers"])
        return data


__all__ = ["EXCERPT_BYTES", "LOCATION_CHARS", "TRANSCRIPT_BYTES", "TRANSCRIPT_FRAMES",
           "Diagnosis", "EventMatch", "EventTiming", "Evidence", "Frame", "FrameTypes",
           "Redirect", "Result", "StepTiming"]
