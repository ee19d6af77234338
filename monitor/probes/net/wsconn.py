"""The websockets connection the WebSocket probe drives, with the websockets internals it
relies on: the ``create_connection`` class (a :class:`ClientConnection` subclass that
overrides ``connection_made``, ``data_received``, ``connection_lost`` and ``process_event``,
reads ``protocol.parser_exc`` / ``protocol.handshake_exc`` and takes over the receive queue's
``resume`` callback), and ``connect.process_redirect``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close, Frame, Opcode

from monitor.limits import FEED_SLICE, HEAD_CAPTURE, PING_FLOOD
from monitor.probes.tls import cert_expiry, peer_certificate


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
    # Told of every frame received: (kind, payload), for the run's transcript.
    on_frame: Callable[[str, bytes | str], None] | None = None
    data_kind: str = "text"  # of the last data frame, for its continuation frames

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
        # The rest of a read not yet fed to websockets: the receive queue was full. At
        # most one read of the transport (256 KiB), fed as the probe catches up.
        self.held = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.trace.made_at = asyncio.get_running_loop().time()
        self.trace.cert_expiry = _cert_expiry(transport)
        super().connection_made(transport)
        # websockets pauses the transport when its queue of received frames is full, and
        # resumes it when the queue has drained; but the read in hand is parsed whole
        # first, which for a flood of small frames is thousands of messages (100-150 ms
        # of parsing in one callback, while every other probe waits). The rest of such a
        # read is held instead, and fed when the queue has drained, before reading more.
        self.recv_messages.resume = self._resume

    def data_received(self, data: bytes) -> None:
        trace = self.trace
        if self.response is None and len(trace.head) < HEAD_CAPTURE:
            trace.head += data[:HEAD_CAPTURE - len(trace.head)]
        if self.held:  # not expected (the transport is paused while data is held)
            data, self.held = self.held + data, b""
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        trace = self.trace
        for start in range(0, len(data), FEED_SLICE):
            super().data_received(data if len(data) <= FEED_SLICE
                                  else data[start:start + FEED_SLICE])
            if trace.flood is not None or self.protocol.parser_exc is not None:
                # A flood, or a frame this side refused (too big, invalid): the verdict is
                # decided and the close frame sent; a hostile server may never close its
                # end, and websockets would wait for that until the probe timeout.
                self.transport.abort()
                return
            if self.recv_messages.paused and start + FEED_SLICE < len(data):
                self.held = data[start + FEED_SLICE:]
                return
        if self.protocol.close_rcvd is not None and self.protocol.close_sent is not None:
            # The close handshake is done on this side (websockets has answered the
            # server's close, or the server has answered ours). The client waits for the
            # server to close TCP, which a hostile one never does, holding the run to its
            # timeout with the close unread; RFC 6455 (7.1.1) lets the client close it.
            self.transport.close()
            return
        if self.response is None and self.protocol.handshake_exc is not None:
            # websockets gave up on the answer (not HTTP, or a body it will not read) and
            # then waits for the server to close the connection, which a hostile server
            # never does: the verdict is known, end the wait now.
            self.transport.abort()

    def _resume(self) -> None:
        """The receive queue has drained (called from inside ``recv``): feed what is
        held, on the next loop iteration, before the transport reads more."""
        if self.held:
            self.loop.call_soon(self._feed_held)
        else:
            self.transport.resume_reading()

    def _feed_held(self) -> None:
        held, self.held = self.held, b""
        if held and not self.transport.is_closing():
            self._feed(held)
        if not self.held and not self.recv_messages.paused:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held:  # what the server sent before it went, its close frame included
            held, self.held = self.held, b""
            super().data_received(held)
        super().connection_lost(exc)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and self.trace.on_frame is not None:
            _tell(self.trace, event)
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


_KINDS = {Opcode.TEXT: "text", Opcode.BINARY: "binary", Opcode.PING: "ping",
          Opcode.PONG: "pong", Opcode.CLOSE: "close"}


def _tell(trace: Trace, frame: Frame) -> None:
    assert trace.on_frame is not None
    kind = _KINDS.get(frame.opcode)
    if kind in ("text", "binary"):
        trace.data_kind = kind
    elif kind is None:  # a continuation frame carries more of the last data frame
        kind = trace.data_kind
    payload: bytes | str = bytes(frame.data)
    if frame.opcode is Opcode.CLOSE:
        try:
            close = Close.parse(frame.data)
            payload = f"{close.code} {close.reason}".rstrip()
        except Exception:  # a malformed close frame: websockets reports it; show the bytes
            payload = bytes(frame.data)
    trace.on_frame(kind, payload)


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
