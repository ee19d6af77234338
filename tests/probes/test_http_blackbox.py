"""The HTTP probe on the cases blackbox_exporter's own tests pin down (prober/http_test.go):
compressed answers, redirect loops and limits, cookies across redirects, an answer that
must come over TLS, header values that must not match, the answer's HTTP version and a
scheme in capitals. Each server on 127.0.0.1 behaves as the real-world case does: aiohttp
apps for well-formed answers, raw asyncio servers where the bytes themselves matter."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from textwrap import dedent, indent

import brotli
import pytest
from aiohttp import web

from monitor.config import ConfigError, Probe, load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext, open_context
from monitor.probes.http import run_http
from monitor.probes.websocket import run_websocket
from monitor.redact import REDACTED, Redactor
from monitor.result import LOCATION_CHARS
from tests.support import hostile
from tests.support.hostile import Cert, make_cert, read_request
from tests.support.servers import serving

pytestmark = pytest.mark.both_loops

BODY = b'{"status": "healthy", "padding": "' + b"hello world " * 40 + b'"}'


def make_probe(http: str, name: str = "under-test", kind: str = "http") -> Probe:
    """A probe from YAML text, as a user would write it; ``http`` is the http: block."""
    text = dedent("""\
        defaults: {interval: 10s, timeout: 2s, retries: 0}
        probes:
          - name: %s
            %s:
        """) % (name, kind) + indent(dedent(http), " " * 6)
    return load_text(text, env={}).probes[0]


def header(result_headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    return next((v for k, v in result_headers if k.lower() == name.lower()), None)


@contextlib.asynccontextmanager
async def raw(handler: hostile.Handler, tls: ssl.SSLContext | None = None
              ) -> AsyncIterator[str]:
    async with hostile.raw_server(handler, tls=tls) as port:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"


def answering(*head: str, body: bytes = b"") -> hostile.Handler:
    """A raw server that answers every request with exactly these status and header lines."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        lines = [*head, f"Content-Length: {len(body)}", "Connection: close"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
    return handle


# ----------------------------------------------------------------------------- compression

ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "br": brotli.compress,
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # HTTP's deflate: the zlib format (RFC 9110, 8.4.1.2)
    "identity": lambda data: data,
}
# What a server that honours Accept-Encoding prefers, best first (nginx with its brotli
# module, Caddy, Cloudflare): br, then gzip, then deflate.
PREFERENCE = ("br", "gzip", "deflate")


def negotiate(accept: str) -> str:
    offered: dict[str, float] = {}
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        q = re.search(r"q=([0-9.]+)", params)
        offered[name.strip().lower()] = float(q.group(1)) if q else 1.0
    for coding in PREFERENCE:
        if offered.get(coding, offered.get("*", 0.0)) > 0:
            return coding
    return "identity"


async def _fixed(request: web.Request) -> web.Response:
    """Always the encoding in the path, whatever was offered (blackbox's handlers)."""
    coding = request.match_info["coding"]
    return web.Response(body=ENCODERS[coding](BODY), headers={
        "Content-Type": "application/json", "Content-Encoding": coding,
        "X-Offered": request.headers.get("Accept-Encoding", "")})


async def _negotiated(request: web.Request) -> web.Response:
    """The best encoding the request offers, as a real server chooses."""
    coding = negotiate(request.headers.get("Accept-Encoding", ""))
    headers = {"Content-Type": "application/json", "Vary": "Accept-Encoding",
               "X-Offered": request.headers.get("Accept-Encoding", "")}
    if coding != "identity":
        headers["Content-Encoding"] = coding
    return web.Response(body=ENCODERS[coding](BODY), headers=headers)


async def _corrupt(request: web.Request) -> web.Response:
    """A 200 whose body is not what its Content-Encoding says (a proxy that mangled it)."""
    return web.Response(body=b"\xff" * 64 + BODY, headers={
        "Content-Type": "application/json", "Content-Encoding": request.match_info["coding"]})


def _bomb(coding: str, size: int = 256 << 20) -> bytes:
    """``size`` zero bytes compressed, made a MiB at a time so that the test itself never
    holds them: a few hundred KB on the wire."""
    chunk = b"\0" * (1 << 20)
    if coding == "br":
        enc = brotli.Compressor(quality=1)
        return b"".join(enc.process(chunk) for _ in range(size >> 20)) + enc.finish()
    z = zlib.compressobj(9, zlib.DEFLATED, 31 if coding == "gzip" else 15)
    return b"".join(z.compress(chunk) for _ in range(size >> 20)) + z.flush()


BOMBS = {coding: _bomb(coding) for coding in PREFERENCE}


async def _bombed(request: web.Request) -> web.Response:
    coding = request.match_info["coding"]
    return web.Response(body=BOMBS[coding], headers={
        "Content-Type": "application/octet-stream", "Content-Encoding": coding})


@pytest.fixture
async def encoded() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/fixed/{coding}", _fixed)
    app.router.add_get("/negotiated", _negotiated)
    app.router.add_get("/corrupt/{coding}", _corrupt)
    app.router.add_get("/bomb/{coding}", _bombed)
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize("coding", list(ENCODERS))
async def test_every_content_encoding_is_decoded(encoded: str, coding: str,
                                                 ctx: ProbeContext) -> None:
    probe = make_probe(f"""\
        url: {encoded}/fixed/{coding}
        expect: {{status: 200, json: {{status: healthy}}, body_regex: 'hello world'}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.status_code == 200
    assert header(result.evidence.headers, "Content-Encoding") == coding
    assert result.evidence.body_excerpt is not None
    assert result.evidence.body_excerpt.startswith('{"status": "healthy"')  # decoded


@pytest.mark.parametrize(("offer", "chosen"), [
    (None, "br"),  # the probe's own offer: gzip, deflate, br, as browsers offer
    ("br", "br"),
    ("gzip", "gzip"),
    ("br, gzip", "br"),
    ("deflate", "deflate"),
    ("*", "br"),
    ("br;q=0, gzip;q=0.5", "gzip"),
    ("identity", None),
])
async def test_what_the_probe_offers_is_what_it_can_read(
        encoded: str, offer: str | None, chosen: str | None, ctx: ProbeContext) -> None:
    """A server that honours Accept-Encoding, whether the probe offers its default or the
    config sets Accept-Encoding itself (a `br` answer once failed every run)."""
    headers = "" if offer is None else f"headers: {{Accept-Encoding: '{offer}'}}\n"
    probe = make_probe(f"url: {encoded}/negotiated\n{headers}"
                       "expect: {status: 200, json: {status: healthy}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert header(result.evidence.headers, "Content-Encoding") == chosen
    offered = header(result.evidence.headers, "X-Offered") or ""
    if offer is None:
        assert {"gzip", "deflate", "br"} <= {c.strip() for c in offered.split(",")}
    else:
        assert offered == offer


@pytest.mark.parametrize("coding", PREFERENCE)
async def test_a_body_that_does_not_decode_is_a_malformed_body(
        encoded: str, coding: str, ctx: ProbeContext) -> None:
    result = await run_http(make_probe(f"url: {encoded}/corrupt/{coding}\n"), ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.evidence.detail
    assert result.evidence.detail.startswith("malformed body"), result.evidence.detail
    assert result.status_code == 200  # the server's status, not a client-made 400
    assert "Please install" not in result.evidence.detail


def _peak_rss_reset() -> None:
    # Writing 5 resets the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
    Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    found = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found is not None
    return int(found.group(1)) * 1024


@pytest.mark.parametrize("coding", PREFERENCE)
async def test_a_compression_bomb_is_decoded_only_up_to_the_cap(
        encoded: str, coding: str, ctx: ProbeContext) -> None:
    """256 MiB of zeros in a few hundred KB: the probe decodes up to max_body_bytes and
    hangs up; memory never holds the rest, not even for a moment (peak RSS)."""
    probe = make_probe(f"url: {encoded}/bomb/{coding}\nmax_body_bytes: 1048576\n")
    await run_http(probe, ctx)  # warm up: decoder buffers, imports
    _peak_rss_reset()
    before = _peak_rss()
    result = await run_http(probe, ctx)
    growth = _peak_rss() - before
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert "only the first 1048576 bytes were read" in result.evidence.detail
    assert growth < 50 * 1024 * 1024, f"peak RSS grew by {growth / 1e6:.1f} MB"


# ----------------------------------------------------------------------------- redirects


def goto(location: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location})
    return handler


async def healthy(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


class Redirects:
    """An app of redirect chains; ``hits`` counts the requests of each path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.app = web.Application(middlewares=[self._count])
        add = self.app.router.add_get
        add("/loop", goto("/loop"))
        add("/a", goto("/b"))
        add("/b", goto("/a"))
        add("/", goto("/redirect-1"))
        add("/redirect-{n}", self._onwards)
        add("/hops/{n}", self._down)
        add("/health", healthy)

    @web.middleware
    async def _count(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return await handler(request)

    @staticmethod
    async def _onwards(request: web.Request) -> web.Response:
        """blackbox's TestRedirectionLimit: /redirect-N to /redirect-N+1, for ever."""
        n = int(request.match_info["n"])
        return web.Response(status=302, headers={"Location": f"/redirect-{n + 1}"})

    @staticmethod
    async def _down(request: web.Request) -> web.Response:
        """/hops/N: N redirects, then 200."""
        n = int(request.match_info["n"])
        if n == 0:
            return await healthy(request)
        return web.Response(status=301, headers={"Location": f"/hops/{n - 1}"})


@pytest.fixture
async def redirects() -> AsyncIterator[tuple[str, Redirects]]:
    server = Redirects()
    async with serving(server.app) as url:
        yield url, server


@pytest.mark.parametrize(("path", "loop_words"), [
    ("/loop", "redirects to itself"),
    ("/a", "comes back to itself after 2 redirects"),
])
async def test_a_redirect_loop_has_a_verdict_of_its_own(
        redirects: tuple[str, Redirects], path: str, loop_words: str,
        ctx: ProbeContext) -> None:
    url, server = redirects
    result = await run_http(make_probe(f"url: {url}{path}\nfollow_redirects: true\n"), ctx)
    ev = result.evidence
    assert result.outcome is Outcome.TOO_MANY_REDIRECTS, ev.detail
    assert result.status_code == 302 and ev.status_code == 302  # the last answer's
    assert ev.detail == ("HTTP 302 after 10 redirects followed (max_redirects: 10): the "
                         "chain did not end")
    assert ev.hint is not None and ev.hint.startswith("A redirect loop: ")
    assert loop_words in ev.hint
    assert f"{url}{path}" in ev.hint
    # The chain: the 10 redirects followed and the one refused, each with its Location.
    assert len(ev.redirects) == 11
    assert all(r.status == 302 for r in ev.redirects)
    expected = ["/loop"] * 11 if path == "/loop" else ["/b", "/a"] * 5 + ["/b"]
    assert [r.location for r in ev.redirects] == expected
    assert header(ev.headers, "Location") == expected[-1]
    assert sum(server.hits.values()) == 11  # bounded: no request past the limit


async def test_the_redirect_limit_is_blackbox_exporters(
        redirects: tuple[str, Redirects], ctx: ProbeContext) -> None:
    """TestRedirectionLimit: ten redirects followed, the eleventh refused; /redirect-11 is
    never requested. No URL repeats, and the hint says so."""
    url, server = redirects
    result = await run_http(make_probe(f"url: {url}/\nfollow_redirects: true\n"), ctx)
    assert result.outcome is Outcome.TOO_MANY_REDIRECTS
    assert result.status_code == 302
    assert "/redirect-11" not in server.hits
    assert server.hits["/redirect-10"] == 1
    assert [r.location for r in result.evidence.redirects] == [
        f"/redirect-{n}" for n in range(1, 12)]
    assert result.evidence.hint is not None
    assert result.evidence.hint.startswith("No URL answered twice: each of the 11 redirects")


@pytest.mark.parametrize(("hops", "limit", "outcome"), [
    (10, None, Outcome.SUCCESS),  # the default follows 10
    (11, None, Outcome.TOO_MANY_REDIRECTS),
    (11, 11, Outcome.SUCCESS),
    (20, 20, Outcome.SUCCESS),  # the most a config may allow
    (3, 2, Outcome.TOO_MANY_REDIRECTS),
    (1, 1, Outcome.SUCCESS),
])
async def test_max_redirects_is_the_most_a_run_follows(
        redirects: tuple[str, Redirects], hops: int, limit: int | None, outcome: Outcome,
        ctx: ProbeContext) -> None:
    url, server = redirects
    limit_line = "" if limit is None else f"max_redirects: {limit}\n"
    probe = make_probe(f"url: {url}/hops/{hops}\nfollow_redirects: true\n{limit_line}")
    result = await run_http(probe, ctx)
    assert result.outcome is outcome, result.evidence.detail
    followed = min(hops, limit or 10)
    if outcome is Outcome.SUCCESS:
        assert result.status_code == 200
        assert len(result.evidence.redirects) == hops  # how it got there
    else:
        assert result.status_code == 301
        assert len(result.evidence.redirects) == followed + 1
        assert f"after {followed} redirects followed (max_redirects: {followed})" in \
            result.evidence.detail
    assert [r.status for r in result.evidence.redirects] == [301] * len(
        result.evidence.redirects)
    assert sum(server.hits.values()) == len(result.evidence.redirects) + (
        1 if outcome is Outcome.SUCCESS else 0)


async def test_a_redirect_not_followed_keeps_no_chain(redirects: tuple[str, Redirects],
                                                      ctx: ProbeContext) -> None:
    url, _ = redirects
    result = await run_http(make_probe(f"url: {url}/loop\nexpect: {{status: 302}}\n"), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.evidence.redirects == ()


async def test_the_chain_is_redacted_and_bounded() -> None:
    """Locations are the target's words: a token in one is redacted, a password masked,
    control characters replaced, and each cut to LOCATION_CHARS."""
    secret = "tok-3f9a2c7e51b4d6"
    long_tail = "x" * 5000

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        location = (f"http://user:hunter2pw@127.0.0.1:{port}/one?code={secret}"
                    f"&esc=\x1b[31m&{long_tail}")
        writer.write(f"HTTP/1.1 302 Found\r\nLocation: {location}\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()

    context = open_context(Redactor([secret]))
    try:
        async with hostile.raw_server(handle) as port:
            probe = make_probe(f"url: http://127.0.0.1:{port}/\nfollow_redirects: true\n"
                               "max_redirects: 1\n")
            result = await run_http(probe, context)
    finally:
        await context.close()
    assert result.outcome is Outcome.TOO_MANY_REDIRECTS, result.evidence.detail
    assert len(result.evidence.redirects) == 2
    for r in result.evidence.redirects:
        assert secret not in r.location and f"code={REDACTED}" in r.location
        assert "hunter2pw" not in r.location and f"user:{REDACTED}@" in r.location
        assert all(c.isprintable() for c in r.location)
        assert len(r.location) <= LOCATION_CHARS and r.location.endswith("…")
    everything = repr(result.to_dict())  # the headers kept, the detail and hint too
    assert secret not in everything


# ----------------------------------------------------------------------------- cookies


class Cookies:
    """Login, cookie-check and per-run isolation servers, as real sites redirect."""

    def __init__(self) -> None:
        self.app = web.Application()
        add = self.app.router.add_get
        add("/", self._set_and_redirect)
        add("/noredirect", self._needs_cookie)
        add("/app", self._cookie_check)
        add("/set-cookie", self._set_cookie)
        add("/set/{value}", self._set_value)
        add("/show", self._show)
        add("/to-other-host", self._to_other_host)
        self.other_host_url = ""

    @staticmethod
    async def _set_and_redirect(request: web.Request) -> web.Response:
        """blackbox's TestCookieJar: a cookie with an expiry set on a 302."""
        resp = web.Response(status=302, headers={"Location": "/noredirect"})
        resp.set_cookie("somecookie", "cookie", max_age=365 * 24 * 3600)
        return resp

    @staticmethod
    async def _needs_cookie(request: web.Request) -> web.Response:
        if request.cookies.get("somecookie") != "cookie":
            return web.Response(status=400, text="no cookie")
        return web.json_response({"status": "healthy"})

    @staticmethod
    async def _cookie_check(request: web.Request) -> web.Response:
        """A "cookies enabled?" check: without the cookie, off to set it and back again."""
        if request.cookies.get("session") is None:
            return web.Response(status=302, headers={"Location": "/set-cookie?next=/app"})
        return web.json_response({"status": "healthy", "session": request.cookies["session"]})

    @staticmethod
    async def _set_cookie(request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": request.query["next"]})
        resp.set_cookie("session", "s-1", path="/", httponly=True)
        return resp

    @staticmethod
    async def _set_value(request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": "/show"})
        resp.set_cookie("value", request.match_info["value"])
        return resp

    @staticmethod
    async def _show(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)  # let concurrent runs overlap
        return web.json_response({"value": request.cookies.get("value"),
                                  "cookie_header": request.headers.get("Cookie")})

    async def _to_other_host(self, request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": f"{self.other_host_url}/show"})
        resp.set_cookie("value", "for-127.0.0.1-only")
        return resp


@pytest.fixture
async def cookies() -> AsyncIterator[tuple[str, Cookies]]:
    server = Cookies()
    async with serving(server.app) as url:
        yield url, server


async def test_a_cookie_set_on_a_redirect_reaches_its_target(
        cookies: tuple[str, Cookies], ctx: ProbeContext) -> None:
    url, _ = cookies  # 127.0.0.1: a host given by IP address
    probe = make_probe(f"url: {url}/\nfollow_redirects: true\n"
                       "expect: {status: 200, json: {status: healthy}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert [(r.status, r.location) for r in result.evidence.redirects] == [(302, "/noredirect")]


async def test_a_cookie_check_redirect_comes_back_with_its_cookie(
        cookies: tuple[str, Cookies], ctx: ProbeContext) -> None:
    """Without a jar this is a loop: /app -> /set-cookie -> /app -> ..."""
    url, _ = cookies
    probe = make_probe(f"url: {url}/app\nfollow_redirects: true\n"
                       "expect: {json: {session: s-1}}\n")
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert [r.location for r in result.evidence.redirects] == ["/set-cookie?next=/app", "/app"]


async def test_cookies_belong_to_one_run(cookies: tuple[str, Cookies],
                                         ctx: ProbeContext) -> None:
    """Concurrent runs on the one shared session each see their own cookie only, and a
    later run starts with none."""
    url, _ = cookies

    def setting(value: str) -> Probe:
        return make_probe(f"url: {url}/set/{value}\nfollow_redirects: true\n"
                          f"expect: {{json: {{value: {value}}}}}\n", name=f"set-{value}")

    runs = await asyncio.gather(*(run_http(setting(v), ctx) for v in ("a1", "b2", "c3")))
    for result in runs:
        assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    again = await run_http(setting("d4"), ctx)  # the same probe as a new run: fresh jar
    assert again.outcome is Outcome.SUCCESS, again.evidence.detail
    later = make_probe(f"url: {url}/show\nfollow_redirects: true\n"
                       "expect: {json: {value: null, cookie_header: null}}\n", name="later")
    result = await run_http(later, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail


async def test_a_cookie_stays_with_its_host(cookies: tuple[str, Cookies],
                                            ctx: ProbeContext) -> None:
    """A real jar: a cookie of 127.0.0.1 is not sent to the redirect's other host."""
    url, server = cookies
    other = Cookies()
    async with serving(other.app) as other_url:
        server.other_host_url = other_url.replace("127.0.0.1", "localhost")
        probe = make_probe(f"url: {url}/to-other-host\nfollow_redirects: true\n"
                           "expect: {json: {value: null, cookie_header: null}}\n")
        result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail


# ----------------------------------------------------------------------------- TLS


@pytest.fixture
def cert(tmp_path: Path) -> Cert:
    return make_cert(tmp_path, ["127.0.0.1", "localhost"])


def server_tls(cert: Cert) -> ssl.SSLContext:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert.cert_file, cert.key_file)
    return tls


@pytest.fixture
async def plain_and_tls(cert: Cert) -> AsyncIterator[tuple[str, str]]:
    """The same site over http and https, each able to send the client to the other."""
    urls: dict[str, str] = {}

    def app() -> web.Application:
        a = web.Application()

        async def to(request: web.Request) -> web.Response:
            other = urls[request.match_info["scheme"]]
            return web.Response(status=301, headers={"Location": f"{other}/health"})

        a.router.add_get("/to/{scheme}", to)
        a.router.add_get("/health", healthy)
        return a

    async with serving(app()) as plain, serving(app(), server_tls(cert)) as secure:
        urls.update(http=plain, https=secure)
        yield plain, secure


@pytest.mark.parametrize(("start", "via", "expect_tls", "outcome"), [
    # blackbox's TestFailIfNotSSL: a target on http
    ("http", None, True, Outcome.ASSERTION_FAILED),
    ("http", None, False, Outcome.SUCCESS),
    ("https", None, True, Outcome.SUCCESS),
    # an https target that sends the client to http: a downgrade
    ("https", "http", True, Outcome.ASSERTION_FAILED),
    ("https", "http", False, Outcome.SUCCESS),
    # the usual upgrade: http sends the client to https
    ("http", "https", True, Outcome.SUCCESS),
])
async def test_expect_tls_is_about_the_final_answer(
        plain_and_tls: tuple[str, str], cert: Cert, start: str, via: str | None,
        expect_tls: bool, outcome: Outcome, ctx: ProbeContext) -> None:
    plain, secure = plain_and_tls
    base = plain if start == "http" else secure
    path = "/health" if via is None else f"/to/{via}"
    probe = make_probe(f"""\
        url: {base}{path}
        follow_redirects: true
        tls: {{ca_file: '{cert.cert_file}'}}
        expect: {{status: 200, tls: {'true' if expect_tls else 'false'}}}
        """)
    result = await run_http(probe, ctx)
    assert result.outcome is outcome, result.evidence.detail
    if outcome is Outcome.ASSERTION_FAILED:
        after = " after redirects" if via else ""
        assert result.evidence.detail == (
            f"the final answer came over plain HTTP{after} ({plain}/health), not TLS "
            "(expect.tls)")
        assert result.status_code == 200
    if via is not None:
        assert [r.location for r in result.evidence.redirects] == [
            f"{plain if via == 'http' else secure}/health"]


def test_expect_tls_that_can_never_pass_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"expect\.tls can never pass"):
        make_probe("url: http://127.0.0.1:1/\nexpect: {tls: true}\n")


# ----------------------------------------------------------------------------- headers


@pytest.mark.parametrize(("name", "pattern", "values", "passes"), [
    # blackbox's TestFailIfHeaderMatchesRegexp, case by case
    ("Content-Type", "text/javascript", ["text/javascript"], False),
    ("Content-Type", "text/javascript", ["application/octet-stream"], True),
    ("content-type", "text/javascript", ["application/octet-stream"], True),
    ("content-type", "text/javascript", ["text/javascript"], False),  # names: any case
    ("Content-Type", ".*", [""], False),
    # a missing header has no value that matches (blackbox fails it unless allow_missing;
    # here expect.headers: {NAME: ""} is the way to require the header)
    ("Content-Type", ".*", [], True),
    ("Set-Cookie", r".*Domain=\.example\.com.*",
     ["gid=1; Expires=Tue, 19-Mar-2019 20:08:29 GMT; Domain=.example.com; Path=/"], False),
    # every value is checked: the second of two matches
    ("Set-Cookie", r".*Domain=\.example\.com.*",
     ["zz=4; expires=Mon, 01-Jan-1990 00:00:00 GMT; Domain=www.example.com; Path=/",
      "gid=1; Expires=Tue, 19-Mar-2019 20:08:29 GMT; Domain=.example.com; Path=/"], False),
    ("Set-Cookie", r".*Domain=\.example\.com.*",
     ["zz=4; expires=Mon, 01-Jan-1990 00:00:00 GMT; Domain=www.example.com; Path=/"], True),
    ("X-Debug", "", ["1"], False),  # "" forbids the header
])
async def test_headers_not_checks_every_value(name: str, pattern: str, values: list[str],
                                              passes: bool, ctx: ProbeContext) -> None:
    head = ["HTTP/1.1 200 OK", *(f"{name}: {v}" for v in values)]
    async with raw(answering(*head, body=b"ok")) as url:
        probe = make_probe(f"url: {url}/\nexpect: {{headers_not: {{{name}: '{pattern}'}}}}\n")
        result = await run_http(probe, ctx)
    assert result.outcome is (Outcome.SUCCESS if passes else Outcome.ASSERTION_FAILED), \
        result.evidence.detail
    if not passes:
        assert result.evidence.detail.startswith(f"header {name}: no value may match")
        if name == "Set-Cookie":  # a cookie value is never shown
            assert "gid=1" not in result.evidence.detail
            assert "(one of 2 values)" in result.evidence.detail or len(values) == 1


@pytest.mark.parametrize(("values", "passes"), [
    # blackbox's TestFailIfHeaderNotMatchesRegexp: one matching value of several is enough
    (["zz=4; Domain=www.example.com; Path=/"], False),
    (["zz=4; Domain=www.example.com; Path=/", "gid=1; Domain=.example.com; Path=/"], True),
    ([], False),
])
async def test_headers_needs_one_matching_value(values: list[str], passes: bool,
                                                ctx: ProbeContext) -> None:
    head = ["HTTP/1.1 200 OK", *(f"Set-Cookie: {v}" for v in values)]
    async with raw(answering(*head, body=b"ok")) as url:
        probe = make_probe(f"url: {url}/\n"
                           "expect: {headers: {Set-Cookie: '.*Domain=\\.example\\.com.*'}}\n")
        result = await run_http(probe, ctx)
    assert result.outcome is (Outcome.SUCCESS if passes else Outcome.ASSERTION_FAILED), \
        result.evidence.detail


# ----------------------------------------------------------------------------- HTTP version


@pytest.mark.parametrize(("answer", "expected", "passes"), [
    # blackbox's TestValidHTTPVersion, less the versions HTTP/1.1 cannot be answered in
    ("HTTP/1.1", None, True),
    ("HTTP/1.1", "[HTTP/1.1]", True),
    ("HTTP/1.1", "HTTP/1.1", True),
    ("HTTP/1.1", "[HTTP/1.0, HTTP/1.1]", True),
    ("HTTP/1.1", "[HTTP/1.0]", False),
    # a legacy proxy in front that answers HTTP/1.0
    ("HTTP/1.0", "[HTTP/1.1]", False),
    ("HTTP/1.0", "[HTTP/1.0]", True),
    ("HTTP/1.0", None, True),
])
async def test_http_version_of_the_answer(answer: str, expected: str | None, passes: bool,
                                          ctx: ProbeContext) -> None:
    async with raw(answering(f"{answer} 200 OK", "Content-Type: text/plain",
                             body=b"ok")) as url:
        expect = "" if expected is None else f"expect: {{http_version: {expected}}}\n"
        result = await run_http(make_probe(f"url: {url}/\n{expect}"), ctx)
    assert result.outcome is (Outcome.SUCCESS if passes else Outcome.ASSERTION_FAILED), \
        result.evidence.detail
    if not passes:
        assert result.evidence.detail.startswith(f"answered in {answer}, expected ")


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/2", "HTTP/3.0", "http/1.1"])
def test_a_version_the_probe_cannot_be_answered_in_is_refused_at_load(version: str) -> None:
    with pytest.raises(ConfigError, match=r"http_version.*must be 'HTTP/1\.0' or 'HTTP/1\.1'"):
        make_probe(f"url: http://h/\nexpect: {{http_version: [{version}]}}\n")


# ----------------------------------------------------------------------------- schemes


@pytest.mark.parametrize("scheme", ["HTTP", "Http", "HtTpS", "HTTPS"])
async def test_a_scheme_in_any_case_is_the_same_url(scheme: str, plain_and_tls: tuple[str, str],
                                                    cert: Cert, ctx: ProbeContext) -> None:
    """blackbox's TestHTTPParsingScheme: RFC 3986 makes schemes case-insensitive."""
    plain, secure = plain_and_tls
    base = secure if scheme.lower() == "https" else plain
    url = scheme + base[base.index("://"):] + "/health"
    probe = make_probe(f"url: '{url}'\ntls: {{ca_file: '{cert.cert_file}'}}\n"
                       "expect: {json: {status: healthy}}\n")
    assert probe.spec.url == f"{base}/health"  # lowercased once, at load
    result = await run_http(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.target == f"{base}/health"
    assert result.cert_expiry == (cert.not_after.timestamp() if base == secure else None)


async def test_a_websocket_scheme_in_capitals(ctx: ProbeContext) -> None:
    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_json({"type": "connect"})
        await sock.receive()
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    async with serving(app) as url:
        probe = make_probe(f"url: '{url.replace('http', 'WS', 1)}/ws'\n"
                           "steps: [{expect: {json: {type: connect}}}]\n", kind="websocket")
        assert probe.spec.url.startswith("ws://127.0.0.1:")
        result = await run_websocket(probe, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail


def test_every_url_field_takes_any_case() -> None:
    config = load_text(dedent("""\
        auth:
          login: {type: token_endpoint, url: 'HTTPS://auth.example.test/token'}
        probes:
          - {name: a, http: {url: 'HTTP://h.test/x?Q=V', auth: login}}
          - {name: b, websocket: {url: 'WsS://h.test/ws'}}
          - {name: c, websocket: {url: 'WS://h.test/ws'}}
        """), env={})
    urls = [p.spec.url for p in config.probes]
    assert urls == ["http://h.test/x?Q=V", "wss://h.test/ws", "ws://h.test/ws"]
    assert config.probes[0].auth is not None
    assert config.probes[0].auth.url == "https://auth.example.test/token"
    for bad in ("invalid://h.test/", "HTTPX://h.test/", "h.test/x"):
        with pytest.raises(ConfigError, match="must be an http:// or https:// URL"):
            load_text(f"probes: [{{name: a, http: {{url: '{bad}'}}}}]\n", env={})
