"""What one WebSocket run carries from start to result, typed end to end.

A run keeps three mutable things: the phases it went through, the step timings, and
what the handshake established (:class:`Handshake`, replaced once, never patched). A
failure stops the run with a :class:`Failure`: a :class:`Verdict` and what the failing
step found (:class:`Found`), both frozen, so a misspelled piece of evidence is a type
error rather than a silently dropped keyword. :meth:`Run.result` hands them to the one
builder of every kind's Result (:mod:`monitor.probes.record`), which redacts them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Final

from monitor.config import Probe, WebSocketSpec
from monitor.durations import ms
from monitor.probes.context import ProbeContext
from monitor.probes.record import NOTHING_FOUND, Found, Measured, Verdict, build_result
from monitor.probes.transcript import Transcript
from monitor.result import EventMatch, EventTiming, Result, StepTiming


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
        """The immutable result (:func:`~monitor.probes.record.build_result` redacts it),
        with what the handshake established where the verdict does not say."""
        hs = self.handshake
        status_code = verdict.status_code if verdict.status_code is not None \
            else hs.status_code
        subprotocol = verdict.subprotocol or hs.subprotocol
        if status_code != verdict.status_code or subprotocol != verdict.subprotocol:
            verdict = replace(verdict, status_code=status_code, subprotocol=subprotocol)
        frames, omitted = self.transcript.frames() if self.transcript is not None else ((), 0)
        measured = Measured(
            started_at=self.started_at, duration_seconds=self.now() - self.t0,
            phases=tuple(self.phases), steps=tuple(self.steps), events=tuple(self.events),
            matches=tuple(self.matches), duplicates=tuple(self.duplicates.items()),
            transcript=frames, transcript_omitted=omitted, upgraded=hs.upgraded,
            cert_expiry=hs.cert_expiry, token=self.token)
        return build_result(self.probe, self.ctx, verdict, measured, found)


__all__ = ["NOTHING_FOUND", "NOT_OPENED", "Failure", "Found", "Handshake", "Run"]
