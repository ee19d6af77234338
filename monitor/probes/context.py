"""What a probe may use besides its spec: shared, reusable, side-effect free objects."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.resolver import DefaultResolver

from monitor.auth import AuthError, TokenSource
from monitor.config import Probe
from monitor.probes.tls import peer_certificate
from monitor.probes.watch import WATCHER
from monitor.redact import Redactor
from monitor.trace import TraceContext


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Shared by every run. ``session`` never reuses connections (each run measures a fresh
    connect), but reusing the session object itself saves its setup on every run."""

    session: aiohttp.ClientSession
    tokens: TokenSource
    redactor: Redactor
    # The run's trace context; set per run (see :func:`monitor.probes.run.run_probe`), None
    # in the shared context and when the probe has ``trace: false``.
    trace: TraceContext | None = None

    def trace_headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) for every request of this run, or nothing."""
        return {} if self.trace is None else self.trace.headers()

    async def token_for(self, probe: Probe) -> str | None:
        """The probe's bearer token, or None when it has no auth. Raises AuthError."""
        if probe.auth is None or probe.auth_name is None:
            return None
        return await self.tokens.token(probe.auth_name, probe.auth, self.session,
                                       trace=self.trace)


PHASES = ("resolve", "connect", "tls", "processing", "transfer")
_NOT_SPENT = {p: (p, 0.0) for p in PHASES}


@dataclass(slots=True)
class PhaseTimer:
    """Where one request spent its time; pass it as ``trace_request_ctx``.

    The session's trace hooks move it from stage to stage; a probe adds the TLS start
    (it is the run's :mod:`watcher <monitor.probes.watch>`) and calls :meth:`finish`
    when the body is read. The phases, as in the blackbox exporter:

    - ``resolve``: name resolution (0 for an IP address);
    - ``connect``: TCP connect, including failed attempts at other addresses;
    - ``tls``: the TLS handshake (0 for http://);
    - ``processing``: connection ready to response headers, so it includes sending the
      request;
    - ``transfer``: reading the body (up to the probe's cap).

    Across followed redirects the phases add up. ``stage`` is where the request is now, so
    that a failure is blamed on the right phase: "prepare" until a connection is being
    created, "redirect" between hops, "done" at the end.
    """

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    stage: str = "prepare"
    since: float = 0.0  # when ``stage`` began
    ssl_object: ssl.SSLObject | None = None
    peer_cert: bytes | None = None  # DER, taken as soon as the handshake is done
    unparsable: BaseException | None = None  # why the answer was not HTTP, if it was not

    def answer_unparsable(self, exc: BaseException) -> None:
        self.unparsable = self.unparsable or exc

    def enter(self, stage: str, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        if self.stage in self.totals:
            self.totals[self.stage] += max(0.0, now - self.since)
        self.stage, self.since = stage, now

    def tls_handshake_started(self, obj: ssl.SSLObject) -> None:
        self.ssl_object = obj
        self.enter("tls")

    def finish(self) -> None:
        self.enter("done")

    def phases(self, now: float | None = None) -> tuple[tuple[str, float], ...]:
        """Totals so far, including the time spent in the stage still under way."""
        now = time.perf_counter() if now is None else now
        running = dict(self.totals)
        if self.stage in running:
            running[self.stage] += max(0.0, now - self.since)
        # A phase not gone through (tls over http, resolve of an IP) is one shared pair:
        # the newest result of every probe keeps its phases.
        return tuple(_NOT_SPENT[p] if running[p] == 0.0 else (p, running[p]) for p in PHASES)


def _timer(ctx: SimpleNamespace) -> PhaseTimer | None:
    timer = getattr(ctx, "trace_request_ctx", None)
    return timer if isinstance(timer, PhaseTimer) else None


async def _on_connection_create_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace,
                                      _p: Any) -> None:
    if (t := _timer(ctx)) is not None:
        t.enter("connect")


async def _on_dns_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timer(ctx)) is not None:
        t.enter("resolve")


async def _on_dns_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timer(ctx)) is not None:
        t.enter("connect")


async def _on_connection_create_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace,
                                    _p: Any) -> None:
    if (t := _timer(ctx)) is not None:
        if t.ssl_object is not None:
            # Read now: the connection may be gone by the time the probe looks.
            t.peer_cert = peer_certificate(t.ssl_object)
            t.ssl_object = None
        t.enter("processing")


async def _on_redirect(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _timer(ctx)) is not None:
        t.enter("redirect")


async def _on_request_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    # Fired once the final response's headers are in; reading the body comes next.
    if (t := _timer(ctx)) is not None:
        t.enter("transfer")


def _trace_config() -> aiohttp.TraceConfig:
    tc = aiohttp.TraceConfig()
    tc.on_connection_create_start.append(_on_connection_create_start)
    tc.on_dns_resolvehost_start.append(_on_dns_start)
    tc.on_dns_resolvehost_end.append(_on_dns_end)
    tc.on_connection_create_end.append(_on_connection_create_end)
    tc.on_request_redirect.append(_on_redirect)
    tc.on_request_end.append(_on_request_end)
    return tc


class _SpecialUseResolver(AbstractResolver):
    """Answers names under ``.invalid`` with "not found" without asking anyone, as RFC 6761
    (6.4) asks of resolver libraries; glibc forwards them to the configured DNS server."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME,
                                  "Name or service not known (.invalid never resolves)")
        return await self._inner.resolve(host, port, family)

    async def close(self) -> None:
        await self._inner.close()


class _ResponseHandler(ResponseHandler):
    def set_exception(self, exc: BaseException, *args: Any, **kwargs: Any) -> None:
        if isinstance(exc, HttpProcessingError) and (watcher := WATCHER.get()):
            watcher.answer_unparsable(exc)
        super().set_exception(exc, *args, **kwargs)


class _Connector(aiohttp.TCPConnector):
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
                             partial(_ResponseHandler, loop=asyncio.get_running_loop()))


def new_session() -> aiohttp.ClientSession:
    connector = _Connector(force_close=True, limit=0, ttl_dns_cache=None,
                                     use_dns_cache=False, resolver=_SpecialUseResolver())
    session = aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                    cookie_jar=aiohttp.DummyCookieJar(),
                                    skip_auto_headers=("User-Agent",),
                                    headers={"User-Agent": "synthmon"},
                                    trace_configs=[_trace_config()])
    # aiohttp silently repeats an idempotent request once after a reset or disconnect.
    # A monitor must report the first failure, not hide it; there is no public switch
    # (aiohttp's own test client flips the same attribute).
    session._retry_connection = False
    return session


def target_of(url: str) -> str:
    """The URL without credentials, query or fragment: the ``target`` label."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


__all__ = ["PHASES", "AuthError", "PhaseTimer", "ProbeContext", "new_session",
           "target_of"]
