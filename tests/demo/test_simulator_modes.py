"""The simulator modes of issue 12, over real loopback sockets: each does what a client of
the real backend observed (see the table of the issue)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage

from monitor.auth.variants import unsigned
from monitor.demo.simulator import (
    AUDIENCE,
    ISSUER,
    RETRY_AFTER_429,
    RETRY_AFTER_503,
    RunningSimulator,
    encode_token_subprotocol,
)
from tests.support.simulator import (
    ALL_EVENTS,
    OTHER_SECRET,
    WAIT,
    expect_close,
    expect_status,
    make_token,
    recv_json,
    ws_connect,
)

MAIN = "/api/v1/websocket"


async def admitted(running: RunningSimulator, path: str = MAIN, **kw: Any) -> bool:
    """Whether the handshake gets a 101 (and the welcome)."""
    try:
        async with ws_connect(running.ws_url + path, **kw) as ws:
            return (await recv_json(ws))["type"] == "connect"
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        assert status == 403, repr(exc)
        return False


def expired() -> str:
    return make_token(ttl=-3600)


def early() -> str:
    now = int(time.time())
    return make_token(nbf=now + 3600)


def unsigned_token() -> str:
    now = int(time.time())
    return unsigned({"sub": "x", "iat": now, "exp": now + 300})


# (mode, token maker, extra headers, admitted in that mode); every one is refused when healthy.
FAIL_OPEN: list[tuple[str, str, Any, dict[str, str]]] = [
    ("auth_demo_mode", "none", lambda: None, {}),
    ("auth_emergency_bypass", "bad signature", lambda: make_token(secret=OTHER_SECRET), {}),
    ("auth_emergency_bypass", "expired", expired, {}),
    ("auth_test_headers", "bad signature + X-E2E-Test", lambda: make_token(
        secret=OTHER_SECRET), {"X-E2E-Test": "true"}),
    ("auth_test_headers", "bad signature + X-Test-Mode: staging", lambda: make_token(
        secret=OTHER_SECRET), {"X-Test-Mode": "staging"}),
    ("auth_lax_validation", "alg none", unsigned_token, {}),
    ("auth_lax_validation", "expired", expired, {}),
    ("auth_lax_validation", "not yet valid", early, {}),
    ("auth_lax_validation", "wrong issuer", lambda: make_token(iss="someone-else"), {}),
    ("auth_lax_validation", "wrong audience", lambda: make_token(aud="someone-else"), {}),
]


@pytest.mark.parametrize(("mode", "what", "token", "headers"), FAIL_OPEN,
                         ids=[f"{m}-{w}" for m, w, _, _ in FAIL_OPEN])
async def test_fail_open_modes_let_in_what_healthy_refuses(
        running: RunningSimulator, mode: str, what: str, token: Any,
        headers: dict[str, str]) -> None:
    tok = token()
    assert not await admitted(running, token=tok, headers=headers), "healthy must refuse"
    running.sim.mode = mode
    assert await admitted(running, token=tok, headers=headers)


async def test_fail_open_modes_are_narrow(running: RunningSimulator) -> None:
    """Each regression opens one door only: the others stay shut."""
    bad = make_token(secret=OTHER_SECRET)
    running.sim.mode = "auth_demo_mode"
    assert not await admitted(running, token=bad)
    running.sim.mode = "auth_test_headers"
    assert not await admitted(running, token=bad, headers={"X-Test-Type": "synthetic"})
    assert not await admitted(running, headers={"X-E2E-Test": "true"})  # no token at all
    running.sim.mode = "auth_lax_validation"
    assert not await admitted(running, token=bad)
    running.sim.mode = "auth_emergency_bypass"
    assert not await admitted(running)


async def test_healthy_checks_issuer_and_audience(running: RunningSimulator) -> None:
    assert await admitted(running, token=make_token(iss=ISSUER, aud=AUDIENCE))
    assert not await admitted(running, token=make_token(iss="other"))
    assert not await admitted(running, token=make_token(aud="other"))


async def test_auth_query_token(running: RunningSimulator,
                                http: aiohttp.ClientSession) -> None:
    token = make_token()
    url = f"{MAIN}?token={token}"
    assert not await admitted(running, url)
    async with http.get(f"{running.url}/api/threads?token={token}") as r:
        assert r.status == 403
    running.sim.mode = "auth_query_token"
    assert await admitted(running, url)
    async with http.get(f"{running.url}/api/threads?token={token}") as r:
        assert r.status == 200


async def test_fail_open_modes_reach_the_rest_api_too(running: RunningSimulator,
                                                      http: aiohttp.ClientSession) -> None:
    running.sim.mode = "auth_demo_mode"
    async with http.get(running.url + "/api/threads") as r:
        assert r.status == 200 and (await r.json())["user_id"] == "anonymous"


async def test_token_echo(running: RunningSimulator, http: aiohttp.ClientSession) -> None:
    running.sim.mode = "token_echo"
    token = make_token()
    offer = encode_token_subprotocol(token)
    async with ws_connect(running.ws_url + MAIN, token=token,
                          subprotocols=["jwt-auth", offer]) as ws:
        assert ws.subprotocol == offer  # the credential as the chosen protocol
    async with http.get(running.url + "/api/threads",
                        headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200 and r.headers["X-Auth-Echo"]


async def test_upgrade_405_is_a_rest_route(running: RunningSimulator,
                                           http: aiohttp.ClientSession) -> None:
    running.sim.mode = "upgrade_405"
    rejected = await expect_status(running.ws_url + MAIN, token=make_token())
    assert rejected.response.status_code == 405
    async with http.get(running.url + MAIN) as r:
        assert r.status == 405 and r.content_type == "application/json"
    assert await admitted(running, "/ws", token=make_token())


@pytest.mark.parametrize(("mode", "status", "retry_after"), [
    ("not_ready_503", 503, RETRY_AFTER_503), ("rate_limited_429", 429, RETRY_AFTER_429)])
async def test_refusals_with_retry_after(running: RunningSimulator, mode: str, status: int,
                                         retry_after: str) -> None:
    running.sim.mode = mode
    for path in (MAIN, "/ws"):
        rejected = await expect_status(running.ws_url + path, token=make_token())
        assert rejected.response.status_code == status
        assert rejected.response.headers["Retry-After"] == retry_after


async def test_close_without_answer(running: RunningSimulator,
                                    http: aiohttp.ClientSession) -> None:
    running.sim.mode = "close_without_answer"
    with pytest.raises(InvalidMessage):
        async with ws_connect(running.ws_url + MAIN, token=make_token()):
            pass
    async with http.get(running.url + MAIN) as r:  # the diagnostic GET still answers
        assert r.status == 200
    assert await admitted(running, "/ws", token=make_token())


@pytest.mark.parametrize(("mode", "code", "reason"), [
    ("close_1003", 1003, "No supported subprotocols"),
    ("close_1000_before_welcome", 1000, "cleanup"),
    ("close_1013", 1013, "Try again later"),
])
async def test_closes_right_after_accept(running: RunningSimulator, mode: str, code: int,
                                         reason: str) -> None:
    running.sim.mode = mode
    async with ws_connect(running.ws_url + MAIN, token=make_token()) as ws:
        closed = await expect_close(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (code, reason)


async def test_drop_after_accept(running: RunningSimulator) -> None:
    running.sim.mode = "drop_after_accept"
    async with ws_connect(running.ws_url + MAIN, token=make_token()) as ws:
        closed = await expect_close(ws)
    assert isinstance(closed, ConnectionClosed) and closed.rcvd is None  # 1006


async def conversation(running: RunningSimulator, quiet_after: float = 0.5
                       ) -> list[dict[str, Any]]:
    """Every frame after a user message, until the server is quiet for ``quiet_after``."""
    out: list[dict[str, Any]] = []
    async with ws_connect(running.ws_url + MAIN, token=make_token()) as ws:
        await recv_json(ws)
        await ws.send(json.dumps({"type": "user_message", "payload": {"content": "x"}}))
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), quiet_after)
            except TimeoutError:
                return out
            out.append(json.loads(raw))


async def test_events_wrapped(running: RunningSimulator) -> None:
    running.sim.mode = "events_wrapped"
    frames = await conversation(running)
    assert {f["type"] for f in frames} == {"system_message"}
    assert [f["event"] for f in frames] == ALL_EVENTS
    assert all("run_id" in f["payload"] for f in frames)


async def test_events_aliased(running: RunningSimulator) -> None:
    running.sim.mode = "events_aliased"
    frames = await conversation(running)
    assert [f["type"] for f in frames] == ["agent_start", "agent_thinking", "tool_execute",
                                           "tool_complete", "agent_complete"]


async def test_events_duplicated(running: RunningSimulator) -> None:
    running.sim.mode = "events_duplicated"
    frames = await conversation(running)
    assert [f["type"] for f in frames] == [e for e in ALL_EVENTS for _ in (0, 1)]


async def test_agent_dies(running: RunningSimulator) -> None:
    running.sim.mode = "agent_dies"
    frames = await conversation(running)
    assert [f["type"] for f in frames] == ALL_EVENTS[:-1]


async def test_agent_slow(running: RunningSimulator) -> None:
    running.sim.mode = "agent_slow"
    running.sim.slow_delay = 0.8
    started = time.monotonic()
    frames = await conversation(running, quiet_after=WAIT)
    assert [f["type"] for f in frames] == ALL_EVENTS
    assert time.monotonic() - started >= 0.8


def test_unsigned_token_is_a_real_alg_none_jwt() -> None:
    assert jwt.get_unverified_header(unsigned_token())["alg"] == "none"
