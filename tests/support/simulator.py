"""What the simulator's test modules share: its test secret, bounded waits, tokens, and a
WebSocket client with every wait bounded (a regression fails fast instead of hanging)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

# Long enough that PyJWT does not warn about the HMAC key length.
SECRET = "simulator-test-secret-0123456789abcdef"
OTHER_SECRET = "not-the-simulator-secret-0123456789abcdef"
WAIT = 3.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
ALL_EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
              "agent_completed"]


def make_token(secret: str = SECRET, ttl: float = 300, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": "staging-e2e-user-002", "email": "e2e@example.com",
                            "type": "access", "iat": now, "exp": now + ttl}
    body.update(claims)
    return jwt.encode(body, secret, algorithm="HS256")


def ws_connect(url: str, *, token: str | None = None, header: bool = True,
               subprotocols: list[str] | None = None,
               headers: dict[str, str] | None = None) -> Any:
    extra = dict(headers or {})
    if token is not None and header:
        extra["Authorization"] = f"Bearer {token}"
    offered = [Subprotocol(p) for p in subprotocols] if subprotocols is not None else None
    return connect(url, additional_headers=extra, subprotocols=offered, open_timeout=WAIT,
                   close_timeout=WAIT, proxy=None)


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), WAIT)
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


async def recv_events(ws: ClientConnection, until: str = "agent_completed") -> list[str]:
    seen: list[str] = []
    while not seen or seen[-1] != until:
        msg = await recv_json(ws)
        assert isinstance(msg["data"], dict)
        seen.append(msg["type"])
    return seen


async def expect_status(url: str, **kwargs: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with ws_connect(url, **kwargs):
            pass
    return info.value


async def expect_close(ws: ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    return info.value
