"""A stream run as the sinks show it: the contract's stream metrics (gauges of the last run,
the time-to-first-event histogram, the event and step histograms, the shared HTTP status
and phases), its span with the events as span events (on the wire byte for byte as the
SDK encodes them), and the status page's and API's words for it."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import Config, load_text
from monitor.demo.simulator import RunningSimulator
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.result import Result
from monitor.sinks import otlp_wire
from monitor.sinks.metrics import Surfacer
from monitor.sinks.otel import _SCOPE, readable_spans, resource
from monitor.sinks.spans import records_of
from monitor.web.summary import answer_label, handshake, seen
from tests.probes.sse.test_run import CHAT


@pytest.fixture
async def run(sim: RunningSimulator, ctx: ProbeContext) -> tuple[Config, Result]:
    config = load_text(CHAT.format(url=sim.url), env={})
    result = await run_probe(config.probes[0], ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    return config, result


def test_stream_metrics(run: tuple[Config, Result]) -> None:
    config, result = run
    surfacer = Surfacer()
    surfacer.configure(config)
    surfacer.observe(result)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(surfacer.render().decode())
               for s in fam.samples}

    def value(name: str, **labels: str) -> float:
        found = [v for (n, ls), v in samples.items()
                 if n == name and labels.items() <= dict(ls).items()]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    assert value("probe_sse_events", type="sse") == 10
    assert value("probe_sse_first_event_seconds") == result.measure("first_event_seconds")
    assert value("probe_sse_max_gap_seconds") == result.measure("max_gap_seconds")
    assert value("probe_http_status_code", type="sse") == 200
    assert value("probe_http_duration_seconds", phase="transfer") > 0
    assert value("synthmon_probe_first_event_seconds_count") == 1
    assert value("synthmon_probe_event_seconds_count", step="stream",
                 event="chat.completion.chunk") == 1
    assert value("synthmon_probe_step_duration_seconds_count", step="stream") == 1
    assert value("synthmon_probe_outcome", outcome="success") == 1
    assert not [n for n, _ in samples if n.startswith("probe_websocket_")]


def test_openmetrics_exemplar_on_the_first_event_histogram(run: tuple[Config, Result]
                                                           ) -> None:
    config, result = run
    surfacer = Surfacer()
    surfacer.configure(config)
    surfacer.observe(result)
    text = surfacer.render(openmetrics=True).decode()
    lines = [ln for ln in text.splitlines()
             if ln.startswith("synthmon_probe_first_event_seconds_bucket")]
    assert any(f'trace_id="{result.trace_id}"' in ln for ln in lines)


def test_span_with_the_events_as_span_events(run: tuple[Config, Result]) -> None:
    _, result = run
    trace_id, records = records_of(result, "POST")
    client = records[0]
    assert client.attributes["synthmon.probe.type"] == "sse"
    assert client.attributes["synthmon.sse.events"] == 10
    assert client.attributes["http.request.method"] == "POST"
    assert [name for name, _, _ in client.events] == ["sse.event"] * 10
    times = [at for _, at, _ in client.events]
    assert times == sorted(times) and client.start <= times[0] <= times[-1] <= client.end
    res = resource({})
    ours = otlp_wire.Encoder(res, _SCOPE).encode([(trace_id, records)])
    assert ours == encode_spans(readable_spans(trace_id, records, res)).SerializePartialToString()
    span = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans[0]
    assert len(span.events) == 10


def test_words_for_the_page_and_the_api(run: tuple[Config, Result]) -> None:
    _, result = run
    assert answer_label(result) == "stream"
    phrase = handshake(result)
    assert phrase is not None and phrase.startswith("HTTP 200 text/event-stream: 10 events")
    assert "10 events" in seen(result)
