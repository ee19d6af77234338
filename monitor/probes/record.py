"""The one builder of a run's :class:`~monitor.result.Result`, for every kind.

A runner decides a :class:`Verdict` (the outcome, its words, the answer it was decided
from) and what the run found on the way (:class:`Found`: where it stopped, the message or
close that decided it, the events seen), both frozen and unredacted; it measures its
phases, steps and events (:class:`Measured`). :func:`build_result` makes the Result of
those in one place, the same way for every kind:

- the header fields: the probe, its kind, the ``target`` label, the variant, the run's
  trace and span ids;
- the answer's header fields: the headers redacted, the content type, ``Retry-After`` of a
  429 or 503;
- the reflection check: an answer whose headers carry the credential the run sent ends in
  ``token_reflected``, whatever else it showed (only the header's name is kept);
- keeping: every string the server chose becomes evidence here, through
  :class:`~monitor.keep.Keeper` (control characters made visible, secrets redacted, cut to
  its bound after that); what a wait kept as it went (events and frames seen) arrives
  kept already. The records take only :data:`~monitor.keep.Kept` strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from monitor.config import Probe, ProbeSpec
from monitor.frozen import fast_init
from monitor.keep import EMPTY, Keeper, Kept, shared
from monitor.limits import DETAIL_CHARS
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.memo import SpecMemo
from monitor.probes.reflection import reflected_detail, reflected_in
from monitor.result import (
    Diagnosis,
    EventMatch,
    EventTiming,
    Evidence,
    Frame,
    FrameTypes,
    Redirect,
    Result,
    StepTiming,
)
from monitor.targets import target_of


@dataclass(frozen=True, slots=True)
class DiagnosticGet:
    """The answer to one plain GET of the URL after a refused upgrade, as received
    (:func:`build_result` keeps it as a :class:`~monitor.result.Diagnosis`)."""

    status_code: int | None
    content_type: str | None
    body: bytes | None
    hint: str
    error: str | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome and the answer behind it, as received (kept by :func:`build_result`)."""

    outcome: Outcome
    detail: str
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # as received: kept by build_result
    content_type: str | None = None  # None: the Content-Type of ``headers``, if any
    body: bytes | bytearray | str | None = None
    subprotocol: str | None = None
    diagnosis: DiagnosticGet | None = None
    hint: str | None = None  # what this answer or close means, in plain words
    retry_after: str | None = None  # None: from ``headers`` on a 429 or 503
    reflected_in: str | None = None  # token_reflected: the header name, never its value
    redirects: tuple[Redirect, ...] = ()  # the chain followed, already redacted


@dataclass(frozen=True, slots=True)
class Found:
    """What the conversation or stream adds to a verdict's evidence: where it stopped, the
    message and close frame that decided it (as received), the events seen so far (kept
    already, as they arrived: :class:`~monitor.probes.events.EventMatcher`)."""

    step: int | None = None
    step_name: str | None = None
    last_message: str | bytes | None = None
    close_code: int | None = None
    close_reason: str | None = None
    events_seen: tuple[Kept, ...] = ()
    events_seen_omitted: int = 0
    frames_seen: tuple[FrameTypes, ...] = ()  # a failed events wait: what did arrive
    frames_seen_omitted: int = 0
    hint: str | None = None  # e.g. the expected events came under another field or name


NOTHING_FOUND: Final = Found()


@fast_init
@dataclass(frozen=True, slots=True)
class Measured:
    """What a run measured besides its verdict, on success as on failure."""

    started_at: float  # unix time
    duration_seconds: float
    phases: tuple[tuple[str, float], ...] = ()
    steps: tuple[StepTiming, ...] = ()
    events: tuple[EventTiming, ...] = ()
    matches: tuple[EventMatch, ...] = ()
    duplicates: tuple[tuple[str, int], ...] = ()
    transcript: tuple[Frame, ...] = ()  # already redacted (monitor.probes.transcript)
    transcript_omitted: int = 0
    measures: tuple[tuple[str, float], ...] = ()
    upgraded: bool = False
    cert_expiry: float | None = None
    token: str | None = None  # the credential sent, for the reflection check


@dataclass(frozen=True, slots=True)
class Named:
    """What every Result of a probe says it is: its name, its kind and its ``target``
    label, each worked out from its spec once (:class:`~monitor.probes.memo.SpecMemo`)."""

    name: str
    type: str
    target: str


NAMED: Final[SpecMemo[ProbeSpec, Named]] = SpecMemo()


def named(probe: Probe) -> Named:
    """The name, kind and ``target`` of ``probe``, worked out once for its spec."""
    spec = probe.spec
    known = NAMED.get(spec)
    if known is None:
        known = NAMED.put(spec, Named(spec.name, spec.type, target_of(spec.url)))
    return known


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def build_result(probe: Probe, ctx: ProbeContext, verdict: Verdict, measured: Measured,
                 found: Found = NOTHING_FOUND) -> Result:
    """The immutable result of one run (see the module docstring)."""
    k = Keeper(ctx.redactor)
    reflected = verdict.reflected_in or reflected_in(verdict.headers, measured.token)
    if reflected is not None and verdict.outcome is not Outcome.TOKEN_REFLECTED:
        verdict = replace(verdict, outcome=Outcome.TOKEN_REFLECTED,
                          detail=reflected_detail(reflected), reflected_in=reflected)
    status = verdict.status_code
    retry_after = verdict.retry_after
    if retry_after is None and status in (429, 503):
        retry_after = _header(verdict.headers, "Retry-After")
    content_type = verdict.content_type or _header(verdict.headers, "Content-Type")
    got = verdict.diagnosis
    diagnosis = None if got is None else Diagnosis(
        status_code=got.status_code,
        content_type=k.text(got.content_type),
        body_excerpt=k.excerpt(got.body),
        hint=k.words(got.hint),
        error=k.text(got.error, DETAIL_CHARS),
    )
    headers, omitted = k.headers(verdict.headers)
    text = k.text
    # Positional, in the order of the fields: a call with more than 15 keyword arguments
    # compiles to a dict built and unpacked again (CPython's STACK_USE_GUIDELINE), which
    # was a tenth of what building a Result costs. tests/probes/test_record.py checks that
    # every field lands where it belongs.
    evidence = Evidence(
        k.words(verdict.detail),  # detail
        status,  # status_code
        headers,  # headers
        omitted,  # headers_omitted
        None if content_type is None else shared(text(content_type) or EMPTY),
        k.excerpt(verdict.body),  # body_excerpt
        found.close_code,  # close_code
        None if found.close_reason is None else text(found.close_reason),  # close_reason
        found.step,  # step
        found.step_name,  # step_name
        None if found.last_message is None else k.excerpt(found.last_message),
        None if verdict.subprotocol is None else text(verdict.subprotocol),  # subprotocol
        found.events_seen,  # events_seen
        found.events_seen_omitted,  # events_seen_omitted
        diagnosis,  # diagnosis
        _hint(k, verdict.hint, found.hint),  # hint
        None if retry_after is None else text(retry_after),  # retry_after
        None if verdict.reflected_in is None else text(verdict.reflected_in),
        measured.matches,  # event_matches
        measured.duplicates,  # duplicates
        found.frames_seen,  # frames_seen
        found.frames_seen_omitted,  # frames_seen_omitted
        False,  # trimmed
        verdict.redirects,  # redirects
    )
    said = named(probe)
    return Result(
        said.name,  # probe
        said.type,  # type
        said.target,  # target
        verdict.outcome,  # outcome
        measured.started_at,  # started_at
        measured.duration_seconds,  # duration_seconds
        status,  # status_code
        found.close_code,  # close_code
        measured.upgraded,  # upgraded
        measured.phases,  # phases
        measured.steps,  # steps
        measured.cert_expiry,  # cert_expiry
        evidence,  # evidence
        1,  # attempt
        True,  # final
        ctx.trace_id,  # trace_id
        ctx.span_id,  # span_id
        probe.variant,  # variant
        measured.events,  # events
        measured.transcript,  # transcript
        measured.transcript_omitted,  # transcript_omitted
        measured.measures,  # measures
    )


def _hint(k: Keeper, verdict_hint: str | None, found_hint: str | None) -> Kept | None:
    """The verdict's hint and what the conversation found, in one."""
    if found_hint is None:  # nearly always: no joining
        return k.optional_words(verdict_hint)
    return k.optional_words("; ".join(h for h in (verdict_hint, found_hint) if h))


__all__ = ["NAMED", "NOTHING_FOUND", "DiagnosticGet", "Found", "Measured", "Named", "Verdict",
           "build_result", "named"]
