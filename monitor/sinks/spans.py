"""The spans of one traced run, as plain records: what the OTLP sink exports, decided from
the :class:`~monitor.result.Result` alone (no OpenTelemetry type here). The sink renders
them on the wire itself (:mod:`monitor.sinks.otlp_wire`) or as the SDK's ``ReadableSpan``
objects (:func:`monitor.sinks.otel.readable_spans`)."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from monitor.probes.kinds import KINDS
from monitor.result import Result
from monitor.trace import random_id

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
STATUS_DESCRIPTION_CHARS = 300


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _server(target: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(target)
        return parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None, None


class SpanRecord(NamedTuple):
    """One span of a run, whichever way it is encoded (a tuple: a few per run, every run)."""

    name: str
    span_id: int
    parent_id: int | None  # None: the run's client span
    start: int  # unix nanoseconds
    end: int
    attributes: dict[str, str | int | bool | float]
    error: str | None = None  # the status description of a failing run's client span
    # Span events: (name, unix nanoseconds, attributes), e.g. a stream's events as they came.
    events: tuple[tuple[str, int, dict[str, str | int | bool | float]], ...] = ()


def records_of(result: Result, method: str = "GET") -> tuple[int, list[SpanRecord]]:
    """The trace id and spans of one traced run (none for an untraced one): its client span
    first, then a child per phase it spent time in and per step, laid end to end.

    Attributes follow OpenTelemetry's HTTP semantic conventions where one applies
    (``url.full`` is the target: no credentials, no query); the rest are ``synthmon.*``.
    Only what the Result holds is used, and its evidence is already redacted.
    """
    if result.trace_id is None or result.span_id is None:
        return 0, []
    run = int(result.span_id, 16)
    start = _ns(result.started_at)
    end = start + _ns(result.duration_seconds)
    host, port = _server(result.target)
    attrs: dict[str, str | int | bool | float] = {
        "http.request.method": method,
        "url.full": result.target,
        "synthmon.probe": result.key,  # NAME@VARIANT on a variant, as in every output
        "synthmon.probe.type": result.type,
        "synthmon.outcome": result.outcome.value,
    }
    if host is not None:
        attrs["server.address"] = host
    if port is not None:
        attrs["server.port"] = port
    if result.status_code is not None:
        attrs["http.response.status_code"] = result.status_code
    kind = KINDS.get(result.type)
    events: tuple[tuple[str, int, dict[str, str | int | bool | float]], ...] = ()
    if kind is not None:
        attrs.update(kind.span_attributes(result))
        events = tuple((e.name, start + _ns(e.offset), e.attributes)
                       for e in kind.span_events(result))
    if result.evidence.step_name is not None:
        attrs["synthmon.step"] = result.evidence.step_name
    if result.variant is not None:  # a negative probe's variant: which way of failing open
        attrs["synthmon.variant"] = result.variant
    error = None
    if not result.success:
        attrs["error.type"] = result.outcome.value
        detail = result.evidence.detail[:STATUS_DESCRIPTION_CHARS]
        error = f"{result.outcome.value}: {detail}" if detail else result.outcome.value
    spans = [SpanRecord(result.key, run, None, start, end, attrs, error, events)]

    def child(name: str, begin: int, took: float,
              extra: dict[str, str | int | bool | float]) -> int:
        stop = min(begin + _ns(took), end)
        # Only what tells the child apart: each attribute costs its encoding on every run.
        spans.append(SpanRecord(name, random_id(8), run, begin, stop, extra))
        return stop

    at = start
    for phase, took in result.phases:
        # A WebSocket run's "steps" phase is the sum of its step spans: it gets a span of
        # its own only when no step completed (each span costs its encoding on every run).
        if took > 0 and not (phase == "steps" and result.steps):
            at = child(phase, at, took, {"synthmon.phase": phase})
    for step in result.steps:
        at = child(f"step {step.name}", at, step.duration_seconds,
                   {"synthmon.step": step.name, "synthmon.step.index": step.index})
    return int(result.trace_id, 16), spans
