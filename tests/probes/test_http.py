"""The HTTP probe against real servers on 127.0.0.1: aiohttp apps for well-formed answers,
raw asyncio servers for the ones no framework would send (garbage, resets, hangs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent, indent

import jwt
import pytest
from aiohttp import web

from monitor.config import ConfigError, Probe, load_text
from monitor.outcomes import Outcome
from monitor.probes.context import PHASES, ProbeContext
from monitor.probes.http import run_http
from monitor.result import Result
from tests.support import hostile
from tests.support.hostile import Cert, Handler, make_cert, read_request
from tests.support.servers import serving
from tests.support.timing import SLACK

JWT_ENV = "SYNTHMON_TEST_HTTP_JWT_SECRET"
JWT_SECRET = "s3cret-for-the-http-probe-tests-0123456789"
CLAIMS = {"sub": "staging-e2e-user-002", "email": "e2e@example.com", "type": "access",
          "permissions": ["read", "write", "execute"]}

pytestmark = pytest.mark.both_loops


def make_probe(http: str, timeout: str = "1s", auth: str = "") -> Probe:
    """A probe from YAML text, as a user would write it; ``http`` is the http: block."""
    text = dedent("""\
        defaults: {interval: 10s, timeout: %s}
        %s
        probes:
          - name: under-test
            http:
        """) % (timeout, auth) + indent(dedent(http), " " * 6)
    return load_text(text, env={}).probes[0]


# ----------------------------------------------------------------------------- servers


SEEN = web.AppKey("seen", list[dict[str, str]])


@dataclass
class App:
    url: str
    seen_headers: list[dict[str, str]] = field(default_factory=list)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy", "uptime": 42,
                              "data": {"service": "websocket_ssot", "status": "operational",
                                       "checks": [{"name": "db", "ok": True}]}},
                             headers={"X-Build": "v1.2.3"})


async def _degraded(request: web.Request) -> web.Response:
    return web.json_response({"status": "degraded"})


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="<html>maintenance</html>", content_type="text/html")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect("/health")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(0.15)
    return web.json_response({"status": "healthy"})


async def _slow_body(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    await resp.prepare(request)
    await asyncio.sleep(0.1)
    await resp.write(b"late body")
    await resp.write_eof()
    return resp


async def _hang_after_headers(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = 100
    await resp.prepare(request)
    await resp.write(b'{"status": ')
    await asyncio.sleep(30)
    return resp


async def _endless(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    chunk = b'{"status": "healthy", "padding": "' + b"x" * 65536
    try:
        while True:
            await resp.write(chunk)
    except ConnectionError:  # the probe hung up at its cap, as it should
        return resp


async def _echo(request: web.Request) -> web.Response:
    request.app[SEEN].append(dict(request.headers))
    auth = request.headers.get("Authorization", "")
    return web.json_response({"you_sent": auth, "method": request.method,
                              "body": await request.text()},
                             headers={"X-Echo": auth})


def _app() -> web.Application:
    app = web.Application()
    app[SEEN] = []
    app.router.add_get("/health", _health)
    app.router.add_get("/degraded", _degraded)
    app.router.add_get("/text", _text)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/slow-body", _slow_body)
    app.router.add_get("/hang", _hang_after_headers)
    app.router.add_get("/endless", _endless)
    app.router.add_route("*", "/echo", _echo)
    return app


async def _serve(app: web.Application, tls: ssl.SSLContext | None = None
                 ) -> AsyncIterator[App]:
    async with serving(app, tls) as url:
        yield App(url=url, seen_headers=app[SEEN])


@pytest.fixture
async def app() -> AsyncIterator[App]:
    async for served in _serve(_app()):
        yield served


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start raw TCP servers (tests.hostile) with a given connection handler; yields their
    base URLs. Handlers still hanging at the end are cancelled."""
    async with contextlib.AsyncExitStack() as stack:
        async def start(handler: Handler) -> str:
            port = await stack.enter_async_context(hostile.raw_server(handler))
            return f"http://127.0.0.1:{port}"

        yield start


# ----------------------------------------------------------------------------- helpers


def assert_bounded(result: Result, probe: Probe) -> None:
    """The run ended at its timeout, not when the server let go (a hang lasts 30 s)."""
    assert result.duration_seconds < probe.timeout + SLACK, result


def assert_phases(result: Result) -> None:
    assert tuple(name for name, _ in result.phases) == PHASES
    assert all(value >= 0 for _, value in result.phases), result.phases


# ----------------------------------------------------------------------------- success


async def test_success_with_json_paths_and_status_ranges(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {app.url}/health
        expect:
          status: [204, "200-202"]
          json:
            status: healthy
            uptime: {{gt: 10, le: 42}}
            data.service: websocket_ssot
            data.checks.0: {{name: db, ok: true}}
            data.missing: {{exists: false}}
          body_regex: operational
          headers: {{X-Build: '^v1\\.'}}
          max_latency: 900ms
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.status_code == 200
    assert result.type == "http"
    assert result.target == f"{app.url}/health"
    assert result.evidence.content_type == "application/json; charset=utf-8"
    assert result.evidence.body_excerpt is not None
    assert '"healthy"' in result.evidence.body_excerpt
    assert ("X-Build", "v1.2.3") in result.evidence.headers
    assert result.cert_expiry is None
    assert_phases(result)
    assert dict(result.phases)["tls"] == 0.0


async def test_307_is_a_valid_expectation_and_is_not_followed(app: App,
                                                              ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {app.url}/redirect
        expect: {{status: 307, headers: {{Location: ^/health$}}}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.status_code == 307


async def test_unexpected_redirect_names_its_location(app: App, ctx: ProbeContext) -> None:
    result = await run_http(make_probe(f"url: {app.url}/redirect\n"), ctx)
    assert result.outcome is Outcome.UNEXPECTED_STATUS
    assert result.evidence.detail == "HTTP 307, expected 200-299 (Location: /health)"


async def test_follow_redirects(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {app.url}/redirect
        follow_redirects: true
        expect: {{status: 200, json: {{status: healthy}}}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.status_code == 200
    assert_phases(result)


async def test_unexpected_status(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {app.url}/nowhere\nexpect: {{status: [200, 3xx]}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.UNEXPECTED_STATUS
    assert result.status_code == 404
    assert result.evidence.status_code == 404
    assert result.evidence.detail == "HTTP 404, expected one of 200, 300-399"
    assert result.evidence.body_excerpt == "404: Not Found"


# ----------------------------------------------------------------------------- assertions


@pytest.mark.parametrize(
    ("path", "expect", "detail"),
    [
        ("/degraded", "json: {status: healthy}",
         'JSON status: expected "healthy", got "degraded"'),
        ("/health", "json: {uptime: {lt: 10}}", "JSON uptime: expected < 10, got 42"),
        ("/health", "json: {data.version: {exists: true}}", "JSON data.version: missing"),
        ("/text", "json: {status: healthy}",
         "body is not JSON: Expecting value: line 1 column 1 (char 0)"),
        ("/text", "body_regex: '^\\{'", "body does not match /^\\{/"),
        ("/health", "headers: {X-Build: '^v2'}",
         "header X-Build: expected to match /^v2/, got 'v1.2.3'"),
        ("/health", "headers: {X-Request-Id: .}", "header X-Request-Id: missing"),
    ],
)
async def test_assertion_failed(app: App, ctx: ProbeContext, path: str, expect: str,
                                detail: str) -> None:
    probe = make_probe(f"url: {app.url}{path}\nexpect: {{{expect}}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.ASSERTION_FAILED
    assert result.evidence.detail == detail
    assert result.status_code == 200


async def test_slow(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {app.url}/slow\nexpect: {{max_latency: 50ms}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SLOW
    assert result.evidence.detail.startswith("HTTP 200 in ")
    assert result.evidence.detail.endswith(", over the max_latency of 50ms")
    assert dict(result.phases)["processing"] >= 0.14


async def test_a_failed_assertion_wins_over_slow(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {app.url}/slow\nexpect: {{max_latency: 50ms, "
                       "json: {status: sick}}\n")
    assert (await run_http(probe, ctx)).outcome is Outcome.ASSERTION_FAILED


async def test_phases_add_up_and_transfer_is_the_body(app: App, ctx: ProbeContext) -> None:
    result = await run_http(make_probe(f"url: {app.url}/slow-body\n"), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert_phases(result)
    phases = dict(result.phases)
    assert phases["resolve"] == 0.0  # an IP address is not resolved
    assert phases["transfer"] >= 0.09
    assert sum(phases.values()) <= result.duration_seconds
    assert result.evidence.body_excerpt == "late body"


async def test_resolve_phase_for_a_name(app: App, ctx: ProbeContext) -> None:
    # localhost comes from /etc/hosts: resolved locally, on loopback.
    url = app.url.replace("127.0.0.1", "localhost")
    result = await run_http(make_probe(f"url: {url}/health\n"), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert dict(result.phases)["resolve"] > 0.0


# ----------------------------------------------------------------------------- failures


async def test_connect_refused(ctx: ProbeContext) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probe = make_probe(f"url: http://127.0.0.1:{port}/\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.CONNECT_REFUSED
    assert result.evidence.detail == "connection refused"
    assert result.status_code is None


async def test_timeout_when_the_body_hangs_after_the_headers(app: App,
                                                             ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {app.url}/hang\n", timeout="300ms")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.TIMEOUT
    assert result.evidence.detail == (
        "no answer within the probe timeout (300ms) while reading the body")
    assert result.status_code == 200  # what was seen before the hang is kept
    assert result.evidence.body_excerpt == '{"status": '
    assert 0.29 <= result.duration_seconds < probe.timeout + SLACK
    assert dict(result.phases)["transfer"] >= 0.25


async def test_timeout_waiting_for_headers(raw_server: Callable[[Handler], Awaitable[str]],
                                           ctx: ProbeContext) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    url = await raw_server(mute)
    probe = make_probe(f"url: {url}/\n", timeout="300ms")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.TIMEOUT
    assert result.evidence.detail.endswith("while waiting for the response headers")
    assert result.status_code is None
    assert dict(result.phases)["processing"] >= 0.25
    assert_bounded(result, probe)


async def test_garbage_instead_of_http_is_a_protocol_error(
        raw_server: Callable[[Handler], Awaitable[str]], ctx: ProbeContext) -> None:
    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    url = await raw_server(ssh)
    probe = make_probe(f"url: {url}/\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.evidence.detail
    assert result.evidence.detail.startswith("malformed HTTP answer")
    assert_bounded(result, probe)


async def test_reset_is_connection_reset(raw_server: Callable[[Handler], Awaitable[str]],
                                         ctx: ProbeContext) -> None:
    connections = 0

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        # Linger 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    url = await raw_server(reset)
    result = await run_http(make_probe(f"url: {url}/\n"), ctx)
    assert result.outcome is Outcome.CONNECTION_RESET, result.evidence.detail
    assert connections == 1  # reported, not silently retried


async def test_endless_chunked_body_is_capped(app: App, ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {app.url}/endless
        max_body_bytes: 200000
        expect: {{body_regex: healthy}}
        """, timeout="1500ms")
    t0 = time.perf_counter()
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert time.perf_counter() - t0 < probe.timeout  # stopped at the cap, not the timeout
    assert result.evidence.detail.endswith(
        "(only the first 200000 bytes were read: max_body_bytes)")
    assert result.evidence.body_excerpt is not None
    assert result.evidence.body_excerpt.endswith("…")
    assert len(result.evidence.body_excerpt.encode()) <= 1024 + len("…".encode())


async def test_json_check_on_a_truncated_body_fails_plainly(app: App,
                                                             ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {app.url}/endless
        max_body_bytes: 1000
        expect: {{json: {{status: healthy}}}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.ASSERTION_FAILED
    assert "truncated" in result.evidence.detail
    assert_bounded(result, probe)


async def test_dns_error_for_a_name_that_never_resolves(ctx: ProbeContext) -> None:
    # .invalid is answered by synthmon's resolver without a query (RFC 6761), so this
    # sends nothing anywhere, whatever the machine's resolver would do with it.
    probe = make_probe("url: http://synthmon-probe-test.invalid/health\n")
    t0 = time.perf_counter()
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.DNS_ERROR
    assert result.evidence.detail.startswith("name resolution failed")
    # no query (the egress guard would fail the test), so no resolver timeout (5 s) either
    assert time.perf_counter() - t0 < 2.0
    assert_phases(result)


def test_a_request_that_cannot_be_built_is_refused_at_load() -> None:
    for http, detail in (
        ("url: 'http://user:pw@127.0.0.1:1/'\nheaders: {X-A: \"a\\r\\nX-B: b\"}\n",
         "headers: X-A: line breaks are not allowed in a header"),
        ("url: 'http://user:pw@127.0.0.1:1/'\nbody: x\njson_body: {a: 1}\n",
         "body and json_body cannot both be set"),
    ):
        with pytest.raises(ConfigError) as info:
            make_probe(http)
        problems = "\n".join(info.value.problems)
        assert detail in problems
        assert "pw" not in problems


# ----------------------------------------------------------------------------- TLS


@pytest.fixture
def cert(tmp_path: Path) -> Cert:
    return make_cert(tmp_path, ["127.0.0.1", "synthmon.test"])


@pytest.fixture
async def https_app(cert: Cert) -> AsyncIterator[App]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert.cert_file, cert.key_file)
    async for served in _serve(_app(), tls):
        yield served


async def test_https_self_signed_is_a_tls_error(https_app: App, ctx: ProbeContext) -> None:
    result = await run_http(make_probe(f"url: {https_app.url}/health\n"), ctx)
    assert result.outcome is Outcome.TLS_ERROR
    assert result.evidence.detail.startswith("TLS certificate rejected")
    assert "self-signed" in result.evidence.detail or "self signed" in result.evidence.detail


async def test_https_with_ca_file(https_app: App, cert: Cert, ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {https_app.url}/health
        tls: {{ca_file: {cert.cert_file}}}
        expect: {{json: {{status: healthy}}}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.cert_expiry == cert.not_after.timestamp()
    assert_phases(result)
    assert dict(result.phases)["tls"] > 0.0
    assert dict(result.phases)["connect"] > 0.0


async def test_https_endless_body_is_hung_up_on_at_the_cap(cert: Cert, ctx: ProbeContext
                                                           ) -> None:
    # uvloop once kept reading a TLS body after the client closed it (uvloop#471): the
    # probe must hang up at max_body_bytes on both loops, not leave a download running.
    hung_up = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(10_000):  # 640 MiB at most: bounded even if nobody hangs up
                writer.write(b"x" * 65536)
                await writer.drain()
        hung_up.set()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert.cert_file, cert.key_file)
    server = await asyncio.start_server(endless, "127.0.0.1", 0, ssl=tls)
    async with server:
        port = server.sockets[0].getsockname()[1]
        probe = make_probe(f"url: https://127.0.0.1:{port}/\n"
                           f"max_body_bytes: 1000\ntls: {{ca_file: {cert.cert_file}}}\n")
        result = await run_http(probe, ctx)
        assert result.outcome is Outcome.SUCCESS, result.evidence.detail
        assert "only the first 1000 bytes were read" in result.evidence.detail
        await asyncio.wait_for(hung_up.wait(), 2.0)


async def test_https_server_name(https_app: App, cert: Cert, ctx: ProbeContext) -> None:
    base = f"url: {https_app.url}/health\ntls: {{ca_file: {cert.cert_file}, server_name: "
    ok = await run_http(make_probe(base + "synthmon.test}\n"), ctx)
    assert ok.outcome is Outcome.SUCCESS, ok.evidence.detail
    wrong = await run_http(make_probe(base + "nope.test}\n"), ctx)
    assert wrong.outcome is Outcome.TLS_ERROR
    assert "nope.test" in wrong.evidence.detail


async def test_https_insecure_skip_verify_still_reports_expiry(
        https_app: App, cert: Cert, ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {https_app.url}/health\ntls: {{insecure_skip_verify: true}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.cert_expiry == cert.not_after.timestamp()


async def test_missing_ca_file_is_a_config_error(app: App, tmp_path: Path,
                                                 ctx: ProbeContext) -> None:
    probe = make_probe(f"url: {app.url.replace('http:', 'https:')}/\n"
                       f"tls: {{ca_file: {tmp_path}/nope.pem}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert result.evidence.detail == (
        f"tls.ca_file {tmp_path}/nope.pem: No such file or directory")


# ----------------------------------------------------------------------------- auth


AUTH = dedent(f"""\
    auth:
      staging_jwt:
        type: jwt
        secret_env: {JWT_ENV}
        claims: {json.dumps(CLAIMS)}
        ttl: 5m""")


async def test_bearer_jwt_reaches_the_server_with_the_claims(
        app: App, ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JWT_ENV, JWT_SECRET)
    probe = make_probe(f"""\
        url: {app.url}/echo
        method: POST
        json_body: {{hello: world}}
        headers: {{X-Test-Type: synthetic}}
        auth: staging_jwt
        expect: {{json: {{method: POST}}}}
        """, auth=AUTH)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    [sent] = app.seen_headers
    assert sent["X-Test-Type"] == "synthetic"
    scheme, token = sent["Authorization"].split(" ", 1)
    assert scheme == "Bearer"
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert {k: claims[k] for k in CLAIMS} == CLAIMS
    assert claims["exp"] - claims["iat"] == 300

    # The server echoed the token in a header and in the body: neither may leak.
    for text in (repr(result), json.dumps(result.to_dict())):
        assert token not in text
        assert JWT_SECRET not in text
    assert ("X-Echo", "Bearer <redacted>") in result.evidence.headers
    assert result.evidence.body_excerpt is not None
    assert "<redacted>" in result.evidence.body_excerpt


async def test_missing_secret_is_a_config_error(app: App, ctx: ProbeContext,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JWT_ENV, raising=False)
    probe = make_probe(f"url: {app.url}/echo\nauth: staging_jwt\n", auth=AUTH)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert JWT_ENV in result.evidence.detail
    assert result.status_code is None
    assert app.seen_headers == []  # nothing was sent without the credentials
