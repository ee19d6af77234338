"""One line of what a run saw, in plain words: shared by the status page, the results API
and ``synthmon once``, so that all three say the same thing about the same run."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.outcomes import Outcome
from monitor.result import Result
from monitor.web.incidents import incidents

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


def redirect_chain(r: Result, most: int | None = None) -> str | None:
    """The redirects a run met, in one line: ``302 /a → 302 /b``; the first ``most`` of
    them and how many more; None when there were none."""
    hops = r.evidence.redirects
    if not hops:
        return None
    shown = hops if most is None else hops[:most]
    line = " → ".join(f"{h.status} {h.location}" for h in shown)
    if len(hops) > len(shown):
        line += f" → … ({len(hops) - len(shown)} more)"
    return line


def hint(r: Result | None) -> str | None:
    if r is None or r.evidence.diagnosis is None:
        return None
    return r.evidence.diagnosis.hint or None


def cross_check(r: Result, lasts: Mapping[str, Result | None],
                credentials: Mapping[str, str | None] | None = None) -> str | None:
    """The verdict of the incident ``r`` belongs to, for a failing run; None for a passing
    one. The same words as the incident card of the overview (monitor.web.incidents)."""
    if r.success:
        return None
    for incident in incidents({**lasts, r.probe: r}, credentials):
        if r.probe in incident.probes:
            peers = [p for p in incident.probes if p != r.probe]
            also = f" One incident with {', '.join(peers)}." if peers else ""
            return f"{incident.why}{also}"
    return None
