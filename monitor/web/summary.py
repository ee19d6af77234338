"""One line of what a run saw, in plain words: shared by the status page, the results API
and ``synthmon once``, so that all three say the same thing about the same run."""

from __future__ import annotations

from urllib.parse import urlsplit

from monitor.outcomes import Outcome
from monitor.result import Result

# One line per outcome, in the words of the README's outcome table: shown under the outcome
# so that nobody has to look a name up in the middle of the night.
MEANING: dict[Outcome, str] = {
    Outcome.SUCCESS: "everything expected was seen, within budget",
    Outcome.UNEXPECTED_STATUS: "the HTTP status is not one of the expected ones",
    Outcome.ASSERTION_FAILED: "a JSON path, body regex or header expectation failed",
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
    Outcome.AUTH_NOT_ENFORCED: "a negative probe got in: the server accepted a bad token",
    Outcome.CONFIG_ERROR: "the probe could not run as configured (e.g. a secret is missing)",
}


NOT_RUN = "not run"  # a config_error: the probe sent nothing, so nothing answered


def handshake(r: Result) -> str | None:
    """How the WebSocket upgrade was answered, in one phrase; None for HTTP probes."""
    if r.type != "websocket":
        return None
    if r.outcome is Outcome.CONFIG_ERROR:
        # Not a network failure: the run stopped before anything was sent.
        return NOT_RUN + ": nothing was sent"
    ev = r.evidence
    if r.upgraded or r.status_code == 101:
        sub = f", subprotocol {ev.subprotocol}" if ev.subprotocol else ", no subprotocol"
        return f"upgraded: 101 Switching Protocols{sub}"
    if r.status_code is None:
        return f"no HTTP answer to the upgrade ({r.outcome.value})"
    ctype = (ev.content_type or "").split(";")[0].strip()
    what = f"HTTP {r.status_code}" + (f" {ctype}" if ctype else "")
    if r.status_code >= 400:
        return f"refused: {what} instead of 101"
    return f"not upgraded: {what} instead of 101"


def seen(r: Result) -> str:
    """One line of what the server answered, for the overview and the API."""
    ev = r.evidence
    if r.outcome is Outcome.CONFIG_ERROR:
        return f"{NOT_RUN}: {ev.detail or 'nothing was sent'}"
    parts: list[str] = []
    hs = handshake(r)
    if hs is not None:
        # The probe's detail usually names the answer already ("refused the upgrade: HTTP
        # 403", "upgraded (subprotocol jwt-auth)"); the phrase is only added when it does not.
        if not (str(r.status_code) in ev.detail or "upgraded" in ev.detail):
            parts.append(hs)
    elif r.status_code is not None and str(r.status_code) not in ev.detail:
        ctype = (ev.content_type or "").split(";")[0].strip()
        parts.append(f"HTTP {r.status_code}" + (f" {ctype}" if ctype else ""))
    if r.close_code is not None and str(r.close_code) not in ev.detail:
        parts.append(f"close {r.close_code}" + (f" {ev.close_reason}" if ev.close_reason else ""))
    if ev.detail:
        parts.append(ev.detail)
    return " · ".join(parts)


def hint(r: Result | None) -> str | None:
    if r is None or r.evidence.diagnosis is None:
        return None
    return r.evidence.diagnosis.hint or None


def cross_check(r: Result, lasts: dict[str, Result | None]) -> str | None:
    """For a refused upgrade: does another WebSocket probe on the same host get in?

    That is what tells a missing route from refused credentials (PRODUCT.md); the alert
    rules make the comparison for paging, the page only points at it.
    """
    if r.type != "websocket" or r.status_code is None or not 400 <= r.status_code < 500:
        return None
    host = urlsplit(r.target).netloc
    peers = sorted(name for name, other in lasts.items()
                   if other is not None and other.probe != r.probe
                   and other.type == "websocket" and other.upgraded
                   and urlsplit(other.target).netloc == host)
    if not peers:
        return None
    one = len(peers) == 1
    return (f"{', '.join(peers)} on the same host upgraded at {'its' if one else 'their'}"
            f" last run: the server accepts WebSocket connections. If "
            f"{'it uses' if one else 'they use'} the same credentials, "
            f"suspect the route of {urlsplit(r.target).path or '/'}, not the token.")
