"""bench.cost, the load-independent count of a run's instructions: its bare WebSocket
exchange does the protocol work the probe does (or the ratio to it means nothing), and
every variant of both kinds still runs and succeeds (``--check``: natively, a few runs
each; the counts themselves need valgrind and minutes, so they are not run here)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bench.cost import KINDS
from bench.servers import JWT_SECRET, mint_token, ws_probes_yaml
from bench.workers import ws_exchange
from monitor.config import load_text
from monitor.probes.context import open_context
from monitor.probes.run import run_probe
from monitor.redact import Redactor


@dataclass
class Seen:
    """One exchange as the server saw it."""

    extensions_offered: str | None
    extensions_agreed: str | None
    close_code: int | None = None  # the client's close frame
    closed_cleanly: bool = False


@dataclass
class WsTarget:
    """What the bench's WebSocket probe talks to (the simulator's ``/ws`` in the bench): a
    valid bench JWT as a bearer header, then a ``connect`` message; each exchange noted."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
async def ws_target() -> AsyncIterator[WsTarget]:
    target = WsTarget()

    def authorize(_conn: ServerConnection, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            return Response(403, "Forbidden", Headers(), b"")
        return None if scheme == "Bearer" else Response(403, "Forbidden", Headers(), b"")

    async def handler(conn: ServerConnection) -> None:
        assert conn.response is not None
        seen = Seen(conn.request.headers.get("Sec-WebSocket-Extensions")
                    if conn.request is not None else None,
                    conn.response.headers.get("Sec-WebSocket-Extensions"))
        target.seen.append(seen)
        await conn.send(json.dumps({"type": "connect", "data": {"user_id": "bench-user"}}))
        try:
            await conn.recv()
        except ConnectionClosed as exc:
            seen.close_code = exc.rcvd.code if exc.rcvd is not None else None
            seen.closed_cleanly = exc.rcvd_then_sent is not None

    async with serve(handler, "127.0.0.1", 0, process_request=authorize) as server:
        port = server.sockets[0].getsockname()[1]
        target.url = f"ws://127.0.0.1:{port}/ws"
        yield target


async def test_the_bare_exchange_does_the_probes_protocol_work(
        ws_target: WsTarget, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same upgrade (bearer JWT, permessage-deflate offered and agreed), the message read,
    a clean close with 1000 from the client, for the bare exchange and the probe alike; and
    the bare one, like the probe, consults no proxy from the environment (websockets'
    default would, and would go through this dead one)."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("JWT_SECRET_STAGING", JWT_SECRET)

    assert await ws_exchange(ws_target.url, mint_token())
    probe = load_text(ws_probes_yaml(ws_target.url, 1, 60, 10)).probes[0]
    ctx = open_context(Redactor())
    try:
        result = await run_probe(probe, ctx)
    finally:
        await ctx.close()
    assert result.success, result.detail
    for _ in range(100):  # the server notes the close after the client has its answer
        if len(ws_target.seen) == 2 and all(s.close_code for s in ws_target.seen):
            break
        await asyncio.sleep(0.01)
    bare, probed = ws_target.seen
    assert bare == probed
    assert bare.extensions_offered is not None and "permessage-deflate" in bare.extensions_offered
    assert bare.extensions_agreed is not None and "permessage-deflate" in bare.extensions_agreed
    assert bare.close_code == 1000 and bare.closed_cleanly


async def test_every_cost_variant_of_both_kinds_still_runs(ws_target: WsTarget) -> None:
    """``python -m bench.cost --check`` for each kind, against loopback targets: every
    variant's worker, natively, a few runs each, all succeeded."""

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/{path}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    urls = {"http": f"http://127.0.0.1:{port}/", "websocket": ws_target.url}

    async def check(kind: str) -> tuple[int, Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.cost", "--kind", kind, "--check", "--url", urls[kind],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert proc.returncode is not None
        return proc.returncode, (json.loads(out) if out.strip() else err.decode()[-2000:])

    try:
        found = await asyncio.gather(*(check(kind) for kind in KINDS))
    finally:
        await runner.cleanup()
    for kind, (code, variants) in zip(KINDS, found, strict=True):
        assert code == 0, variants
        assert variants == dict.fromkeys(KINDS[kind].all, "ok")
    assert len(ws_target.seen) >= 2 * len(KINDS["websocket"].all)
