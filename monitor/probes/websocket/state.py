"""What one WebSocket run carries from start to result, typed end to end.

A run keeps three mutable things: the phases it went through, the step timings, and
what the handshake established (:class:`Handshake`, replaced once, never patched). A
failure stops the run with a :class:`Failure`: a :class:`Verdict` and what the failing
step found (:class:`Found`), both frozen, so a misspelled piece of evidence is a type
error rather than a silently dropped keyword. :meth:`Run.result` is the one place where
evidence is redacted and the :class:`Result` is built.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Final

from monitor.config import Probe, WebSocketSpec
from monitor.durations import ms
from monitor.probes.context import ProbeContext
from monitor.probes.transcript import Transcript
from monitor.probes.websocket.verdicts import Verdict
from monitor.result import (
    EventMatch,
    EventTiming,
    Evidence,
    FrameTypes,
    Result,
    StepTiming,
)
from monitor.targets import target_of


@dataclass(frozen=True, slots=True)
class Found:
    """What the conversation adds to a verdict's evidence: where it failed, the message
    and close frame that decided it, the events seen so far."""

    step: int | None = None
    step_name: str | None = None
    last_message: str | bytes | None = None
    close_code: int | None = None
    close_reason: str | None = None
    events_seen: tuple[str, ...] = ()
    frames_seen: tuple[FrameTypes, ...] = ()  # a failed events step: what did arrive
    hint: str | None = None  # e.g. the expected events came under another field or name


NOTHING_FOUND: Final = Found()


@dataclass(frozen=True, slots=True)
class Handshake:
    """What opening the WebSocket established; :data:`NOT_OPENED` until it is known."""

    status_code: int | None = None
    upgraded: bool = False
    subprotocol: str | None = None
    open_seconds: float | None = None  # from the start of the run to the 101
    cert_expiry: float | None = None


NOT_OPENED: Final = Handshake()


class Failure(Exception):
    """Ends a run early with ``verdict`` and what was ``found``; caught by the run only."""

    def __init__(self, verdict: Verdict, found: Found = NOTHING_FOUND) -> None:
        super().__init__(verdict.detail)
        self.verdict: Final = verdict
        self.found: Final = found


@dataclass(slots=True)
class Run:
    """One run's clock and what it has measured so far."""

    probe: Probe
    ctx: ProbeContext
    spec: WebSocketSpec
    loop: asyncio.AbstractEventLoop
    started_at: float  # wall clock, for the result
    t0: float  # loop clock
    deadline: float  # loop clock: every wait of the run ends by then
    phases: list[tuple[str, float]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    handshake: Handshake = NOT_OPENED
    # What the conversation measured, on success as on failure: when each expected event
    # first came, under which path and spelling, how often one came again.
    events: list[EventTiming] = field(default_factory=list)
    matches: list[EventMatch] = field(default_factory=list)
    duplicates: dict[str, int] = field(default_factory=dict)
    expected_seen: bool = False  # an expected message or event has arrived
    transcript: Transcript | None = None
    token: str | None = None  # the credential sent, to spot it reflected in an answer

    def now(self) -> float:
        return self.loop.time()

    def remaining(self) -> float:
        return max(0.0, self.deadline - self.now())

    def until(self, timeout: float | None) -> float:
        """The deadline of a wait bounded by ``timeout`` and by the run's deadline."""
        return self.deadline if timeout is None else min(self.deadline, self.now() + timeout)

    def timeout_words(self, timeout: float | None, until: float) -> str:
        """Which bound a wait that ended at ``until`` ran into, in words."""
        if timeout is not None and until < self.deadline:
            return f"within the step timeout ({ms(timeout)})"
        return f"before the probe timeout ({ms(self.probe.timeout)})"

    def result(self, verdict: Verdict, found: Found = NOTHING_FOUND) -> Result:
        """The immutable result, with every evidence string redacted here, in one place."""
        r = self.ctx.redactor
        hs = self.handshake
        status = verdict.status_code if verdict.status_code is not None else hs.status_code
        diagnosis = verdict.diagnosis
        if diagnosis is not None:
            diagnosis = replace(
                diagnosis,
                content_type=r.redact(diagnosis.content_type),
                body_excerpt=r.excerpt(diagnosis.body_excerpt),
                hint=r.redact(diagnosis.hint) or "",
                error=r.redact(diagnosis.error),
            )
        ev = Evidence(
            detail=r.redact(verdict.detail) or "",
            status_code=status,
            headers=r.headers(verdict.headers),
            content_type=r.redact(verdict.content_type),
            body_excerpt=r.excerpt(verdict.body),
            close_code=found.close_code,
            close_reason=r.redact(found.close_reason),
            step=found.step,
            step_name=r.redact(found.step_name),
            last_message=r.excerpt(found.last_message),
            subprotocol=r.redact(verdict.subprotocol or hs.subprotocol),
            events_seen=tuple(r.redact(e) or "" for e in found.events_seen),
            diagnosis=diagnosis,
            hint=r.redact("; ".join(h for h in (verdict.hint, found.hint) if h) or None),
            retry_after=r.redact(verdict.retry_after),
            reflected_in=verdict.reflected_in,
            event_matches=tuple(replace(m, spelling=r.redact(m.spelling) or "")
                                for m in self.matches),
            duplicates=tuple(self.duplicates.items()),
            frames_seen=tuple(
                replace(f, types=tuple((p, r.redact(v)) for p, v in f.types))
                for f in found.frames_seen),
        )
        frames, omitted = self.transcript.frames() if self.transcript is not None else ((), 0)
        return Result(
            probe=self.probe.name,
            type="websocket",
            target=target_of(self.spec.url),
            outcome=verdict.outcome,
            started_at=self.started_at,
            duration_seconds=self.now() - self.t0,
            status_code=status,
            close_code=found.close_code,
            upgraded=hs.upgraded,
            phases=tuple(self.phases),
            steps=tuple(self.steps),
            cert_expiry=hs.cert_expiry,
            evidence=ev,
            events=tuple(self.events),
            transcript=frames,
            transcript_omitted=omitted,
            trace_id=self.ctx.trace_id, span_id=self.ctx.span_id,
        )


__all__ = ["NOTHING_FOUND", "NOT_OPENED", "Failure", "Found", "Handshake", "Run"]
