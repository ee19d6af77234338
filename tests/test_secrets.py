"""No secret anywhere: every probe kind and failure, run with known secret values against a
target that echoes whatever it receives, and every output grepped for every secret.

Secrets: a JWT secret from the environment, one from a file, a token endpoint password
(environment) and client secret (file), a token in a header and one in a URL query
(``${VAR}``), a password in URL userinfo, an inline wrong secret of a negative probe, every
token minted or fetched with them, and every token a negative probe's variants make (expired,
unsigned, signed with a random key, ...), all taken from what the target received.

The target echoes them into everything a server can say (issue 20): every header of an
answer (``Content-Type``, ``Location``, ``Retry-After``, ``Server``, ``Set-Cookie``, ...), the
reason phrase, the body, a refused upgrade and the diagnostic GET after it, text and binary
frames and the event types in them, a close reason, and the chosen subprotocol (the
``jwt.<token>`` offer echoed back).

Outputs: the daemon's log, ``/metrics`` (classic and OpenMetrics with exemplars),
``/api/v1/results``, ``/``, ``/probe/NAME`` for every probe, a refused ``POST /-/reload``, the
spans the daemon exported over OTLP (every request body a loopback OTLP endpoint received,
raw and decoded), and ``synthmon once`` (table, JSON and JUnit) and ``synthmon check``.
Each secret is looked for raw, in base64 and base64url (padded or not), and so in the
``jwt.<base64url>`` subprotocol form.
A flow extracts a login's token, a cookie's session id and a value marked secret, carries
them into its next steps' headers, bodies, WebSocket messages and URLs, and the target
echoes them back in bodies, headers, messages and a cleanup's answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import secrets as random_secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import jwt
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.hostile import ROOT, ThreadedServers, closed_port, read_request
from tests.support.servers import DaemonProc, http_get, http_post, start_daemon

# Known values, long and distinct so that no form of one appears by chance.
JWT_ENV_SECRET = "jwtenv-Secret-7c1f0a9b2e44d8a6f3b5"
JWT_FILE_SECRET = "jwtfile-Secret-91b2c3d4e5f60718293a"
LOGIN_PASSWORD = "login-Password-5e6f7a8b9c0d1e2f3a4b"
CLIENT_SECRET = "client-Secret-0a1b2c3d4e5f6a7b8c9d"
HEADER_TOKEN = "hdr-Token-3c4d5e6f7a8b9c0d1e2f"
CUSTOM_HEADER = "custom-Header-Value-8f7e6d5c4b3a29"
QUERY_KEY = "query-Key-6b5a4f3e2d1c0b9a8f7e"
BASIC_PASSWORD = "basic-Password-2d3e4f5a6b7c8d9e0f"
WRONG_SECRET = "wrong-Inline-Secret-4a5b6c7d8e9f0a1b"
KNOWN = [JWT_ENV_SECRET, JWT_FILE_SECRET, LOGIN_PASSWORD, CLIENT_SECRET, HEADER_TOKEN,
         CUSTOM_HEADER, QUERY_KEY, BASIC_PASSWORD, WRONG_SECRET, f"probe:{BASIC_PASSWORD}"]


def forms(secret: str) -> set[str]:
    raw = secret.encode()
    out = {secret}
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        out |= {enc.decode(), enc.decode().rstrip("=")}
    return out


# --------------------------------------------------------------------------- the target


class Echo:
    """A target that hands every credential it gets back in bodies, headers, redirects,
    messages and close reasons, and records every token it received."""

    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.issued: set[str] = set()
        self.lock = threading.Lock()

    def note(self, request: web.Request) -> dict[str, object]:
        headers = dict(request.headers)
        found: list[str] = []
        auth = headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme == "Bearer":
            found.append(value)
        elif scheme == "Basic":
            found.append(base64.b64decode(value).decode())
        for proto in request.headers.getall("Sec-WebSocket-Protocol", []):
            for p in (x.strip() for x in proto.split(",")):
                if p.startswith("jwt."):
                    b64 = p[4:]
                    found.append(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode())
        found += [v for k, v in parse_qsl(request.query_string) if k == "token"]
        with self.lock:
            self.tokens.update(found)
        return {"headers": headers, "query": request.query_string, "path": request.path,
                "tokens": found}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/auth/token", self.token)
        app.router.add_get("/echo/{status}", self.echo)
        app.router.add_get("/echo-all/{status}", self.echo_all)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/ws/{mode}", self.ws)
        app.router.add_post("/flow/login", self.flow_login)
        app.router.add_route("*", "/flow/echo/{status}", self.flow_echo)
        return app

    async def flow_login(self, request: web.Request) -> web.Response:
        """A login handing over a token, a refresh token and a session cookie; it echoes the
        password it got, and the token again in a header of its own."""
        body = await request.json()
        token, refresh, sid = (f"{p}-{random_secrets.token_hex(16)}"
                               for p in ("flowtok", "flowref", "flowsid"))
        with self.lock:
            self.issued.update((token, refresh, sid))
        return web.json_response(
            {"access_token": token, "refresh": refresh, "user": {"id": "u-1"}, "you_sent": body},
            headers={"Set-Cookie": f"sid={sid}; Path=/; HttpOnly", "X-Session-Token": token})

    async def flow_echo(self, request: web.Request) -> web.Response:
        seen = self.note(request)
        body = (await request.text())[:2000]
        return web.json_response({"echo": seen, "body": body},
                                 status=int(request.match_info["status"]),
                                 headers={"X-Echo-Sid": request.headers.get("X-Sid", ""),
                                          "X-Echo-Refresh": request.headers.get("X-Refresh", "")})

    async def token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("password") != LOGIN_PASSWORD or body.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "bad credentials", "you_sent": body}, status=401)
        token = "opaque-" + random_secrets.token_hex(16)
        with self.lock:
            self.issued.add(token)
        return web.json_response({"access_token": token, "expires_in": 3600})

    async def echo(self, request: web.Request) -> web.Response:
        seen = self.note(request)
        return web.json_response(
            {"status": "degraded", "echo": seen}, status=int(request.match_info["status"]),
            # Only the 500 reflects the credential in a header (token_reflected); the other
            # answers must keep their own outcomes, with the token in their bodies.
            headers={**({"X-Echo-Authorization": request.headers.get("Authorization", "")}
                        if request.match_info["status"] == "500" else {}),
                     "X-Echo-Api-Key": request.headers.get("X-Api-Key", ""),
                     "Set-Cookie": f"session={request.headers.get('X-Api-Key', '')}"})

    async def echo_all(self, request: web.Request) -> web.Response:
        """The credential in every header of the answer, its reason phrase and its body."""
        return echo_all_answer(request, self.note(request), int(request.match_info["status"]))

    async def redirect(self, request: web.Request) -> web.Response:
        seen = self.note(request)
        tokens = seen["tokens"]
        token = tokens[0] if isinstance(tokens, list) and tokens else ""
        raise web.HTTPFound(f"/echo/200?token={token}&key={request.query.get('api_key', '')}")

    async def ws(self, request: web.Request) -> web.StreamResponse:
        seen = self.note(request)
        mode = request.match_info["mode"]
        if mode == "403-all":
            # The refused upgrade, and the diagnostic GET after it, echo it everywhere.
            return echo_all_answer(request, seen, 403)
        if mode == "403-reason":
            # Only in the reason phrase and the body: the headers do not make it reflected.
            return web.Response(status=403, reason=f"Echo {request.headers.get('Authorization')}",
                                body=json.dumps({"echo": seen}).encode())
        if mode == "403" or not request.headers.get("Upgrade"):
            # The refused upgrade, and the diagnostic GET that follows it, echo it all.
            return web.json_response({"error": "forbidden", "echo": seen}, status=403)
        if mode == "reflect":
            # The "fix" of the incident: the whole jwt.<token> offer chosen as subprotocol,
            # and the Authorization value in the upgrade's other headers.
            offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", [])
                       for p in h.split(",")]
            ws = web.WebSocketResponse(protocols=tuple(p for p in offered if p.startswith("jwt.")))
            ws.headers.update(echo_headers(request))
            await ws.prepare(request)
            await ws.close()
            return ws
        ws = web.WebSocketResponse(protocols=("jwt-auth",))
        await ws.prepare(request)
        auth = request.headers.get("Authorization", "")
        if mode == "frames":
            # The credential as an event's type, under other candidate paths, in a text
            # frame's echo, then alone in a binary frame (which ends the step).
            await ws.send_json({"type": "connect", "echo": seen})
            await ws.send_json({"type": auth})
            await ws.send_json({"type": "progress", "event": auth, "data": {"type": auth}})
            await ws.send_bytes(auth.partition(" ")[2].encode())
            await asyncio.sleep(1)  # until the probe hangs up
        elif mode == "close-reason":
            # The bearer token (an opaque one fits the 123 bytes of a reason) as the reason.
            await ws.send_json({"type": "connect"})
            await ws.close(code=1011, message=auth.partition(" ")[2][:123].encode())
        elif mode == "1008":
            await ws.send_json({"type": "error_message", "error_code": "AUTH_FAILED",
                                "echo": seen})
            await ws.close(code=1008, message=b"AUTH_FAILED")
        elif mode == "1011":
            reason = str(request.headers.get("X-Api-Key", ""))[:100]
            await ws.close(code=1011, message=reason.encode())
        else:
            await ws.send_json({"type": "connect", "echo": seen})
            async for _ in ws:  # any message: echo it all again, then an unexpected event
                await ws.send_json({"type": "agent_started", "echo": seen})
                await ws.send_json({"type": "agent_failed", "echo": seen})
        return ws


def echo_headers(request: web.Request) -> dict[str, str]:
    auth = request.headers.get("Authorization", "")
    key = request.headers.get("X-Api-Key", "")
    return {"Server": auth, "Location": f"/next?auth={auth}&key={key}", "Retry-After": auth,
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{auth}"',
            "Link": f"</x?t={auth}>; rel=next", "Via": f"1.1 {auth}", "X-Echo-Key": key,
            "Set-Cookie": f"s={auth}", "Content-Location": f"/{auth}",
            "X-Request-Id": f"{auth}-{key}"}


def echo_all_answer(request: web.Request, seen: dict[str, object], status: int
                    ) -> web.Response:
    auth = request.headers.get("Authorization", "")
    return web.Response(status=status, reason=f"Echo {auth}",
                        body=json.dumps({"echo": seen}).encode(),
                        headers={**echo_headers(request), "Content-Type": auth or "x/none"})


async def _garbage(reader: object, writer: object) -> None:
    from asyncio import StreamReader, StreamWriter
    assert isinstance(reader, StreamReader) and isinstance(writer, StreamWriter)
    await read_request(reader)
    writer.write(b"NOT-HTTP garbage\r\n\r\n")
    await writer.drain()


# --------------------------------------------------------------------------- the config


def config_text(port: int, garbage: int, refused: int, files: dict[str, Path]) -> str:
    base = f"http://127.0.0.1:{port}"
    ws = f"ws://127.0.0.1:{port}"
    q = "?api_key=${QUERY_KEY}&env=staging"
    return f"""\
defaults: {{retries: 0, interval: 1s, timeout: 0.8s}}
auth:
  jwt_env: {{type: jwt, secret_env: SYNTHMON_SECRET_JWT, claims: {{sub: probe-user}}}}
  jwt_file: {{type: jwt, secret_file: '{files["jwt"]}', claims: {{sub: probe-user}}}}
  jwt_missing: {{type: jwt, secret_env: SYNTHMON_SECRET_NOT_SET}}
  jwt_claims:
    type: jwt
    secret_env: SYNTHMON_SECRET_JWT
    claims: {{sub: probe-user, iss: the-issuer, aud: the-audience}}
  login:
    type: token_endpoint
    url: {base}/auth/token
    fields: {{username: probe}}
    secret_fields_env: {{password: SYNTHMON_LOGIN_PASSWORD}}
    secret_fields_file: {{client_secret: '{files["client"]}'}}
probes:
  - name: http-jwt-env-500
    http:
      url: {base}/echo/500{q}
      auth: jwt_env
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}', X-Custom: '${{CUSTOM_HDR}}'}}
  - name: http-jwt-file-assert
    http:
      url: {base}/echo/200{q}
      auth: jwt_file
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}'}}
      expect: {{json: {{status: healthy}}, headers: {{X-Echo-Api-Key: '^nothing$'}}}}
  - name: http-token-endpoint-redirect
    http: {{url: '{base}/redirect{q}', auth: login}}
  - name: http-echo-all-503
    http:
      url: {base}/echo-all/503
      auth: jwt_env
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}'}}
  - name: http-echo-all-302
    http: {{url: '{base}/echo-all/302', auth: login}}
  - name: http-basic-userinfo
    http: {{url: 'http://probe:${{BASIC_PW}}@127.0.0.1:{port}/echo/500{q}'}}
  - name: http-garbage
    http: {{url: 'http://127.0.0.1:{garbage}/x{q}', auth: jwt_env}}
  - name: http-refused
    http: {{url: 'http://127.0.0.1:{refused}/x{q}', auth: login}}
  - name: http-dns
    http: {{url: 'http://probe:${{BASIC_PW}}@synthmon-secrets.invalid/x{q}'}}
  - name: http-missing-secret
    http: {{url: '{base}/echo/200', auth: jwt_missing}}
  - name: http-variants
    interval: 3s                       # nine runs each: spread out, on a loaded machine
    timeout: 2s
    http:
      url: {base}/echo/200{q}
      auth: jwt_claims
      expect_rejected: true
      variants: [{", ".join(HTTP_VARIANTS)}]
      bypass_headers: {{X-E2E-Test: "true"}}
  - name: ws-events
    websocket:
      url: {ws}/ws/echo{q}
      auth: jwt_env
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}'}}
      steps:
        - expect: {{json: {{type: connect}}}}
        - send: {{json: {{type: user_message}}}}
        - expect_events: {{types: [agent_started, agent_completed], fail_on: [agent_failed],
                          timeout: 500ms}}
  - name: ws-unexpected
    websocket:
      url: {ws}/ws/echo
      auth: jwt_file
      send_token_as: [subprotocol]
      steps: [{{expect: {{json: {{type: something-else}}}}}}]
  - name: ws-403-diagnose
    websocket:
      url: {ws}/ws/403{q}
      auth: login
      send_token_as: [authorization_header, query]
      headers: {{Cookie: 'session=${{SYNTHMON_HEADER_TOKEN}}'}}
  - name: ws-1008
    websocket:
      url: {ws}/ws/1008
      auth: jwt_env
      steps: [{{expect: {{json: {{type: connect}}}}}}]
  - name: ws-1011-reason
    websocket:
      url: {ws}/ws/1011
      auth: jwt_env
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}'}}
      steps: [{{expect: {{json: {{type: connect}}}}}}]
  - name: ws-403-echo-all
    websocket:
      url: {ws}/ws/403-all
      auth: jwt_env
      headers: {{X-Api-Key: '${{SYNTHMON_HEADER_TOKEN}}'}}
  - name: ws-403-reason
    websocket: {{url: '{ws}/ws/403-reason', auth: jwt_env, diagnose: false}}
  - name: ws-reflect-subprotocol
    websocket:
      url: {ws}/ws/reflect
      auth: jwt_file
      send_token_as: [authorization_header, subprotocol]
  - name: ws-echo-frames
    websocket:
      url: {ws}/ws/frames
      auth: jwt_env
      steps:
        - expect: {{json: {{type: connect}}}}
        - expect_events: {{types: [agent_completed], timeout: 500ms}}
  - name: ws-close-reason
    websocket:
      url: {ws}/ws/close-reason
      auth: login
      steps:
        - expect: {{json: {{type: connect}}}}
        - expect: {{json: {{type: never}}}}
  - name: ws-variants
    interval: 3s
    timeout: 2s
    websocket:
      url: {ws}/ws/echo{q}
      auth: jwt_claims
      send_token_as: [authorization_header, subprotocol]
      expect_rejected: true
      variants: [{", ".join(HTTP_VARIANTS)}]
      bypass_headers: {{X-E2E-Test: "true"}}
  - name: ws-negative
    websocket:
      url: {ws}/ws/echo
      auth: {{type: jwt, secret: {WRONG_SECRET}, claims: {{sub: intruder}}}}
      send_token_as: [authorization_header, subprotocol, query]
      expect_rejected: true
  - name: flow-echo
    interval: 2s
    timeout: 1500ms
    flow:
      - name: login
        http:
          url: {base}/flow/login
          method: POST
          json_body: {{username: probe, password: '${{SYNTHMON_LOGIN_PASSWORD}}'}}
        extract:
          token: {{json: access_token}}                      # secret by its name
          sid: {{header: Set-Cookie, regex: 'sid=([^;]+)'}}   # secret: a cookie
          refresh: {{json: refresh, secret: true}}           # secret: said so
          user: {{json: user.id}}                            # not a secret
      - name: use
        http:
          url: '{base}/flow/echo/200?t=${{steps.login.refresh}}'
          method: POST
          headers: {{Authorization: 'Bearer ${{steps.login.token}}', X-Sid: '${{steps.login.sid}}',
                    X-Refresh: '${{steps.login.refresh}}'}}
          json_body: {{token: '${{steps.login.token}}', user: '${{steps.login.user}}'}}
      - name: chat
        websocket:
          url: '{ws}/ws/echo?sid=${{steps.login.sid}}'
          headers: {{Authorization: 'Bearer ${{steps.login.token}}',
                    X-Refresh: '${{steps.login.refresh}}'}}
          steps:
            - expect: {{json: {{type: connect}}}}
            - send: {{json: {{type: user_message, token: '${{steps.login.token}}',
                             sid: '${{steps.login.sid}}'}}}}
            - expect_events: {{types: [agent_started, agent_completed], fail_on: [agent_failed],
                              timeout: 500ms}}
      - name: cleanup
        always: true
        timeout: 300ms
        http:
          url: '{base}/flow/echo/500?t=${{steps.login.token}}'
          method: DELETE
          headers: {{X-Sid: '${{steps.login.sid}}', X-Refresh: '${{steps.login.refresh}}'}}
"""


HTTP_VARIANTS = ("no_token", "expired", "not_yet_valid", "bad_signature", "alg_none",
                 "wrong_issuer", "wrong_audience", "token_in_query_only", "bypass_headers")
PROBES = ["http-jwt-env-500", "http-jwt-file-assert", "http-token-endpoint-redirect",
          "http-echo-all-503", "http-echo-all-302",
          "http-basic-userinfo", "http-garbage", "http-refused", "http-dns",
          "http-missing-secret", *(f"http-variants@{v}" for v in HTTP_VARIANTS),
          "ws-events", "ws-unexpected", "ws-403-diagnose", "ws-1008",
          "ws-1011-reason", "ws-403-echo-all", "ws-403-reason", "ws-reflect-subprotocol",
          "ws-echo-frames",
          "ws-close-reason", *(f"ws-variants@{v}" for v in HTTP_VARIANTS), "ws-negative",
          "flow-echo"]
EXPECTED = {
    # The 500 echoes the Bearer token in a header; the redirect puts it in its Location.
    "http-jwt-env-500": "token_reflected", "http-jwt-file-assert": "assertion_failed",
    "http-token-endpoint-redirect": "token_reflected",
    # The credential in every header (Content-Type included), the reason and the body.
    "http-echo-all-503": "token_reflected", "http-echo-all-302": "token_reflected",
    "ws-403-echo-all": "token_reflected", "ws-403-reason": "handshake_rejected",
    "ws-reflect-subprotocol": "token_reflected",
    "ws-echo-frames": "unexpected_message", "ws-close-reason": "closed_by_server",
    # The echo lets every variant in (200): each is auth_not_enforced, and its token is
    # echoed in the body that the evidence keeps.
    **{f"http-variants@{v}": "auth_not_enforced" for v in HTTP_VARIANTS},
    "http-basic-userinfo": "unexpected_status", "http-garbage": "protocol_error",
    "http-refused": "connect_refused", "http-dns": "dns_error",
    "http-missing-secret": "config_error", "ws-events": "unexpected_message",
    "ws-unexpected": "unexpected_message", "ws-403-diagnose": "handshake_rejected",
    "ws-1008": "auth_rejected", "ws-1011-reason": "closed_by_server",
    "ws-negative": "auth_not_enforced",
    # The flow's chat step gets the echo's agent_failed; its cleanup runs (a 500, echoing).
    "flow-echo": "unexpected_message",
    # The echo accepts every WebSocket and echoes what it got in its messages.
    **{f"ws-variants@{v}": "auth_not_enforced" for v in HTTP_VARIANTS},
}


OTLP_BODIES: list[bytes] = []


def otlp_collector() -> web.Application:
    async def traces(request: web.Request) -> web.Response:
        OTLP_BODIES.append(await request.read())
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    return app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Echo, Path, dict[str, str]]]:
    echo = Echo()
    servers = ThreadedServers()
    refused = closed_port()
    OTLP_BODIES.clear()
    try:
        port = servers.app(echo.app())
        otlp = servers.app(otlp_collector())
        garbage = servers.raw(_garbage)
        files = {"jwt": tmp_path / "jwt.secret", "client": tmp_path / "client.secret"}
        files["jwt"].write_text(JWT_FILE_SECRET + "\n")
        files["client"].write_text(CLIENT_SECRET)
        config = tmp_path / "probes.yaml"
        config.write_text(config_text(port, garbage, refused.getsockname()[1], files))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHMON_")}
        env.update({"SYNTHMON_SECRET_JWT": JWT_ENV_SECRET, "SYNTHMON_LOGIN_PASSWORD":
                    LOGIN_PASSWORD, "SYNTHMON_HEADER_TOKEN": HEADER_TOKEN,
                    "CUSTOM_HDR": CUSTOM_HEADER, "QUERY_KEY": QUERY_KEY,
                    "BASIC_PW": BASIC_PASSWORD,
                    # The daemon exports its spans here (once and check do not export).
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}",
                    "OTEL_BSP_SCHEDULE_DELAY": "200"})
        yield echo, config, env
    finally:
        refused.close()
        servers.close()


def results(d: DaemonProc) -> dict[str, dict[str, object]]:
    return {p["probe"]: p for p in json.loads(http_get(d.url + "/api/v1/results")[1])["probes"]}


def all_forms(echo: Echo) -> dict[str, str]:
    """Every form of every secret, mapped to a name for the failure message."""
    with echo.lock:
        tokens = echo.tokens | echo.issued
    out: dict[str, str] = {}
    for secret in [*KNOWN, *tokens]:
        for form in forms(secret):
            out[form] = secret[:12] + "…"
        if secret.count(".") == 2 and not secret.endswith("."):
            # a JWT: its signature alone would be a leak too (alg none has none)
            out[secret.rsplit(".", 1)[1]] = "the signature of " + secret[:12] + "…"
    return out


def assert_clean(what: str, text: str, echo: Echo) -> None:
    for form, name in all_forms(echo).items():
        at = text.find(form)
        assert at < 0, f"{what} shows {name}: ...{text[max(0, at - 120):at + 40]}..."
    # Any JWT: base64url of '{"', then two more parts (a random Sec-WebSocket-Key may hold
    # "eyJ" by chance: the flow's extra handshakes made that show).
    found = re.search(r"eyJ[\w-]*\.[\w-]+\.", text)
    jwt_at = found.start() if found else -1
    assert jwt_at < 0, f"{what} shows a JWT: ...{text[max(0, jwt_at - 120):jwt_at + 40]}..."


def test_no_secret_in_logs_metrics_pages_once_or_check(
        world: tuple[Echo, Path, dict[str, str]], tmp_path: Path,
        daemons: list[DaemonProc]) -> None:
    echo, config, env = world
    d = start_daemon(config, env, tmp_path)
    daemons.append(d)
    deadline = time.monotonic() + 30
    while True:
        # Every probe ran at least twice (the second run uses cached tokens), and ended at
        # least once as its target makes it end: on a starved machine a run of 0.8 s may time
        # out now and then, and a run a second later counts.
        res = results(d)
        runs = {n: [r["outcome"] for r in res[n]["runs"]] for n in PROBES}  # type: ignore[index]
        missing = {n: outcomes for n, outcomes in runs.items() if EXPECTED[n] not in outcomes}
        if min(len(r) for r in runs.values()) >= 2 and not missing:
            break
        assert time.monotonic() < deadline, (
            f"not every probe ran twice and ended as expected in 30 s: {missing or runs}")
        time.sleep(0.3)

    # The target did receive the credentials: the test is not vacuous.
    with echo.lock:
        received = set(echo.tokens)
    assert any(t.count(".") == 2 for t in received), received
    assert echo.issued & received
    assert f"probe:{BASIC_PASSWORD}" in received
    for token in received:
        if token.count(".") == 2:
            claims = jwt.decode(token, options={"verify_signature": False})
            assert claims["sub"] in ("probe-user", "intruder")
    # Every variant's kind of token reached the target (expired, unsigned, random key, ...).
    headers = [jwt.get_unverified_header(t) for t in received if t.count(".") == 2]
    assert {"none", "HS256"} <= {h["alg"] for h in headers}
    claims_seen = [jwt.decode(t, options={"verify_signature": False}) for t in received
                   if t.count(".") == 2]
    assert any(c.get("iss") == "synthmon-wrong-issuer" for c in claims_seen)
    assert any(c.get("nbf", 0) > time.time() for c in claims_seen)

    outputs = {path: http_get(d.url + path)[1] for path in
               ["/metrics", "/api/v1/results", "/", *(f"/probe/{n}" for n in PROBES)]}
    request = urllib.request.Request(d.url + "/metrics",
                                     headers={"Accept": "application/openmetrics-text"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        outputs["/metrics (OpenMetrics)"] = resp.read().decode()
    assert '# {trace_id="' in outputs["/metrics (OpenMetrics)"]  # exemplars were shown
    # A refused reload quotes the bad URL, query secret included, back in its errors.
    good = config.read_text()
    config.write_text(good.replace("http: {url: '", "http: {url: 'ftp", 1))
    status, body = http_post(d.url + "/-/reload")
    assert status == 400 and "ftp" in body, body
    outputs["POST /-/reload"] = body
    config.write_text(good)
    assert d.stop() == 0
    outputs["daemon log"] = d.logs()
    assert "probe_run" in outputs["daemon log"]
    # Every span the daemon exported, as the bytes sent and decoded (attribute values,
    # status messages): the spans of every probe arrived, so the check is not vacuous.
    exported = [ExportTraceServiceRequest.FromString(b) for b in OTLP_BODIES]
    spans = [span for req in exported for rs in req.resource_spans
             for ss in rs.scope_spans for span in ss.spans]
    # A span is named after its run: NAME, or NAME@VARIANT for a negative probe's variant.
    names = {span.name for span in spans}
    assert set(PROBES) <= names, set(PROBES) - names
    outputs["OTLP payloads (raw)"] = b"".join(OTLP_BODIES).decode("latin-1")
    outputs["OTLP payloads (decoded)"] = "\n".join(str(req) for req in exported)

    # once runs every probe at the same moment in one process: on a loaded machine the
    # daemon's 0.8 s would time some out, and every one must end as its target makes it.
    once_config = config.with_name("once.yaml")
    once_config.write_text(good.replace("interval: 1s, timeout: 0.8s",
                                        "interval: 10s, timeout: 5s"))
    for fmt in ("json", "table", "junit"):
        proc = subprocess.run(
            [sys.executable, "-m", "monitor", "once", "-c", str(once_config), "--format", fmt],
            capture_output=True, text=True, env={**env, "COLUMNS": "400"}, timeout=60,
            cwd=ROOT)
        assert proc.returncode == 1, proc.stderr
        outputs[f"once --format {fmt}"] = proc.stdout
        outputs[f"once --format {fmt} (stderr)"] = proc.stderr
        if fmt == "json":
            once = {r["probe"]: r["outcome"]
                    for r in json.loads(proc.stdout)}
            assert once == EXPECTED, once
    proc = subprocess.run([sys.executable, "-m", "monitor", "check", "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    outputs["check"] = proc.stdout + proc.stderr

    # What was shown really came from the echoes (the evidence is there, redacted).
    page = outputs["/probe/http-jwt-env-500"]
    assert "&lt;redacted&gt;" in page or "<redacted>" in page
    assert re.search(r"X-Echo-Authorization", outputs["/api/v1/results"])
    assert_echoes_kept_redacted(results_from(outputs["/api/v1/results"]))
    assert "<testcase" in outputs["once --format junit"]
    # The flow's secrets were extracted, carried and echoed: every step of it shows echoes,
    # its failing step's transcript the messages the echo sent back.
    with echo.lock:
        carried = {t for t in echo.tokens if t.startswith("flowtok")}  # came back as Bearer
        assert carried and carried <= echo.issued
    (flow,) = [p["last"] for p in json.loads(outputs["/api/v1/results"])["probes"]
               if p["probe"] == "flow-echo"]
    assert isinstance(flow, dict) and flow["step"] == "chat"
    assert [s["outcome"] for s in flow["step_results"]] == [
        "success", "success", "unexpected_message", "unexpected_status"]
    assert flow["transcript"] and "<redacted>" in json.dumps(flow["transcript"])
    assert 'u-1' in outputs["/api/v1/results"]  # the value not marked secret is shown

    for what, text in outputs.items():
        assert_clean(what, text, echo)


def results_from(api: str) -> dict[str, dict[str, object]]:
    """The newest run of each probe that ended as the target makes it end, by name."""
    out: dict[str, dict[str, object]] = {}
    for p in json.loads(api)["probes"]:
        runs = [r for r in p["runs"] if r["outcome"] == EXPECTED.get(p["probe"])]
        if runs:
            out[p["probe"]] = runs[0]
    return out


def assert_echoes_kept_redacted(runs: dict[str, dict[str, object]]) -> None:
    """Each echo reached the evidence, as kept strings with the credential redacted (not
    dropped): the test shows what a hostile target's words become, not their absence."""
    def ev(name: str) -> dict[str, object]:
        evidence = runs[name]["evidence"]
        assert isinstance(evidence, dict)
        return evidence
    echo = ev("http-echo-all-503")
    assert echo["content_type"] == "Bearer <redacted>", echo
    headers = echo["headers"]
    assert isinstance(headers, dict)
    assert headers["Server"] == "Bearer <redacted>" and headers["Retry-After"] == \
        "Bearer <redacted>" and echo["retry_after"] == "Bearer <redacted>"
    assert headers["Location"] == "/next?auth=Bearer <redacted>&key=<redacted>"
    assert '"authorization": "bearer <redacted>"' in str(echo["body_excerpt"]).lower()
    assert "Location" in ev("http-echo-all-302")["headers"]  # type: ignore[operator]
    rejected = ev("ws-403-echo-all")
    assert rejected["content_type"] == "Bearer <redacted>"
    diagnosis = rejected["diagnosis"]
    assert isinstance(diagnosis, dict) and diagnosis["content_type"] == "Bearer <redacted>"
    assert "<redacted>" in str(diagnosis["body_excerpt"])
    reason = ev("ws-403-reason")
    assert "HTTP 403 Echo Bearer <redacted>" in str(reason["detail"])  # the reason phrase
    assert ev("ws-reflect-subprotocol")["subprotocol"] == "jwt.<redacted>"
    frames = ev("ws-echo-frames")
    assert "Bearer <redacted>" in frames["events_seen"]  # type: ignore[operator]
    assert frames["last_message"] == "<redacted>"  # the binary frame: the token alone
    assert "Bearer <redacted>" in json.dumps(frames["frames_seen"])
    transcript = runs["ws-echo-frames"]["transcript"]
    assert isinstance(transcript, list) and len(transcript) >= 4
    assert ev("ws-close-reason")["close_reason"] == "<redacted>"


def test_rule_for_substituted_secrets() -> None:
    """Which ${VAR} values the config hands to the redactor, and which it leaves alone."""
    from monitor.config import load_text, secret_looking

    for name in ("JWT_SECRET_STAGING", "API_TOKEN", "DB_PASSWORD", "AWS_ACCESS_KEY",
                 "STRIPE_APIKEY", "GH_PAT", "SESSION_COOKIE", "X_CREDENTIALS", "PRIVATE_PEM"):
        assert secret_looking(name), name
    for name in ("STAGING_URL", "ENVIRONMENT", "KEYBOARD", "PROBE_INTERVAL", "PATH"):
        assert not secret_looking(name), name
    text = """\
auth:
  login: {type: token_endpoint, url: 'http://h/token?client_id=${CLIENT}'}
probes:
  - name: a
    labels: {team: '${TEAM}'}
    http:
      url: 'http://${USERNAME}:${PW}@${HOST}/x?q=${QV}#${FRAG}'
      headers: {X-Tenant: '${TENANT}'}
      body: '${BODY_SECRET}'
"""
    env = {"CLIENT": "client-id-1", "TEAM": "team-2", "USERNAME": "user-3", "PW": "pw-4",
           "HOST": "host-5", "QV": "qv-6", "FRAG": "frag-7", "TENANT": "tenant-8",
           "BODY_SECRET": "body-9"}
    config = load_text(text, env=env)
    assert set(config.secrets) == {"client-id-1", "pw-4", "qv-6", "tenant-8", "body-9",
                                   "user-3", "user-3:pw-4"}
    # The secret values are not in the record's repr (missing_secrets holds only names).
    assert not re.search(r"\bsecrets=", repr(config)) and "secrets=" not in repr(config.probes[0])


def test_url_credentials_and_auth_together_are_refused_at_load() -> None:
    from monitor.config import ConfigError, load_text

    text = ("auth:\n  j: {type: jwt, secret_env: X}\nprobes:\n"
            "  - name: a\n    http: {url: 'http://u:${PW}@h/', auth: j}\n")
    with pytest.raises(ConfigError) as info:
        load_text(text, env={"PW": "pw-secret-value"})
    assert info.value.problems == [
        "probes.yaml:5: probes[0].http.auth: cannot be combined with credentials in the URL "
        "(both would be sent as the Authorization header)"]
