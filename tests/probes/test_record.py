"""The one builder of a run's Result, for every kind: header fields, trace ids, variant,
redaction and the reflection check are made the same way whatever the kind decided."""

from __future__ import annotations

import pytest

from monitor.config import PROBE_KINDS, Probe, load_text
from monitor.keep import Keeper
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.record import Found, Measured, Verdict, build_result
from monitor.redact import Redactor
from monitor.trace import TraceContext

SECRET = "s3cr3t-value-0123456789"
TOKEN = "eyJ.token-value.0123456789"

URLS = {"http": "http://user@example.test:8080/api?token=x", "websocket": "ws://example.test/ws"}


# A kind whose section is not a mapping with a url: its smallest section (a flow's steps).
SECTIONS = {"flow": "[{name: s, http: {url: 'http://user@example.test:8080/api?token=x'}}]"}


def _probe(kind: str) -> Probe:
    url = URLS.get(kind, "http://example.test/stream")
    section = SECTIONS.get(kind, f"{{url: '{url}'}}")
    return load_text(f"probes:\n  - name: p\n    {kind}: {section}\n", env={}).probes[0]


@pytest.fixture
def redactor() -> Redactor:
    r = Redactor([SECRET])
    r.add_token("p", TOKEN)
    return r


@pytest.mark.parametrize("kind", PROBE_KINDS)
def test_header_fields_and_trace_ids(kind: str, redactor: Redactor) -> None:
    trace = TraceContext.new()
    ctx = ProbeContext(session=None, tokens=None, redactor=redactor, trace=trace)  # type: ignore[arg-type]
    result = build_result(_probe(kind), ctx, Verdict(Outcome.SUCCESS, "ok"),
                          Measured(started_at=100.0, duration_seconds=0.5))
    assert result.type == kind and result.probe == "p"
    assert "token" not in result.target and "user@" not in result.target
    assert (result.trace_id, result.span_id) == (trace.trace_id, trace.span_id)
    assert result.variant is None and result.started_at == 100.0


@pytest.mark.parametrize("kind", PROBE_KINDS)
def test_every_string_is_redacted(kind: str, redactor: Redactor) -> None:
    ctx = ProbeContext(session=None, tokens=None, redactor=redactor)  # type: ignore[arg-type]
    verdict = Verdict(Outcome.UNEXPECTED_STATUS, f"got {SECRET}", status_code=500,
                      headers=(("X-Debug", SECRET), ("Content-Type", "text/plain")),
                      body=f"body with {TOKEN}".encode(), hint=f"hint {SECRET}")
    # The events seen come kept already (the matcher keeps them as they arrive; Found takes
    # only Kept strings): kept here by the same keeper.
    found = Found(step=1, step_name="s", last_message=f"message {TOKEN}",
                  close_reason=SECRET, events_seen=(Keeper(redactor).type_name(SECRET),))
    result = build_result(_probe(kind), ctx, verdict,
                          Measured(started_at=0.0, duration_seconds=0.1), found)
    text = repr(result.to_dict())
    assert SECRET not in text and TOKEN not in text
    assert result.evidence.content_type == "text/plain"


@pytest.mark.parametrize("kind", PROBE_KINDS)
@pytest.mark.parametrize("outcome", [Outcome.SUCCESS, Outcome.UNEXPECTED_STATUS,
                                     Outcome.HANDSHAKE_REJECTED, Outcome.TIMEOUT])
def test_a_reflected_credential_wins_whatever_was_decided(
        kind: str, outcome: Outcome, redactor: Redactor) -> None:
    ctx = ProbeContext(session=None, tokens=None, redactor=redactor)  # type: ignore[arg-type]
    verdict = Verdict(outcome, "whatever", status_code=200,
                      headers=(("X-Echo", f"Bearer {TOKEN}"),))
    result = build_result(_probe(kind), ctx, verdict,
                          Measured(started_at=0.0, duration_seconds=0.1, token=TOKEN))
    assert result.outcome is Outcome.TOKEN_REFLECTED
    assert result.evidence.reflected_in == "X-Echo"
    assert TOKEN not in repr(result.to_dict())


@pytest.mark.parametrize(("status", "kept"), [(429, "7"), (503, "7"), (500, None)])
def test_retry_after_is_kept_for_429_and_503(status: int, kept: str | None,
                                             redactor: Redactor) -> None:
    ctx = ProbeContext(session=None, tokens=None, redactor=redactor)  # type: ignore[arg-type]
    verdict = Verdict(Outcome.UNEXPECTED_STATUS, "x", status_code=status,
                      headers=(("Retry-After", "7"),))
    for kind in PROBE_KINDS:
        result = build_result(_probe(kind), ctx, verdict,
                              Measured(started_at=0.0, duration_seconds=0.1))
        assert result.evidence.retry_after == kept


def test_every_field_lands_where_it_belongs(redactor: Redactor) -> None:
    """build_result passes the records' fields by position (a call of that many keywords
    costs a dict a run): each input, distinct from every other, is found in its own field."""
    from monitor.keep import Kept
    from monitor.probes.record import DiagnosticGet
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

    trace = TraceContext.new()
    ctx = ProbeContext(session=None, tokens=None, redactor=redactor, trace=trace)  # type: ignore[arg-type]
    redirect = Redirect(302, Kept("/next"))
    verdict = Verdict(Outcome.UNEXPECTED_STATUS, "the detail", status_code=503,
                      headers=(("Retry-After", "9"), ("X-One", "1")), content_type="text/x",
                      body=b"the body", subprotocol="the-subprotocol",
                      diagnosis=DiagnosticGet(404, "text/d", b"diag body", "diag hint",
                                              "diag error"),
                      hint="verdict hint", reflected_in=None, redirects=(redirect,))
    frames = (FrameTypes(1.0, (("type", Kept("t")),)),)
    found = Found(step=3, step_name="the step", last_message="the last message",
                  close_code=4001, close_reason="the close reason",
                  events_seen=(Kept("e1"),), events_seen_omitted=5, frames_seen=frames,
                  frames_seen_omitted=6, hint="found hint")
    measured = Measured(
        started_at=123.0, duration_seconds=0.25, phases=(("connect", 0.1),),
        steps=(StepTiming(0, "s", 0.2),), events=(EventTiming("s", "e", 0.3),),
        matches=(EventMatch("e", "type", Kept("e")),), duplicates=(("e", 2),),
        transcript=(Frame("sent", 0.0, "text", 1, Kept("x")),), transcript_omitted=7,
        measures=(("m", 1.5),), upgraded=True, cert_expiry=999.0, token=None)
    probe = _probe("websocket")
    result = build_result(probe, ctx, verdict, measured, found)
    assert result == Result(
        probe="p", type="websocket", target="ws://example.test/ws",
        outcome=Outcome.UNEXPECTED_STATUS, started_at=123.0, duration_seconds=0.25,
        status_code=503, close_code=4001, upgraded=True, phases=measured.phases,
        steps=measured.steps, cert_expiry=999.0, attempt=1, final=True,
        trace_id=trace.trace_id, span_id=trace.span_id, variant=None,
        events=measured.events, transcript=measured.transcript, transcript_omitted=7,
        measures=measured.measures,
        evidence=Evidence(
            detail=Kept("the detail"), status_code=503,
            headers=((Kept("Retry-After"), Kept("9")), (Kept("X-One"), Kept("1"))),
            headers_omitted=0, content_type=Kept("text/x"), body_excerpt=Kept("the body"),
            close_code=4001, close_reason=Kept("the close reason"), step=3,
            step_name="the step", last_message=Kept("the last message"),
            subprotocol=Kept("the-subprotocol"), events_seen=(Kept("e1"),),
            events_seen_omitted=5,
            diagnosis=Diagnosis(404, Kept("text/d"), Kept("diag body"), Kept("diag hint"),
                                Kept("diag error")),
            hint=Kept("verdict hint; found hint"), retry_after=Kept("9"), reflected_in=None,
            event_matches=measured.matches, duplicates=(("e", 2),), frames_seen=frames,
            frames_seen_omitted=6, trimmed=False, redirects=(redirect,)))


def test_the_http_runner_passes_verdict_and_measured_fields_in_their_order() -> None:
    """The HTTP runner builds its Verdict and Measured by position (a call by keywords costs
    half as much again, every run): it names each field in a comment, in this order. A
    field added, removed or moved here must be moved there too."""
    import dataclasses
    import inspect

    from monitor.probes.http import run as http_run

    source = inspect.getsource(http_run.run_http)
    for record in (Verdict, Measured):
        names = [f.name for f in dataclasses.fields(record)]
        start = source.index(f"{record.__name__}(\n")
        call = source[start:source.index("\n    )\n", start)]
        commented = [line.rsplit("# ", 1)[1].strip() for line in call.splitlines()[1:]]
        assert commented == names
