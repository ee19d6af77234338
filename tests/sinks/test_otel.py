"""Spans over OTLP/HTTP, received by a local OTLP/HTTP endpoint on loopback that decodes
the protobuf with opentelemetry-proto (there is no collector to run here): ids equal to the
traceparent the target saw, phases and steps as children, semantic-convention attributes,
error status on failing outcomes, no secret anywhere; a dead collector never holds a run."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.result import Evidence, Result, StepTiming
from monitor.sinks import default_sinks
from monitor.sinks.otel import OtlpSpans, QueueLimits, resource, spans_of
from monitor.trace import TraceContext, parse_traceparent
from tests.probes.websocket.test_trace import chat_app
from tests.support.servers import SECRET, serving

BODIES = web.AppKey("bodies", list[bytes])
SEEN = web.AppKey("seen", list[tuple[str, str]])


def collector() -> web.Application:
    app = web.Application()
    app[BODIES] = []

    async def traces(request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/x-protobuf"
        request.app[BODIES].append(await request.read())
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    app.router.add_post("/v1/traces", traces)
    return app


def target() -> web.Application:
    app = web.Application()
    app[SEEN] = []

    async def handle(request: web.Request) -> web.Response:
        request.app[SEEN].append((request.path, request.headers.get("traceparent", "")))
        if request.path == "/slow":
            await asyncio.sleep(3)
        if request.path == "/token":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"status": "healthy"})

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def spans(bodies: list[bytes]) -> Iterator[tuple[dict[str, str], Span]]:
    for body in bodies:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            res = {a.key: a.value.string_value for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                assert ss.scope.name == "synthmon"
                for span in ss.spans:
                    yield res, span


def attrs(span: Span) -> dict[str, object]:
    def value(v: AnyValue) -> object:
        return getattr(v, v.WhichOneof("value") or "string_value")

    return {a.key: value(a.value) for a in span.attributes}


CONFIG = """\
defaults: {interval: 1s, timeout: 700ms, retries: 0, tracestate: "synthmon=otlp"}
auth:
  login:
    type: token_endpoint
    url: "${TARGET}/token"
    secret_fields_env: {client_secret: CLIENT_SECRET}
probes:
  - name: healthy
    http: {url: "${TARGET}/api/health?api_key=${API_KEY}", headers: {X-Key: "${API_KEY}"}}
  - name: hangs
    timeout: 300ms
    http: {url: "${TARGET}/slow"}
  - name: refused-login
    http: {url: "${TARGET}/api/private", auth: login}
"""


@pytest.fixture
async def endpoints() -> AsyncIterator[tuple[web.Application, str, web.Application, str]]:
    col, tgt = collector(), target()
    async with serving(col) as col_url, serving(tgt) as tgt_url:
        yield col, col_url, tgt, tgt_url


async def test_each_run_is_a_client_span_with_phase_children_in_the_targets_trace(
        endpoints: tuple[web.Application, str, web.Application, str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    col, col_url, tgt, tgt_url = endpoints
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col_url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    path = tmp_path / "probes.yaml"
    path.write_text(CONFIG)
    env = {"TARGET": tgt_url, "API_KEY": SECRET, "CLIENT_SECRET": SECRET[::-1]}
    daemon = Daemon(DaemonOptions(str(path), location="eu-1", env=env))
    await daemon.start()
    try:
        deadline = time.monotonic() + 20
        def seen() -> set[str]:
            # Roots by name, and the phases of healthy's runs: a batch may end between a
            # run's client span and its children, so wait for both.
            got = [s for _, s in spans(col[BODIES])]
            ids = {s.span_id: s.name for s in got}
            return {s.name for s in got} | {f"healthy/{s.name}" for s in got
                                            if ids.get(s.parent_span_id) == "healthy"}

        while not {"healthy", "hangs", "refused-login", "healthy/connect",
                   "healthy/processing"} <= seen():
            assert time.monotonic() < deadline, "no spans of every probe within 20 s"
            await asyncio.sleep(0.1)
        metrics = daemon.surfacer.render().decode()
    finally:
        await daemon.stop()
    got = list(spans(col[BODIES]))
    assert all(res["service.name"] == "synthmon" for res, _ in got)
    assert all(res["synthmon.location"] == "eu-1" for res, _ in got)
    by_id = {s.span_id: s for _, s in got}
    roots = [s for _, s in got if not s.parent_span_id]
    sent = {(p, parse_traceparent(tp)) for p, tp in tgt[SEEN]}
    for root in roots:
        a = attrs(root)
        assert root.kind == Span.SPAN_KIND_CLIENT
        assert root.end_time_unix_nano >= root.start_time_unix_nano
        assert a["synthmon.probe"] == root.name
        assert a["http.request.method"] == "GET"
        assert a["server.address"] == "127.0.0.1"
        assert a["server.port"] == int(tgt_url.rsplit(":", 1)[1])
        assert "?" not in str(a["url.full"]) and str(a["url.full"]).startswith(tgt_url)
        # The span is the parent the target (or its token endpoint) saw in traceparent.
        ids = (root.trace_id.hex(), root.span_id.hex(), "01")
        paths = {p for p, parsed in sent if parsed == ids}
        if root.name == "healthy":
            assert paths == {"/api/health"}
            assert root.status.code == Status.STATUS_CODE_UNSET
            assert a["synthmon.outcome"] == "success" and a["http.response.status_code"] == 200
            assert "error.type" not in a
        elif root.name == "hangs":
            assert paths == {"/slow"}
            assert root.status.code == Status.STATUS_CODE_ERROR
            assert a["synthmon.outcome"] == a["error.type"] == "timeout"
            assert root.status.message.startswith("timeout: no answer within")
        else:
            assert paths == {"/token"}  # refused before the request itself was sent
            assert root.status.code == Status.STATUS_CODE_ERROR
            assert a["synthmon.outcome"] == a["error.type"] == "credentials_unavailable"
    children = [s for _, s in got if s.parent_span_id]
    assert children, "no phase spans"
    for child in children:
        parent = by_id[child.parent_span_id]
        assert child.trace_id == parent.trace_id and child.kind == Span.SPAN_KIND_INTERNAL
        assert parent.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= parent.end_time_unix_nano
        assert child.name in {"resolve", "connect", "tls", "processing", "transfer"}
        assert attrs(child)["synthmon.phase"] == child.name
    healthy_children = {c.name for c in children if by_id[c.parent_span_id].name == "healthy"}
    assert {"connect", "processing"} <= healthy_children
    # Nothing secret: not the query, not a header, not the token endpoint's field.
    for body in col[BODIES]:
        assert SECRET.encode() not in body and SECRET[::-1].encode() not in body
    samples = {(x.name, x.labels.get("reason")): x.value
               for fam in text_string_to_metric_families(metrics) for x in fam.samples}
    assert samples[("synthmon_otlp_spans_exported_total", None)] >= len(roots)
    assert samples[("synthmon_otlp_spans_dropped_total", "queue_full")] == 0


def ws_result(trace: TraceContext | None, outcome: Outcome = Outcome.AUTH_REJECTED) -> Result:
    return Result(probe="ws", type="websocket", target="wss://chat.example:8443/api/v1/websocket",
                  outcome=outcome, started_at=1_700_000_000.0, duration_seconds=0.5,
                  status_code=101, close_code=1008, upgraded=True,
                  phases=(("resolve", 0.0), ("connect", 0.01), ("tls", 0.02),
                          ("handshake", 0.03), ("steps", 0.4)),
                  steps=(StepTiming(0, "welcome", 0.1), StepTiming(1, "ask", 0.2)),
                  evidence=Evidence(detail="closed 1008 AUTH_FAILED", step=2,
                                    step_name="events"),
                  trace_id=trace and trace.trace_id, span_id=trace and trace.span_id)


def test_a_websocket_run_has_phase_and_step_spans_and_its_close_code() -> None:
    trace = TraceContext.new()
    got = spans_of(ws_result(trace), resource({}))
    root, *children = got
    assert root.context is not None and root.parent is None
    assert f"{root.context.trace_id:032x}" == trace.trace_id
    assert f"{root.context.span_id:016x}" == trace.span_id
    assert root.attributes is not None
    assert root.attributes["synthmon.websocket.close_code"] == 1008
    assert root.attributes["server.port"] == 8443
    assert root.attributes["synthmon.step"] == "events"
    assert root.status.status_code.name == "ERROR"
    # The steps phase is its steps: laid after the handshake, one span each.
    assert [c.name for c in children] == ["connect", "tls", "handshake", "step welcome",
                                          "step ask"]
    ends = {c.name: c.end_time for c in children}
    starts = {c.name: c.start_time for c in children}
    assert starts["step welcome"] == ends["handshake"]
    assert starts["step ask"] == ends["step welcome"]
    no_step = replace(ws_result(trace), steps=())
    assert [c.name for c in spans_of(no_step, resource({}))[1:]] == [
        "connect", "tls", "handshake", "steps"]
    assert all(c.parent is not None and c.parent.span_id == root.context.span_id
               for c in children)
    assert spans_of(ws_result(None), resource({})) == []  # trace: false: no spans


async def test_a_dead_collector_never_holds_a_run_and_drops_are_counted() -> None:
    hung: list[asyncio.StreamWriter] = []

    async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        hung.append(w)  # accept, read nothing, answer nothing

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = OtlpSpans(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces",
                                      timeout=30),
                     resource({}), QueueLimits(max_spans=40, batch_spans=7, delay=0.01))
    try:
        t0 = time.perf_counter()
        for _ in range(200):
            sink.observe(ws_result(TraceContext.new(), Outcome.SUCCESS))
        took = time.perf_counter() - t0
        assert took < 1.0, f"200 observes took {took:.3f}s: observe must never wait"
        exported, dropped = sink.stats()
        assert exported == 0
        n = len(spans_of(ws_result(TraceContext.new()), resource({})))  # spans a run
        # At most the queue's worth and the batch stuck in the export were taken.
        assert dropped["queue_full"] >= (200 - 40 // n - 7 // n - 1) * n
        t0 = time.perf_counter()
        await asyncio.to_thread(sink.close, 0.3)
        assert time.perf_counter() - t0 < 2.0, "close waited on the dead collector"
        sink.observe(ws_result(TraceContext.new()))
        assert sink.stats()[1]["queue_full"] > dropped["queue_full"]  # closed: dropped
    finally:
        for w in hung:
            w.close()
        server.close()


def test_close_ends_the_retries_against_a_collector_that_refuses() -> None:
    with socket.socket() as s:  # a port that refuses: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        sink = OtlpSpans(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"),
                         resource({}), QueueLimits(batch_spans=1, delay=0.01))
        sink.observe(ws_result(TraceContext.new(), Outcome.SUCCESS))
        deadline = time.monotonic() + 5
        while sink._thread is None and time.monotonic() < deadline:
            time.sleep(0.01)
        thread = sink._thread
        assert thread is not None
        time.sleep(0.3)  # the first attempt is refused; the exporter backs off and retries
        assert thread.is_alive()
        t0 = time.monotonic()
        sink.close(0.2)
        thread.join(5)
        # Without the exporter's shutdown, its backoff keeps the thread for its 10 s.
        assert not thread.is_alive(), "the export thread outlived close() by 5 s"
        assert time.monotonic() - t0 < 5
        assert sink.stats() == (0, {"queue_full": 0, "export_failed": len(
            spans_of(ws_result(TraceContext.new()), resource({})))})


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
     False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
     False),
])
def test_export_only_when_an_endpoint_is_configured(env: dict[str, str], on: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    sinks = default_sinks(environ=env)
    spans_sinks = [s for s in sinks._all if isinstance(s, OtlpSpans)]
    assert len(spans_sinks) == int(on)
    assert (sinks.metrics.otlp_stats is not None) is on
    text = sinks.metrics.render().decode()
    assert ("synthmon_otlp_spans_dropped_total" in text) is on
    sinks.close(0.1)


def test_queue_limits_from_the_standard_variables() -> None:
    assert QueueLimits.from_env({}) == QueueLimits(2048, 512, 5.0)
    assert QueueLimits.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "100",
                                 "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
                                 "OTEL_BSP_SCHEDULE_DELAY": "250"}) == QueueLimits(100, 10, 0.25)
    assert QueueLimits.from_env({"OTEL_BSP_MAX_QUEUE_SIZE": "lots",
                                 "OTEL_BSP_SCHEDULE_DELAY": "-1"}) == QueueLimits()


async def test_a_websocket_run_closed_1008_exports_an_auth_rejected_span(
        endpoints: tuple[web.Application, str, web.Application, str],
        ctx: ProbeContext) -> None:
    col, col_url, _, _ = endpoints
    sink = OtlpSpans(OTLPSpanExporter(endpoint=f"{col_url}/v1/traces", timeout=10),
                     resource({}), QueueLimits(delay=0.05))
    async with serving(chat_app()) as base:
        probe = load_text("probes:\n  - name: kicked\n    websocket:\n"
                          f"      url: '{base.replace('http', 'ws')}/kick'\n"
                          "      steps: [{expect: {json: {type: connect}, timeout: 2s}}]\n",
                          env={}).probes[0]
        result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.AUTH_REJECTED, result.evidence
    sink.configure(load_text("probes: []\n", env={}))
    sink.observe(result)
    await asyncio.to_thread(sink.close, 10.0)
    got = [s for _, s in spans(col[BODIES])]
    root = next(s for s in got if not s.parent_span_id)
    a = attrs(root)
    assert (root.trace_id.hex(), root.span_id.hex()) == (result.trace_id, result.span_id)
    assert a["synthmon.outcome"] == a["error.type"] == "auth_rejected"
    assert a["synthmon.websocket.close_code"] == 1008
    assert a["http.response.status_code"] == 101 and a["synthmon.websocket.upgraded"] is True
    assert str(a["url.full"]).startswith("ws://127.0.0.1:")
    assert root.status.code == Status.STATUS_CODE_ERROR
    assert {"connect", "handshake"} <= {s.name for s in got if s.parent_span_id}
    assert sink.stats() == (len(got), {"queue_full": 0, "export_failed": 0})
