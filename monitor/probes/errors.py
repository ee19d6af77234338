"""Map the exceptions of a failed connection to an outcome and a plain-words detail.

Shared by the HTTP, stream and WebSocket probes so that "connection refused" means the same
thing whichever protocol saw it; :func:`request_failure` is the whole decision for a run
that makes its request with aiohttp (the HTTP and stream kinds).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp

from monitor.auth import AuthError
from monitor.durations import format_duration
from monitor.outcomes import Outcome
from monitor.probes.tls import TlsConfigError

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


# The hint of a run whose token request took its whole deadline.
TOKEN_TIMEOUT_HINT = (
    "The auth provider's token endpoint did not answer within the probe's timeout. The probe "
    "did not reach its target, so this says nothing about the target itself.")


def request_failure(exc: Exception, where: str, timeout: float, timeout_name: str,
                    unparsable: BaseException | None = None
                    ) -> tuple[Outcome, str, str | None]:
    """The outcome, detail and hint of a run whose aiohttp request raised ``exc`` while at
    ``where`` (its :class:`~monitor.probes.net.phases.PhaseTimer` stage, or "auth" before
    the request). ``timeout``: the bound that a ``TimeoutError`` means was reached, named
    ``timeout_name`` in the detail ("the probe timeout"); ``unparsable``: what the
    connection's parser refused, if anything (a server that talked first)."""
    if isinstance(exc, AuthError):
        return exc.outcome, f"auth: {exc}", exc.hint
    if isinstance(exc, TlsConfigError):
        return Outcome.CONFIG_ERROR, str(exc), None
    if isinstance(exc, TimeoutError):
        if where == "auth":
            # The token endpoint took the whole run: the target was never asked.
            outcome, hint = Outcome.CREDENTIALS_UNAVAILABLE, TOKEN_TIMEOUT_HINT
        else:
            outcome, hint = classify_exception(exc, where)[0], None
        return outcome, (f"no answer within {timeout_name} ({format_duration(timeout)}) "
                         f"while {stage_words(where)}"), hint
    if isinstance(exc, ValueError | TypeError) and where in ("auth", "prepare"):
        # aiohttp refuses what it cannot send (a bad header value, an unencodable
        # json_body) before any connection: the config is at fault, not the target.
        return Outcome.CONFIG_ERROR, f"cannot build the request: {why_unbuildable(exc)}", None
    if isinstance(exc, aiohttp.ClientConnectionResetError):
        # "Cannot write to closing transport" when the server talked first and its bytes
        # were refused: what it said is the finding, not that the write failed.
        return (*classify_exception(unparsable or exc, where), None)
    return (*classify_exception(exc, where), None)


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
