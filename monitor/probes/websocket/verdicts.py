"""How the WebSocket probe decides an outcome, from plain values only.

No sockets, no clock, no I/O: every function here takes what the run observed (an
exception websockets raised, the answer to the upgrade, a close frame, the timings, a
message) and returns the outcome with its words. The run (:mod:`.run`) and the
conversation (:mod:`.steps`) collect those values; the tests call these functions with
tables of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from websockets.datastructures import Headers
from websockets.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
    SecurityError,
)
from websockets.frames import Close, CloseCode
from websockets.http11 import Response

from monitor.config import ExpectStep, WebSocketSpec
from monitor.durations import ms
from monitor.outcomes import Outcome
from monitor.probes.errors import classify_exception
from monitor.probes.events import is_auth_error
from monitor.probes.jsonmatch import match_subset
from monitor.probes.record import Verdict
from monitor.probes.reflection import reflected_detail, reflected_in
from monitor.probes.refusal import handshake_reading, nothing_learned
from monitor.redact import Redactor
from monitor.result import StepTiming

# Close codes this side sends when it refuses what the server sent: the failure is the
# server's frame, not the close.
_OWN_FAILURE_CODES = {
    CloseCode.PROTOCOL_ERROR: "the server sent an invalid frame",
    CloseCode.INVALID_DATA: "the server sent a text message that is not valid UTF-8",
    CloseCode.MESSAGE_TOO_BIG: "the server sent a message larger than max_message_bytes",
}


@dataclass(frozen=True, slots=True)
class Closed:
    """A closed connection, classified: the verdict, and the close code and reason that
    go into the evidence (None when no close frame says one)."""

    verdict: Verdict
    code: int | None
    reason: str | None


# --------------------------------------------------------------------------- the handshake


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _answer(response: Response, outcome: Outcome, detail: str,
            subprotocol: str | None = None) -> Verdict:
    code = response.status_code
    retry_after = response.headers.get("Retry-After") if code in (429, 503) else None
    return Verdict(outcome, detail,
                   status_code=code,
                   headers=tuple(response.headers.raw_items()),
                   content_type=response.headers.get("Content-Type"),
                   body=bytes(response.body) if response.body else None,
                   subprotocol=subprotocol,
                   hint=status_hint(code, retry_after) if code != 101 else None,
                   retry_after=retry_after)


def _verdict(response: Response | None, outcome: Outcome, detail: str,
             subprotocol: str | None = None) -> Verdict:
    if response is None:
        return Verdict(outcome, detail, subprotocol=subprotocol)
    return _answer(response, outcome, detail, subprotocol)


def offered_text(offered: Sequence[str], redactor: Redactor) -> str:
    """The subprotocols offered, for a detail (the token subprotocol redacted)."""
    if not offered:
        return "none"
    return redactor.header("Sec-WebSocket-Protocol", ", ".join(offered))


def _answered_subprotocol(response: Response | None) -> str | None:
    if response is None:
        return None
    values = response.headers.get_all("Sec-WebSocket-Protocol")
    return ", ".join(values) if values else None


def classify_handshake_failure(
    exc: BaseException,
    *,
    phase: str,
    response: Response | None,
    offered: Sequence[str],
    redactor: Redactor,
    head: bytes = b"",
) -> Verdict:
    """Why the opening handshake failed: the core distinction of this product.

    - any non-101 HTTP answer: 4xx/5xx → ``handshake_rejected``; 2xx/3xx →
      ``not_upgraded`` (the request was served as plain HTTP); 1xx → ``protocol_error``;
    - a 101 naming a subprotocol we did not offer → ``subprotocol_mismatch``;
    - a 101 that is not a valid upgrade (wrong Sec-WebSocket-Accept, missing Upgrade,
      unknown extension) or an answer that is not HTTP → ``protocol_error``;
    - the server closing before answering → ``connection_reset``;
    - anything else (DNS, refused, TLS, timeouts) → :func:`classify_exception` for
      ``phase``: a hang before the socket is up is ``connect_timeout``, a hang waiting for
      the answer to the upgrade is ``timeout``.

    ``response`` is the answer that failed validation, when there was one (for a 101 the
    exception does not carry it). ``head`` is the start of the raw answer, used when
    websockets could not parse the answer to the end.
    """
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, InvalidStatus):
            return status_verdict(e.response)
    if response is None and head:
        # websockets could not finish reading a non-101 answer (a body over its 1 MiB
        # limit, an endless chunked body): its status line and headers still decide.
        parse_error = next((e for e in chain if isinstance(e, InvalidMessage)), None)
        partial = response_from_head(head) if parse_error is not None else None
        if parse_error is not None and partial is not None and partial.status_code != 101:
            why = parse_error.__cause__ or parse_error
            return status_verdict(partial, f"; its body was not read to the end ({why})")
    for e in chain:
        subprotocol_error = (
            isinstance(e, NegotiationError) and "subprotocol" in str(e)
        ) or (isinstance(e, InvalidHeader) and e.name.lower() == "sec-websocket-protocol")
        if subprotocol_error:
            answered = _answered_subprotocol(response)
            return _verdict(response, Outcome.SUBPROTOCOL_MISMATCH,
                            f"the server selected subprotocol {answered or '(unknown)'!s}, "
                            f"which was not offered; offered: {offered_text(offered, redactor)}",
                            subprotocol=answered)
    for e in chain:
        if isinstance(e, InvalidMessage):
            if any(isinstance(c, EOFError) for c in _chain(e)[1:]):
                return replace(_verdict(response, Outcome.CONNECTION_RESET,
                                        "the server closed the connection before answering "
                                        "the upgrade"), hint=no_answer_hint())
            cause = e.__cause__
            words = f": {cause}" if cause is not None else ""
            return _verdict(response, Outcome.PROTOCOL_ERROR,
                            f"the answer to the upgrade is not valid HTTP{words}")
        if isinstance(e, SecurityError):
            return _verdict(response, Outcome.PROTOCOL_ERROR,
                            f"the answer to the upgrade exceeds a size limit: {e}")
        if isinstance(e, InvalidUpgrade):
            return _verdict(response, Outcome.PROTOCOL_ERROR,
                            f"101 answer without a valid upgrade: {e}")
        if isinstance(e, InvalidHeader) and e.name.lower() == "sec-websocket-accept":
            return _verdict(response, Outcome.PROTOCOL_ERROR,
                            f"101 answer with a wrong Sec-WebSocket-Accept ({e}): the answer "
                            "does not come from a WebSocket server that read this request "
                            "(a cache or a broken proxy?)")
        if isinstance(e, InvalidHandshake):
            return _verdict(response, Outcome.PROTOCOL_ERROR, f"invalid upgrade answer: {e}")
    outcome, detail = classify_exception(exc, phase)
    return _verdict(response, outcome, detail)


def status_verdict(response: Response, note: str = "") -> Verdict:
    """The verdict for a non-101 answer to the upgrade."""
    code = response.status_code
    reason = response.reason_phrase
    if code >= 400:
        return _answer(response, Outcome.HANDSHAKE_REJECTED,
                       f"the server refused the upgrade: HTTP {code} {reason}{note}")
    if code >= 200:
        kind = "redirect" if 300 <= code < 400 else "plain answer"
        return _answer(response, Outcome.NOT_UPGRADED,
                       f"the server answered the upgrade with HTTP {code} {reason} "
                       f"({kind}) instead of 101 Switching Protocols{note}")
    return _answer(response, Outcome.PROTOCOL_ERROR,
                   f"the server answered the upgrade with HTTP {code}, not 101{note}")


_NOT_IN_A_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([^\r\n]*))?\r\n")


def response_from_head(head: bytes) -> Response | None:
    """Status line, headers and the body received so far, from the raw start of an answer;
    None unless the status line and the whole header block are there and well formed."""
    match = _STATUS_LINE.match(head)
    end = head.find(b"\r\n\r\n")
    if match is None or end < 0:
        return None
    headers = Headers()
    for line in head[match.end():end].split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            return None
        # websockets refuses a value with control characters (which is why it could not
        # read this answer): they are written as \xNN, the status and the rest still tell.
        text = _NOT_IN_A_VALUE.sub(lambda m: f"\\x{ord(m.group()):02x}",
                                   value.decode("latin-1").strip())
        headers[name.decode("latin-1").strip()] = text
    return Response(int(match.group(1)), (match.group(2) or b"").decode("latin-1"), headers,
                    bytes(head[end + 4:]))


def subprotocol_verdict(expected: str | None, selected: str | None, offered: Sequence[str],
                        redactor: Redactor, headers: tuple[tuple[str, str], ...] = ()
                        ) -> Verdict | None:
    """``subprotocol_mismatch`` when a 101 selected another subprotocol than
    ``expect_subprotocol`` (``selected`` None: the server chose none); None when it is fine."""
    if expected is None or selected == expected:
        return None
    return Verdict(Outcome.SUBPROTOCOL_MISMATCH,
                   f"expected subprotocol {expected}, the server selected {selected or 'none'}; "
                   f"offered: {offered_text(offered, redactor)}",
                   headers=headers, subprotocol=selected)


def refused_as_expected(verdict: Verdict, budget: str | None) -> Verdict:
    """A negative probe's refusal: success, or slow when a budget was exceeded."""
    # The refusal is what a negative probe wants: no hint on what a refusal might mean.
    if budget is not None:
        return replace(verdict, outcome=Outcome.SLOW, detail=budget, hint=None)
    return replace(verdict, outcome=Outcome.SUCCESS,
                   detail=f"refused as expected: {verdict.detail}", hint=None)


def reflection_verdict(headers: Sequence[tuple[str, str]], token: str | None
                       ) -> Verdict | None:
    """``token_reflected`` when an answer's header (``Sec-WebSocket-Protocol`` included)
    carries the credential the probe sent; None otherwise."""
    name = reflected_in(headers, token)
    if name is None:
        return None
    return Verdict(Outcome.TOKEN_REFLECTED, reflected_detail(name), reflected_in=name)


def negative_answer(verdict: Verdict, refused_with: tuple[int, ...]) -> Verdict:
    """A negative probe's non-101 answer: SUCCESS when it is an auth refusal (the caller
    applies the budget), else the verdict any probe gets, with a hint that nothing about
    auth was learned."""
    code = verdict.status_code
    if code is None:
        return verdict
    if handshake_reading(code, refused_with) is not None:
        return replace(verdict, outcome=Outcome.SUCCESS)
    learned = nothing_learned(code, upgrade=True)
    return replace(verdict, hint=learned + (f". {verdict.hint}" if verdict.hint else ""))


def diagnosis_hint(upgrade_status: int, get_status: int | None,
                   content_type: str | None) -> str:
    """Plain words on what a GET of the same URL adds to a non-101 answer.

    It says what was observed and what it is consistent with; it does not decide between
    a missing route and refused credentials, which one probe cannot tell apart.
    """
    ctype = (content_type or "").split(";")[0].strip() or "no content type"
    if get_status is None:
        return "the diagnostic GET got no answer, so it adds nothing to the upgrade's answer"
    answer = f"GET on this path answers {get_status} {ctype}"
    if 200 <= upgrade_status < 400:
        return (f"the server answered the upgrade as a plain request: the WebSocket route is "
                f"missing or a proxy dropped the Upgrade header ({answer})")
    if 400 <= upgrade_status < 500:
        ambiguous = (f"A {upgrade_status} to the upgrade alone cannot tell a missing WebSocket "
                     "route from refused credentials; another WebSocket path of the same host, "
                     "probed with the same credentials, tells them apart.")
        if 200 <= get_status < 300:
            return f"{answer}: the path is served by a plain HTTP route. {ambiguous}"
        if get_status in (401, 403):
            return (f"{answer} as well: the refusal is not specific to the upgrade (a gateway, "
                    f"a firewall or the credentials may be refused on this path). {ambiguous}")
        if get_status == 404:
            return (f"{answer}: there is no plain HTTP route here, which is what a path served "
                    f"only as a WebSocket also answers. {ambiguous}")
        return f"{answer}. {ambiguous}"
    if upgrade_status >= 500:
        return (f"the server failed on the upgrade ({upgrade_status}); {answer}: compare "
                "whether the failure is specific to the upgrade")
    return answer


def diagnosis_words(upgrade_status: int | None, upgrade_type: str | None,
                    get_status: int | None, get_type: str | None) -> str:
    """The diagnosis hint: the same answer as a plain GET says "answered as a plain GET";
    no answer to the upgrade at all says what the path serves; else :func:`diagnosis_hint`."""
    if upgrade_status is None:
        if get_status is None:
            return (f"{no_answer_hint()}; the diagnostic GET got no answer either: the "
                    "server hangs up on this path whatever is asked")
        ctype = (get_type or "").split(";")[0].strip() or "no content type"
        return (f"{no_answer_hint()}; GET on this path answers {get_status} {ctype}, so the "
                "path is served, only not as a WebSocket")
    if same_as_get(upgrade_status, upgrade_type, get_status, get_type):
        return answered_as_get_hint(upgrade_status, upgrade_type)
    return diagnosis_hint(upgrade_status, get_status, get_type)


# --------------------------------------------------------------------------- after accept


def close_verdict(sent: Close | None, rcvd: Close | None, rcvd_then_sent: bool | None,
                  where: str, *, flood: str | None = None, max_message_bytes: int = 0,
                  before_first_expected: bool = False) -> Closed:
    """Classify a closed connection from its close frames (websockets'
    ``ConnectionClosed.sent`` / ``rcvd`` / ``rcvd_then_sent``).

    ``where`` ends the detail ("during step 2 (events)"); ``flood`` is set when this side
    hung up on a ping flood, which decides before any close frame does;
    ``before_first_expected``: no expected message had arrived yet (a 1000 then is "closed
    cleanly before the welcome"). A close by the server gets :func:`close_hint`.
    """
    closed = _close_verdict(sent, rcvd, rcvd_then_sent, where, flood=flood,
                            max_message_bytes=max_message_bytes)
    if closed.verdict.outcome in (Outcome.CLOSED_BY_SERVER, Outcome.AUTH_REJECTED):
        hint = close_hint(None if rcvd is None else rcvd.code, closed.reason,
                          before_first_expected=before_first_expected)
        return replace(closed, verdict=replace(closed.verdict, hint=hint))
    return closed


def _close_verdict(sent: Close | None, rcvd: Close | None, rcvd_then_sent: bool | None,
                   where: str, *, flood: str | None, max_message_bytes: int) -> Closed:
    if flood is not None:
        return Closed(Verdict(Outcome.PROTOCOL_ERROR, f"{flood} {where}"), None, None)
    we_failed = sent is not None and sent.code in _OWN_FAILURE_CODES and (
        rcvd is None or rcvd_then_sent is False)
    if we_failed and sent is not None:
        what = _OWN_FAILURE_CODES[CloseCode(sent.code)]
        if sent.code == CloseCode.MESSAGE_TOO_BIG:
            what += f" ({max_message_bytes} bytes)"
        return Closed(Verdict(Outcome.PROTOCOL_ERROR,
                              f"{what} {where}; {sent.reason}".rstrip("; ")),
                      sent.code, sent.reason)
    if rcvd is None:
        return Closed(Verdict(Outcome.CLOSED_BY_SERVER,
                              f"the connection dropped without a close frame {where}"),
                      CloseCode.ABNORMAL_CLOSURE, None)
    reason = rcvd.reason or None
    said = f"{rcvd.code}" + (f" {rcvd.reason!r}" if rcvd.reason else "")
    if rcvd.code == CloseCode.POLICY_VIOLATION:
        return Closed(Verdict(Outcome.AUTH_REJECTED,
                              f"the server closed the connection with {said} (policy "
                              f"violation: usually refused credentials) {where}"),
                      rcvd.code, reason)
    return Closed(Verdict(Outcome.CLOSED_BY_SERVER,
                          f"the server closed the connection with {said} {where}"),
                  rcvd.code, reason)


def parse_json(message: str) -> tuple[bool, Any]:
    """(True, value) for a JSON text, (False, None) otherwise: ``null`` is a value."""
    try:
        return True, json.loads(message)
    except ValueError:
        return False, None


def mismatch(message: str, expect: ExpectStep) -> str | None:
    """Why a text message does not meet an ``expect`` step, or None when it does."""
    if expect.regex is not None and re.search(expect.regex, message) is None:
        return f"the message does not match /{expect.regex}/"
    if expect.json_ is not None:
        ok, data = parse_json(message)
        if not ok:
            return "expected a JSON message, got text that is not JSON"
        return match_subset(data, expect.json_)
    return None


def show_types(types: Iterable[str]) -> str:
    return ", ".join(types) or "nothing"


# --------------------------------------------------------------------------- hints
# Every refusal and close told apart in plain words (issue 12): the outcome stays the one
# above; the hint says what this particular answer means and where to look.

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


def close_hint(code: int | None, reason: str | None, *, before_first_expected: bool) -> str:
    """What a close received after accept means. ``code`` None: the connection dropped
    without a close frame (1006). (The outcome is :func:`close_verdict`'s: 1008 is
    ``auth_rejected``, any other close ``closed_by_server``.)"""
    said = f" “{reason}”" if reason else ""
    if code is None or code == 1006:
        return (
            "1006: the connection dropped without a close frame: the server process or a "
            "proxy cut it (a crash, a kill during a deploy, an idle timeout)")
    if code == 1008:
        return (
            f"1008{said}: policy violation after accept, usually refused credentials")
    if code == 1000 and before_first_expected:
        return (
            f"1000{said}: closed cleanly before the welcome: the server accepted and then "
            "ended the session on purpose, without an error")
    if code == 1000:
        return f"1000{said}: the server ended the session cleanly"
    if code == 1001:
        return (
            f"1001{said}: going away: the server is shutting down or restarting")
    if code == 1003:
        return (
            f"1003{said}: refused after accept: the subprotocol or data it was offered is not "
            "supported; compare send_token_as and subprotocols with what the server takes")
    if code == 1011:
        return (
            f"1011{said}: the server hit an internal error or is not ready; the reason says "
            "which")
    if code == 1012:
        return f"1012{said}: the service is restarting"
    if code == 1013:
        return (
            f"1013{said}: try again later: the server is overloaded or not ready yet")
    if 4000 <= code < 5000:
        return (
            f"{code}{said}: an application-defined close code; the reason and the server's "
            "documentation say what it means")
    return f"{code}{said}: the server closed the connection"



# --------------------------------------------------------------------------- budgets


def budget_exceeded(spec: WebSocketSpec, phases: Sequence[tuple[str, float]],
                    steps: Sequence[StepTiming], open_seconds: float | None,
                    refused: bool = False) -> str | None:
    """Every exceeded ``max_latency`` budget in words, or None.

    The handshake budget applies to opening the WebSocket (``open_seconds``) or, for a
    negative probe that was refused, to the phases up to the refusal; each step's budget
    to that step.
    """
    over: list[str] = []
    budget = spec.max_latency
    opened = open_seconds
    if refused:
        opened = sum(d for name, d in phases if name != "steps")
    if budget is not None and opened is not None and opened > budget:
        split = ", ".join(f"{name} {ms(d)}" for name, d in phases if name != "steps")
        what = "the refusal" if refused else "opening the WebSocket"
        over.append(f"{what} took {ms(opened)} ({split}), over the {ms(budget)} "
                    "max_latency")
    for timing in steps:
        step = spec.steps[timing.index]
        action = step.expect or step.expect_events
        limit = action.max_latency if action is not None else None
        if limit is not None and timing.duration_seconds > limit:
            over.append(f"step {timing.name} took {ms(timing.duration_seconds)}, over its "
                        f"{ms(limit)} max_latency")
    return "; ".join(over) or None


__all__ = [
    "Closed",
    "Verdict",
    "answered_as_get_hint",
    "budget_exceeded",
    "classify_handshake_failure",
    "close_hint",
    "close_verdict",
    "diagnosis_hint",
    "diagnosis_words",
    "is_auth_error",
    "mismatch",
    "negative_answer",
    "no_answer_hint",
    "offered_text",
    "parse_json",
    "reflection_verdict",
    "refused_as_expected",
    "response_from_head",
    "same_as_get",
    "show_types",
    "status_hint",
    "status_verdict",
    "subprotocol_verdict",
]
