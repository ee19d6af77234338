"""The built-in imitation of the staging backend, healthy by default, with a switch per regression.

``synthmon demo``, the test-suite and the end-to-end alerting test run probes against it, so it
reproduces what a client *observes* in each failure of the staging incident (status codes, close
codes, subprotocol answers, event sequences), not how the real backend produces them.

Mode scope: ``ws_route_missing``, ``upgrade_json``, ``upgrade_405`` and
``close_without_answer`` break only the main path (``/api/v1/websocket``) so that the alternate
path (``/ws``) can prove the credentials are fine; every other WebSocket mode applies to both
paths. ``auth_not_enforced`` concerns the WebSocket handshake only; the ``auth_*`` fail-open
modes break the one auth check that the WebSocket paths and ``/api/threads`` share, as a
FastAPI dependency would. ``not_ready_503`` is a readiness middleware in front of everything
but the admin endpoint.

Healthy auth: an HS256 JWT signed with ``jwt_secret``, unexpired, already valid, and when it
names an issuer or an audience, the right ones; in the ``Authorization`` header or the
``jwt.<base64url>`` subprotocol offer, never the query string.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import WSCloseCode, WSMsgType, web
from jwt.types import Options

from monitor.demo.modes import MODES as MODES
from monitor.demo.simulator.protocol import (
    _MCP_CONFIG,
    _MCP_SERVERS,
    _OPEN_SOCKETS,
    _SERVICES,
    _WS_INFO,
    ADMIN_PREFIX,
    ALL_EVENTS,
    ALT_WS_PATH,
    AUDIENCE,
    DEFAULT_SLOW_DELAY,
    EVENT_ALIASES,
    EVENT_GAP_SECONDS,
    EVENTS_WITHOUT_TOOLS,
    ISSUER,
    JWT_AUTH_SUBPROTOCOL,
    MAIN_WS_PATH,
    RECEIVED_MAXLEN,
    RETRY_AFTER_429,
    RETRY_AFTER_503,
    SHUTDOWN_TIMEOUT,
    TOKEN_SUBPROTOCOL_PREFIX,
    Handler,
    _answer_subprotocol,
    _asgi_forbidden,
    _bearer,
    _close_open_sockets,
    _decode_token_subprotocol,
    _is_upgrade,
    _json_error,
    _mode_error,
    _mode_fields,
    _NegotiatedWebSocketResponse,
    _offered_subprotocols,
    _seconds,
    _test_header,
    _unverified,
)
from monitor.demo.simulator.rest import (
    DEMO_PASSWORD,
    THREADS_PATH,
    RestApi,
    Thread,
    ThreadStore,
)
from monitor.demo.simulator.streams import HOLD_SECONDS, Streams

log = logging.getLogger("synthmon.simulator")
# events_never_complete: a beat every quarter second, for at most a minute.
NEVER_COMPLETE_GAP = 0.25
NEVER_COMPLETE_BEATS = 240


class StagingSimulator:
    """State and handlers of the simulated backend; ``mode`` may be switched at any time."""

    def __init__(self, *, jwt_secret: str, mode: str = "healthy",
                 slow_delay: float = DEFAULT_SLOW_DELAY,
                 stream_hold: float = HOLD_SECONDS,
                 e2e_password: str = DEMO_PASSWORD) -> None:
        self.jwt_secret = jwt_secret
        self.e2e_password = e2e_password
        self.threads = ThreadStore()
        self._mode = "healthy"
        self.mode = mode
        # What `slow` and `agent_slow` wait: the start's value, unless a mode switch gives
        # its own, which lasts until the next switch (it does not stick to the next mode).
        self.base_slow_delay = slow_delay
        self.slow_delay = slow_delay
        # How long `stream_buffered` holds a stream back, likewise: a test that runs the
        # probes' timeouts compressed gives a hold that fits between its first-event
        # budget and its timeout.
        self.base_stream_hold = stream_hold
        self.stream_hold = stream_hold
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
        app = web.Application(middlewares=[self._slow_middleware, self._readiness_middleware,
                                           self._json_errors_middleware])
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
        app.router.add_get(THREADS_PATH, self._protected_listing)
        RestApi(self).routes(app)
        app.router.add_get(MAIN_WS_PATH, self._main_ws_path)
        app.router.add_get(ALT_WS_PATH, self._alt_ws_path)
        Streams(lambda: self._mode, lambda: self.stream_hold).routes(app)
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
    async def _readiness_middleware(self, request: web.Request, handler: Handler
                                    ) -> web.StreamResponse:
        if self._mode == "not_ready_503" and not request.path.startswith(ADMIN_PREFIX):
            resp = web.json_response({"status": "starting", "detail": "Service not ready"},
                                     status=503, headers={"Retry-After": RETRY_AFTER_503})
            resp.force_close()
            return resp
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
        tokens = [t for t in (_bearer(request), self._query_token(request)) if t]
        claims = self.admit(request, tokens)
        if claims is None:
            return _json_error(403, "Invalid or expired token" if tokens
                               else "Not authenticated")
        headers: dict[str, str] = {}
        if self._mode == "token_echo" and tokens:
            # A debugging middleware that hands the caller's credential back.
            headers["X-Auth-Echo"] = base64.b64encode(tokens[0].encode()).decode()
        owner = str(claims.get("sub", "anonymous"))
        items = [{"id": t.id, "title": t.title} for t in self.threads.of(owner)] \
            if request.path == THREADS_PATH else []
        key = "threads" if request.path == THREADS_PATH else "messages"
        return web.json_response({key: items, "total": len(items), "user_id": owner},
                                 headers=headers)

    # -- admin -------------------------------------------------------------------------------

    async def _get_mode(self, request: web.Request) -> web.Response:
        return web.json_response({"mode": self._mode, "modes": list(MODES),
                                  "slow_delay": self.slow_delay,
                                  "stream_hold": self.stream_hold})

    async def _set_mode(self, request: web.Request) -> web.Response:
        """``POST /-/simulator/mode`` with the mode (and optionally ``slow_delay``, what
        `slow` and `agent_slow` wait, and ``stream_hold``, how long `stream_buffered` holds
        a stream, both in seconds) as JSON (``{"mode": "slow"}``), as a form (``mode=slow``,
        what ``curl -d`` sends) or in the query (``?mode=slow``). An unknown or missing mode
        is a 400 listing the modes. A delay given lasts until the next switch."""
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
        delays: dict[str, float | None] = {}
        for name in ("slow_delay", "stream_hold"):
            value = _seconds(fields.get(name))
            if isinstance(value, str):
                return _mode_error(f"{name} {value}")
            delays[name] = value
        delay, hold = delays["slow_delay"], delays["stream_hold"]
        self.slow_delay = self.base_slow_delay if delay is None else delay
        self.stream_hold = self.base_stream_hold if hold is None else hold
        self.mode = mode
        return web.json_response({"mode": self._mode, "slow_delay": self.slow_delay,
                                  "stream_hold": self.stream_hold})

    # -- WebSocket ---------------------------------------------------------------------------

    def verify(self, token: str, *, lax: bool = False) -> dict[str, Any] | None:
        """Claims of ``token`` if it is an HS256 JWT signed with ``jwt_secret``, unexpired,
        already valid, and names the right issuer and audience when it names any.

        ``lax`` is the auth_lax_validation regression: unsigned (alg none) tokens are
        trusted, and time, issuer and audience go unchecked."""
        if lax:
            try:
                unsigned = jwt.get_unverified_header(token).get("alg") == "none"
            except jwt.PyJWTError:
                return None
            if unsigned:
                return _unverified(token)
        # PyJWT warns about short HMAC keys on every decode; the key is the user's probe
        # configuration, not something the simulator can fix, so the warning is only noise here.
        options: Options = {"verify_aud": False, "verify_exp": not lax, "verify_nbf": not lax,
                            "verify_iat": not lax}
        with warnings.catch_warnings(action="ignore", category=UserWarning):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token, self.jwt_secret, algorithms=["HS256"], options=options)
            except jwt.PyJWTError:
                return None
        if not lax and (("iss" in claims and claims["iss"] != ISSUER)
                        or ("aud" in claims and claims["aud"] != AUDIENCE)):
            return None
        return claims

    def admit(self, request: web.Request, tokens: list[str]) -> dict[str, Any] | None:
        """The claims the app acts on, or None when it refuses: the shared auth check,
        with each fail-open regression of the ``auth_*`` modes."""
        mode = self._mode
        if not tokens:
            return {"sub": "anonymous", "demo": True} if mode == "auth_demo_mode" else None
        for token in tokens:
            claims = self.verify(token, lax=mode == "auth_lax_validation")
            if claims is not None:
                return claims
        if mode == "auth_emergency_bypass" or (mode == "auth_test_headers"
                                               and _test_header(request)):
            return _unverified(tokens[0]) or {"sub": "anonymous"}
        return None

    def _query_token(self, request: web.Request) -> str | None:
        # Only the auth_query_token regression reads ?token=: tokens in URLs end up in logs.
        return request.query.get("token") or None if self._mode == "auth_query_token" else None

    async def _main_ws_path(self, request: web.Request) -> web.StreamResponse:
        if self._mode == "upgrade_405":
            # The WebSocket route re-registered as a REST route taking POST only: the
            # upgrade and a plain GET get the same 405.
            if _is_upgrade(request):
                self._record(request)
            resp = _json_error(405, "Method Not Allowed")
            resp.headers["Allow"] = "POST"
            return resp
        if not _is_upgrade(request):
            return web.json_response(_WS_INFO)
        if self._mode == "close_without_answer":
            # Some servers hang up on an upgrade to a path without a WebSocket route.
            self._record(request)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
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
        """Note the handshake in ``received``; return (token, claims) of the credential the
        app acts on (claims None: refused)."""
        offered = _offered_subprotocols(request)
        candidates = [_bearer(request)] + [
            _decode_token_subprotocol(p) for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)]
        candidates.append(self._query_token(request))
        tokens = [t for t in candidates if t]
        token: str | None = tokens[0] if tokens else None
        claims: dict[str, Any] | None = None
        for candidate in tokens:
            if self.verify(candidate) is not None:
                token = candidate
                break
        claims = self.admit(request, tokens)
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
        token_offer = next((p for p in offered if p.startswith(TOKEN_SUBPROTOCOL_PREFIX)), None)
        if self._mode == "token_echo" and token_offer is not None:
            # The "fix" for the subprotocol mismatch: answer whatever carried the token.
            return token_offer
        if self._mode == "strict_subprotocol" or JWT_AUTH_SUBPROTOCOL in offered:
            return JWT_AUTH_SUBPROTOCOL
        # The token offer is a credential, not a protocol: never chosen when healthy.
        return None

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        _, claims = self._record(request)
        mode = self._mode
        if mode == "auth_rejected_before_accept" or (claims is None
                                                     and mode != "auth_not_enforced"):
            return _asgi_forbidden()
        if mode == "rate_limited_429":
            resp = web.json_response({"detail": "Too Many Requests"}, status=429,
                                     headers={"Retry-After": RETRY_AFTER_429})
            resp.force_close()
            return resp
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
        closes = {
            "close_1003": (WSCloseCode.UNSUPPORTED_DATA, b"No supported subprotocols"),
            "close_1000_before_welcome": (WSCloseCode.OK, b"cleanup"),
            "close_1013": (WSCloseCode.TRY_AGAIN_LATER, b"Try again later"),
        }
        if mode in closes:
            code, reason = closes[mode]
            await ws.close(code=code, message=reason)
            return
        if mode == "drop_after_accept":
            # A worker killed mid-connection: no close frame, the TCP connection just ends.
            transport = ws._req.transport if ws._req is not None else None
            if transport is not None:
                transport.abort()
            return
        user_id = claims.get("sub", "anonymous") if claims else "anonymous"
        connection_id = f"ws_{uuid.uuid4().hex[:16]}"
        await ws.send_json({"type": "connect", "data": {
            "connection_id": connection_id, "user_id": user_id, "server_time": time.time()}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await self._on_text(ws, msg.data, str(user_id))
            elif msg.type == WSMsgType.BINARY:
                await ws.send_json({"type": "error", "data": {
                    "message": "binary frames are not supported"}})
            elif msg.type == WSMsgType.ERROR:
                return

    async def _on_text(self, ws: web.WebSocketResponse, text: str, user_id: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await ws.send_json({"type": "error", "data": {"message": "invalid JSON"}})
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await ws.send_json({"type": "pong", "data": {"server_time": time.time()}})
        elif kind == "user_message" and "thread_id" in message:
            thread = self.threads.owned(message["thread_id"], user_id)
            if thread is None:
                # As staging does: the message names no thread of this user's; the error,
                # then the connection closed as a policy violation.
                shown = str(message["thread_id"])[:100]
                await ws.send_json({"type": "error_message", "error_code": "THREAD_NOT_FOUND",
                                    "message": f"Thread {shown} not found"})
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Thread not found")
                return
            await self._run_agent(ws, message, thread)
        elif kind == "user_message":
            await self._run_agent(ws, message)
        else:
            await ws.send_json({"type": "error", "data": {
                "message": f"unsupported message type {kind!r}"}})

    async def _run_agent(self, ws: web.WebSocketResponse, message: dict[str, Any],
                         thread: Thread | None = None) -> None:
        payload = message.get("payload") or message.get("data") or {}
        content = payload.get("content") if isinstance(payload, dict) else None
        run_id = f"run_{uuid.uuid4().hex[:12]}"
        mode = self._mode
        if thread is not None:
            thread.messages.append({"role": "user", "content": str(content)[:200],
                                    "run_id": run_id})
            if mode == "events_never_complete":
                await self._never_complete(ws, run_id)
                return
        events: tuple[str, ...] = EVENTS_WITHOUT_TOOLS if mode == "events_missing" else ALL_EVENTS
        if mode == "agent_dies":
            events = events[:-1]  # the agent crashes: no agent_completed, no error either
        details: dict[str, dict[str, Any]] = {
            "agent_started": {"agent_name": "supervisor"},
            "agent_thinking": {"thought": "Working out which tool answers this"},
            "tool_executing": {"tool_name": "data_lookup", "parameters": {"query": content}},
            "tool_completed": {"tool_name": "data_lookup", "result": {"status": "ok"}},
            "agent_completed": {"result": {"content": f"Processed: {content!s}"[:200]}},
        }
        for i, event in enumerate(events):
            delay = self.slow_delay if mode == "slow" else EVENT_GAP_SECONDS
            if mode == "agent_slow" and event == "agent_completed":
                delay = self.slow_delay  # the long tail of a staging agent
            if i or mode == "slow":
                await asyncio.sleep(delay)
            if ws.closed:
                return
            data = {"run_id": run_id, "timestamp": time.time(), **details[event]}
            if mode == "events_wrapped":
                frame: dict[str, Any] = {"type": "system_message", "event": event,
                                         "payload": data}
            elif mode == "events_aliased":
                frame = {"type": EVENT_ALIASES.get(event, event), "data": data}
            else:
                frame = {"type": event, "data": data}
            await ws.send_json(frame)
            if mode == "events_duplicated":
                await ws.send_json(frame)  # a second emitter of the same event
        if thread is not None and events[-1:] == ("agent_completed",):
            thread.messages.append({"role": "assistant", "run_id": run_id,
                                    **details["agent_completed"]["result"]})

    async def _never_complete(self, ws: web.WebSocketResponse, run_id: str) -> None:
        """events_never_complete: an agent stuck on a thread, thinking aloud until the client
        gives up (at most NEVER_COMPLETE_BEATS beats)."""
        await ws.send_json({"type": "agent_started", "data": {
            "run_id": run_id, "timestamp": time.time(), "agent_name": "supervisor"}})
        for _ in range(NEVER_COMPLETE_BEATS):
            await asyncio.sleep(NEVER_COMPLETE_GAP)
            if ws.closed:
                return
            await ws.send_json({"type": "agent_thinking", "data": {
                "run_id": run_id, "timestamp": time.time(), "thought": "Still thinking"}})


@dataclass
class RunningSimulator:
    sim: StagingSimulator
    url: str
    ws_url: str
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()


async def _start(host: str, port: int, *, jwt_secret: str, mode: str,
                 access_log: bool, slow_delay: float = DEFAULT_SLOW_DELAY,
                 e2e_password: str = DEMO_PASSWORD) -> RunningSimulator:
    sim = StagingSimulator(jwt_secret=jwt_secret, mode=mode, slow_delay=slow_delay,
                           e2e_password=e2e_password)
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
                          mode: str = "healthy",
                          slow_delay: float = DEFAULT_SLOW_DELAY,
                          e2e_password: str = DEMO_PASSWORD) -> RunningSimulator:
    """Start the simulator on ``host:port`` (0 = an ephemeral port, reported in ``url``)."""
    return await _start(host, port, jwt_secret=jwt_secret, mode=mode, access_log=False,
                        slow_delay=slow_delay, e2e_password=e2e_password)


async def serve_forever(host: str, port: int, *, jwt_secret: str, mode: str,
                        on_ready: Callable[[RunningSimulator], None] | None = None,
                        e2e_password: str = DEMO_PASSWORD) -> None:
    """Run the simulator until cancelled; for a CLI subcommand. ``on_ready`` is called once
    it listens (with the real port, when ``port`` is 0)."""
    running = await _start(host, port, jwt_secret=jwt_secret, mode=mode, access_log=True,
                           e2e_password=e2e_password)
    log.info("staging simulator listening on %s (mode %s); switch with POST %s/-/simulator/mode",
             running.url, mode, running.url)
    if on_ready is not None:
        on_ready(running)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()
