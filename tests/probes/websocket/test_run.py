"""The WebSocket probe against real loopback servers written here: websockets servers with
hooks, aiohttp apps that answer upgrades as plain HTTP, and raw asyncio servers that speak
broken or silent protocol. No mocks: every outcome comes from bytes on a socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import ssl
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from monitor.config import Probe, load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.websocket import classify_handshake_failure, run_websocket
from monitor.redact import REDACTED, Redactor
from monitor.result import Result
from tests.support import hostile
from tests.support.hostile import Cert, Handler, make_cert, read_request, ws_accept
from tests.support.servers import serving
from tests.support.timing import SLACK

SECRET = "ws-test-secret-Hq83LmPz-0123456789ab"
SECRET_ENV = "SYNTHMON_TEST_WS_JWT_SECRET"
CLAIMS = {"sub": "staging-e2e-user-002", "email": "e2e@example.com", "type": "access",
          "iss": "netra-auth-service", "permissions": ["read", "write", "execute"]}
WRONG_SECRET = "not-the-secret-but-long-enough-32b"
PATH = "/api/v1/websocket"

ServerHandler = Callable[[ServerConnection], Awaitable[None]]

pytestmark = pytest.mark.both_loops


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def make_probe(url: str, *bodies: str, timeout: str = "1500ms",
               auth: str | None = "staging_jwt", env: dict[str, str] | None = None) -> Probe:
    """A one-probe config through the real loader; ``bodies`` are YAML inside ``websocket``
    (each dedented on its own, so indented literals and constants mix)."""
    auth_line = f"auth: {auth}" if auth else ""
    text = textwrap.dedent(f"""\
        defaults: {{interval: 60s, timeout: {timeout}}}
        auth:
          staging_jwt:
            type: jwt
            algorithm: HS256
            secret_env: {SECRET_ENV}
            claims: {json.dumps(CLAIMS)}
            ttl: 30m
        probes:
          - name: ws-test
            websocket:
              url: ${{WS_URL}}
        """)
    extra = "\n".join(x for x in (auth_line, *map(textwrap.dedent, bodies)) if x)
    text += textwrap.indent(extra, " " * 6) + "\n"
    config = load_text(text, env={"WS_URL": url, **(env or {})})
    return config.probes[0]


def decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


def token_from_subprotocols(offered: list[str]) -> str | None:
    for p in offered:
        if p.startswith("jwt."):
            b64 = p[4:]
            return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode()
    return None


@dataclass
class Seen:
    """What a test server received."""

    paths: list[str] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    offered: list[list[str]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)


def offered_of(headers: Headers) -> list[str]:
    return [p.strip() for v in headers.get_all("Sec-WebSocket-Protocol") for p in v.split(",")]


def recording(seen: Seen, reply: Callable[[ServerConnection, Request], Response | None]
              | None = None) -> Callable[[ServerConnection, Request], Response | None]:
    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        seen.paths.append(request.path)
        seen.headers.append(request.headers)
        seen.offered.append(offered_of(request.headers))
        return reply(conn, request) if reply else None
    return process_request


def pick(name: str | None) -> Callable[[Any, list[Subprotocol]], Subprotocol | None]:
    """A select_subprotocol hook answering ``name`` whatever was offered (as servers do)."""
    def select(_conn: Any, _offered: list[Subprotocol]) -> Subprotocol | None:
        return Subprotocol(name) if name else None
    return select


@contextlib.asynccontextmanager
async def ws_server(handler: ServerHandler, **kwargs: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}{PATH}"


@contextlib.asynccontextmanager
async def http_app(app: web.Application) -> AsyncIterator[str]:
    async with serving(app) as base:
        yield f"ws{base.removeprefix('http')}{PATH}"


@contextlib.asynccontextmanager
async def raw_server(handle: Handler) -> AsyncIterator[str]:
    """A raw asyncio server (tests.hostile) on loopback; yields its WebSocket URL."""
    async with hostile.raw_server(handle) as port:
        yield f"ws://127.0.0.1:{port}{PATH}"


async def hold(conn: ServerConnection) -> None:
    """Keep the connection open, silent, until the client goes."""
    with contextlib.suppress(Exception):
        async for _ in conn:
            pass


def assert_bounded(result: Result, probe: Probe) -> None:
    """The run ended at its timeout, not when the server let go (a hang lasts 30 s)."""
    assert result.duration_seconds <= probe.timeout + SLACK, result.duration_seconds


def dump(result: Result) -> str:
    return repr(result) + json.dumps(result.to_dict(), default=str)


# --------------------------------------------------------------------------- the staging app


def staging(seen: Seen, events: list[dict[str, Any]] | None = None,
            first: dict[str, Any] | None = None) -> ServerHandler:
    """The golden path: connect message, then the agent events after a user_message."""
    async def handler(conn: ServerConnection) -> None:
        await conn.send(json.dumps(first or {"type": "connect", "connection_id": "c1"}))
        msg = await conn.recv()
        assert isinstance(msg, str)
        seen.messages.append(msg)
        for event in events or []:
            await conn.send(json.dumps(event))
        await hold(conn)
    return handler


GOLDEN_EVENTS = ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
                 "agent_completed"]
GOLDEN_STEPS = """\
    steps:
      - expect: {json: {type: connect}, timeout: 1s}
      - send: {json: {type: user_message, payload: {content: synthetic check}}}
      - expect_events: {types: [agent_started, agent_thinking, tool_executing,
                                tool_completed, agent_completed], in_order: true,
                        field: type, timeout: 1s, fail_on: [error_message, agent_failed]}
"""


async def test_golden_path_success_with_header_and_subprotocol_token(ctx: ProbeContext) -> None:
    seen = Seen()
    events = [{"type": t, "payload": {}} for t in GOLDEN_EVENTS]

    def select(_c: Any, offered: list[Subprotocol]) -> Subprotocol | None:
        return Subprotocol("jwt-auth") if "jwt-auth" in offered else None

    async with ws_server(staging(seen, events), process_request=recording(seen),
                         select_subprotocol=select) as url:
        probe = make_probe(url, """\
            send_token_as: [authorization_header, subprotocol]
            subprotocols: [jwt-auth]
            headers: {X-Test-Type: synthetic}
            expect_subprotocol: jwt-auth
            """, GOLDEN_STEPS)
        result = await run_websocket(probe, ctx)

    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert result.success and result.upgraded and result.status_code == 101
    assert result.close_code is None
    assert result.evidence.subprotocol == "jwt-auth"
    assert result.target == url
    assert [name for name, _ in result.phases] == ["resolve", "connect", "handshake", "steps"]
    assert all(d >= 0 for _, d in result.phases)
    assert [(s.index, s.name) for s in result.steps] == [
        (0, "0-expect"), (1, "1-send"), (2, "2-expect_events")]
    # What the server got: the token twice, both valid with the configured claims.
    headers = seen.headers[0]
    assert headers["X-Test-Type"] == "synthetic"
    scheme, _, header_token = headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    sub_token = token_from_subprotocols(seen.offered[0])
    assert sub_token == header_token
    assert "=" not in seen.offered[0][-1]  # base64url without padding
    claims = decode(header_token)
    assert {k: claims[k] for k in CLAIMS} == CLAIMS
    assert claims["exp"] - claims["iat"] == 1800
    assert seen.offered[0][0] == "jwt-auth"
    assert json.loads(seen.messages[0]) == {"type": "user_message",
                                            "payload": {"content": "synthetic check"}}
    assert header_token not in dump(result)


async def test_token_as_subprotocol_only(ctx: ProbeContext) -> None:
    seen = Seen()
    async with ws_server(staging(seen), process_request=recording(seen),
                         select_subprotocol=pick("jwt-auth")) as url:
        probe = make_probe(url, """\
            send_token_as: [subprotocol]
            subprotocols: [jwt-auth]
            steps: [{expect: {json: {type: connect}}}]
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert "Authorization" not in seen.headers[0]
    token = token_from_subprotocols(seen.offered[0])
    assert token is not None and decode(token)["sub"] == CLAIMS["sub"]


async def test_token_as_query_stays_out_of_the_target(ctx: ProbeContext) -> None:
    seen = Seen()
    async with ws_server(staging(seen), process_request=recording(seen)) as url:
        probe = make_probe(url + "?client=e2e", """\
            send_token_as: [query]
            steps: [{expect: {regex: '"type": ?"connect"'}}]
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    path = seen.paths[0]
    assert path.startswith(PATH + "?client=e2e&token=")
    token = path.split("token=", 1)[1]
    assert decode(token)["iss"] == CLAIMS["iss"]
    assert result.target == url and token not in dump(result)


# --------------------------------------------------------------------------- handshake


def incident_app(seen: Seen, upgrade_status: int = 403, echo_token: bool = False,
                 pad: int = 0) -> web.Application:
    """The incident: the WebSocket path re-registered as a plain GET route, behind a
    framework that answers ``upgrade_status`` to an upgrade it has no route for."""
    async def route(request: web.Request) -> web.Response:
        seen.headers.append(Headers(request.headers.items()))
        auth = request.headers.get("Authorization", "")
        echo = {"X-Echo-Auth": auth} if echo_token else {}
        if request.headers.get("Upgrade", "").lower() == "websocket" and upgrade_status != 200:
            return web.Response(status=upgrade_status,
                                text=f"Forbidden {'.' * pad}{auth if echo else ''}",
                                headers=echo)
        data = {"pad": "." * pad, "service": "websocket_ssot", "status": "operational",
                "seen_auth": auth if echo_token else None}
        return web.json_response({"data": data}, headers=echo)

    app = web.Application()
    app.router.add_get(PATH, route)
    return app


async def test_handshake_rejected_403_with_diagnosis(ctx: ProbeContext) -> None:
    seen = Seen()
    async with http_app(incident_app(seen)) as url:
        probe = make_probe(url, "headers: {X-Test-Type: synthetic}\ndiagnose: true\n")
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.HANDSHAKE_REJECTED, ev
    assert result.status_code == 403 and ev.status_code == 403 and not result.upgraded
    assert ev.body_excerpt is not None and ev.body_excerpt.startswith("Forbidden")
    assert ev.content_type is not None and ev.content_type.startswith("text/plain")
    assert dict(ev.headers)["Content-Type"].startswith("text/plain")
    assert "403" in ev.detail
    d = ev.diagnosis
    assert d is not None and d.status_code == 200 and d.error is None
    assert d.content_type is not None and d.content_type.startswith("application/json")
    assert d.body_excerpt is not None and "operational" in d.body_excerpt
    assert "GET on this path answers 200 application/json" in d.hint
    assert "plain HTTP route" in d.hint and "cannot tell" in d.hint
    # The GET carried the same credentials and extra headers, and no upgrade.
    upgrade_req, get_req = seen.headers
    assert get_req["Authorization"] == upgrade_req["Authorization"]
    assert get_req["X-Test-Type"] == "synthetic" and "Upgrade" not in get_req
    assert [name for name, _ in result.phases] == ["resolve", "connect", "handshake"]


async def test_handshake_rejected_500(ctx: ProbeContext) -> None:
    async with http_app(incident_app(Seen(), upgrade_status=500)) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.HANDSHAKE_REJECTED
    assert result.status_code == 500
    assert result.evidence.diagnosis is not None
    assert "failed on the upgrade" in result.evidence.diagnosis.hint


async def test_not_upgraded_200_json(ctx: ProbeContext) -> None:
    async with http_app(incident_app(Seen(), upgrade_status=200)) as url:
        result = await run_websocket(make_probe(url), ctx)
    ev = result.evidence
    assert result.outcome is Outcome.NOT_UPGRADED, ev
    assert result.status_code == 200 and not result.upgraded
    assert ev.content_type is not None and ev.content_type.startswith("application/json")
    assert ev.body_excerpt is not None and json.loads(ev.body_excerpt)["data"]["status"] \
        == "operational"
    assert ev.diagnosis is not None and ev.diagnosis.status_code == 200
    assert "answered the upgrade as a plain request" in ev.diagnosis.hint
    assert "proxy dropped the Upgrade header" in ev.diagnosis.hint


async def test_diagnosis_records_a_failed_get(ctx: ProbeContext) -> None:
    connections = 0

    async def refuse_then_hang_up(reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        if connections == 1:
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async with raw_server(refuse_then_hang_up) as url:
        result = await run_websocket(make_probe(url), ctx)
    d = result.evidence.diagnosis
    assert result.outcome is Outcome.HANDSHAKE_REJECTED
    assert d is not None and d.status_code is None and d.error
    assert "no answer" in d.hint
    assert connections == 2


async def test_not_upgraded_redirect_is_not_followed(ctx: ProbeContext) -> None:
    def redirect(conn: ServerConnection, _r: Request) -> Response:
        response = conn.respond(307, "moved\n")
        response.headers["Location"] = "/elsewhere"
        return response

    async with ws_server(hold, process_request=redirect) as url:
        result = await run_websocket(make_probe(url, "diagnose: false\n"), ctx)
    assert result.outcome is Outcome.NOT_UPGRADED, result.evidence
    assert result.status_code == 307
    assert dict(result.evidence.headers)["Location"] == "/elsewhere"
    assert result.evidence.diagnosis is None


async def test_subprotocol_mismatch_server_answers_one_not_offered(ctx: ProbeContext) -> None:
    # The incident's second act: the client offers only jwt.<token>, the server says jwt-auth.
    async with ws_server(hold, select_subprotocol=pick("jwt-auth")) as url:
        probe = make_probe(url, "send_token_as: [subprotocol]\n")
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.SUBPROTOCOL_MISMATCH, ev
    assert ev.subprotocol == "jwt-auth" and result.status_code == 101
    assert not result.upgraded
    assert f"jwt.{REDACTED}" in ev.detail and "jwt-auth" in ev.detail


async def test_subprotocol_mismatch_expected_one_missing(ctx: ProbeContext) -> None:
    async with ws_server(hold, select_subprotocol=pick(None)) as url:
        probe = make_probe(url, """\
            send_token_as: [subprotocol]
            subprotocols: [jwt-auth]
            expect_subprotocol: jwt-auth
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUBPROTOCOL_MISMATCH, result.evidence
    assert "expected subprotocol jwt-auth, the server selected none" in result.evidence.detail


async def test_connect_refused(ctx: ProbeContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await run_websocket(make_probe(f"ws://127.0.0.1:{port}/ws"), ctx)
    assert result.outcome is Outcome.CONNECT_REFUSED
    assert result.status_code is None and result.evidence.status_code is None


def resolve_to_two_addresses(monkeypatch: pytest.MonkeyPatch) -> str:
    """The name returned resolves to ::1, then 127.0.0.1. No resolver here answers one name
    with both, so the running loop's getaddrinfo does."""
    async def two_addresses(host: str, port: int, **_kw: Any) -> list[Any]:
        assert host == "two-addresses.test"
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", two_addresses)
    return "two-addresses.test"


async def test_a_refusing_address_falls_through_to_the_next(
        ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first address refuses: the server listens on 127.0.0.1 only.
    name = resolve_to_two_addresses(monkeypatch)
    async with ws_server(hold) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        result = await run_websocket(make_probe(f"ws://{name}:{port}/ws"), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert [p for p, _ in result.phases][:3] == ["resolve", "connect", "handshake"]


async def test_every_address_refusing_reports_the_last_refusal(
        ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = resolve_to_two_addresses(monkeypatch)
    result = await run_websocket(make_probe(f"ws://{name}:{port}/ws"), ctx)
    assert result.outcome is Outcome.CONNECT_REFUSED, result.evidence
    assert result.evidence.detail.endswith(f"(two-addresses.test:{port})")
    assert [p for p, _ in result.phases] == ["resolve", "connect"]


async def test_dns_error(ctx: ProbeContext) -> None:
    result = await run_websocket(make_probe("ws://no-such-host.invalid/ws"), ctx)
    assert result.outcome is Outcome.DNS_ERROR
    assert [name for name, _ in result.phases] == ["resolve"]


async def test_timeout_when_the_server_accepts_tcp_and_stays_silent(ctx: ProbeContext) -> None:
    async def silent(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(silent) as url:
        probe = make_probe(url, timeout="400ms")
        start = time.monotonic()
        result = await run_websocket(probe, ctx)
        elapsed = time.monotonic() - start
    assert result.outcome is Outcome.TIMEOUT, result.evidence
    assert "handshake" in result.evidence.detail
    assert result.status_code is None
    assert 0.35 <= elapsed <= probe.timeout + SLACK  # its timeout, not the silent server's
    assert_bounded(result, probe)


async def test_connection_reset_when_the_server_hangs_up_before_answering(
        ctx: ProbeContext) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with raw_server(hang_up) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.CONNECTION_RESET, result.evidence
    assert result.status_code is None


async def test_protocol_error_on_wrong_accept(ctx: ProbeContext) -> None:
    async def wrong_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with raw_server(wrong_accept) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.evidence
    assert "Sec-WebSocket-Accept" in result.evidence.detail
    assert result.status_code == 101 and not result.upgraded


async def test_protocol_error_on_garbage(ctx: ProbeContext) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with raw_server(garbage) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.evidence
    assert "not valid HTTP" in result.evidence.detail


# --------------------------------------------------------------------------- after accept


async def test_auth_rejected_by_close_1008(ctx: ProbeContext) -> None:
    async def refuse(conn: ServerConnection) -> None:
        await conn.close(1008, "invalid token")

    async with ws_server(refuse) as url:
        probe = make_probe(url, "steps: [{expect: {json: {type: connect}}}]\n")
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.AUTH_REJECTED, ev
    assert result.upgraded and result.status_code == 101
    assert result.close_code == 1008 and ev.close_code == 1008
    assert ev.close_reason == "invalid token"
    assert ev.step == 0 and ev.step_name == "0-expect"


async def test_auth_rejected_by_error_message(ctx: ProbeContext) -> None:
    async def refuse(conn: ServerConnection) -> None:
        await conn.send(json.dumps({"type": "error_message", "error_code": "AUTH_FAILED",
                                    "message": "token signature invalid"}))
        await conn.close(1008, "auth failed")

    async with ws_server(refuse) as url:
        probe = make_probe(url, "steps: [{name: welcome, expect: {json: {type: connect}}}]\n")
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.AUTH_REJECTED, ev
    assert ev.last_message is not None and "AUTH_FAILED" in ev.last_message
    assert ev.step_name == "welcome"
    assert result.close_code == 1008 and ev.close_reason == "auth failed"


async def test_closed_by_server_1011(ctx: ProbeContext) -> None:
    async def not_ready(conn: ServerConnection) -> None:
        await conn.close(1011, "service not ready")

    async with ws_server(not_ready) as url:
        result = await run_websocket(make_probe(url, GOLDEN_STEPS), ctx)
    assert result.outcome is Outcome.CLOSED_BY_SERVER, result.evidence
    assert result.close_code == 1011
    assert result.evidence.close_reason == "service not ready"
    assert "1011" in result.evidence.detail


async def test_closed_by_server_while_sending(ctx: ProbeContext) -> None:
    async def bye(conn: ServerConnection) -> None:
        await conn.close(1001, "going away")

    async with ws_server(bye) as url:
        probe = make_probe(url, """\
            steps:
              - send: {text: hello}
              - expect: {regex: .}
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.CLOSED_BY_SERVER, result.evidence
    assert result.close_code == 1001


async def test_unexpected_message(ctx: ProbeContext) -> None:
    seen = Seen()
    async with ws_server(staging(seen, first={"type": "ping", "n": 1})) as url:
        result = await run_websocket(make_probe(url, GOLDEN_STEPS), ctx)
    ev = result.evidence
    assert result.outcome is Outcome.UNEXPECTED_MESSAGE, ev
    assert ev.step == 0 and ev.last_message is not None and '"ping"' in ev.last_message
    assert 'expected "connect", got "ping"' in ev.detail
    assert result.close_code is None  # we closed it cleanly ourselves


async def test_unexpected_binary_frame(ctx: ProbeContext) -> None:
    async def binary(conn: ServerConnection) -> None:
        await conn.send(b"\x00\x01\x02")
        await hold(conn)

    async with ws_server(binary) as url:
        result = await run_websocket(make_probe(url, GOLDEN_STEPS), ctx)
    assert result.outcome is Outcome.UNEXPECTED_MESSAGE
    assert "binary" in result.evidence.detail


async def test_message_larger_than_max_message_bytes(ctx: ProbeContext) -> None:
    async def big(conn: ServerConnection) -> None:
        await conn.send(json.dumps({"type": "connect", "pad": "x" * 5000}))
        await hold(conn)

    async with ws_server(big, compression=None) as url:
        probe = make_probe(url, "max_message_bytes: 1000\n", GOLDEN_STEPS)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.evidence
    assert "max_message_bytes" in result.evidence.detail
    assert result.close_code == 1009


async def test_message_timeout(ctx: ProbeContext) -> None:
    async with ws_server(hold) as url:
        probe = make_probe(url, "steps: [{expect: {json: {type: connect}, timeout: 200ms}}]\n")
        start = time.monotonic()
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.MESSAGE_TIMEOUT, result.evidence
    assert "step timeout (200ms)" in result.evidence.detail
    # the step's timeout ended it, well before the probe's (1.5 s)
    assert time.monotonic() - start < probe.timeout
    assert 0.19 <= result.steps[0].duration_seconds < 0.2 + SLACK


async def test_message_timeout_bounded_by_the_probe_timeout(ctx: ProbeContext) -> None:
    async with ws_server(hold) as url:
        probe = make_probe(url, "steps: [{expect: {json: {type: connect}}}]\n",
                           timeout="300ms")
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.MESSAGE_TIMEOUT
    assert "probe timeout" in result.evidence.detail
    assert_bounded(result, probe)


def event_steps(types: str, fail_on: str = "[error_message, agent_failed]",
                in_order: str = "true") -> str:
    return f"""\
        steps:
          - expect: {{json: {{type: connect}}}}
          - send: {{json: {{type: user_message}}}}
          - expect_events: {{types: {types}, in_order: {in_order}, timeout: 300ms,
                             fail_on: {fail_on}}}
        """


async def test_events_missing(ctx: ProbeContext) -> None:
    sent = [{"type": "agent_started"}, {"type": "agent_thinking"}]
    async with ws_server(staging(Seen(), sent)) as url:
        probe = make_probe(url, event_steps(json.dumps(GOLDEN_EVENTS)))
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.MESSAGE_TIMEOUT, ev
    assert ev.events_seen == ("agent_started", "agent_thinking")
    assert ev.step == 2
    assert "tool_executing, tool_completed, agent_completed" in ev.detail


async def test_events_out_of_order(ctx: ProbeContext) -> None:
    sent = [{"type": "agent_started"}, {"type": "tool_executing"}]
    async with ws_server(staging(Seen(), sent)) as url:
        probe = make_probe(url, event_steps(json.dumps(GOLDEN_EVENTS)))
        result = await run_websocket(probe, ctx)
    ev = result.evidence
    assert result.outcome is Outcome.UNEXPECTED_MESSAGE, ev
    assert "got tool_executing before agent_thinking" in ev.detail
    assert ev.events_seen == ("agent_started", "tool_executing")


async def test_events_any_order_ignores_others_and_repeats(ctx: ProbeContext) -> None:
    sent: list[dict[str, Any]] = [{"type": "agent_thinking"}, {"type": "heartbeat"}, {"no_type": 1},
            {"type": "agent_thinking"}, {"type": "agent_started"}]
    async with ws_server(staging(Seen(), sent)) as url:
        probe = make_probe(url, event_steps("[agent_started, agent_thinking]",
                                            in_order="false"))
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence


async def test_events_in_order_tolerates_repeats_and_other_types(ctx: ProbeContext) -> None:
    sent = [{"type": "agent_started"}, {"type": "agent_thinking"}, {"type": "partial"},
            {"type": "agent_thinking"}, {"type": "agent_completed"}]
    async with ws_server(staging(Seen(), sent)) as url:
        probe = make_probe(url, event_steps("[agent_started, agent_thinking, agent_completed]"))
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence


async def test_events_nested_field(ctx: ProbeContext) -> None:
    sent = [{"event": {"kind": "agent_started"}}, {"event": {"kind": "agent_completed"}}]
    async with ws_server(staging(Seen(), sent)) as url:
        probe = make_probe(url, """\
            steps:
              - expect: {json: {type: connect}}
              - send: {text: go}
              - expect_events: {types: [agent_started, agent_completed], field: event.kind,
                                timeout: 300ms}
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence


async def test_events_fail_on(ctx: ProbeContext) -> None:
    sent = [{"type": "agent_started"}, {"type": "agent_failed", "reason": "llm down"}]
    async with ws_server(staging(Seen(), sent)) as url:
        result = await run_websocket(make_probe(url, event_steps(json.dumps(GOLDEN_EVENTS))),
                                     ctx)
    ev = result.evidence
    assert result.outcome is Outcome.UNEXPECTED_MESSAGE, ev
    assert "agent_failed, which is in fail_on" in ev.detail
    assert ev.last_message is not None and "llm down" in ev.last_message


async def test_events_fail_on_auth_error_is_auth_rejected(ctx: ProbeContext) -> None:
    sent = [{"type": "error_message", "error_code": "AUTH_EXPIRED", "message": "expired"}]
    async with ws_server(staging(Seen(), sent)) as url:
        result = await run_websocket(make_probe(url, event_steps(json.dumps(GOLDEN_EVENTS))),
                                     ctx)
    assert result.outcome is Outcome.AUTH_REJECTED, result.evidence
    assert result.evidence.events_seen == ("error_message",)


async def test_slow_handshake(ctx: ProbeContext) -> None:
    async def slow_accept(_c: ServerConnection, _r: Request) -> None:
        await asyncio.sleep(0.15)

    async with ws_server(hold, process_request=slow_accept) as url:
        result = await run_websocket(make_probe(url, "max_latency: 50ms\n"), ctx)
    assert result.outcome is Outcome.SLOW, result.evidence
    assert not result.success and result.upgraded
    assert "over the 50ms max_latency" in result.evidence.detail
    assert "handshake" in result.evidence.detail


async def test_slow_step(ctx: ProbeContext) -> None:
    async def late(conn: ServerConnection) -> None:
        await asyncio.sleep(0.15)
        await conn.send(json.dumps({"type": "connect"}))
        await hold(conn)

    async with ws_server(late) as url:
        probe = make_probe(url, """\
            max_latency: 1s
            steps: [{name: welcome, expect: {json: {type: connect}, max_latency: 50ms}}]
            """)
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SLOW, result.evidence
    assert "step welcome took" in result.evidence.detail
    assert "over its 50ms max_latency" in result.evidence.detail


async def test_close_never_answered_does_not_hold_the_probe(ctx: ProbeContext) -> None:
    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = await read_request(reader)
        accept = ws_accept(headers["sec-websocket-key"])
        payload = b'{"type":"connect"}'
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode()
                     + b"\r\n\r\n" + bytes([0x81, len(payload)]) + payload)
        await writer.drain()
        await asyncio.sleep(30)  # never answers the close frame, never closes

    async with raw_server(deaf) as url:
        probe = make_probe(url, "steps: [{expect: {json: {type: connect}}}]\n",
                           timeout="700ms")
        start = time.monotonic()
        result = await run_websocket(probe, ctx)
        elapsed = time.monotonic() - start
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert elapsed <= probe.timeout + SLACK  # the unanswered close is not waited out (30 s)
    assert_bounded(result, probe)


# --------------------------------------------------------------------------- negative probes


NEGATIVE = f"""\
    auth: {{type: jwt, secret: {WRONG_SECRET}, claims: {{sub: intruder}}}}
    expect_rejected: true
    """


async def test_negative_probe_refused_with_403_is_success(ctx: ProbeContext) -> None:
    async with http_app(incident_app(Seen())) as url:
        result = await run_websocket(make_probe(url, NEGATIVE, auth=None), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert result.status_code == 403 and "refused as expected" in result.evidence.detail
    assert result.evidence.diagnosis is None


async def test_negative_probe_server_error_is_not_a_refusal(ctx: ProbeContext) -> None:
    # A 5xx says the server is broken, not that it refused the credentials.
    async with http_app(incident_app(Seen(), upgrade_status=503)) as url:
        result = await run_websocket(make_probe(url, NEGATIVE, auth=None), ctx)
    assert result.outcome is Outcome.HANDSHAKE_REJECTED, result.evidence
    assert result.evidence.diagnosis is not None


async def test_negative_probe_closed_with_1008_is_success(ctx: ProbeContext) -> None:
    async def refuse(conn: ServerConnection) -> None:
        await conn.close(1008, "bad token")

    async with ws_server(refuse) as url:
        result = await run_websocket(make_probe(url, NEGATIVE, auth=None), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert result.close_code == 1008 and result.upgraded


async def test_negative_probe_auth_error_message_is_success(ctx: ProbeContext) -> None:
    async def refuse(conn: ServerConnection) -> None:
        await conn.send(json.dumps({"type": "error_message", "error_code": "AUTH_FAILED"}))
        await hold(conn)

    async with ws_server(refuse) as url:
        result = await run_websocket(make_probe(url, NEGATIVE, auth=None), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence


async def test_negative_probe_that_gets_in_is_auth_not_enforced(ctx: ProbeContext) -> None:
    seen = Seen()
    async with ws_server(staging(seen), process_request=recording(seen)) as url:
        result = await run_websocket(make_probe(url, NEGATIVE, auth=None), ctx)
    ev = result.evidence
    assert result.outcome is Outcome.AUTH_NOT_ENFORCED, ev
    assert ev.last_message is not None and "connect" in ev.last_message
    # It did send the wrong token; the inline secret never shows up.
    token = seen.headers[0]["Authorization"].split(" ", 1)[1]
    assert jwt.decode(token, WRONG_SECRET, algorithms=["HS256"])["sub"] == "intruder"
    assert WRONG_SECRET not in dump(result) and token not in dump(result)


async def test_negative_probe_silent_accept_is_auth_not_enforced(ctx: ProbeContext) -> None:
    async with ws_server(hold) as url:
        probe = make_probe(url, NEGATIVE, auth=None, timeout="600ms")
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.AUTH_NOT_ENFORCED, result.evidence
    assert "did not reject it" in result.evidence.detail
    assert_bounded(result, probe)


async def test_negative_probe_keeps_network_outcomes(ctx: ProbeContext) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await run_websocket(make_probe(f"ws://127.0.0.1:{port}/ws", NEGATIVE, auth=None),
                                 ctx)
    assert result.outcome is Outcome.CONNECT_REFUSED


# --------------------------------------------------------------------------- config, secrets


async def test_config_error_when_the_secret_is_missing(
        ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV)
    seen = Seen()
    async with ws_server(hold, process_request=recording(seen)) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert SECRET_ENV in result.evidence.detail
    assert seen.paths == []  # nothing was sent without credentials


async def test_secrets_never_reach_the_result(ctx: ProbeContext) -> None:
    """The server echoes the token in the refusal's body and headers, and in the GET."""
    async with http_app(incident_app(Seen(), echo_token=True)) as url:
        probe = make_probe(url, "send_token_as: [authorization_header, subprotocol]\n")
        result = await run_websocket(probe, ctx)
        token = await ctx.token_for(probe)
    assert token is not None
    assert result.outcome is Outcome.HANDSHAKE_REJECTED
    text = dump(result)
    assert token not in text and SECRET not in text
    assert REDACTED in (result.evidence.body_excerpt or "")
    assert dict(result.evidence.headers)["X-Echo-Auth"] == f"Bearer {REDACTED}"
    assert result.evidence.diagnosis is not None
    assert REDACTED in (result.evidence.diagnosis.body_excerpt or "")


async def test_a_token_cut_by_the_excerpt_leaves_no_fragment(ctx: ProbeContext) -> None:
    # The token starts just before the 1 KiB excerpt ends, in the refusal and in the GET.
    async with http_app(incident_app(Seen(), echo_token=True, pad=1000)) as url:
        probe = make_probe(url)
        result = await run_websocket(probe, ctx)
        token = await ctx.token_for(probe)
    assert token is not None and result.outcome is Outcome.HANDSHAKE_REJECTED
    text = dump(result)
    assert token[:12] not in text
    # Without redaction first, the excerpt would end in the token's first bytes.
    assert (result.evidence.body_excerpt or "").endswith("Bearer <redact…")


async def test_close_reason_and_messages_are_redacted(ctx: ProbeContext) -> None:
    async def echo_back(conn: ServerConnection) -> None:
        assert conn.request is not None
        token = conn.request.headers["Authorization"].split(" ", 1)[1]
        await conn.send(json.dumps({"type": "hello", "your_token": token}))
        await hold(conn)

    async with ws_server(echo_back) as url:
        probe = make_probe(url, GOLDEN_STEPS)
        result = await run_websocket(probe, ctx)
        token = await ctx.token_for(probe)
    assert token is not None and result.outcome is Outcome.UNEXPECTED_MESSAGE
    assert token not in dump(result)
    assert REDACTED in (result.evidence.last_message or "")


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("tls"), ["localhost", "127.0.0.1"])


@contextlib.asynccontextmanager
async def wss_server(cert: Cert, handler: ServerHandler) -> AsyncIterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"wss://127.0.0.1:{port}{PATH}"


async def test_wss_success_with_tls_phase_and_cert_expiry(ctx: ProbeContext, cert: Cert) -> None:
    async with wss_server(cert, staging(Seen())) as url:
        probe = make_probe(url, f"tls: {{ca_file: {cert.cert_file}}}\n"
                           "steps: [{expect: {json: {type: connect}}}]\n")
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence
    assert [n for n, _ in result.phases] == ["resolve", "connect", "tls", "handshake", "steps"]
    assert result.cert_expiry == pytest.approx(cert.not_after.timestamp())


async def test_wss_untrusted_certificate_is_tls_error(ctx: ProbeContext, cert: Cert) -> None:
    async with wss_server(cert, hold) as url:
        result = await run_websocket(make_probe(url), ctx)
    assert result.outcome is Outcome.TLS_ERROR, result.evidence
    assert result.status_code is None
    assert [n for n, _ in result.phases] == ["resolve", "connect", "tls"]


async def test_wss_missing_ca_file_is_config_error(ctx: ProbeContext, tmp_path: Path) -> None:
    probe = make_probe("wss://127.0.0.1:9/ws", f"tls: {{ca_file: {tmp_path / 'nope.pem'}}}\n")
    result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.CONFIG_ERROR


# --------------------------------------------------------------------------- the classifier


def test_classify_handshake_failure_falls_back_to_network_classes() -> None:
    redactor = Redactor()
    verdict = classify_handshake_failure(ConnectionRefusedError(), phase="connect",
                                         response=None, offered=(), redactor=redactor)
    assert verdict.outcome is Outcome.CONNECT_REFUSED
    hang = classify_handshake_failure(TimeoutError(), phase="handshake", response=None,
                                      offered=(), redactor=redactor)
    assert hang.outcome is Outcome.TIMEOUT
    connect_hang = classify_handshake_failure(TimeoutError(), phase="connect", response=None,
                                              offered=(), redactor=redactor)
    assert connect_hang.outcome is Outcome.CONNECT_TIMEOUT
