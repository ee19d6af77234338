"""Plain words for every refusal and close of a WebSocket, told apart.

Pure: codes and reasons in, a sentence out. The outcomes stay those of PRODUCT.md (4xx/5xx
``handshake_rejected``, 2xx/3xx ``not_upgraded``, 1008 ``auth_rejected``, any other close
``closed_by_server``); the hint says what the particular answer means and where to look.
"""

from __future__ import annotations

from monitor.outcomes import Outcome

_STATUS: dict[int, str] = {
    400: ("400 Bad Request: the server refused the upgrade request itself (a missing or "
          "mangled Sec-WebSocket-Key/Version or Connection header, often a proxy's doing), "
          "before any route or auth decision"),
    401: ("401: the route is there and asks for credentials; the token was missing, "
          "expired or refused"),
    403: ("403: either the credentials were refused or there is no WebSocket route at this "
          "path (an ASGI server answers 403 to both); the diagnostic GET and the alternate "
          "path tell them apart"),
    404: "404: nothing is routed at this path for the upgrade; check the URL and the routes",
    405: ("405: a route that does not take this request answered, most likely a REST route "
          "registered on the WebSocket path"),
    426: ("426 Upgrade Required: the server wants another protocol version or upgrade "
          "(Sec-WebSocket-Version, or HTTP/2 without WebSocket support in front)"),
    429: "429: rate limited; the server asks to come back later",
    500: "500: the server failed on the upgrade (an error in the WebSocket handler or a "
         "middleware)",
    502: ("502: a proxy or load balancer in between got no valid answer from the backend "
          "(down, restarting, or crashing on the upgrade)"),
    503: "503: not ready (a readiness gate, a deploy, or an overloaded backend)",
    504: ("504: a proxy or load balancer in between gave up waiting for the backend (too "
          "slow, or stuck)"),
}


def status_hint(code: int, retry_after: str | None = None) -> str | None:
    """What a non-101 answer to the upgrade means, or None for codes without one."""
    text = _STATUS.get(code)
    if text is None:
        if 400 <= code < 500:
            text = f"{code}: the server refused the upgrade"
        elif code >= 500:
            text = f"{code}: the server or a proxy failed on the upgrade"
        else:
            return None
    if code in (429, 503) and retry_after:
        text += f" (Retry-After: {retry_after})"
    return text


def same_as_get(upgrade_status: int, upgrade_type: str | None, get_status: int | None,
                get_type: str | None) -> bool:
    """The upgrade got the very answer a plain GET gets: same status and content type."""
    def main(t: str | None) -> str:
        return (t or "").split(";")[0].strip().lower()
    return get_status is not None and get_status == upgrade_status \
        and main(upgrade_type) == main(get_type)


def answered_as_get_hint(status: int, content_type: str | None) -> str:
    ctype = (content_type or "").split(";")[0].strip() or "no content type"
    return (f"the upgrade was answered exactly like a plain GET of this URL (HTTP {status} "
            f"{ctype}): it was answered as a plain GET, most likely by a proxy dropping the "
            "Upgrade header, or by a plain HTTP route at this path; this is not a credentials "
            "question")


def no_answer_hint() -> str:
    return ("the server closed the connection without answering the upgrade, which some "
            "servers do on a path without a WebSocket route; the diagnostic GET shows what "
            "the path serves")


def close_verdict(code: int | None, reason: str | None, *, before_first_expected: bool
                  ) -> tuple[Outcome, str]:
    """(outcome, hint) for a close received after accept. ``code`` None: the connection
    dropped without a close frame (1006)."""
    said = f" “{reason}”" if reason else ""
    if code is None or code == 1006:
        return Outcome.CLOSED_BY_SERVER, (
            "1006: the connection dropped without a close frame: the server process or a "
            "proxy cut it (a crash, a kill during a deploy, an idle timeout)")
    if code == 1008:
        return Outcome.AUTH_REJECTED, (
            f"1008{said}: policy violation after accept, usually refused credentials")
    if code == 1000 and before_first_expected:
        return Outcome.CLOSED_BY_SERVER, (
            f"1000{said}: closed cleanly before the welcome: the server accepted and then "
            "ended the session on purpose, without an error")
    if code == 1000:
        return Outcome.CLOSED_BY_SERVER, f"1000{said}: the server ended the session cleanly"
    if code == 1001:
        return Outcome.CLOSED_BY_SERVER, (
            f"1001{said}: going away: the server is shutting down or restarting")
    if code == 1003:
        return Outcome.CLOSED_BY_SERVER, (
            f"1003{said}: refused after accept: the subprotocol or data it was offered is not "
            "supported; compare send_token_as and subprotocols with what the server takes")
    if code == 1011:
        return Outcome.CLOSED_BY_SERVER, (
            f"1011{said}: the server hit an internal error or is not ready; the reason says "
            "which")
    if code == 1012:
        return Outcome.CLOSED_BY_SERVER, f"1012{said}: the service is restarting"
    if code == 1013:
        return Outcome.CLOSED_BY_SERVER, (
            f"1013{said}: try again later: the server is overloaded or not ready yet")
    if 4000 <= code < 5000:
        return Outcome.CLOSED_BY_SERVER, (
            f"{code}{said}: an application-defined close code; the reason and the server's "
            "documentation say what it means")
    return Outcome.CLOSED_BY_SERVER, f"{code}{said}: the server closed the connection"


__all__ = ["answered_as_get_hint", "close_verdict", "no_answer_hint", "same_as_get",
           "status_hint"]
