"""The sink's own OTLP encoding is byte for byte what the SDK's encoder makes of the same
spans, the exporter still has the HTTP client the sink sends it through, and an exporter
without one gets the SDK's spans instead."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from monitor.outcomes import Outcome
from monitor.result import Evidence, Result, StepTiming
from monitor.sinks import otlp_wire
from monitor.sinks.otel import _SCOPE, OtlpSpans, QueueLimits, readable_spans, resource
from monitor.sinks.spans import SpanRecord, records_of
from monitor.trace import TraceContext


def traced(**fields: object) -> Result:
    trace = TraceContext.new()
    base: dict[str, object] = dict(
        probe="health", type="http", target="https://api.example/health",
        outcome=Outcome.SUCCESS, started_at=1_700_000_000.25, duration_seconds=0.012,
        status_code=200, phases=(("resolve", 0.001), ("connect", 0.002), ("tls", 0.003),
                                 ("processing", 0.005), ("transfer", 0.001)),
        trace_id=trace.trace_id, span_id=trace.span_id)
    base.update(fields)
    return Result(**base)  # type: ignore[arg-type]


RUNS = {
    "http success": traced(),
    "http failing, with a detail": traced(outcome=Outcome.UNEXPECTED_STATUS, status_code=503,
                                          evidence=Evidence(detail="503 Service Unavailable")),
    "websocket with steps": traced(
        probe="ws", type="websocket", target="ws://127.0.0.1:8080/ws", status_code=101,
        upgraded=True, close_code=1000, phases=(("connect", 0.001), ("handshake", 0.002),
                                                ("steps", 0.03)),
        steps=(StepTiming(0, "welcome", 0.01), StepTiming(1, "events", 0.02))),
    "negative probe's variant": traced(
        probe="fails-closed", type="websocket", target="ws://127.0.0.1:8080/ws",
        outcome=Outcome.AUTH_NOT_ENFORCED, variant="alg_none", upgraded=True,
        evidence=Evidence(detail="", step_name="handshake")),
}


def sdk_bytes(runs: Sequence[Result], res: Resource) -> bytes:
    spans = [s for r in runs for s in readable_spans(*records_of(r), res)]
    data: bytes = encode_spans(spans).SerializePartialToString()
    return data


@pytest.mark.parametrize("res", [resource({}), resource({"OTEL_SERVICE_NAME": "x"}, "eu-1")],
                         ids=["default", "with a location"])
@pytest.mark.parametrize("name", list(RUNS))
def test_our_bytes_are_the_sdk_encoders_bytes(name: str, res: Resource) -> None:
    run = RUNS[name]
    records = records_of(run)
    ours = otlp_wire.Encoder(res, _SCOPE).encode([records])
    assert ours == encode_spans(readable_spans(*records, res)).SerializePartialToString()
    decoded = ExportTraceServiceRequest.FromString(ours)
    spans = decoded.resource_spans[0].scope_spans[0].spans
    assert len(spans) == len(records[1]) > 1
    assert spans[0].trace_id.hex() == run.trace_id and spans[0].span_id.hex() == run.span_id


def test_a_batch_of_runs_is_one_request_like_the_sdks() -> None:
    res = resource({})
    # records_of draws the child span ids afresh: both sides get the same records.
    runs = [records_of(r) for r in RUNS.values()]
    ours = otlp_wire.Encoder(res, _SCOPE).encode(runs)
    spans = [s for trace_id, records in runs for s in readable_spans(trace_id, records, res)]
    assert ours == encode_spans(spans).SerializePartialToString()


def test_the_exporter_still_has_the_client_the_sink_sends_through() -> None:
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        assert otlp_wire.sender(exporter) is not None, (
            "opentelemetry-exporter-otlp-proto-http "
            f"{version('opentelemetry-exporter-otlp-proto-http')} has no _client.export(bytes) "
            "any more: the OTLP sink falls back to the SDK's encoder (slower); see "
            "monitor/sinks/otlp_wire.py")
    finally:
        exporter.shutdown()


class Collecting(SpanExporter):
    """An exporter with only the public API: the SDK's spans, kept."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_an_exporter_without_the_client_gets_the_sdks_spans() -> None:
    exporter = Collecting()
    assert otlp_wire.sender(exporter) is None
    sink = OtlpSpans(exporter, resource({}), QueueLimits(batch_spans=1, delay=0.01))
    run = RUNS["websocket with steps"]
    sink.observe(run)
    sink.close(5)
    assert [s.name for s in exporter.spans] == [r.name for r in records_of(run)[1]]
    assert exporter.spans[0].context is not None
    assert f"{exporter.spans[0].context.trace_id:032x}" == run.trace_id
    assert sink.stats() == (len(exporter.spans), {"queue_full": 0, "export_failed": 0})


def test_repeated_attributes_are_built_once_but_true_is_not_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = otlp_wire.Encoder(resource({}), _SCOPE)
    records = [SpanRecord("a", 1, None, 0, 1, {"k": True}), SpanRecord("b", 2, 1, 0, 1, {"k": 1}),
               SpanRecord("c", 3, 1, 0, 1, {"k": "1"})]
    spans = ExportTraceServiceRequest.FromString(encoder.encode([(7, records)])) \
        .resource_spans[0].scope_spans[0].spans
    assert [s.attributes[0].value.WhichOneof("value") for s in spans] == [
        "bool_value", "int_value", "string_value"]
    # The cache of attribute messages is bounded: a config that keeps changing names or
    # targets never grows it past its limit.
    monkeypatch.setattr(otlp_wire, "_PAIRS_KEPT", 10)
    for i in range(100):
        encoder.encode([(7, [SpanRecord("x", 1, None, 0, 1, {"synthmon.probe": f"p{i}"})])])
        assert len(encoder._pairs) <= 10
