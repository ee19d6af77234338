"""What the imitation backend reads and answers on the wire: its constants (issuer,
audience, paths, subprotocols, event names), where a token can be placed and how it is
found in a request, and the canned answers it gives (JSON errors, the ASGI 403, the
negotiated WebSocket response)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, Final

import jwt
from aiohttp import WSCloseCode, hdrs, web

from monitor.demo.modes import MODES as MODES

# What staging's auth service puts in iss and aud; a token naming others is refused.
ISSUER: Final = "netra-auth-service"
AUDIENCE: Final = "netra-backend"
# Modes in which a plain GET of the main WebSocket path no longer answers the info JSON.
PLAIN_GET_CHANGED: Final = frozenset({"upgrade_405", "not_ready_503"})
RETRY_AFTER_503: Final = "5"
RETRY_AFTER_429: Final = "30"
# Event names of an older agent runtime, still emitted by some staging workers.
EVENT_ALIASES: Final = {"agent_started": "agent_start", "tool_executing": "tool_execute",
                        "tool_completed": "tool_complete", "agent_completed": "agent_complete"}

MAIN_WS_PATH: Final = "/api/v1/websocket"
ALT_WS_PATH: Final = "/ws"
ADMIN_PREFIX: Final = "/-/simulator/"
JWT_AUTH_SUBPROTOCOL: Final = "jwt-auth"
TOKEN_SUBPROTOCOL_PREFIX: Final = "jwt."

ALL_EVENTS: Final = ("agent_started", "agent_thinking", "tool_executing", "tool_completed",
                     "agent_completed")
EVENTS_WITHOUT_TOOLS: Final = ("agent_started", "agent_thinking", "agent_completed")
# Real agents emit events spread over time; a small gap keeps clients from seeing them as one
# burst while keeping the test-suite fast.
EVENT_GAP_SECONDS: Final = 0.005
RECEIVED_MAXLEN: Final = 100
# aiohttp waits this long for the client's close frame; the default 10 s would hold up
# shutdown behind a client that never answers.
WS_CLOSE_TIMEOUT: Final = 2.0
SHUTDOWN_TIMEOUT: Final = 2.0
# Mode slow's delay unless told otherwise (POST slow_delay): short, for the test-suite; the
# demo starts its simulator with a delay over the shipped probes' budgets.
DEFAULT_SLOW_DELAY: Final = 0.3
MAX_DELAY_SECONDS: Final = 3600.0  # the longest slow_delay or stream_hold a switch may set

_OPEN_SOCKETS: Final = web.AppKey["set[web.WebSocketResponse]"]("open_sockets")

_SERVICES: Final = [
    {"name": "backend", "url": "/api", "status": "healthy", "version": "1.42.0"},
    {"name": "auth", "url": "/auth", "status": "healthy", "version": "1.17.3"},
    {"name": "websocket", "url": MAIN_WS_PATH, "status": "healthy", "version": "1.42.0"},
    {"name": "frontend", "url": "/", "status": "healthy", "version": "2.8.1"},
]
_MCP_CONFIG: Final = {
    "enabled": True,
    "transport": "http",
    "endpoint": "/api/mcp",
    "protocol_version": "2024-11-05",
    "capabilities": {"tools": True, "resources": True, "prompts": False},
}
_MCP_SERVERS: Final = {
    "servers": [
        {"name": "netra-tools", "status": "connected", "tools": 12},
        {"name": "clickhouse-analytics", "status": "connected", "tools": 4},
    ],
    "total": 2,
}
_WS_INFO: Final = {
    "data": {
        "service": "websocket_ssot",
        "status": "operational",
        "endpoints": {"websocket": MAIN_WS_PATH, "alternate": ALT_WS_PATH,
                      "health": "/api/health"},
        "auth": {"header": "Authorization: Bearer <jwt>",
                 "subprotocols": [JWT_AUTH_SUBPROTOCOL, "jwt.<base64url(jwt)>"]},
    }
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def encode_token_subprotocol(token: str) -> str:
    """The ``jwt.<base64url(token)>`` subprotocol value, unpadded, as clients send it."""
    return TOKEN_SUBPROTOCOL_PREFIX + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_token_subprotocol(value: str) -> str | None:
    raw = value[len(TOKEN_SUBPROTOCOL_PREFIX):]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None


def _offered_subprotocols(request: web.Request) -> list[str]:
    return [p.strip() for value in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ())
            for p in value.split(",") if p.strip()]


def _bearer(request: web.Request) -> str | None:
    scheme, _, credentials = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _test_header(request: web.Request) -> bool:
    """The non-production shortcut of the auth_test_headers mode: any header whose name
    contains ``test`` or ``e2e`` with a value of true, 1 or staging."""
    return any(("test" in name.lower() or "e2e" in name.lower())
               and value.strip().lower() in ("true", "1", "staging")
               for name, value in request.headers.items())


def _unverified(token: str) -> dict[str, Any] | None:
    """The claims of a JWT without any check: what a bypassed auth dependency trusts."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


def _is_upgrade(request: web.Request) -> bool:
    """Whether a request asks the simulated backend for a WebSocket: the server's routing
    (a real backend's, not a probe kind's). Only the Upgrade header, as Starlette and
    aiohttp route: a malformed handshake then gets their 400, not the JSON of a GET
    (aiohttp's can_prepare would call it a plain GET; test_simulator pins the 400)."""
    return request.headers.get(hdrs.UPGRADE, "").strip().lower() == "websocket"


def _asgi_forbidden() -> web.Response:
    # Same bytes whether the route is missing or the app refused before accept: a client cannot
    # tell them apart, which is the point of those two modes.
    resp = web.Response(status=403, text="Forbidden", content_type="text/plain")
    resp.force_close()
    return resp


def _mode_error(error: str) -> web.Response:
    return web.json_response({"error": f"{error}; modes: {', '.join(MODES)}",
                              "modes": list(MODES)}, status=400)


async def _mode_fields(request: web.Request) -> dict[str, Any] | str:
    """The fields of a mode switch: the query's, then the body's, JSON or a form whatever the
    Content-Type says (``curl -d '{"mode": "slow"}'`` sends JSON labelled as a form). A str
    is what is wrong with the body."""
    fields: dict[str, Any] = dict(request.query)
    raw = (await request.read()).strip()
    if not raw:
        return fields
    if raw[:1] in (b"{", b"["):
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "the body is not valid JSON"
        if not isinstance(body, dict):
            return "the JSON body must be an object like {\"mode\": \"slow\"}"
        fields.update(body)
        return fields
    try:
        fields.update(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        return "the body is neither JSON nor a form (mode=NAME)"
    return fields


def _seconds(value: object) -> float | str | None:
    """A mode switch's delay field: seconds (a number, or a form's or query's string), None
    when absent, or what is wrong with it. Bounded: a delay longer than an hour holds a
    request (and the test or demo waiting on it) for nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return "must be a non-negative number of seconds"
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        return "must be a non-negative number of seconds"
    if value > MAX_DELAY_SECONDS:
        return f"must be at most {MAX_DELAY_SECONDS:g} seconds"
    return float(value)


def _json_error(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


class _NegotiatedWebSocketResponse(web.WebSocketResponse):
    """A WebSocket response whose 101 carries the subprotocol the simulator chose.

    aiohttp's own negotiation can only answer something the client offered, and
    strict_subprotocol must answer ``jwt-auth`` regardless. So every offer is declared known
    (which also keeps aiohttp from logging a mismatch warning) and the header aiohttp computed
    is replaced in the app's ``on_response_prepare`` signal, the last public hook before the
    status line and headers are written.
    """

    def __init__(self, *, answer: str | None, offered: list[str]) -> None:
        super().__init__(protocols=offered, timeout=WS_CLOSE_TIMEOUT)
        self.answer = answer


async def _answer_subprotocol(request: web.Request, response: web.StreamResponse) -> None:
    if not isinstance(response, _NegotiatedWebSocketResponse):
        return
    if response.answer is None:
        response.headers.popall(hdrs.SEC_WEBSOCKET_PROTOCOL, None)
    else:
        response.headers[hdrs.SEC_WEBSOCKET_PROTOCOL] = response.answer


async def _close_open_sockets(app: web.Application) -> None:
    sockets = app[_OPEN_SOCKETS]
    for ws in list(sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
