"""gzip, decoded as it arrives: a server that flushes its deflate stream after each event
is read event by event (first event early, paced gaps); one that compresses the whole
stream before sending anything is read as the burst it is."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from tests.support.servers import serving

EVENTS = [f"data: {{\"n\": {i}}}\n\n".encode() for i in range(6)] + [b"data: [DONE]\n\n"]
PACE = 0.15


async def _gzip(request: web.Request) -> web.StreamResponse:
    whole = request.query.get("whole") == "1"
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Content-Encoding": "gzip"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    if whole:
        await asyncio.sleep(1.2)  # held until it is complete, as a compressing proxy does
        await resp.write(gz.compress(b"".join(EVENTS)) + gz.flush())
    else:
        for i, event in enumerate(EVENTS):
            if i:
                await asyncio.sleep(PACE)
            await resp.write(gz.compress(event) + gz.flush(zlib.Z_SYNC_FLUSH))
        await resp.write(gz.flush())
    await resp.write_eof()
    return resp


@pytest.fixture
async def url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/stream", _gzip)
    async with serving(app) as base:
        yield f"{base}/stream"


def _probe(url: str) -> str:
    return f"""
probes:
  - name: gz
    timeout: 4s
    sse: {{url: "{url}", first_event_within: 800ms, max_gap: 1s, done: "[DONE]"}}
"""


@pytest.mark.both_loops
async def test_gzip_flushed_per_event_is_read_as_it_arrives(url: str, ctx: ProbeContext
                                                            ) -> None:
    result = await run_probe(load_text(_probe(url), env={}).probes[0], ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    first = result.measure("first_event_seconds")
    gap = result.measure("max_gap_seconds")
    assert first is not None and first < PACE  # not after the whole body
    assert gap is not None and gap >= PACE * 0.8  # paced, so decoded chunk by chunk
    assert result.measure("events") == len(EVENTS)
    assert ("Content-Encoding", "gzip") in result.evidence.headers


async def test_gzip_of_the_whole_stream_is_a_buffered_release(url: str, ctx: ProbeContext
                                                              ) -> None:
    result = await run_probe(load_text(_probe(url + "?whole=1"), env={}).probes[0], ctx)
    assert result.outcome is Outcome.STREAM_BUFFERED, result.evidence.detail
    assert result.evidence.hint is not None and "gzip" in result.evidence.hint
