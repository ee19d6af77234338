"""The staging simulator behaves, over real loopback sockets, as each mode promises.

Every network wait is bounded (client timeouts, ``asyncio.wait_for``) so a regression fails
fast instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time

import aiohttp
import pytest
from websockets.exceptions import NegotiationError
from yarl import URL

from monitor.demo.simulator import (
    MODES,
    PLAIN_GET_CHANGED,
    RunningSimulator,
    StagingSimulator,
    encode_token_subprotocol,
    serve_forever,
    start_simulator,
)
from tests.support.simulator import (
    ALL_EVENTS,
    OTHER_SECRET,
    SECRET,
    WAIT,
    expect_close,
    expect_status,
    make_token,
    recv_events,
    recv_json,
    ws_connect,
)

# -- plain HTTP ------------------------------------------------------------------------------

async def test_http_routes(running: RunningSimulator, http: aiohttp.ClientSession) -> None:
    base = running.url
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
    async with http.get(base + "/health") as r:
        assert (r.status, await r.json()) == (200, {"status": "healthy"})
    async with http.get(base + "/api/health") as r:
        assert r.status == 200
        assert await r.json() == {"status": "healthy", "checks": {
            "postgres": {"status": "connected"}, "redis": {"status": "connected"},
            "clickhouse": {"status": "connected"}}}
    async with http.get(base + "/api/discovery/services") as r:
        services = await r.json()
        assert r.status == 200 and isinstance(services, list) and services
        assert all("name" in s for s in services)
    for path in ("/api/mcp/config", "/api/mcp/servers"):
        async with http.get(base + path) as r:
            assert r.status == 200 and isinstance(await r.json(), dict)
    async with http.get(base + "/api/messages", allow_redirects=False) as r:
        assert r.status == 307
        assert r.headers["Location"] == "/api/messages/"
    async with http.get(base + "/api/v1/websocket") as r:
        assert r.status == 200
        info = await r.json()
        assert info["data"]["service"] == "websocket_ssot"
        assert info["data"]["status"] == "operational"
        assert isinstance(info["data"]["endpoints"], dict)
    async with http.get(base + "/no/such/route") as r:
        assert (r.status, await r.json()) == (404, {"detail": "Not Found"})


async def test_threads_require_valid_bearer(running: RunningSimulator,
                                           http: aiohttp.ClientSession) -> None:
    url = running.url + "/api/threads"
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"},
                    {"Authorization": f"Bearer {make_token(secret=OTHER_SECRET)}"},
                    {"Authorization": f"Bearer {make_token(ttl=-60)}"},
                    {"Authorization": f"Basic {make_token()}"}):
        async with http.get(url, headers=headers) as r:
            assert r.status == 403, headers
            assert "detail" in await r.json()
    async with http.get(url, headers={"Authorization": f"Bearer {make_token()}"}) as r:
        assert r.status == 200
        assert (await r.json())["user_id"] == "staging-e2e-user-002"


async def test_plain_get_of_ws_path_is_json_in_every_mode(
        running: RunningSimulator, http: aiohttp.ClientSession) -> None:
    running.sim.slow_delay = 0.01
    for mode in set(MODES) - PLAIN_GET_CHANGED:
        running.sim.mode = mode
        async with http.get(running.url + "/api/v1/websocket") as r:
            assert r.status == 200, mode
            assert (await r.json())["data"]["service"] == "websocket_ssot", mode


# -- healthy WebSocket -----------------------------------------------------------------------

async def test_golden_path_with_header_token(running: RunningSimulator) -> None:
    async with ws_connect(running.ws_url + "/api/v1/websocket", token=make_token(),
                          subprotocols=["jwt-auth"]) as ws:
        assert ws.subprotocol == "jwt-auth"
        welcome = await recv_json(ws)
        assert welcome["type"] == "connect"
        assert welcome["data"]["user_id"] == "staging-e2e-user-002"
        assert welcome["data"]["connection_id"]
        await ws.send(json.dumps({"type": "user_message",
                                  "payload": {"content": "synthetic check"}}))
        assert await recv_events(ws) == ALL_EVENTS
        pong = await ws.ping()
        await asyncio.wait_for(pong, WAIT)
    assert ws.close_code == 1000


async def test_token_via_subprotocol_is_accepted_not_echoed(
        running: RunningSimulator) -> None:
    token = make_token(sub="via-subprotocol")
    offer = encode_token_subprotocol(token)
    assert "=" not in offer and offer.startswith("jwt.")
    async with ws_connect(running.ws_url + "/api/v1/websocket", token=token, header=False,
                          subprotocols=[offer]) as ws:
        # The offer is a credential, not a protocol: a healthy server chooses none.
        assert ws.subprotocol is None
        assert (await recv_json(ws))["data"]["user_id"] == "via-subprotocol"
    record = running.sim.received[-1]
    assert record["path"] == "/api/v1/websocket"
    assert record["token"] == token
    assert record["claims"]["sub"] == "via-subprotocol"
    assert record["subprotocols"] == [offer]
    assert "Authorization" not in record["headers"]


async def test_jwt_auth_wins_whatever_the_offer_order(running: RunningSimulator) -> None:
    token = make_token()
    async with ws_connect(running.ws_url + "/ws", token=token, header=False,
                          subprotocols=[encode_token_subprotocol(token), "jwt-auth"]) as ws:
        assert ws.subprotocol == "jwt-auth"
        assert (await recv_json(ws))["type"] == "connect"


async def test_received_records_handshakes(running: RunningSimulator) -> None:
    token = make_token(permissions=["read", "write"])
    async with ws_connect(running.ws_url + "/ws", token=token,
                          headers={"X-Test-Type": "synthetic"}) as ws:
        await recv_json(ws)
    record = running.sim.received[-1]
    assert record["path"] == "/ws"
    assert record["headers"]["X-Test-Type"] == "synthetic"
    assert record["headers"]["Authorization"] == f"Bearer {token}"
    assert record["subprotocols"] == []
    assert record["token"] == token
    assert record["claims"]["permissions"] == ["read", "write"]
    assert running.sim.received.maxlen == 100


@pytest.mark.parametrize("path", ["/api/v1/websocket", "/ws"])
async def test_invalid_credentials_get_403_before_accept(running: RunningSimulator,
                                                         path: str) -> None:
    url = running.ws_url + path
    assert (await expect_status(url)).response.status_code == 403
    bad = make_token(secret=OTHER_SECRET)
    assert (await expect_status(url, token=bad)).response.status_code == 403
    assert running.sim.received[-1]["token"] == bad
    assert running.sim.received[-1]["claims"] is None
    expired = make_token(ttl=-60)
    rejected = await expect_status(url, token=expired, header=False,
                                   subprotocols=[encode_token_subprotocol(expired)])
    assert rejected.response.status_code == 403
    rejected = await expect_status(url, header=False, subprotocols=["jwt.%%%not-base64"])
    assert rejected.response.status_code == 403


# -- regressions -----------------------------------------------------------------------------

async def test_ws_route_missing(running: RunningSimulator) -> None:
    token = make_token()
    auth_refusal = await expect_status(running.ws_url + "/ws")
    running.sim.mode = "ws_route_missing"
    missing = await expect_status(running.ws_url + "/api/v1/websocket", token=token,
                                  subprotocols=["jwt-auth"])
    assert missing.response.status_code == 403
    # Indistinguishable from an auth refusal, as in the incident.
    assert missing.response.body == auth_refusal.response.body
    assert missing.response.headers["Content-Type"].startswith("text/plain")
    assert running.sim.received[-1]["claims"] is not None
    async with ws_connect(running.ws_url + "/ws", token=token) as ws:
        assert (await recv_json(ws))["type"] == "connect"


async def test_upgrade_answered_with_json(running: RunningSimulator) -> None:
    running.sim.mode = "upgrade_json"
    token = make_token()
    answer = await expect_status(running.ws_url + "/api/v1/websocket", token=token)
    assert answer.response.status_code == 200
    assert answer.response.headers["Content-Type"].startswith("application/json")
    assert json.loads(answer.response.body or b"")["data"]["service"] == "websocket_ssot"
    async with ws_connect(running.ws_url + "/ws", token=token) as ws:
        assert (await recv_json(ws))["type"] == "connect"


async def test_auth_rejected_before_accept(running: RunningSimulator) -> None:
    running.sim.mode = "auth_rejected_before_accept"
    token = make_token()
    for path in ("/api/v1/websocket", "/ws"):
        refused = await expect_status(running.ws_url + path, token=token,
                                      subprotocols=["jwt-auth"])
        assert refused.response.status_code == 403
        assert running.sim.received[-1]["claims"] is not None


async def test_close_1008_after_auth_error(running: RunningSimulator) -> None:
    running.sim.mode = "close_1008"
    async with ws_connect(running.ws_url + "/api/v1/websocket", token=make_token()) as ws:
        error = await recv_json(ws)
        assert error["type"] == "error_message"
        assert error["error_code"] == "AUTH_FAILED"
        assert error["message"]
        closed = await expect_close(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1008


async def test_close_1011_not_ready(running: RunningSimulator) -> None:
    running.sim.mode = "close_1011"
    async with ws_connect(running.ws_url + "/ws", token=make_token()) as ws:
        closed = await expect_close(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (1011, "service not ready")


async def test_strict_subprotocol(running: RunningSimulator) -> None:
    running.sim.mode = "strict_subprotocol"
    token = make_token()
    url = running.ws_url + "/api/v1/websocket"
    with pytest.raises(NegotiationError):
        async with ws_connect(url, token=token, header=False,
                              subprotocols=[encode_token_subprotocol(token)]):
            pass
    with pytest.raises(NegotiationError):
        async with ws_connect(url, token=token):
            pass
    async with ws_connect(url, token=token, header=False,
                          subprotocols=[encode_token_subprotocol(token), "jwt-auth"]) as ws:
        assert ws.subprotocol == "jwt-auth"
        assert (await recv_json(ws))["type"] == "connect"
    running.sim.mode = "healthy"
    async with ws_connect(url, token=token) as ws:
        assert ws.subprotocol is None


async def test_events_missing(running: RunningSimulator) -> None:
    running.sim.mode = "events_missing"
    async with ws_connect(running.ws_url + "/api/v1/websocket", token=make_token()) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"type": "user_message", "payload": {"content": "x"}}))
        assert await recv_events(ws) == ["agent_started", "agent_thinking", "agent_completed"]


async def test_auth_not_enforced(running: RunningSimulator) -> None:
    running.sim.mode = "auth_not_enforced"
    for token in (None, make_token(secret=OTHER_SECRET)):
        async with ws_connect(running.ws_url + "/api/v1/websocket", token=token) as ws:
            welcome = await recv_json(ws)
            assert welcome["type"] == "connect"
            assert welcome["data"]["user_id"] == "anonymous"


async def test_slow(running: RunningSimulator, http: aiohttp.ClientSession) -> None:
    delay = 0.15
    running.sim.slow_delay = delay
    running.sim.mode = "slow"
    started = time.monotonic()
    async with http.get(running.url + "/health") as r:
        assert r.status == 200
    assert time.monotonic() - started >= delay
    # The admin endpoint is not slowed down: with a delay of 30 s, an answer at all within
    # 10 s says so, however loaded the machine.
    running.sim.slow_delay = 30.0
    async with http.get(running.url + "/-/simulator/mode",
                        timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert (await r.json())["mode"] == "slow"
    running.sim.slow_delay = delay
    started = time.monotonic()
    async with ws_connect(running.ws_url + "/api/v1/websocket", token=make_token()) as ws:
        assert time.monotonic() - started >= delay
        await recv_json(ws)
        await ws.send(json.dumps({"type": "user_message", "payload": {"content": "x"}}))
        started = time.monotonic()
        assert await recv_events(ws) == ALL_EVENTS
        assert time.monotonic() - started >= 5 * delay


# -- admin -----------------------------------------------------------------------------------

async def test_admin_switches_and_validates(running: RunningSimulator,
                                            http: aiohttp.ClientSession) -> None:
    admin = running.url + "/-/simulator/mode"
    async with http.get(admin) as r:
        state = await r.json()
        assert state["mode"] == "healthy" and state["modes"] == list(MODES)
    async with http.post(admin, json={"mode": "close_1011"}) as r:
        assert r.status == 200 and (await r.json())["mode"] == "close_1011"
    assert running.sim.mode == "close_1011"
    async with ws_connect(running.ws_url + "/ws", token=make_token()) as ws:
        closed = await expect_close(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1011
    for bad in ({"mode": "broken"}, {"mode": 3}, {}, ["healthy"],
                {"mode": "slow", "slow_delay": -1}):
        async with http.post(admin, json=bad) as r:
            assert r.status == 400, bad
            assert (await r.json())["modes"] == list(MODES)
    async with http.post(admin, data=b"{not json",
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
    assert running.sim.mode == "close_1011"
    hold = running.sim.base_stream_hold
    async with http.post(admin, json={"mode": "slow", "slow_delay": 0.05}) as r:
        assert await r.json() == {"mode": "slow", "slow_delay": 0.05, "stream_hold": hold}
    assert running.sim.slow_delay == 0.05
    # A slow_delay is the switch's own: it does not stick to the next mode (the tour's
    # agent_slow at 5.5 s used to make the next `slow` 5.5 s late instead of its 0.3 s).
    base = running.sim.base_slow_delay
    async with http.post(admin, json={"mode": "agent_slow", "slow_delay": 5.5}) as r:
        assert await r.json() == {"mode": "agent_slow", "slow_delay": 5.5, "stream_hold": hold}
    async with http.post(admin, json={"mode": "slow"}) as r:
        assert await r.json() == {"mode": "slow", "slow_delay": base, "stream_hold": hold}
    async with http.get(admin) as r:
        assert (await r.json())["slow_delay"] == base


async def test_stream_hold_is_the_switchs_own(running: RunningSimulator,
                                             http: aiohttp.ClientSession) -> None:
    """`stream_buffered` holds a stream as long as its switch says (a time-compressed test
    needs a hold between its probe's first-event budget and its timeout), releases every
    event at once, and the next switch without one holds as long as the start said."""
    admin = running.url + "/-/simulator/mode"
    chat = running.url + "/v1/chat/completions"
    base = running.sim.base_stream_hold
    for bad in (-1, "soon", True, 1e9, "inf"):
        async with http.post(admin, json={"mode": "stream_buffered", "stream_hold": bad}) as r:
            assert r.status == 400, bad
            assert "stream_hold" in (await r.json())["error"]
    async with http.post(admin, data=b"mode=stream_buffered&stream_hold=0.4") as r:
        assert await r.json() == {"mode": "stream_buffered", "stream_hold": 0.4,
                                  "slow_delay": running.sim.base_slow_delay}
    started = time.monotonic()
    async with http.post(chat, json={"model": "staging", "stream": True}) as r:
        first = await asyncio.wait_for(r.content.readany(), WAIT)
        held = time.monotonic() - started
        rest = await asyncio.wait_for(r.content.read(), WAIT)
    assert 0.4 <= held < 0.4 + WAIT
    body = first + rest
    assert body.count(b"data: ") == 10 and body.endswith(b"data: [DONE]\n\n")
    async with http.post(admin, json={"mode": "stream_buffered"}) as r:
        assert (await r.json())["stream_hold"] == base
    assert running.sim.stream_hold == base
    running.sim.mode = "healthy"


async def test_mode_is_validated() -> None:
    sim = StagingSimulator(jwt_secret=SECRET)
    assert sim.mode == "healthy" and sim.slow_delay == 0.3
    with pytest.raises(ValueError, match="close_1008"):
        sim.mode = "nope"
    assert sim.mode == "healthy"
    with pytest.raises(ValueError):
        await start_simulator(jwt_secret=SECRET, mode="nope")
    r = await start_simulator(jwt_secret=SECRET, mode="close_1008")
    try:
        assert r.sim.mode == "close_1008"
    finally:
        await r.stop()


# -- robustness ------------------------------------------------------------------------------

async def test_client_misbehaviour_is_answered_not_logged(
        running: RunningSimulator, http: aiohttp.ClientSession,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    url = running.ws_url + "/api/v1/websocket"
    async with ws_connect(url, token=make_token()) as ws:
        await recv_json(ws)
        await ws.send("{not json")
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(b"\x00\x01")
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(json.dumps(["a", "list"]))
        assert (await recv_json(ws))["type"] == "error"
        await ws.send(json.dumps({"type": "user_message", "payload": "not a dict"}))
        assert await recv_events(ws) == ALL_EVENTS
    # Vanish mid-stream: the server is still sending events.
    ws = await ws_connect(url, token=make_token())
    await recv_json(ws)
    await ws.send(json.dumps({"type": "user_message", "payload": {"content": "x"}}))
    assert ws.transport is not None
    ws.transport.abort()
    # An upgrade request aiohttp cannot complete (no Sec-WebSocket-Key).
    async with http.get(url, headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                      "Authorization": f"Bearer {make_token()}"}) as r:
        assert r.status == 400
    # A client that hangs up before the answer to a slow request.
    running.sim.mode = "slow"
    running.sim.slow_delay = 0.1
    port = URL(running.url).port
    assert port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.3)
    running.sim.mode = "healthy"
    async with http.get(running.url + "/health") as r:
        assert r.status == 200
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert problems == []


async def test_stop_closes_open_connections() -> None:
    r = await start_simulator(jwt_secret=SECRET)
    ws = await ws_connect(r.ws_url + "/ws", token=make_token())
    await recv_json(ws)
    started = time.monotonic()
    await asyncio.wait_for(r.stop(), 5)
    assert time.monotonic() - started < 2.5
    closed = await expect_close(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1001


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_serve_forever_until_cancelled(http: aiohttp.ClientSession) -> None:
    port = _free_port()
    task = asyncio.create_task(serve_forever("127.0.0.1", port, jwt_secret=SECRET,
                                             mode="upgrade_json"))
    try:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/-/simulator/mode") as r:
                    assert (await r.json())["mode"] == "upgrade_json"
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("serve_forever never listened")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"http://127.0.0.1:{port}/health"):
            pass
