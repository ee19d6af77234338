"""The closed set of outcomes a probe run can end in (the ``outcome`` label).

The names are a public contract: alert rules and dashboards match on them.
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

    @property
    def success(self) -> bool:
        return self is Outcome.SUCCESS


ALL_OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
