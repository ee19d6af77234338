"""The websockets connection the WebSocket probe drives, with the websockets internals it
relies on: the ``create_connection`` class (a :class:`ClientConnection` subclass that
overrides ``connection_made``, ``data_received`` and ``process_event`` and reads
``protocol.parser_exc`` / ``protocol.handshake_exc``), and ``connect.process_redirect``.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

from monitor.probes.tls import cert_expiry, peer_certificate

# The start of the answer to the upgrade is kept raw, up to this many bytes: when websockets
# gives up on a non-101 answer because of its body (over 1 MiB, or an endless chunked body),
# the status line and headers still say what the server answered.
HEAD_CAPTURE = 16 * 1024
# More pings than this within one second is a flood, not a heartbeat: answering each costs
# this process CPU that every other probe would pay for in latency, so the probe hangs up
# and reports it. Data is fed to websockets in slices so that a flood is caught after one
# slice (about a hundred frames) rather than after a whole 256 KiB read.
PING_FLOOD = 100
FEED_SLICE = 16 * 1024


@dataclass(slots=True)
class Trace:
    """What the connection saw while websockets drove it, filled from its callbacks; it is
    also the run's :mod:`watcher <monitor.probes.net.watch>` for the TLS handshake start."""

    tls_started: float | None = None  # the TCP connection is up and TLS begins (wss://)
    made_at: float | None = None  # the connection is ready for the upgrade request
    connection: ClientConnection | None = None
    cert_expiry: float | None = None
    head: bytearray = field(default_factory=bytearray)  # the start of the answer, raw
    pings: int = 0  # pings in the current one-second window
    ping_window: float = 0.0  # start of that window
    flood: str | None = None  # set when the server floods pings; the connection is aborted

    def tls_handshake_started(self, _obj: ssl.SSLObject) -> None:
        self.tls_started = asyncio.get_running_loop().time()

    def answer_unparsable(self, _exc: BaseException) -> None:
        """Never called: websockets, not aiohttp, reads the upgrade's answer (``head``)."""

    @property
    def connected_at(self) -> float | None:
        """When the TCP connect completed, if it did."""
        return self.tls_started if self.tls_started is not None else self.made_at


class TracedConnection(ClientConnection):
    """websockets builds the connection itself; its ``create_connection`` hook takes this
    subclass, which notes when the connection came up and keeps the start of a failed
    answer. One class for every run (the run's :class:`Trace` is an argument): a class
    made per run took 13 µs to create and started with cold method caches."""

    def __init__(self, *args: Any, trace: Trace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace = trace
        trace.connection = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.trace.made_at = asyncio.get_running_loop().time()
        self.trace.cert_expiry = _cert_expiry(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        trace = self.trace
        if self.response is None and len(trace.head) < HEAD_CAPTURE:
            trace.head += data[:HEAD_CAPTURE - len(trace.head)]
        for start in range(0, len(data), FEED_SLICE):
            super().data_received(data if len(data) <= FEED_SLICE
                                  else data[start:start + FEED_SLICE])
            if trace.flood is not None or self.protocol.parser_exc is not None:
                # A flood, or a frame this side refused (too big, invalid): the verdict is
                # decided and the close frame sent; a hostile server may never close its
                # end, and websockets would wait for that until the probe timeout.
                self.transport.abort()
                return
        if self.response is None and self.protocol.handshake_exc is not None:
            # websockets gave up on the answer (not HTTP, or a body it will not read) and
            # then waits for the server to close the connection, which a hostile server
            # never does: the verdict is known, end the wait now.
            self.transport.abort()

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            trace = self.trace
            now = self.loop.time()
            if now - trace.ping_window >= 1.0:
                trace.ping_window, trace.pings = now, 0
            trace.pings += 1
            if trace.pings > PING_FLOOD and trace.flood is None:
                trace.flood = (f"the server flooded the connection with pings (more than "
                               f"{PING_FLOOD} in a second), so the probe hung up")
        super().process_event(event)


class NoRedirectConnect(connect):
    """websockets' ``connect`` without following redirects: a redirected upgrade is a
    finding for the probe to report (the route moved), not a detour to take quietly."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _cert_expiry(transport: asyncio.BaseTransport) -> float | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    return cert_expiry(peer_certificate(ssl_object))


__all__ = ["FEED_SLICE", "HEAD_CAPTURE", "PING_FLOOD", "NoRedirectConnect", "Trace",
           "TracedConnection"]
