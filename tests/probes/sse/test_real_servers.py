"""The stream probe against a real SSE server (sse-starlette served by uvicorn), directly
and behind a real nginx started here on loopback with a generated config:

- with ``proxy_buffering on`` (nginx's default; sse-starlette's ``X-Accel-Buffering: no``
  ignored, so the default really applies) nginx forwards a paced stream event by event:
  the probe passes with the same pacing as directly;
- with ``gzip on`` for ``text/event-stream`` and a client that sends ``Accept-Encoding:
  gzip`` (as the probe does, as browsers do), nginx holds every event until the end: the
  probe says ``stream_buffered``, with the gzip hint.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from tests.support.procs import stop_process
from tests.support.servers import free_port, need_tool

PACE = 0.15
CHUNKS = 8


async def _chat(request: Request) -> EventSourceResponse:
    async def events() -> AsyncIterator[dict[str, str]]:
        for i in range(CHUNKS):
            if i:
                await asyncio.sleep(PACE)
            yield {"data": f'{{"object": "chat.completion.chunk", "n": {i}}}'}
        yield {"data": "[DONE]"}

    return EventSourceResponse(events(), ping=1)


APP = Starlette(routes=[Route("/v1/chat/completions", _chat, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def sse_server() -> Iterator[str]:
    """uvicorn in a thread of its own (its own event loop), stopped at the end."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(APP, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-sse", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    proxy_http_version 1.1;
    proxy_buffering on;                      # nginx's default, written out
    proxy_ignore_headers X-Accel-Buffering;  # so that sse-starlette's "no" does not undo it
    server {{
        listen 127.0.0.1:{plain};
        location / {{ proxy_pass {upstream}; }}
    }}
    server {{
        listen 127.0.0.1:{gzip};
        gzip on;
        gzip_types text/event-stream;
        gzip_min_length 0;
        location / {{ proxy_pass {upstream}; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(sse_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    binary = need_tool("nginx", "apt-get install nginx; make system-deps installs it")
    prefix = tmp_path_factory.mktemp("nginx")
    plain, gz = free_port(), free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, plain=plain, gzip=gz,
                                      upstream=sse_server))
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(plain, proc, prefix)
        _wait_listening(gz, proc, prefix)
        yield {"plain": f"http://127.0.0.1:{plain}", "gzip": f"http://127.0.0.1:{gz}"}
    finally:
        stop_process(proc)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], prefix: Path) -> None:
    import socket

    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            log = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
            raise AssertionError(f"nginx exited {proc.returncode}: {log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            assert time.monotonic() < deadline, f"nginx does not listen on {port}"
            time.sleep(0.05)


def _probe(base: str) -> str:
    return f"""
probes:
  - name: chat-stream
    timeout: 5s
    sse:
      url: {base}/v1/chat/completions
      method: POST
      json_body: {{stream: true}}
      first_event_within: 800ms
      max_gap: 1s
      events: {{field: [event, data.object], types: [chat.completion.chunk],
                count: {{chat.completion.chunk: {{min: {CHUNKS}}}}}}}
      done: "[DONE]"
"""


def _paced(result_gap: float | None, first: float | None) -> None:
    assert first is not None and first < 0.5
    assert result_gap is not None and PACE * 0.6 < result_gap < PACE * 4


async def test_sse_starlette_directly(sse_server: str, ctx: ProbeContext) -> None:
    result = await run_probe(load_text(_probe(sse_server), env={}).probes[0], ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.measure("events") == CHUNKS + 1
    _paced(result.measure("max_gap_seconds"), result.measure("first_event_seconds"))


async def test_behind_nginx_with_proxy_buffering_on_events_come_one_by_one(
        nginx: dict[str, str], ctx: ProbeContext) -> None:
    result = await run_probe(load_text(_probe(nginx["plain"]), env={}).probes[0], ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    _paced(result.measure("max_gap_seconds"), result.measure("first_event_seconds"))
    assert not any(k.lower() == "content-encoding" for k, _ in result.evidence.headers)


async def test_behind_nginx_gzipping_event_streams_the_stream_is_buffered(
        nginx: dict[str, str], ctx: ProbeContext) -> None:
    result = await run_probe(load_text(_probe(nginx["gzip"]), env={}).probes[0], ctx)
    assert result.outcome is Outcome.STREAM_BUFFERED, result.evidence.detail
    assert ("Content-Encoding", "gzip") in result.evidence.headers
    assert result.evidence.hint is not None and "gzip" in result.evidence.hint
    first = result.measure("first_event_seconds")
    assert first is not None and first > (CHUNKS - 1) * PACE * 0.8  # held to the end
