"""The phase names a run reports and the metrics export, and the timer that measures the
HTTP ones from aiohttp's trace hooks.

The names are part of the public contract (the ``phase`` label of
``probe_phase_duration_seconds``); they are written here once, in the order a run goes
through them.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp

from monitor.probes.tls import peer_certificate

HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")
WS_PHASES = ("resolve", "connect", "tls", "handshake", "steps")
# The HTTP phases under their historical name (``monitor.probes.context.PHASES``).
PHASES = HTTP_PHASES
# A phase not gone through (tls over http, resolve of an IP) is one shared pair: the newest
# result of every probe keeps its phases, and sharing them keeps that memory flat.
_NOT_SPENT = {p: (p, 0.0) for p in HTTP_PHASES}


@dataclass(slots=True)
class PhaseTimer:
    """Where one request spent its time; pass it as ``trace_request_ctx``.

    The session's trace hooks move it from stage to stage; a probe adds the TLS start
    (it is the run's :mod:`watcher <monitor.probes.net.watch>`) and calls :meth:`finish`
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

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(HTTP_PHASES, 0.0))
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
        return tuple(_NOT_SPENT[p] if running[p] == 0.0 else (p, running[p])
                     for p in HTTP_PHASES)


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


def trace_config() -> aiohttp.TraceConfig:
    """aiohttp's public trace hooks, wired to the request's :class:`PhaseTimer`."""
    tc = aiohttp.TraceConfig()
    tc.on_connection_create_start.append(_on_connection_create_start)
    tc.on_dns_resolvehost_start.append(_on_dns_start)
    tc.on_dns_resolvehost_end.append(_on_dns_end)
    tc.on_connection_create_end.append(_on_connection_create_end)
    tc.on_request_redirect.append(_on_redirect)
    tc.on_request_end.append(_on_request_end)
    return tc


__all__ = ["HTTP_PHASES", "PHASES", "WS_PHASES", "PhaseTimer", "trace_config"]
