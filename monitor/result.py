"""Immutable records of what one probe run saw.

A probe returns exactly one :class:`Result`; sinks (metrics, log, history) read it and
never change it. Evidence strings are already redacted and truncated when they get here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.outcomes import Outcome

EXCERPT_BYTES = 1024


def excerpt(data: bytes | str | None, limit: int = EXCERPT_BYTES) -> str | None:
    """The first ``limit`` bytes of a body or message as text, for evidence."""
    if data is None:
        return None
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    text = raw[:limit].decode("utf-8", "replace")
    if len(raw) > limit:
        text += "…"
    return text


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The answer to one plain GET of a WebSocket URL after a non-101 handshake."""

    status_code: int | None
    content_type: str | None
    body_excerpt: str | None
    hint: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the server actually answered, kept for the status page and the log."""

    detail: str = ""
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body_excerpt: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    step: int | None = None
    step_name: str | None = None
    last_message: str | None = None
    subprotocol: str | None = None
    events_seen: tuple[str, ...] = ()
    diagnosis: Diagnosis | None = None


@dataclass(frozen=True, slots=True)
class StepTiming:
    index: int
    name: str
    duration_seconds: float


@dataclass(frozen=True, slots=True)
class Result:
    probe: str
    type: str  # "http" | "websocket"
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

    @property
    def success(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["success"] = self.success
        data["phases"] = dict(self.phases)
        data["evidence"]["headers"] = dict(self.evidence.headers)
        return data
