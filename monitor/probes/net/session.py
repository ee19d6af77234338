"""The one aiohttp session every HTTP probe (and the WebSocket diagnostic GET) uses, with
the aiohttp internals it relies on: the protocol class of :class:`aiohttp.TCPConnector`
(``_factory``), the session's silent retry switch (``_retry_connection``), and the three
places that time a request's phases for the run's :class:`~.phases.PhaseTimer`: the
connector's ``connect``, the resolver, and the response's ``start``.

Why not aiohttp's trace hooks (``TraceConfig``), which time the same moments: a session
with one sends every signal of every request, each with a parameters object made and a
signal's list walked, and builds the URL again for two of them; that was about 70,000
instructions of an 700,000-instruction request. These hooks cost a call each.
"""

from __future__ import annotations

import asyncio
import socket
import time
from functools import partial
from typing import Any, cast

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawResponseMessage
from aiohttp.resolver import DefaultResolver
from aiohttp.streams import StreamReader
from aiohttp.tracing import Trace

from monitor.limits import HTTP_MAX_FIELD_SIZE, HTTP_MAX_HEADERS
from monitor.probes.net.cookies import PerRunCookieJar
from monitor.probes.net.phases import PhaseTimer
from monitor.probes.net.sockets import open_socket
from monitor.probes.net.watch import WATCHER


def _timer() -> PhaseTimer | None:
    """The run's timer, when the run in progress times an HTTP request (an HTTP or stream
    probe's request; not a token request, not the WebSocket diagnostic GET)."""
    watcher = WATCHER.get()
    return watcher if isinstance(watcher, PhaseTimer) else None


class _SpecialUseResolver(AbstractResolver):
    """Answers names under ``.invalid`` with "not found" without asking anyone, as RFC 6761
    (6.4) asks of resolver libraries; glibc forwards them to the configured DNS server."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        timer = _timer()
        if timer is not None:
            timer.resolving()
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME,
                                  "Name or service not known (.invalid never resolves)")
        found = await self._inner.resolve(host, port, family)
        if timer is not None:  # a failed resolution stays blamed on "resolve"
            timer.resolved()
        return found

    async def close(self) -> None:
        await self._inner.close()


class WatchedResponseHandler(ResponseHandler):
    """Tells the run's watcher why an answer was not HTTP before aiohttp can drop it, and
    tells the run's timer when an answer's headers and its body's last byte were read.

    ``data_received`` parses what the socket gave and hands each answer it completes to
    ``feed_data`` (the response's ``start`` awaits it), in the same call: the moment is
    the read's, before the run's task is woken and waits for its turn on the loop behind
    other runs' callbacks. The body's end is its payload's end of stream, which the parser
    signals as it reads the last byte (at once, if it came with the headers)."""

    def set_exception(self, exc: BaseException, *args: Any, **kwargs: Any) -> None:
        if isinstance(exc, HttpProcessingError) and (watcher := WATCHER.get()):
            watcher.answer_unparsable(exc)
        super().set_exception(exc, *args, **kwargs)

    def feed_data(self, data: tuple[RawResponseMessage, StreamReader], size: int = 0) -> None:
        timer = _timer()
        if timer is not None:
            timer.heard(time.perf_counter())
            data[1].on_eof(timer.body_read)
        super().feed_data(data, size)


class WatchedConnector(aiohttp.TCPConnector):
    """Keeps the parse error of a server that talks first (an SSH or SMTP banner).

    uvloop delivers such bytes before the request is written; aiohttp refuses them, closes
    the transport, and the write then fails with a bare "cannot write to closing
    transport", dropping the parse error when the connection is closed. asyncio's loop
    reads them after the write and reports the parse error itself.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # No public switch for the protocol class; this is the attribute aiohttp reads.
        self._factory = cast("partial[ResponseHandler]",
                             partial(WatchedResponseHandler, loop=asyncio.get_running_loop()))

    async def connect(self, req: ClientRequest, traces: list[Trace],
                      timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
                      ) -> Connection:
        """A connection for ``req`` (never a reused one: ``force_close``), timed: from
        here to its return is "connect" (with "resolve" and "tls" inside)."""
        timer = _timer()
        if timer is None:
            return await super().connect(req, traces, timeout)
        timer.connecting()
        conn = await super().connect(req, traces, timeout)
        timer.connected()  # a failed connect stays blamed on the stage it failed in
        return conn


class WatchedResponse(aiohttp.ClientResponse):
    """Tells the run's timer when an answer's headers are in (each redirect's too)."""

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        started = await super().start(connection)
        timer = _timer()
        if timer is not None:
            timer.answered(self.status)
        return started


def new_session() -> aiohttp.ClientSession:
    """A session that never reuses a connection, never retries, and is traced by phase.

    Its cookie jar keeps cookies only for the run that received them
    (:mod:`monitor.probes.net.cookies`)."""
    connector = WatchedConnector(force_close=True, limit=0, ttl_dns_cache=None,
                                 use_dns_cache=False, resolver=_SpecialUseResolver(),
                                 socket_factory=open_socket)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                    cookie_jar=PerRunCookieJar(),
                                    skip_auto_headers=("User-Agent",),
                                    headers={"User-Agent": "synthmon"},
                                    response_class=WatchedResponse,
                                    max_headers=HTTP_MAX_HEADERS,
                                    max_field_size=HTTP_MAX_FIELD_SIZE)
    # aiohttp silently repeats an idempotent request once after a reset or disconnect.
    # A monitor must report the first failure, not hide it; there is no public switch
    # (aiohttp's own test client flips the same attribute).
    session._retry_connection = False
    return session


__all__ = ["WatchedConnector", "WatchedResponse", "WatchedResponseHandler", "new_session"]
