"""The OTLP span sink: every traced run as OpenTelemetry spans, exported over OTLP/HTTP.

Optional (``pip install synthmon[otel]``) and off unless the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (headers,
timeout, compression, certificates: the exporter reads the other ``OTEL_EXPORTER_OTLP_*``
variables itself; ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the service;
``OTEL_BSP_MAX_QUEUE_SIZE``, ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` and
``OTEL_BSP_SCHEDULE_DELAY`` size the queue as they do the SDK's batch processor).

The spans are built from the :class:`~monitor.result.Result` after the run, with the ids the
run sent in ``traceparent``: the probe never touches OpenTelemetry, and the target's own
server span (whose parent is our client span) lands in the same trace. One run is a
``CLIENT`` span named after the probe, with a child span per phase it spent time in and per
step (a WebSocket run's ``steps`` phase is its step spans). The Result keeps how long each
phase took, not when it began, so the children are laid end to end from the start of the
run, each as long as the phase took.

:meth:`OtlpSpans.observe` only appends the result to a bounded queue (the event loop never
waits on a collector); a worker thread builds the spans (:mod:`monitor.sinks.spans`) and
exports them in batches, encoded by :mod:`monitor.sinks.otlp_wire` and sent by the
exporter's own HTTP client (or, with an exporter that has none, as the SDK's spans). When
the queue is full, or an export fails, the spans are dropped and counted
(``synthmon_otlp_spans_dropped_total``).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from monitor import __version__
from monitor.config import Config
from monitor.result import Result
from monitor.sinks import otlp_wire
from monitor.sinks.spans import SpanRecord, records_of

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DROP_REASONS = ("queue_full", "export_failed")
_SCOPE = InstrumentationScope("synthmon", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether OTLP export is configured: an endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(v, "").strip() for v in ENDPOINT_VARS)


class _HashedResource(Resource):
    """A resource that computes its hash once: the SDK's encoder groups spans by resource,
    and Resource hashes a JSON dump of its attributes on every call (measured: 50 µs of the
    ~280 µs that encoding the six spans of a WebSocket run costs)."""

    def __init__(self, other: Resource) -> None:
        super().__init__(other.attributes, other.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other)


def resource(environ: Mapping[str, str], location: str | None = None) -> Resource:
    # OTEL_SERVICE_NAME (read by Resource.create) wins over our default name.
    own: dict[str, str] = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "synthmon"}
    if location:
        own["synthmon.location"] = location  # --location: where the probes ran from
    return _HashedResource(Resource.create({**own, "service.version": __version__}))


def readable_spans(trace_id: int, records: Sequence[SpanRecord],
                   res: Resource) -> list[ReadableSpan]:
    """The records as the SDK's spans, for an exporter that takes only those."""
    out = []
    contexts: dict[int, SpanContext] = {}
    for r in records:
        ctx = contexts[r.span_id] = SpanContext(trace_id, r.span_id, is_remote=False,
                                                trace_flags=_SAMPLED)
        parent = None if r.parent_id is None else contexts[r.parent_id]
        status = (Status(StatusCode.ERROR, r.error) if r.error is not None
                  else Status(StatusCode.UNSET))
        out.append(ReadableSpan(r.name, context=ctx, parent=parent, resource=res,
                                attributes=r.attributes, status=status,
                                events=[Event(name, attributes, at)
                                        for name, at, attributes in r.events],
                                kind=SpanKind.CLIENT if parent is None else SpanKind.INTERNAL,
                                start_time=r.start, end_time=r.end,
                                instrumentation_scope=_SCOPE))
    return out


def spans_of(result: Result, res: Resource, method: str = "GET") -> list[ReadableSpan]:
    """The SDK spans of one traced run (none for an untraced one): its client span first."""
    trace_id, records = records_of(result, method)
    return readable_spans(trace_id, records, res)


# The SDK's batch span processor defaults.
MAX_QUEUE_SPANS, BATCH_SPANS, DELAY_SECONDS = 2048, 512, 5.0


@dataclass(frozen=True, slots=True)
class QueueLimits:
    max_spans: int = MAX_QUEUE_SPANS
    batch_spans: int = BATCH_SPANS
    delay: float = DELAY_SECONDS  # between exports when the batch is not full

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> QueueLimits:
        def number(var: str, default: float) -> float:
            try:
                value = float(environ.get(var, ""))
            except ValueError:
                return default
            return value if value > 0 else default

        return cls(int(number("OTEL_BSP_MAX_QUEUE_SIZE", MAX_QUEUE_SPANS)),
                   int(number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", BATCH_SPANS)),
                   number("OTEL_BSP_SCHEDULE_DELAY", DELAY_SECONDS * 1000) / 1000)


def _span_count(result: Result) -> int:
    return 1 + len(result.steps) + sum(1 for phase, took in result.phases
                                       if took > 0 and not (phase == "steps" and result.steps))


class OtlpSpans:
    """The sink: results queued on the event loop, spans built and exported in a thread."""

    def __init__(self, exporter: SpanExporter, res: Resource,
                 limits: QueueLimits = QueueLimits()) -> None:
        self._exporter = exporter
        self._resource = res
        # Our own encoding through the exporter's client where it has one (otlp_wire), else
        # the exporter's export() of the SDK's spans.
        self._send = otlp_wire.sender(exporter)
        self._encoder = otlp_wire.Encoder(res, _SCOPE)
        self.limits = limits
        self._methods: dict[str, str] = {}
        self._queue: collections.deque[tuple[Result, int]] = collections.deque()
        self._queued_spans = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.exported = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def configure(self, config: Config) -> None:
        methods = {p.name: p.spec.kind_spec.request_method for p in config.probes}
        with self._cond:
            self._methods = methods

    def observe(self, result: Result) -> None:
        if result.trace_id is None:
            return
        n = _span_count(result)
        with self._cond:
            if self._closing or self._queued_spans + n > self.limits.max_spans:
                self.dropped["queue_full"] += n
                return
            self._queue.append((result, n))
            self._queued_spans += n
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="synthmon-otlp",
                                                daemon=True)
                self._thread.start()
            if self._queued_spans >= self.limits.batch_spans:
                self._cond.notify()

    def stats(self) -> tuple[int, dict[str, int]]:
        with self._cond:
            return self.exported, dict(self.dropped)

    def _take(self) -> tuple[list[tuple[Result, int]], dict[str, str], bool]:
        with self._cond:
            if self._queued_spans < self.limits.batch_spans and not self._closing:
                self._cond.wait(self.limits.delay)
            batch: list[tuple[Result, int]] = []
            spans = 0
            while self._queue and (not batch or spans + self._queue[0][1]
                                   <= self.limits.batch_spans):
                item = self._queue.popleft()
                batch.append(item)
                spans += item[1]
            self._queued_spans -= spans
            return batch, self._methods, self._closing and not self._queue

    def _work(self) -> None:
        while True:
            batch, methods, last = self._take()
            if batch:
                self._export(batch, methods)
            if last:
                return

    def _export(self, batch: Sequence[tuple[Result, int]], methods: Mapping[str, str]) -> None:
        n = sum(count for _, count in batch)
        try:
            runs = [records_of(r, methods.get(r.probe, "GET")) for r, _ in batch]
            if self._send is not None:
                ok = self._send(self._encoder.encode(runs))
            else:
                spans = [s for trace_id, records in runs
                         for s in readable_spans(trace_id, records, self._resource)]
                ok = self._exporter.export(spans) is SpanExportResult.SUCCESS
        except Exception:  # an exporter bug must not end the thread and stop all export
            ok = False
        with self._cond:
            if ok:
                self.exported += n
            else:
                self.dropped["export_failed"] += n

    def close(self, timeout: float = 2.0) -> None:
        """Export what is queued, for at most ``timeout`` seconds; a collector that does
        not answer by then loses the rest. The exporter is shut down either way: that ends
        its retries (it backs off for up to its own timeout, 10 s by default, against a
        collector that refuses connections) and so the thread, which otherwise outlives
        the close (a daemon thread, so it never holds up the process's exit)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._exporter.shutdown()


def from_env(environ: Mapping[str, str] | None = None,
             location: str | None = None) -> OtlpSpans | None:
    """The sink as the ``OTEL_*`` variables configure it, or None when export is off.

    ``environ`` decides whether to export and sizes the queue; the exporter itself reads
    its ``OTEL_EXPORTER_OTLP_*`` settings from the process environment."""
    environ = os.environ if environ is None else environ
    if not enabled(environ):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OtlpSpans(OTLPSpanExporter(), resource(environ, location),
                     QueueLimits.from_env(environ))


__all__ = ["DROP_REASONS", "OtlpSpans", "QueueLimits", "enabled", "from_env", "spans_of"]
