"""The exception classifier both probes share, as a table: the exceptions the event loop,
aiohttp, websockets and ssl raise for a failed connection, and the outcome each means."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.http_exceptions import BadStatusLine
from websockets.exceptions import InvalidMessage

from monitor.auth import AuthError
from monitor.outcomes import Outcome
from monitor.probes.errors import TOKEN_TIMEOUT_HINT, classify_exception, request_failure
from monitor.probes.tls import TlsConfigError

KEY = ConnectionKey("staging.example", 443, True, True, None, None, None, None)


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


def context(exc: BaseException, during: BaseException) -> BaseException:
    exc.__context__ = during
    return exc


CASES = [
    # exception, phase, outcome, words in the detail
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "connect",
     Outcome.CONNECT_REFUSED, "connection refused"),
    (OSError(errno.ECONNREFUSED, "Connect call failed"), "connect", Outcome.CONNECT_REFUSED,
     "connection refused"),
    (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
     "connect", Outcome.CONNECT_REFUSED, "connection refused"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "resolve",
     Outcome.DNS_ERROR, "name resolution failed: gaierror: [Errno -2] Name or service not known"),
    (aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(socket.EAI_AGAIN, "try again")),
     "connect", Outcome.DNS_ERROR, "name resolution failed"),
    (caused(RuntimeError("wrapped"), socket.gaierror(socket.EAI_NONAME, "unknown")), "resolve",
     Outcome.DNS_ERROR, "name resolution failed"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate"),
     "tls", Outcome.TLS_ERROR, "TLS certificate rejected: SSLCertVerificationError"),
    (aiohttp.ClientConnectorCertificateError(
        KEY, ssl.SSLCertVerificationError(1, "certificate has expired")),
     "tls", Outcome.TLS_ERROR, "TLS certificate rejected"),
    (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls",
     Outcome.TLS_ERROR, "TLS handshake failed: SSLError"),
    (aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "alert handshake failure")), "tls",
     Outcome.TLS_ERROR, "TLS handshake failed"),
    (ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), "tls", Outcome.TLS_ERROR,
     "TLS handshake failed"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "read",
     Outcome.CONNECTION_RESET, "connection reset during read"),
    (BrokenPipeError(errno.EPIPE, "Broken pipe"), "handshake", Outcome.CONNECTION_RESET,
     "connection reset during handshake"),
    (ConnectionAbortedError(), "read", Outcome.CONNECTION_RESET, "during read"),
    (OSError(errno.ECONNRESET, "reset"), "read", Outcome.CONNECTION_RESET, "during read"),
    (OSError(errno.EPIPE, "pipe"), "read", Outcome.CONNECTION_RESET, "during read"),
    (aiohttp.ServerDisconnectedError(), "read", Outcome.CONNECTION_RESET,
     "server closed the connection during read"),
    (aiohttp.ClientPayloadError("Response payload is not completed"), "read",
     Outcome.PROTOCOL_ERROR, "malformed body: ClientPayloadError"),
    (BadStatusLine("SSH-2.0-OpenSSH_9.6"), "read", Outcome.PROTOCOL_ERROR,
     "malformed HTTP answer"),
    (caused(aiohttp.ClientOSError("cannot write to closing transport"),
            BadStatusLine("220 smtp ready")), "read", Outcome.PROTOCOL_ERROR,
     "malformed HTTP answer"),
    (TimeoutError(), "resolve", Outcome.CONNECT_TIMEOUT, "no connection within the timeout "
     "(resolve)"),
    (TimeoutError(), "connect", Outcome.CONNECT_TIMEOUT, "(connect)"),
    (TimeoutError(), "tls", Outcome.CONNECT_TIMEOUT, "(tls)"),
    (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), "read",
     Outcome.TIMEOUT, "timed out during read"),
    (aiohttp.ConnectionTimeoutError("Connection timeout"), "connect", Outcome.CONNECT_TIMEOUT,
     "(connect)"),
    (TimeoutError(), "handshake", Outcome.TIMEOUT, "timed out during handshake"),
    (TimeoutError(), "read", Outcome.TIMEOUT, "timed out during read"),
    (context(asyncio.CancelledError(), TimeoutError()), "read", Outcome.TIMEOUT,
     "timed out during read"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "connect", Outcome.CONNECT_REFUSED,
     "connect failed: OSError: [Errno 113] No route to host"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "read", Outcome.CONNECTION_RESET,
     "read failed: OSError"),
    (InvalidMessage("did not receive a valid HTTP response"), "handshake",
     Outcome.PROTOCOL_ERROR, "handshake failed: InvalidMessage: did not receive a valid HTTP"),
    (ValueError("something else"), "read", Outcome.PROTOCOL_ERROR,
     "read failed: ValueError: something else"),
    (RuntimeError(), "connect", Outcome.PROTOCOL_ERROR, "connect failed: RuntimeError"),
]


@pytest.mark.parametrize(("exc", "phase", "outcome", "words"), CASES,
                         ids=[f"{type(c[0]).__name__}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_classify_exception(exc: BaseException, phase: str, outcome: Outcome,
                            words: str) -> None:
    got, detail = classify_exception(exc, phase)
    assert got is outcome, detail
    assert words in detail, detail
    assert "\n" not in detail and len(detail) <= 400


def test_the_default_phase_is_connect() -> None:
    assert classify_exception(TimeoutError()) == (
        Outcome.CONNECT_TIMEOUT, "no connection within the timeout (connect)")


def test_a_multi_line_message_becomes_one_line() -> None:
    _, detail = classify_exception(ValueError("bad status line\n  HTTP/1.1 2OO\n  ^"), "read")
    assert detail == "read failed: ValueError: bad status line HTTP/1.1 2OO ^"


def test_the_first_known_cause_wins_over_a_generic_wrapper() -> None:
    # A reset under an OSError wrapper: the specific cause decides, not the wrapper.
    wrapped = caused(OSError("write failed"), ConnectionResetError())
    assert classify_exception(wrapped, "read")[0] is Outcome.CONNECTION_RESET


# request_failure: the whole decision for a run whose aiohttp request raised, as a table.
# exception, where, outcome, the detail exactly, hint (None: none).
REQUEST_CASES = [
    (AuthError("SECRET_X is not set"), "auth", Outcome.CONFIG_ERROR,
     "auth: SECRET_X is not set", None),
    (AuthError("token endpoint answered 500", Outcome.CREDENTIALS_UNAVAILABLE, "try later"),
     "auth", Outcome.CREDENTIALS_UNAVAILABLE, "auth: token endpoint answered 500", "try later"),
    (TlsConfigError("ca_file /x: unreadable"), "connect", Outcome.CONFIG_ERROR,
     "ca_file /x: unreadable", None),
    (TimeoutError(), "auth", Outcome.CREDENTIALS_UNAVAILABLE,
     "no answer within the probe timeout (5s) while getting the auth token", TOKEN_TIMEOUT_HINT),
    (TimeoutError(), "connect", Outcome.CONNECT_TIMEOUT,
     "no answer within the probe timeout (5s) while connecting", None),
    (TimeoutError(), "tls", Outcome.CONNECT_TIMEOUT,
     "no answer within the probe timeout (5s) while in the TLS handshake", None),
    (TimeoutError(), "processing", Outcome.TIMEOUT,
     "no answer within the probe timeout (5s) while waiting for the response headers", None),
    (TimeoutError(), "transfer", Outcome.TIMEOUT,
     "no answer within the probe timeout (5s) while reading the body", None),
    (ValueError("Newline or carriage return character detected in HTTP status message"),
     "prepare", Outcome.CONFIG_ERROR, "cannot build the request: Newline or carriage return "
     "character detected in HTTP status message", None),
    (aiohttp.InvalidURL("https://user:hunter2@x/"), "auth", Outcome.CONFIG_ERROR,
     "cannot build the request: invalid URL", None),
    (TypeError("Object of type set is not JSON serializable"), "prepare", Outcome.CONFIG_ERROR,
     "cannot build the request: Object of type set is not JSON serializable", None),
    (ValueError("bad chunk"), "transfer", Outcome.PROTOCOL_ERROR,
     "transfer failed: ValueError: bad chunk", None),
    (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), "processing",
     Outcome.PROTOCOL_ERROR, "malformed HTTP answer: BadStatusLine: 400, message: Bad status "
     "line 'SSH-2.0-OpenSSH'", None),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connect", Outcome.CONNECT_REFUSED,
     "connection refused", None),
    (aiohttp.ServerDisconnectedError(), "processing", Outcome.CONNECTION_RESET,
     "server closed the connection during processing", None),
]


@pytest.mark.parametrize(("exc", "where", "outcome", "detail", "hint"), REQUEST_CASES,
                         ids=[f"{type(c[0]).__name__}-{c[1]}" for c in REQUEST_CASES])
def test_request_failure(exc: Exception, where: str, outcome: Outcome, detail: str,
                         hint: str | None) -> None:
    unparsable = BadStatusLine("SSH-2.0-OpenSSH")
    assert request_failure(exc, where, 5.0, "the probe timeout", unparsable) == (
        outcome, detail, hint)


def test_request_failure_names_the_bound_it_was_given() -> None:
    # The stream kind's bound is its whole reading, not the probe's timeout.
    outcome, detail, _ = request_failure(TimeoutError(), "transfer", 0.25, "the timeout")
    assert (outcome, detail) == (Outcome.TIMEOUT,
                                 "no answer within the timeout (250ms) while reading the body")


def test_a_reset_write_without_a_refused_answer_is_the_reset() -> None:
    exc = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    assert request_failure(exc, "processing", 5.0, "the probe timeout")[0] is (
        Outcome.CONNECTION_RESET)
