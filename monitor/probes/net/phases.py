"""The phase names a run reports and the metrics export, and the timer that measures the
HTTP ones as aiohttp goes through a request.

The names are part of the public contract (the ``phase`` label of
``probe_phase_duration_seconds``); they are written here once, in the order a run goes
through them.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field

from monitor.probes.tls import peer_certificate

HTTP_PHASES = ("resolve", "connect", "tls", "processing", "transfer")
WS_PHASES = ("resolve", "connect", "tls", "handshake", "steps")
# The HTTP phases under their historical name (``monitor.probes.context.PHASES``).
PHASES = HTTP_PHASES
# A phase not gone through (tls over http, resolve of an IP) is one shared pair: the newest
# result of every probe keeps its phases, and sharing them keeps that memory flat.
_NOT_SPENT = {p: (p, 0.0) for p in HTTP_PHASES}
# The answers aiohttp follows when a request allows redirects (ClientSession._request).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(slots=True)
class PhaseTimer:
    """Where one request spent its time; the run's watcher while it makes the request
    (``with watching(timer):``).

    It is the run's :mod:`watcher <monitor.probes.net.watch>`: the session's hooks
    (:mod:`monitor.probes.net.session`) move it from stage to stage as aiohttp resolves,
    connects, receives an answer and follows a redirect, the TLS context notes the
    handshake's start; the probe calls :meth:`receiving` once the request is answered and
    :meth:`finish` when the body is read. The phases, as in the blackbox exporter:

    - ``resolve``: name resolution (0 for an IP address);
    - ``connect``: TCP connect, including failed attempts at other addresses;
    - ``tls``: the TLS handshake (0 for http://);
    - ``processing``: connection ready to response headers, so it includes sending the
      request;
    - ``transfer``: reading the body (up to the probe's cap).

    Across followed redirects the phases add up. ``stage`` is where the request is now, so
    that a failure is blamed on the right phase: "prepare" until a connection is being
    created, "redirect" between hops, "done" at the end.

    The moments an answer's headers and its body's last byte were read off the socket are
    told by the connection's protocol as it reads them (:meth:`heard`, :meth:`body_read`):
    ``processing`` and ``transfer`` end there, not when the run's task next gets its turn
    on a loop busy with other runs (the loop's queue is synthmon's, not the target's).
    ``first`` is when the request's first stage began; with ``since`` once "done", the
    request's I/O from its first moment to its last.
    """

    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(HTTP_PHASES, 0.0))
    stage: str = "prepare"
    since: float = 0.0  # when ``stage`` began
    ssl_object: ssl.SSLObject | None = None
    peer_cert: bytes | None = None  # DER, taken as soon as the handshake is done
    unparsable: BaseException | None = None  # why the answer was not HTTP, if it was not
    follows_redirects: bool = False  # whether aiohttp follows the redirects it is answered
    first: float | None = None  # when the first stage after "prepare" began
    heard_at: float | None = None  # the latest answer's headers read off the socket
    body_at: float | None = None  # ... and its body's last byte

    def answer_unparsable(self, exc: BaseException) -> None:
        self.unparsable = self.unparsable or exc

    def heard(self, now: float) -> None:
        """The connection's protocol has read an answer's headers (its body's bytes may
        have come with them)."""
        self.heard_at, self.body_at = now, None

    def body_read(self) -> None:
        """The connection's protocol has just read the last byte of the answer's body."""
        self.body_at = time.perf_counter()

    def enter(self, stage: str, now: float | None = None) -> None:
        now = time.perf_counter() if now is None else now
        if self.first is None:
            self.first = now
        if self.stage in self.totals:
            spent = now - self.since
            self.totals[self.stage] += spent if spent > 0.0 else 0.0  # max(), without a call
        self.stage, self.since = stage, now

    def tls_handshake_started(self, obj: ssl.SSLObject) -> None:
        self.ssl_object = obj
        self.enter("tls")

    # What the session's hooks tell (monitor.probes.net.session), in the order of a request.

    def connecting(self) -> None:
        """aiohttp is opening a connection for the request."""
        self.heard_at = self.body_at = None  # a new hop's answer is yet to come
        self.enter("connect")

    def resolving(self) -> None:
        """The connection's host name is being resolved (not for an IP address)."""
        self.enter("resolve")

    def resolved(self) -> None:
        self.enter("connect")

    def connected(self) -> None:
        """The connection (and its TLS) is up: the request is sent next."""
        if self.ssl_object is not None:
            # Read now: the connection may be gone by the time the probe looks.
            self.peer_cert = peer_certificate(self.ssl_object)
            self.ssl_object = None
        self.enter("processing")

    def answered(self, status: int) -> None:
        """An answer's headers are in: a redirect that aiohttp follows next is
        "redirect" until its next connection; any other answer is the request's."""
        if self.follows_redirects and status in REDIRECT_STATUSES:
            self.enter("redirect", self.heard_at)

    def receiving(self) -> None:
        """The request is answered (redirects followed); reading the body comes next."""
        self.enter("transfer", self.heard_at)

    def finish(self) -> None:
        """The body is read (or as much of it as the run keeps): the request's I/O ended
        when its last byte was read, or now when the run stopped reading before it."""
        self.enter("done", self.body_at)

    def phases(self, now: float | None = None) -> tuple[tuple[str, float], ...]:
        """Totals so far, including the time spent in the stage still under way."""
        now = time.perf_counter() if now is None else now
        running = dict(self.totals)
        if self.stage in running:
            running[self.stage] += max(0.0, now - self.since)
        # A list made into a tuple: a generator costs a resumption an item.
        return tuple([_NOT_SPENT[p] if running[p] == 0.0 else (p, running[p])
                      for p in HTTP_PHASES])


__all__ = ["HTTP_PHASES", "PHASES", "REDIRECT_STATUSES", "WS_PHASES", "PhaseTimer"]
