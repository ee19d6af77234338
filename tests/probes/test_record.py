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
