"""The closed set of outcomes a probe run can end in (the ``outcome`` label), each with
its meaning in one line.

The names are a public contract: alert rules and dashboards match on them. This is their
one home, every probe kind's included: a kind decides which of them its runs end in.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"
    UNEXPECTED_STATUS = "unexpected_status"
    # More redirects than max_redirects with follow_redirects (a loop, usually): every
    # answer was HTTP, none was the final one.
    TOO_MANY_REDIRECTS = "too_many_redirects"
    ASSERTION_FAILED = "assertion_failed"
    SLOW = "slow"
    DNS_ERROR = "dns_error"
    CONNECT_REFUSED = "connect_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS_ERROR = "tls_error"
    CONNECTION_RESET = "connection_reset"
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    HANDSHAKE_REJECTED = "handshake_rejected"
    NOT_UPGRADED = "not_upgraded"
    SUBPROTOCOL_MISMATCH = "subprotocol_mismatch"
    AUTH_REJECTED = "auth_rejected"
    CLOSED_BY_SERVER = "closed_by_server"
    UNEXPECTED_MESSAGE = "unexpected_message"
    MESSAGE_TIMEOUT = "message_timeout"
    AUTH_NOT_ENFORCED = "auth_not_enforced"
    TOKEN_REFLECTED = "token_reflected"
    CONFIG_ERROR = "config_error"
    # Streams (Server-Sent Events)
    NOT_EVENT_STREAM = "not_event_stream"
    STREAM_STALLED = "stream_stalled"
    STREAM_BUFFERED = "stream_buffered"
    STREAM_INCOMPLETE = "stream_incomplete"
    # The probe's auth provider gave no token (a token endpoint that refuses, times out or
    # answers without the token; a key file that cannot be read): the target was not asked.
    CREDENTIALS_UNAVAILABLE = "credentials_unavailable"

    @property
    def success(self) -> bool:
        return self is Outcome.SUCCESS


ALL_OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)

# One line per outcome, in the words of the README's outcome table: shown under the outcome
# so that nobody has to look a name up in the middle of the night.
MEANING: dict[Outcome, str] = {
    Outcome.SUCCESS: "everything expected was seen, within budget",
    Outcome.UNEXPECTED_STATUS: "the HTTP status is not one of the expected ones",
    Outcome.TOO_MANY_REDIRECTS: "the redirects did not end within max_redirects (a redirect "
                                "loop, usually)",
    Outcome.ASSERTION_FAILED: "a JSON path, body regex, header, TLS or HTTP version "
                              "expectation failed",
    Outcome.SLOW: "everything worked, but a max_latency budget was exceeded",
    Outcome.DNS_ERROR: "the host name did not resolve",
    Outcome.CONNECT_REFUSED: "nothing listens on that address (connection refused)",
    Outcome.CONNECT_TIMEOUT: "the TCP connection was not established in time",
    Outcome.TLS_ERROR: "the TLS handshake or the certificate check failed",
    Outcome.CONNECTION_RESET: "the peer reset or dropped the connection",
    Outcome.TIMEOUT: "no complete answer within the probe timeout",
    Outcome.PROTOCOL_ERROR: "the peer answered something that is not valid HTTP/WebSocket",
    Outcome.HANDSHAKE_REJECTED: "the WebSocket upgrade got a 4xx/5xx answer",
    Outcome.NOT_UPGRADED: "the WebSocket upgrade got a plain 2xx/3xx answer instead of 101",
    Outcome.SUBPROTOCOL_MISMATCH: "the server chose a subprotocol that was not offered or "
                                  "not expected",
    Outcome.AUTH_REJECTED: "accepted, then closed with 1008 or an auth error message",
    Outcome.CLOSED_BY_SERVER: "the server closed the WebSocket before the steps were done",
    Outcome.UNEXPECTED_MESSAGE: "a message did not match, an event came out of order or "
                                "was in fail_on",
    Outcome.MESSAGE_TIMEOUT: "the expected message or events did not arrive in time",
    Outcome.AUTH_NOT_ENFORCED: "a negative probe (or one of its variants) got in: the server "
                               "accepted credentials it must refuse",
    Outcome.TOKEN_REFLECTED: "the answer's headers carry the probe's credential (e.g. the "
                             "jwt.<token> offer echoed as the subprotocol): it leaks into "
                             "proxies and logs",
    Outcome.CONFIG_ERROR: "the probe could not run as configured (e.g. a secret is missing)",
    Outcome.CREDENTIALS_UNAVAILABLE: "the probe could not obtain its credentials (token "
                                     "endpoint refused or did not answer, key file "
                                     "unreadable): the target was not asked",
    Outcome.NOT_EVENT_STREAM: "a 2xx answer that is not text/event-stream (e.g. JSON) where a "
                              "stream was expected",
    Outcome.STREAM_STALLED: "no first event in time, or a silence between two events longer "
                            "than max_gap",
    Outcome.STREAM_BUFFERED: "nothing in time, then every event at once: something in "
                             "between held the stream back and released it whole",
    Outcome.STREAM_INCOMPLETE: "the stream ended (cleanly or cut) before done or an expected "
                               "event",
}

# Runs that never reached the target: nothing was judged about it.
NOT_RUN: frozenset[Outcome] = frozenset({Outcome.CONFIG_ERROR, Outcome.CREDENTIALS_UNAVAILABLE})
