"""The simulator's streams: an OpenAI-style chat completion (``POST /v1/chat/completions``,
``chat.completion.chunk`` data ending in ``data: [DONE]``) and an agent's typed events
(``GET /api/agent/stream``, ``event: message_start`` ... ``message_stop``), healthy by
default, with a mode for each way a stream is seen to fail:

- ``stream_json``: a JSON error with status 200 instead of a stream;
- ``stream_silent``: the headers, then nothing (until the client goes away);
- ``stream_gap``: a few events, a silence of STALL_SECONDS, then the rest;
- ``stream_cut``: a few events, then the connection cut mid-body, before the terminator;
- ``stream_malformed``: an event whose data is cut-off JSON;
- ``stream_buffered``: every event held back (HOLD_SECONDS, or the mode switch's
  ``stream_hold``) and released at once, as a buffering proxy does;
- ``rate_limited_429`` and ``not_ready_503`` (shared with the rest of the app): 429 or 503
  with ``Retry-After``.

Heartbeat comments (``: ping``) come between the typed events, as agent backends send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Final

from aiohttp import web

from monitor.demo.simulator.protocol import RETRY_AFTER_429

CHAT_PATH: Final = "/v1/chat/completions"
AGENT_PATH: Final = "/api/agent/stream"
STREAM_MODES: Final = ("stream_json", "stream_silent", "stream_gap", "stream_cut",
                       "stream_malformed", "stream_buffered")
# Between two events of a healthy stream: a paced stream, quick enough for a demo run.
PACE_SECONDS: Final = 0.05
# stream_gap's silence and stream_buffered's hold: longer than the shipped probe's max_gap
# (2 s) and first_event_within (3 s: its first event comes 1.1 s late in mode slow, and a
# loaded machine adds more), shorter than the demo's timeout (8 s). The hold is the
# default of the mode switch's `stream_hold`: a test whose probe waits less sets its own.
STALL_SECONDS: Final = 3.0
HOLD_SECONDS: Final = 4.0
HANG_SECONDS: Final = 60.0  # stream_silent: the end, if the client never goes away
ModeSource = Callable[[], str]
HoldSource = Callable[[], float]
TOKENS: Final = ("Synthetic", " check", " passed", ":", " all", " systems", " nominal", ".")
AGENT_EVENTS: Final = ("message_start", "content_block_start", "content_block_delta",
                       "content_block_delta", "content_block_stop", "message_delta",
                       "message_stop")


def _chat_events(model: str) -> Iterator[bytes]:
    ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    for i, token in enumerate(TOKENS):
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": {"content": token},
                                              "finish_reason": None}]}
        if i == 0:
            chunk["choices"][0]["delta"]["role"] = "assistant"  # type: ignore[index]
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    final = {"id": ident, "object": "chat.completion.chunk", "created": created,
             "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield f"data: {json.dumps(final)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _agent_events() -> Iterator[bytes]:
    run = f"msg_{uuid.uuid4().hex[:20]}"
    for kind in AGENT_EVENTS:
        data: dict[str, object] = {"type": kind, "message_id": run}
        if kind == "content_block_delta":
            data["delta"] = {"type": "text_delta", "text": "progress"}
        yield f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
        if kind == "content_block_start":
            yield b": ping\n\n"  # a heartbeat: a comment, not an event


class Streams:
    """The stream handlers; ``mode()`` is the simulator's current mode, ``hold()`` how long
    ``stream_buffered`` holds a stream now."""

    def __init__(self, mode: ModeSource, hold: HoldSource = lambda: HOLD_SECONDS) -> None:
        self._mode = mode
        self._hold = hold

    def routes(self, app: web.Application) -> None:
        app.router.add_post(CHAT_PATH, self.chat)
        app.router.add_get(AGENT_PATH, self.agent)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        model = body.get("model", "staging") if isinstance(body, dict) else "staging"
        return await self._serve(request, _chat_events(str(model)[:64]))

    async def agent(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, _agent_events())

    async def _serve(self, request: web.Request, events: Iterator[bytes]
                     ) -> web.StreamResponse:
        mode = self._mode()
        if mode == "rate_limited_429":
            return web.json_response({"error": {"type": "rate_limit_exceeded",
                                                "message": "Too Many Requests"}},
                                     status=429, headers={"Retry-After": RETRY_AFTER_429})
        if mode == "stream_json":
            # The endpoint's error reported in a 200 JSON body: what a gateway or an SDK
            # wrapper does when streaming is off or the model call failed.
            return web.json_response({"error": {"type": "server_error", "message":
                                                "The model is overloaded; streaming "
                                                "unavailable"}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):  # the probe hung up: its verdict was made
            await self._stream(request, resp, list(events), mode)
        return resp

    async def _stream(self, request: web.Request, resp: web.StreamResponse,
                      events: list[bytes], mode: str) -> None:
        if mode == "stream_silent":
            await asyncio.sleep(HANG_SECONDS)
            return
        if mode == "stream_buffered":
            await asyncio.sleep(self._hold())
            await resp.write(b"".join(events))
            await resp.write_eof()
            return
        if mode == "stream_malformed":
            events[1] = b'data: {"id": "chatcmpl-x", "object": "chat.completion.chunk", ' \
                        b'"choices": [{"delta": {"content": "cut\n\n'
        for i, event in enumerate(events):
            if i:
                await asyncio.sleep(PACE_SECONDS)
            if mode == "stream_gap" and i == 3:
                await asyncio.sleep(STALL_SECONDS)
            if mode == "stream_cut" and i == 3:
                # A worker killed mid-answer: the chunked body never gets its last chunk.
                if request.transport is not None:
                    request.transport.abort()
                return
            await resp.write(event)
        await resp.write_eof()


__all__ = ["AGENT_EVENTS", "AGENT_PATH", "CHAT_PATH", "HOLD_SECONDS", "PACE_SECONDS",
           "STALL_SECONDS", "STREAM_MODES", "Streams"]
