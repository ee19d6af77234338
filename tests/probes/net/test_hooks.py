"""One test per hook of monitor/probes/net into aiohttp, websockets and ssl: each checks
that what the hook relies on is still there and shaped as it was, and fails naming the
hook and the installed version, so an upgrade that breaks one says which at once.

When one fails: read the hook's reason in ``monitor/probes/net/__init__.py``, adapt the
hook to the new version (or drop it if the library now offers a public way), and keep
the upper bound in pyproject.toml until it passes.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
import sys
from functools import partial

import aiohttp
import pytest
import websockets
from aiohappyeyeballs import AddrInfoType
from aiohttp import client as aiohttp_client
from aiohttp import client_proto as aiohttp_client_proto
from aiohttp import connector as aiohttp_connector
from aiohttp import web
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import BadStatusLine
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from monitor.probes.net import session as session_module
from monitor.probes.net.cookies import PerRunCookieJar, run_cookies
from monitor.probes.net.phases import REDIRECT_STATUSES, PhaseTimer
from monitor.probes.net.session import WatchedConnector, WatchedResponseHandler, new_session
from monitor.probes.net.sockets import ProbeSocket, open_socket
from monitor.probes.net.tls import TimedContext
from monitor.probes.net.watch import WATCHER, watching
from monitor.probes.net.wsconn import NoRedirectConnect, Trace, TracedConnection
from tests.support.servers import serving

AIOHTTP = f"aiohttp {aiohttp.__version__}"
WEBSOCKETS = f"websockets {websockets.version.version}"
PYTHON = f"Python {sys.version.split()[0]}"


def params(func: object) -> list[str]:
    assert callable(func)
    return list(inspect.signature(func).parameters)


class _Watcher:
    def __init__(self) -> None:
        self.tls: list[ssl.SSLObject] = []
        self.unparsable: list[BaseException] = []

    def tls_handshake_started(self, obj: ssl.SSLObject) -> None:
        self.tls.append(obj)

    def answer_unparsable(self, exc: BaseException) -> None:
        self.unparsable.append(exc)


# --------------------------------------------------------------------------- aiohttp


async def test_aiohttp_tcp_connector_factory() -> None:
    plain = aiohttp.TCPConnector()
    try:
        factory = getattr(plain, "_factory", None)
        assert isinstance(factory, partial) and factory.func is ResponseHandler, (
            f"{AIOHTTP}: TCPConnector._factory is no longer partial(ResponseHandler, ...); "
            "WatchedConnector (monitor/probes/net/session.py) replaces it to watch parse errors")
        assert set(factory.keywords) == {"loop"} and not factory.args, (
            f"{AIOHTTP}: TCPConnector._factory now passes {factory.args}, {factory.keywords}; "
            "WatchedConnector passes only loop=")
        assert "self._factory" in inspect.getsource(aiohttp_connector), (
            f"{AIOHTTP}: the connector no longer reads self._factory to build its protocol; "
            "WatchedConnector's replacement would be ignored")
    finally:
        await plain.close()
    ours = WatchedConnector()
    try:
        assert ours._factory.func is WatchedResponseHandler
    finally:
        await ours.close()


def test_aiohttp_response_handler_set_exception() -> None:
    assert hasattr(ResponseHandler, "set_exception"), (
        f"{AIOHTTP}: ResponseHandler.set_exception is gone; WatchedResponseHandler overrides it "
        "to keep why an answer was not HTTP")
    signature = inspect.signature(ResponseHandler.set_exception)
    assert params(ResponseHandler.set_exception)[:2] == ["self", "exc"], (
        f"{AIOHTTP}: ResponseHandler.set_exception{signature} no longer takes the exception "
        "first")
    assert params(ResponseHandler.__init__) == ["self", "loop"], (
        f"{AIOHTTP}: ResponseHandler.__init__{inspect.signature(ResponseHandler.__init__)} no "
        "longer takes only the loop; WatchedConnector builds it with loop=")


async def test_aiohttp_response_handler_reports_to_the_watcher() -> None:
    handler = WatchedResponseHandler(loop=asyncio.get_running_loop())
    watcher = _Watcher()
    error = BadStatusLine("SSH-2.0-OpenSSH_9.6")
    with watching(watcher):
        handler.set_exception(error)
    assert watcher.unparsable == [error]


async def test_aiohttp_session_retry_connection() -> None:
    async with aiohttp.ClientSession() as plain:
        assert getattr(plain, "_retry_connection", None) is True, (
            f"{AIOHTTP}: ClientSession._retry_connection is gone or not on by default; "
            "new_session() turns it off so a reset is reported, not silently retried")
    assert "self._retry_connection" in inspect.getsource(aiohttp_client), (
        f"{AIOHTTP}: ClientSession no longer reads self._retry_connection; check whether it "
        "still retries an idempotent request after a reset, and how to turn that off")
    session = new_session()
    try:
        assert session._retry_connection is False
    finally:
        await session.close()


async def test_aiohttp_cookie_jar_calls() -> None:
    """PerRunCookieJar overrides what aiohttp calls on a session's jar while it follows
    redirects; a new method aiohttp called instead would fall through to DummyCookieJar's
    no-op and drop every cookie without a word."""
    async def login(request: web.Request) -> web.Response:
        resp = web.Response(status=302, headers={"Location": "/home"})
        resp.set_cookie("sid", "s-1")
        return resp

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=request.cookies.get("sid", "none"))

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/home", home)
    session = new_session()
    try:
        assert isinstance(session.cookie_jar, PerRunCookieJar)
        async with serving(app) as url:
            with run_cookies() as run:
                async with session.get(f"{url}/login") as resp:
                    in_run = await resp.text()
            async with session.get(f"{url}/login") as resp:
                outside = await resp.text()
    finally:
        await session.close()
    assert in_run == "s-1", (
        f"{AIOHTTP}: a cookie set on a redirect no longer reaches its target through "
        "PerRunCookieJar (monitor/probes/net/cookies.py); check which jar methods "
        "ClientSession._request calls now")
    assert run.jar is not None and len(run.jar) == 1
    assert outside == "none"  # no run, no jar: nothing kept between requests


class _RecordingTimer(PhaseTimer):
    """A PhaseTimer that remembers every stage it entered, in order."""

    __slots__ = ("entered",)

    def __init__(self, follows_redirects: bool = False) -> None:
        super().__init__(follows_redirects=follows_redirects)
        self.entered: list[str] = []

    def enter(self, stage: str, now: float | None = None) -> None:
        self.entered.append(stage)
        super().enter(stage, now)


def test_aiohttp_phase_hook_signatures() -> None:
    assert params(aiohttp.BaseConnector.connect) == ["self", "req", "traces", "timeout"], (
        f"{AIOHTTP}: BaseConnector.connect{inspect.signature(aiohttp.BaseConnector.connect)} "
        "changed; WatchedConnector.connect (monitor/probes/net/session.py) overrides it to "
        "time the connect phase")
    assert "self._connector.connect(" in inspect.getsource(aiohttp_client), (
        f"{AIOHTTP}: ClientSession no longer opens connections with connector.connect; the "
        "connect and processing phases would never start")
    assert params(aiohttp.ClientResponse.start) == ["self", "connection"], (
        f"{AIOHTTP}: ClientResponse.start{inspect.signature(aiohttp.ClientResponse.start)} "
        "changed; WatchedResponse (monitor/probes/net/session.py) overrides it to see each "
        "answer's headers arrive")
    assert "response_class" in params(aiohttp.ClientSession.__init__), (
        f"{AIOHTTP}: ClientSession takes no response_class; WatchedResponse cannot be used")
    assert "resp.status in (301, 302, 303, 307, 308) and allow_redirects" in \
        inspect.getsource(aiohttp_client), (
        f"{AIOHTTP}: ClientSession follows other redirects than REDIRECT_STATUSES "
        "(monitor/probes/net/phases.py), or decides otherwise; the redirect stage is wrong")
    assert {301, 302, 303, 307, 308} == REDIRECT_STATUSES
    assert params(ResponseHandler.feed_data) == ["self", "data", "size"], (
        f"{AIOHTTP}: ResponseHandler.feed_data{inspect.signature(ResponseHandler.feed_data)} "
        "changed; WatchedResponseHandler overrides it to stamp when an answer is read")
    assert "self.feed_data((message, payload), 0)" in inspect.getsource(aiohttp_client_proto), (
        f"{AIOHTTP}: ResponseHandler.data_received no longer hands each parsed answer to "
        "feed_data; the processing and transfer phases would end late, at the run's turn")


@pytest.mark.both_loops
async def test_aiohttp_phase_hooks_time_a_request_with_a_redirect() -> None:
    """Through the one session, within the run's watching(): resolve (a name, not an IP),
    connect, processing, redirect, the next hop, transfer after the answer, in order."""
    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/home"})

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="home")

    app = web.Application()
    app.router.add_get("/moved", moved)
    app.router.add_get("/home", home)
    session = new_session()
    try:
        async with serving(app) as url:
            port = url.rsplit(":", 1)[1]
            timer = _RecordingTimer(follows_redirects=True)
            with watching(timer):
                async with session.get(f"http://localhost:{port}/moved") as resp:
                    timer.receiving()
                    assert await resp.text() == "home"
            timer.finish()
            outside = _RecordingTimer(follows_redirects=True)
            async with session.get(f"{url}/moved") as resp:  # no run watching: untouched
                await resp.read()
            no_follow = _RecordingTimer()
            with watching(no_follow):
                async with session.get(f"{url}/moved", allow_redirects=False) as resp:
                    no_follow.receiving()
    finally:
        await session.close()
    hop = ["connect", "resolve", "connect", "processing"]
    assert timer.entered == [*hop, "redirect", *hop, "transfer", "done"], (
        f"{AIOHTTP}: the session's phase hooks (monitor/probes/net/session.py) no longer see "
        f"a request's stages in order: {timer.entered}")
    assert all(timer.totals[p] > 0 for p in ("resolve", "connect", "processing", "transfer"))
    # The answer's moments as the protocol read them: the transfer ended at the body's last
    # byte (EOF of its payload), not when finish() was called.
    assert timer.heard_at is not None and timer.body_at is not None
    assert timer.first is not None and timer.first < timer.heard_at <= timer.body_at
    assert timer.since == timer.body_at
    assert outside.entered == []
    # An IP address is not resolved; a redirect not followed is the answer itself.
    assert no_follow.entered == ["connect", "processing", "transfer"]


@pytest.mark.both_loops
async def test_aiohttp_socket_factory_opens_the_sessions_sockets(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """new_session() connects with monitor/probes/net/sockets.py's ProbeSocket, through
    aiohttp's socket_factory (what aiohappyeyeballs calls instead of socket.socket())."""
    assert "socket_factory" in params(aiohttp.TCPConnector.__init__), (
        f"{AIOHTTP}: TCPConnector no longer takes socket_factory; new_session() passes it "
        "open_socket, whose sockets read their family and type for less")
    opened: list[socket.socket] = []

    def counted(addr_info: AddrInfoType) -> socket.socket:
        opened.append(open_socket(addr_info))
        return opened[-1]

    monkeypatch.setattr(session_module, "open_socket", counted)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    session = new_session()
    try:
        async with serving(app) as url, session.get(url) as resp:
            assert await resp.text() == "hello"
    finally:
        await session.close()
    assert len(opened) == 1 and type(opened[0]) is ProbeSocket, (
        f"{AIOHTTP}: the session's socket was not opened by its socket_factory: {opened}")


_KINDS = [socket.SOCK_STREAM, socket.SOCK_DGRAM]
if hasattr(socket, "SOCK_NONBLOCK"):
    _KINDS += [socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC]


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6, socket.AF_UNIX])
@pytest.mark.parametrize("kind", _KINDS)
def test_a_probe_socket_says_its_family_and_type_as_a_socket_does(family: int, kind: int
                                                                   ) -> None:
    """The same members (or numbers), open, non-blocking, closed; opened by open_socket as
    aiohappyeyeballs opens one."""
    for _ in range(2):  # the first read, then the remembered one
        with ProbeSocket(family, kind) as ours, socket.socket(family, kind) as theirs:
            for sock in (ours, theirs):
                sock.setblocking(False)
            assert (ours.family, ours.type, ours.proto) == (theirs.family, theirs.type,
                                                           theirs.proto)
            assert ours.family is theirs.family and ours.type is theirs.type
        assert ours.family is theirs.family and ours.type is theirs.type
    opened = open_socket((family, kind, 0, "", ("127.0.0.1", 80)))
    with opened, socket.socket(family=family, type=kind, proto=0) as theirs:
        assert type(opened) is ProbeSocket
        assert (opened.family, opened.type, opened.proto) == (theirs.family, theirs.type,
                                                              theirs.proto)
        assert repr(theirs.family) == repr(opened.family)


# --------------------------------------------------------------------------- websockets


def test_websockets_create_connection() -> None:
    assert "create_connection" in params(connect.__init__), (
        f"{WEBSOCKETS}: connect() no longer takes create_connection; the probe passes "
        "TracedConnection through it")
    names = params(ClientConnection.__init__)
    assert names[:2] == ["self", "protocol"], (
        f"{WEBSOCKETS}: ClientConnection.__init__{inspect.signature(ClientConnection.__init__)} "
        "changed; TracedConnection passes its arguments through and adds trace=")
    assert issubclass(TracedConnection, ClientConnection)


@pytest.mark.parametrize(("method", "expected"), [
    ("connection_made", ["self", "transport"]),
    ("data_received", ["self", "data"]),
    ("connection_lost", ["self", "exc"]),
    ("process_event", ["self", "event"]),
])
def test_websockets_connection_methods(method: str, expected: list[str]) -> None:
    base = getattr(Connection, method, None)
    assert base is not None, (
        f"{WEBSOCKETS}: Connection.{method} is gone; TracedConnection overrides it "
        "(monitor/probes/net/wsconn.py)")
    assert params(base) == expected, (
        f"{WEBSOCKETS}: Connection.{method}{inspect.signature(base)} changed; "
        f"TracedConnection.{method} expects {expected}")
    assert method in vars(TracedConnection)


async def test_websockets_receive_queue_flow_control() -> None:
    """TracedConnection holds the rest of a read while the receive queue is full: it reads
    ``recv_messages.paused`` after each slice and takes over ``recv_messages.resume``, which
    websockets calls when the queue has drained."""
    conn = TracedConnection(ClientProtocol(parse_uri("ws://example.invalid/ws")),
                            trace=Trace(), max_queue=4)
    paused: list[str] = []

    class _Transport(asyncio.Transport):
        def pause_reading(self) -> None:
            paused.append("pause")

        def resume_reading(self) -> None:
            paused.append("resume")

        def set_write_buffer_limits(self, high: int | None = None,
                                    low: int | None = None) -> None:
            pass

        def get_extra_info(self, name: str, default: object = None) -> object:
            return default

    conn.connection_made(_Transport())
    assembler = conn.recv_messages
    assert hasattr(assembler, "paused") and assembler.paused is False, (
        f"{WEBSOCKETS}: Assembler.paused is gone; TracedConnection reads it after each slice "
        "(monitor/probes/net/wsconn.py)")
    assert getattr(assembler, "resume", None) == conn._resume, (
        f"{WEBSOCKETS}: Assembler.resume is gone or no longer set in connection_made; "
        "TracedConnection replaces it to feed held data first")
    assert assembler.high == 4 and callable(getattr(assembler, "maybe_resume", None)), (
        f"{WEBSOCKETS}: the Assembler's high-water mark or maybe_resume changed")
    assembler.paused = True
    assembler.maybe_resume()  # empty queue: websockets calls resume, which is ours
    assert paused == ["resume"] and assembler.paused is False


def test_websockets_protocol_parser_and_handshake_errors() -> None:
    protocol = ClientProtocol(parse_uri("ws://example.invalid/ws"))
    for name in ("parser_exc", "handshake_exc", "close_rcvd", "close_sent"):
        assert hasattr(protocol, name), (
            f"{WEBSOCKETS}: ClientProtocol.{name} is gone; TracedConnection.data_received "
            "reads it to end a connection whose verdict is known")
        assert getattr(protocol, name) is None, (
            f"{WEBSOCKETS}: ClientProtocol.{name} no longer starts as None")
    source = inspect.getsource(Connection) + inspect.getsource(ClientConnection)
    for name in ("protocol", "response", "transport", "loop"):
        assert f"self.{name} =" in source or f"self.{name}:" in source, (
            f"{WEBSOCKETS}: the connection no longer sets self.{name}, which TracedConnection "
            "reads")


def test_websockets_process_redirect() -> None:
    base = getattr(connect, "process_redirect", None)
    assert base is not None, (
        f"{WEBSOCKETS}: connect.process_redirect is gone; NoRedirectConnect overrides it so a "
        "redirected upgrade is reported, not followed")
    assert params(base) == ["self", "exc"], (
        f"{WEBSOCKETS}: connect.process_redirect{inspect.signature(base)} changed")
    assert "process_redirect" in inspect.getsource(connect), (
        f"{WEBSOCKETS}: connect no longer calls process_redirect")
    error = ValueError("redirect")
    assert NoRedirectConnect.process_redirect(
        NoRedirectConnect.__new__(NoRedirectConnect), error) is error


# --------------------------------------------------------------------------- ssl


def test_ssl_wrap_bio() -> None:
    names = params(ssl.SSLContext.wrap_bio)
    assert names == ["self", "incoming", "outgoing", "server_side", "server_hostname",
                     "session"], (
        f"{PYTHON}: SSLContext.wrap_bio{inspect.signature(ssl.SSLContext.wrap_bio)} changed; "
        "TimedContext (monitor/probes/net/tls.py) overrides it")
    import asyncio.sslproto as sslproto

    assert "wrap_bio(" in inspect.getsource(sslproto), (
        f"{PYTHON}: asyncio no longer starts TLS with SSLContext.wrap_bio; the tls phase "
        "would never start")


def test_ssl_wrap_bio_tells_the_watcher() -> None:
    context = TimedContext(ssl.PROTOCOL_TLS_CLIENT)
    watcher = _Watcher()
    with watching(watcher):
        obj = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert watcher.tls == [obj]
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert len(watcher.tls) == 1, "no watcher outside watching()"


# --------------------------------------------------------------------------- the watcher


@pytest.mark.both_loops
async def test_protocol_callbacks_see_the_watcher_of_the_task_that_connected() -> None:
    """The contextvar reaches a connection's callbacks: the loop runs them in a copy of the
    context of the task that opened the connection (asyncio and uvloop alike)."""
    seen: list[object] = []
    got = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            seen.append(WATCHER.get())
            if not got.done():
                got.set_result(None)

    async def greet(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"hello")
        await w.drain()
        w.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    watcher = _Watcher()
    try:
        with watching(watcher):
            transport, _ = await asyncio.get_running_loop().create_connection(
                Probe, "127.0.0.1", port)
        await asyncio.wait_for(got, 5)
        transport.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen and seen[0] is watcher, (
        f"{type(asyncio.get_running_loop()).__module__}: protocol callbacks no longer run in "
        "the context of the connecting task; the TLS and parse-error hooks cannot find the run")


def test_a_trace_is_a_watcher() -> None:
    trace = Trace()
    with watching(trace):
        assert WATCHER.get() is trace
    assert WATCHER.get() is None
