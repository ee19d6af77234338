"""The daemon's own HTTP server: metrics, health, reload, results and the status page.

Every request passes :mod:`monitor.web.origin` first (no page of another site changes
anything, no page reaches the daemon by a name it does not answer to); with a web config
(``--web-config``), basic auth guards every endpoint but, when the file says so, the health
endpoints. TLS is set on the listening socket by the CLI."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from monitor.daemon import Daemon
from monitor.sinks.metrics import (
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    Snapshot,
    iter_exposition,
    wants_openmetrics,
)
from monitor.web import origin
from monitor.web.api import results_payload
from monitor.web.statuspage import render_index, render_probe, render_variants, variants_of

if TYPE_CHECKING:  # bcrypt is imported only with a web config that has users (serve.py)
    from monitor.web.basicauth import BasicAuth

DAEMON_KEY = web.AppKey("daemon", Daemon)
# What the kubelet's probes and Docker's HEALTHCHECK ask; the web config may leave them open.
HEALTH_PATHS = ("/-/healthy", "/-/ready")
TRACE_ID_RE = re.compile(r"[0-9a-f]{32}")


def build_app(daemon: Daemon, auth: BasicAuth | None = None, *,
              open_health: bool = False,
              allowed_hosts: origin.AllowedHosts | None = None) -> web.Application:
    allowed = allowed_hosts or origin.AllowedHosts.for_listen("127.0.0.1")
    middlewares = [origin.middleware(allowed)]
    if auth is not None:
        middlewares.append(auth.middleware(HEALTH_PATHS if open_health else ()))
    app = web.Application(middlewares=middlewares)
    app[DAEMON_KEY] = daemon
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/api/v1/results", results)
    app.router.add_get("/", index)
    app.router.add_get("/probe/{name}", probe_page)
    app.router.add_get("/trace/{trace_id}", trace)
    return app


async def metrics(request: web.Request) -> web.StreamResponse:
    # Taken and formatted on the event loop in steps of about a millisecond, the loop free
    # to run probes between two (monitor.sinks.metrics says why not in a thread). The text
    # goes out piece by piece as it is formatted, so a scrape never holds all of it (32 MB
    # at 10,000 probes). OpenMetrics (with the runs' trace ids as exemplars) when the
    # scraper asks for it.
    om = wants_openmetrics(request.headers.get("Accept"))
    content_type = OPENMETRICS_CONTENT_TYPE if om else CONTENT_TYPE
    surfacer = request.app[DAEMON_KEY].surfacer
    steps = surfacer.snapshot_in_steps()
    try:
        while True:
            try:
                next(steps)
            except StopIteration as done:
                snap: Snapshot = done.value
                break
            await asyncio.sleep(0)
    finally:
        steps.close()  # cancelled half-way: lets go of the series taken
    try:
        return await _write(request, snap, om, content_type)
    finally:
        surfacer.release(snap)  # the series it holds may change in place again


async def _write(request: web.Request, snap: Snapshot, om: bool, content_type: str
                 ) -> web.StreamResponse:
    pieces = iter_exposition(snap, openmetrics=om)
    first = next(pieces, b"")
    await asyncio.sleep(0)
    following = next(pieces, None)
    if following is None:  # small enough for one piece: a plain response with a length
        return web.Response(body=first, headers={"Content-Type": content_type})
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    await response.write(first)
    while following is not None:
        await response.write(following)
        await asyncio.sleep(0)  # the write may not have given the loop a turn
        following = next(pieces, None)
    await response.write_eof()
    return response


async def healthy(request: web.Request) -> web.Response:
    return web.Response(text="synthmon is healthy\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[DAEMON_KEY].ready:
        return web.Response(text="synthmon is ready\n")
    return web.Response(status=503, text="synthmon is not ready\n")


async def reload(request: web.Request) -> web.Response:
    ok, errors = await request.app[DAEMON_KEY].reload()
    payload: dict[str, Any] = {"status": "success" if ok else "error", "errors": errors}
    return web.json_response(payload, status=200 if ok else 400)


# The pages and the results document are built in a worker thread, from the history alone
# (which has its own lock): at 10,000 probes the status page takes seconds to render, and on
# the event loop that would hold back every probe start and inflate every measured latency.


async def results(request: web.Request) -> web.Response:
    history = request.app[DAEMON_KEY].history
    links = request.app[DAEMON_KEY].options.links
    text = await asyncio.to_thread(lambda: json.dumps(results_payload(history, links)))
    return web.Response(text=text, content_type="application/json")


async def index(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    return web.Response(text=await asyncio.to_thread(render_index, daemon.history,
                                                     daemon.reload_failure,
                                                     daemon.options.links),
                        content_type="text/html")


async def trace(request: web.Request) -> web.Response:
    """``/trace/ID``: to the run's trace in the tracing backend (``--trace-url``), so that a
    link needs only this daemon's address (the dashboard's exemplars link here)."""
    trace_id = request.match_info["trace_id"]
    if not TRACE_ID_RE.fullmatch(trace_id):
        raise web.HTTPBadRequest(text="a trace id is 32 lowercase hex digits\n")
    url = request.app[DAEMON_KEY].options.links.trace(trace_id)
    if url is None:
        raise web.HTTPNotFound(text="no tracing backend configured: start synthmon with "
                                    "--trace-url (or SYNTHMON_TRACE_URL)\n")
    raise web.HTTPFound(url)


async def probe_page(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    name = request.match_info["name"]
    history = daemon.history
    if name in history.probes():
        render = render_probe
    elif variants_of(history, name):  # NAME of a negative probe: the list of NAME@VARIANT
        render = render_variants
    else:
        raise web.HTTPNotFound(text=f"no probe named {name!r}\n")
    return web.Response(text=await asyncio.to_thread(render, history, name,
                                                     daemon.reload_failure,
                                                     daemon.options.links),
                        content_type="text/html")
