"""The HTTP probe and the token endpoint send the run's trace context; ``trace: false``
sends none. Real aiohttp servers on loopback record what arrived."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.trace import parse_traceparent
from tests.support.servers import serving

SEEN = web.AppKey("seen", list[tuple[str, dict[str, str]]])


def _app() -> web.Application:
    app = web.Application()
    app[SEEN] = []

    async def record(request: web.Request) -> web.Response:
        request.app[SEEN].append((request.path, dict(request.headers)))
        if request.path == "/token":
            return web.json_response({"access_token": "tok-" + "x" * 20, "expires_in": 600})
        if request.path == "/hop":
            raise web.HTTPFound("/api/health")
        if request.path == "/slow":
            await asyncio.sleep(5)
        return web.json_response({"status": "healthy"})

    app.router.add_route("*", "/{tail:.*}", record)
    return app


CONFIG = """\
defaults: {interval: 10s, timeout: 2s, tracestate: "synthmon=e2e"}
auth:
  login: {type: token_endpoint, url: "%(base)s/token", fields: {user: u}}
probes:
  - name: traced
    http:
      url: "%(base)s/api/health"
      auth: login
      headers: {traceparent: "00-11111111111111111111111111111111-2222222222222222-00"}
  - name: untraced
    trace: false
    http: {url: "%(base)s/api/health", auth: login}
  - name: slow
    timeout: 300ms
    http: {url: "%(base)s/slow"}
  - name: redirected
    http: {url: "%(base)s/hop", follow_redirects: true}
"""


async def test_every_request_of_a_run_carries_its_traceparent(ctx: ProbeContext) -> None:
    app = _app()
    async with serving(app) as base:
        probes = {p.name: p for p in load_text(CONFIG % {"base": base}, env={}).probes}
        result = await run_probe(probes["traced"], ctx)
        assert result.outcome is Outcome.SUCCESS, result.evidence
        assert result.trace_id is not None and result.span_id is not None
        (token_path, token_headers), (path, headers) = app[SEEN]
        assert (token_path, path) == ("/token", "/api/health")
        for seen in (token_headers, headers):
            # The configured traceparent is replaced: the result's id is what arrived.
            assert parse_traceparent(seen["traceparent"]) == (
                result.trace_id, result.span_id, "01")
            assert seen["tracestate"] == "synthmon=e2e"
        assert result.to_dict()["trace_id"] == result.trace_id

        again = await run_probe(probes["traced"], ctx)
        assert again.trace_id not in (None, result.trace_id)  # one trace per run
        assert app[SEEN][-1][1]["traceparent"].split("-")[1] == again.trace_id


async def test_trace_false_sends_no_trace_context_and_records_none(ctx: ProbeContext) -> None:
    app = _app()
    async with serving(app) as base:
        probe = load_text(CONFIG % {"base": base}, env={}).probes[1]
        ctx.tokens.forget()
        result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.SUCCESS
    assert result.trace_id is None and result.span_id is None
    assert [p for p, _ in app[SEEN]] == ["/token", "/api/health"]
    assert all("traceparent" not in h and "tracestate" not in h for _, h in app[SEEN])


async def test_a_run_that_times_out_keeps_the_trace_id_it_sent(ctx: ProbeContext) -> None:
    app = _app()
    async with serving(app) as base:
        probe = load_text(CONFIG % {"base": base}, env={}).probes[2]
        t0 = time.monotonic()
        result = await run_probe(probe, ctx)
        assert time.monotonic() - t0 < 3
    assert result.outcome is Outcome.TIMEOUT
    assert app[SEEN][0][1]["traceparent"].split("-")[1] == result.trace_id


async def test_a_followed_redirect_carries_the_same_trace_context(ctx: ProbeContext) -> None:
    app = _app()
    async with serving(app) as base:
        probe = load_text(CONFIG % {"base": base}, env={}).probes[3]
        result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert [p for p, _ in app[SEEN]] == ["/hop", "/api/health"]
    for _, headers in app[SEEN]:
        assert parse_traceparent(headers["traceparent"]) == (
            result.trace_id, result.span_id, "01")
