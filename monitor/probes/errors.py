"""Map the exceptions of a failed connection to an outcome and a plain-words detail.

Shared by the HTTP and WebSocket probes so that "connection refused" means the same thing
whichever protocol saw it.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp

from monitor.outcomes import Outcome

# Where a request-making run was when its deadline hit, in words ("while ...").
_STAGE_WORDS = {
    "auth": "getting the auth token",
    "prepare": "preparing the request",
    "resolve": "resolving the host name",
    "connect": "connecting",
    "tls": "in the TLS handshake",
    "processing": "waiting for the response headers",
    "redirect": "following a redirect",
    "transfer": "reading the body",
}


def stage_words(stage: str) -> str:
    """What a run was doing in ``stage`` (a :class:`~monitor.probes.net.phases.PhaseTimer`
    stage, or "auth"), for "no answer ... while <words>"."""
    return _STAGE_WORDS.get(stage, stage)


def why_unbuildable(exc: Exception) -> str:
    """Why aiohttp refused to build a request, without quoting what may hold a secret."""
    if isinstance(exc, aiohttp.InvalidURL):
        # Its message is the URL itself, credentials included.
        return "invalid URL" + (f" ({exc.description})" if exc.description else "")
    return str(exc)


def classify_exception(exc: BaseException, phase: str = "connect") -> tuple[Outcome, str]:
    """``phase`` is where it happened: "resolve", "connect", "tls", "handshake", "read"."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 10:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in chain:
        if isinstance(e, aiohttp.ClientConnectorDNSError | socket.gaierror):
            return Outcome.DNS_ERROR, f"name resolution failed: {_words(e)}"
        if isinstance(e, ssl.SSLCertVerificationError | aiohttp.ClientConnectorCertificateError):
            return Outcome.TLS_ERROR, f"TLS certificate rejected: {_words(e)}"
        if isinstance(e, ssl.SSLError | aiohttp.ClientConnectorSSLError):
            return Outcome.TLS_ERROR, f"TLS handshake failed: {_words(e)}"
        if isinstance(e, ConnectionRefusedError):
            return Outcome.CONNECT_REFUSED, "connection refused"
        if isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return Outcome.CONNECTION_RESET, f"connection reset during {phase}"
        if isinstance(e, OSError) and e.errno in (errno.ECONNREFUSED,):
            return Outcome.CONNECT_REFUSED, "connection refused"
        if isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE):
            return Outcome.CONNECTION_RESET, f"connection reset during {phase}"
        if isinstance(e, aiohttp.ServerDisconnectedError):
            return Outcome.CONNECTION_RESET, f"server closed the connection during {phase}"
        if isinstance(e, aiohttp.ClientPayloadError):
            return Outcome.PROTOCOL_ERROR, f"malformed body: {_words(e)}"
        if isinstance(e, aiohttp.ClientResponseError | aiohttp.http_exceptions.HttpProcessingError):
            return Outcome.PROTOCOL_ERROR, f"malformed HTTP answer: {_words(e)}"
        if isinstance(e, TimeoutError | asyncio.TimeoutError):
            if phase in ("resolve", "connect", "tls"):
                return Outcome.CONNECT_TIMEOUT, f"no connection within the timeout ({phase})"
            return Outcome.TIMEOUT, f"timed out during {phase}"
    for e in chain:
        if isinstance(e, aiohttp.ClientOSError | OSError):
            return Outcome.CONNECT_REFUSED if phase == "connect" else Outcome.CONNECTION_RESET, \
                f"{phase} failed: {_words(e)}"
    return Outcome.PROTOCOL_ERROR, f"{phase} failed: {_words(exc)}"


def _words(exc: BaseException) -> str:
    # One line: some messages (aiohttp's bad status line) carry newlines and a caret.
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}"[:300]
