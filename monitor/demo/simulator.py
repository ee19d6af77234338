"""A built-in imitation of the staging backend, healthy by default, with a switch per regression.

``synthmon demo``, the test-suite and the end-to-end alerting test run probes against it, so it
reproduces what a client *observes* in each failure of the staging incident (status codes, close
codes, subprotocol answers, event sequences), not how the real backend produces them.

Mode scope: ``ws_route_missing`` and ``upgrade_json`` break only the main path
(``/api/v1/websocket``) so that the alternate path (``/ws``) can prove the credentials are fine;
every other WebSocket mode applies to both paths. ``auth_not_enforced`` concerns the WebSocket
handshake only; ``/api/threads`` keeps requiring a token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import json
import logging
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import jwt
from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from monitor.demo.modes import MODES as MODES

log = logging.getLogger("synthmon.simulator")


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


def _is_upgrade(request: web.Request) -> bool:
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


class StagingSimulator:
    """State and handlers of the simulated backend; ``mode`` may be switched at any time."""

    def __init__(self, *, jwt_secret: str, mode: str = "healthy", slow_delay: float = 0.3) -> None:
        self.jwt_secret = jwt_secret
        self._mode = "healthy"
        self.mode = mode
        self.slow_delay = slow_delay
        self.received: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=RECEIVED_MAXLEN)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown simulator mode {value!r}; one of: {', '.join(MODES)}")
        if value != self._mode:
            log.info("simulator mode %s -> %s", self._mode, value)
        self._mode = value

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._slow_middleware, self._json_errors_middleware])
        sockets: set[web.WebSocketResponse] = set()
        app[_OPEN_SOCKETS] = sockets
        app.on_response_prepare.append(_answer_subprotocol)
        app.on_shutdown.append(_close_open_sockets)
        app.router.add_get("/health", self._health)
        app.router.add_get("/api/health", self._api_health)
        app.router.add_get("/api/discovery/services", self._services)
        app.router.add_get("/api/mcp/config", self._mcp_config)
        app.router.add_get("/api/mcp/servers", self._mcp_servers)
        app.router.add_get("/api/messages", self._messages_redirect)
        app.router.add_get("/api/messages/", self._protected_listing)
        app.router.add_get("/api/threads", self._protected_listing)
        app.router.add_get(MAIN_WS_PATH, self._main_ws_path)
        app.router.add_get(ALT_WS_PATH, self._alt_ws_path)
        app.router.add_get(ADMIN_PREFIX + "mode", self._get_mode)
        app.router.add_post(ADMIN_PREFIX + "mode", self._set_mode)
        return app

    # -- middlewares -------------------------------------------------------------------------

    @web.middleware
    async def _slow_middleware(self, request: web.Request, handler: Handler
                               ) -> web.StreamResponse:
        # The admin endpoint stays fast so a test can always switch the mode back.
        if self._mode == "slow" and not request.path.startswith(ADMIN_PREFIX):
            await asyncio.sleep(self.slow_delay)
        return await handler(request)

    @web.middleware
    async def _json_errors_middleware(self, request: web.Request, handler: Handler
                                      ) -> web.StreamResponse:
        # FastAPI-style JSON for routing errors, so body assertions see what staging sends.
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _json_error(404, "Not Found")
        except web.HTTPMethodNotAllowed:
            return _json_error(405, "Method Not Allowed")

    # -- plain HTTP --------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def _api_health(self, request: web.Request) -> web.Response:
        connected = {"status": "connected"}
        return web.json_response({"status": "healthy", "checks": {
            "postgres": connected, "redis": connected, "clickhouse": connected}})

    async def _services(self, request: web.Request) -> web.Response:
        return web.json_response(_SERVICES)

    async def _mcp_config(self, request: web.Request) -> web.Response:
        return web.json_response(_MCP_CONFIG)

    async def _mcp_servers(self, request: web.Request) -> web.Response:
        return web.json_response(_MCP_SERVERS)

    async def _messages_redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/api/messages/")

    async def _protected_listing(self, request: web.Request) -> web.Response:
        token = _bearer(request)
        if token is None:
            return _json_error(403, "Not authenticated")
        claims = self.verify(token)
        if claims is None:
            return _json_error(403, "Invalid or expired token")
        if request.path == "/api/threads":
            return web.json_response({"threads": [], "total": 0, "user_id": claims.get("sub")})
        return web.json_response({"messages": [], "total": 0, "user_id": claims.get("sub")})

    # -- admin -------------------------------------------------------------------------------

    async def _get_mode(self, request: web.Request) -> web.Response:
        return web.json_response({"mode": self._mode, "modes": list(MODES),
                                  "slow_delay": self.slow_delay})

    async def _set_mode(self, request: web.Request) -> web.Response:
        """``POST /-/simulator/mode`` with the mode (and optionally ``slow_delay``) as JSON
        (``{"mode": "slow"}``), as a form (``mode=slow``, what ``curl -d`` sends) or in the
        query (``?mode=slow``). An unknown or missing mode is a 400 listing the modes."""
        fields = await _mode_fields(request)
        if isinstance(fields, str):
            return _mode_error(fields)
        mode = fields.get("mode")
        if mode is None or mode == "":
            return _mode_error("no mode given: send {\"mode\": \"NAME\"} as JSON, mode=NAME "
                               "as a form, or ?mode=NAME")
        if not isinstance(mode, str) or mode not in MODES:
            shown = mode if isinstance(mode, str) else json.dumps(mode)
            return _mode_error(f"unknown mode {shown[:100]!r}")
        delay = fields.get("slow_delay")
        if isinstance(delay, str):
            try:
                delay = float(delay)
            except ValueError:
                delay = -1.0
        if delay is not None:
            if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
                return _mode_error("slow_delay must be a non-negative number of seconds")
            self.slow_delay = float(delay)
        self.mode = mode
        return web.json_response({"mode": self._mode, "slow_delay": self.slow_delay})

    # -- WebSocket ---------------------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims of ``token`` if it is an HS256 JWT signed with ``jwt_secret`` and unexpired."""
        # PyJWT warns about short HMAC keys on every decode; the key is the user's probe
        # configuration, not something the simulator can fix, so the warning is only noise here.
        with warnings.catch_warnings(action="ignore", category=UserWarning):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, self.jwt_secret, algorithms=["HS256"], options={"verify_aud": False})
            except jwt.PyJWTError:
                return None
        return claims

    async def _main_ws_path(self, request: web.Request) -> web.StreamResponse:
        if not _is_upgrade(request):
            return web.json_response(_WS_INFO)
        if self._mode == "ws_route_missing":
            self._record(request)
            return _asgi_forbidden()
        if self._mode == "upgrade_json":
            self._record(request)
            resp = web.json_response(_WS_INFO)
            resp.force_close()
            return resp
        return await self._websocket(request)

    async def _alt_ws_path(self, request: web.Request) -> web.StreamResponse:
        if not _is_upgrade(request):
            # What an ASGI app with only a WebSocket route at this path answers a plain GET.
            return _json_error(404, "Not Found")
        return await self._websocket(request)

    def _record(self, request: web.Request) -> tuple[str | None, dict[str, Any] | None]:
        """Note the handshake in ``received``; return (token, claims) of the best credential."""
        offered = _offered_subprotocols(request)
        candidates = [_bearer(request)] + [
            _decode_token_subprotocol(p) for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
        tokens = [t for t in candidates if t]
        token: str | None = tokens[0] if tokens else None
        claims: dict[str, Any] | None = None
        for candidate in tokens:
            claims = self.verify(candidate)
            if claims is not None:
                token = candidate
                break
        self.received.append({
            "path": request.path,
            "headers": dict(request.headers.items()),
            "subprotocols": offered,
            "token": token,
            "claims": claims,
            "mode": self._mode,
            "time": time.time(),
        })
        return token, claims

    def _choose_subprotocol(self, offered: list[str]) -> str | None:
        if self._mode == "subprotocol_mismatch":
            return None  # a handler that lost its subprotocol: upgraded, none selected
        if self._mode == "strict_subprotocol" or JWT_AUTH_SUBPROTOCOL in offered:
            return JWT_AUTH_SUBPROTOCOL
        return next((p for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)), None)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        _, claims = self._record(request)
        mode = self._mode
        if mode == "auth_rejected_before_accept" or (claims is None
                                                     and mode != "auth_not_enforced"):
            return _asgi_forbidden()
        offered = _offered_subprotocols(request)
        ws = _NegotiatedWebSocketResponse(answer=self._choose_subprotocol(offered),
                                          offered=offered)
        try:
            await ws.prepare(request)
        except ConnectionError:
            return ws
        sockets: set[web.WebSocketResponse] = request.app[_OPEN_SOCKETS]
        sockets.add(ws)
        try:
            await self._session(ws, mode, claims)
        except ConnectionError:
            # The client vanished mid-conversation: nothing to report.
            pass
        finally:
            sockets.discard(ws)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _session(self, ws: web.WebSocketResponse, mode: str,
                       claims: dict[str, Any] | None) -> None:
        if mode == "close_1008":
            await ws.send_json({"type": "error_message", "error_code": "AUTH_FAILED",
                                "message": "Authentication failed: token rejected"})
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Authentication failed")
            return
        if mode == "close_1011":
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"service not ready")
            return
        user_id = claims.get("sub", "anonymous") if claims else "anonymous"
        connection_id = f"ws_{uuid.uuid4().hex[:16]}"
        await ws.send_json({"type": "connect", "data": {
            "connection_id": connection_id, "user_id": user_id, "server_time": time.time()}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await self._on_text(ws, msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_json({"type": "error", "data": {
                    "message": "binary frames are not supported"}})
            elif msg.type == WSMsgType.ERROR:
                return

    async def _on_text(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await ws.send_json({"type": "error", "data": {"message": "invalid JSON"}})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await ws.send_json({"type": "pong", "data": {"server_time": time.time()}})
        elif kind == "user_message":
            await self._run_agent(ws, message)
        else:
            await ws.send_json({"type": "error", "data": {
                "message": f"unsupported message type {kind!r}"}})

    async def _run_agent(self, ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        payload = message.get("payload") or message.get("data") or {}
        content = payload.get("content") if isinstance(payload, dict) else None
        run_id = f"run_{uuid.uuid4().hex[:12]}"
        events = EVENTS_WITHOUT_TOOLS if self._mode == "events_missing" else ALL_EVENTS
        details: dict[str, dict[str, Any]] = {
            "agent_started": {"agent_name": "supervisor"},
            "agent_thinking": {"thought": "Working out which tool answers this"},
            "tool_executing": {"tool_name": "data_lookup", "parameters": {"query": content}},
            "tool_completed": {"tool_name": "data_lookup", "result": {"status": "ok"}},
            "agent_completed": {"result": {"content": f"Processed: {content!s}"[:200]}},
        }
        for i, event in enumerate(events):
            delay = self.slow_delay if self._mode == "slow" else EVENT_GAP_SECONDS
            if i or self._mode == "slow":
                await asyncio.sleep(delay)
            if ws.closed:
                return
            await ws.send_json({"type": event, "data": {
                "run_id": run_id, "timestamp": time.time(), **details[event]}})


@dataclass
class RunningSimulator:
    sim: StagingSimulator
    url: str
    ws_url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def _start(host: str, port: int, *, jwt_secret: str, mode: str,
                 access_log: bool) -> RunningSimulator:
    sim = StagingSimulator(jwt_secret=jwt_secret, mode=mode)
    kwargs: dict[str, Any] = {} if access_log else {"access_log": None}
    runner = web.AppRunner(sim.app(), shutdown_timeout=SHUTDOWN_TIMEOUT, **kwargs)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        real_port = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    netloc = f"[{host}]:{real_port}" if ":" in host else f"{host}:{real_port}"
    return RunningSimulator(sim=sim, url=f"http://{netloc}", ws_url=f"ws://{netloc}",
                            runner=runner)


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, jwt_secret: str,
                          mode: str = "healthy") -> RunningSimulator:
    """Start the simulator on ``host:port`` (0 = an ephemeral port, reported in ``url``)."""
    return await _start(host, port, jwt_secret=jwt_secret, mode=mode, access_log=False)


async def serve_forever(host: str, port: int, *, jwt_secret: str, mode: str,
                        on_ready: Callable[[RunningSimulator], None] | None = None) -> None:
    """Run the simulator until cancelled; for a CLI subcommand. ``on_ready`` is called once
    it listens (with the real port, when ``port`` is 0)."""
    running = await _start(host, port, jwt_secret=jwt_secret, mode=mode, access_log=True)
    log.info("staging simulator listening on %s (mode %s); switch with POST %s/-/simulator/mode",
             running.url, mode, running.url)
    if on_ready is not None:
        on_ready(running)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()
