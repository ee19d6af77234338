"""The WebSocket probe sends the run's trace context: on the upgrade request, on the
diagnostic GET after a refused upgrade, and inside messages where a ``send`` step asks for
``${trace_id}``, ``${span_id}`` or ``${traceparent}``. A real aiohttp server on loopback
records what arrived."""

from __future__ import annotations

import json

from aiohttp import WSCloseCode, web

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.trace import parse_traceparent
from tests.support.servers import serving

SEEN = web.AppKey("seen", list[tuple[str, str, dict[str, str]]])  # (kind, path, headers)
MESSAGES = web.AppKey("messages", list[str])


def chat_app() -> web.Application:
    app = web.Application()
    app[SEEN] = []
    app[MESSAGES] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        request.app[SEEN].append(("upgrade" if upgrade else "get", request.path,
                                  dict(request.headers)))
        if request.path == "/refused" or not upgrade:
            if upgrade:
                return web.Response(status=403, text="Forbidden")
            return web.json_response({"data": {"status": "operational"}})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.path == "/kick":
            await ws.send_json({"type": "error_message", "error_code": "AUTH_FAILED"})
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"auth failed")
            return ws
        await ws.send_json({"type": "connect"})
        for _ in range(2):
            msg = await ws.receive()
            request.app[MESSAGES].append(msg.data)
        await ws.send_json({"type": "done"})
        await ws.close()
        return ws

    app.router.add_get("/{tail:.*}", chat)
    return app


CONFIG = """\
defaults: {interval: 10s, timeout: 3s, retries: 0, tracestate: "synthmon=ws"}
probes:
  - name: chat
    websocket:
      url: "%(ws)s/chat"
      headers: {traceparent: "00-11111111111111111111111111111111-2222222222222222-01"}
      steps:
        - expect: {json: {type: connect}, timeout: 2s}
        - send: {json: {type: user_message, trace: {traceparent: "${traceparent}",
                                                    trace_id: "${trace_id}"}}}
        - send: {text: "span=${span_id} other=${NOT_A_RUN_VARIABLE:-kept}"}
        - expect: {json: {type: done}, timeout: 2s}
  - name: refused
    websocket: {url: "%(ws)s/refused", diagnose: true}
  - name: untraced
    trace: false
    websocket:
      url: "%(ws)s/chat"
      steps:
        - expect: {json: {type: connect}, timeout: 2s}
        - send: {text: "${trace_id}"}
        - send: {text: "second"}
        - expect: {json: {type: done}, timeout: 2s}
"""


def probes(base: str) -> dict[str, object]:
    ws = base.replace("http://", "ws://")
    return {p.name: p for p in load_text(CONFIG % {"ws": ws}, env={}).probes}


async def test_upgrade_and_messages_carry_the_runs_trace_context(ctx: ProbeContext) -> None:
    app = chat_app()
    async with serving(app) as base:
        result = await run_probe(probes(base)["chat"], ctx)  # type: ignore[arg-type]
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert result.trace_id is not None and result.span_id is not None
    [(kind, _, headers)] = app[SEEN]
    assert kind == "upgrade"
    traceparent = f"00-{result.trace_id}-{result.span_id}-01"
    assert headers["traceparent"] == traceparent  # the configured one is replaced
    assert parse_traceparent(headers["traceparent"]) is not None
    assert headers["tracestate"] == "synthmon=ws"
    first, second = app[MESSAGES]
    assert json.loads(first) == {"type": "user_message",
                                 "trace": {"traceparent": traceparent,
                                           "trace_id": result.trace_id}}
    assert second == f"span={result.span_id} other=kept"


async def test_the_diagnostic_get_carries_the_same_trace_context(ctx: ProbeContext) -> None:
    app = chat_app()
    async with serving(app) as base:
        result = await run_probe(probes(base)["refused"], ctx)  # type: ignore[arg-type]
    assert result.outcome is Outcome.HANDSHAKE_REJECTED, result.evidence
    assert result.evidence.diagnosis is not None
    assert result.evidence.diagnosis.status_code == 200
    assert [(k, p) for k, p, _ in app[SEEN]] == [("upgrade", "/refused"), ("get", "/refused")]
    for _, _, headers in app[SEEN]:
        assert headers["traceparent"] == f"00-{result.trace_id}-{result.span_id}-01"


async def test_trace_false_sends_no_context_and_leaves_placeholders(ctx: ProbeContext
                                                                     ) -> None:
    app = chat_app()
    async with serving(app) as base:
        result = await run_probe(probes(base)["untraced"], ctx)  # type: ignore[arg-type]
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert result.trace_id is None
    [(_, _, headers)] = app[SEEN]
    assert "traceparent" not in headers and "tracestate" not in headers
    assert app[MESSAGES][0] == "${trace_id}"
