"""The WebSocket verdicts as tables, without sockets: what each answer to the upgrade,
each close, each diagnostic GET and each budget comes to. The values are what websockets
hands the run (its exceptions, :class:`Response`, :class:`Close`); the functions are the
ones the run calls."""

from __future__ import annotations

import pytest
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
from websockets.frames import Close
from websockets.http11 import Response

from monitor.config import WebSocketSpec, load_text
from monitor.outcomes import Outcome
from monitor.probes.websocket import Verdict, classify_handshake_failure, diagnosis_hint
from monitor.probes.websocket.adapter import token_subprotocol
from monitor.probes.websocket.verdicts import (
    budget_exceeded,
    close_verdict,
    is_auth_error,
    refused_as_expected,
    response_from_head,
    subprotocol_verdict,
)
from monitor.redact import REDACTED, Redactor
from monitor.result import StepTiming

JSON_BODY = b'{"data":{"service":"websocket_ssot","status":"operational"}}'
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"


def answer(code: int, reason: str = "", body: bytes = b"",
           **headers: str) -> Response:
    h = Headers()
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return Response(code, reason, h, body)


def classify(exc: BaseException, response: Response | None = None, *, phase: str = "handshake",
             offered: tuple[str, ...] = (), head: bytes = b"",
             redactor: Redactor | None = None) -> Verdict:
    return classify_handshake_failure(exc, phase=phase, response=response, offered=offered,
                                      redactor=redactor or Redactor(), head=head)


def caused(exc: BaseException, cause: BaseException) -> BaseException:
    exc.__cause__ = cause
    return exc


# --------------------------------------------------------------------------- non-101 answers

NON_101 = [
    # status, reason, content type, outcome, words in the detail
    (200, "OK", "application/json", Outcome.NOT_UPGRADED, ["HTTP 200 OK", "plain answer",
                                                           "instead of 101"]),
    (204, "No Content", None, Outcome.NOT_UPGRADED, ["HTTP 204", "plain answer"]),
    (300, "Multiple Choices", None, Outcome.NOT_UPGRADED, ["HTTP 300", "redirect"]),
    (301, "Moved Permanently", "text/html", Outcome.NOT_UPGRADED, ["HTTP 301", "redirect"]),
    (302, "Found", None, Outcome.NOT_UPGRADED, ["HTTP 302", "redirect"]),
    (307, "Temporary Redirect", None, Outcome.NOT_UPGRADED, ["HTTP 307", "redirect"]),
    (308, "Permanent Redirect", None, Outcome.NOT_UPGRADED, ["HTTP 308", "redirect"]),
    (399, "", None, Outcome.NOT_UPGRADED, ["HTTP 399", "redirect"]),
    (400, "Bad Request", "text/plain", Outcome.HANDSHAKE_REJECTED,
     ["refused the upgrade", "HTTP 400 Bad Request"]),
    (401, "Unauthorized", "application/json", Outcome.HANDSHAKE_REJECTED, ["HTTP 401"]),
    (403, "Forbidden", "text/plain", Outcome.HANDSHAKE_REJECTED, ["HTTP 403 Forbidden"]),
    (404, "Not Found", "application/json", Outcome.HANDSHAKE_REJECTED, ["HTTP 404"]),
    (405, "Method Not Allowed", None, Outcome.HANDSHAKE_REJECTED, ["HTTP 405"]),
    (426, "Upgrade Required", None, Outcome.HANDSHAKE_REJECTED, ["HTTP 426"]),
    (429, "Too Many Requests", None, Outcome.HANDSHAKE_REJECTED, ["HTTP 429"]),
    (500, "Internal Server Error", "text/html", Outcome.HANDSHAKE_REJECTED, ["HTTP 500"]),
    (502, "Bad Gateway", None, Outcome.HANDSHAKE_REJECTED, ["HTTP 502"]),
    (503, "Service Unavailable", None, Outcome.HANDSHAKE_REJECTED, ["HTTP 503"]),
    (100, "Continue", None, Outcome.PROTOCOL_ERROR, ["HTTP 100", "not 101"]),
]


@pytest.mark.parametrize(("code", "reason", "ctype", "outcome", "words"), NON_101,
                         ids=[str(row[0]) for row in NON_101])
def test_a_non_101_answer_decides_by_its_status_class(
        code: int, reason: str, ctype: str | None, outcome: Outcome, words: list[str]) -> None:
    headers = {"Content_Type": ctype} if ctype else {}
    response = answer(code, reason, JSON_BODY, **headers)
    verdict = classify(InvalidStatus(response))
    assert verdict.outcome is outcome, verdict.detail
    for word in words:
        assert word in verdict.detail, (word, verdict.detail)
    # The answer is the evidence: status, headers, content type and body travel with it.
    assert verdict.status_code == code
    assert verdict.content_type == ctype
    assert verdict.body == JSON_BODY
    assert ("Content-Type", ctype) in verdict.headers or ctype is None


def test_the_status_decides_even_when_websockets_wraps_it() -> None:
    wrapped = caused(InvalidHandshake("upgrade failed"), InvalidStatus(answer(403, "Forbidden")))
    assert classify(wrapped).outcome is Outcome.HANDSHAKE_REJECTED


@pytest.mark.parametrize(("head", "outcome", "words"), [
    (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nno", Outcome.HANDSHAKE_REJECTED,
     ["HTTP 403 Forbidden", "its body was not read to the end", "body too large"]),
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{", Outcome.NOT_UPGRADED,
     ["HTTP 200 OK", "plain answer", "not read to the end"]),
    (b"HTTP/1.0 503 \r\n\r\n", Outcome.HANDSHAKE_REJECTED, ["HTTP 503"]),
    # No whole header block, or a 101 whose body went wrong: the parse error decides.
    (b"HTTP/1.1 403 Forbidden\r\nContent-Ty", Outcome.PROTOCOL_ERROR, ["not valid HTTP"]),
    (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", Outcome.PROTOCOL_ERROR, ["not valid HTTP"]),
    (b"SSH-2.0-OpenSSH_9.6\r\n", Outcome.PROTOCOL_ERROR, ["not valid HTTP"]),
], ids=["403-big-body", "200-endless", "503-no-reason", "cut-headers", "101", "ssh"])
def test_an_answer_read_only_in_part_is_judged_by_its_head(
        head: bytes, outcome: Outcome, words: list[str]) -> None:
    error = caused(InvalidMessage("did not receive a valid HTTP response"),
                   SecurityError("body too large"))
    verdict = classify(error, head=head)
    assert verdict.outcome is outcome, verdict.detail
    for word in words:
        assert word in verdict.detail, (word, verdict.detail)


def test_the_head_of_an_answer_parses_to_status_headers_and_body() -> None:
    parsed = response_from_head(b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nX-B:2\r\n\r\npartial")
    assert parsed is not None
    assert (parsed.status_code, parsed.reason_phrase) == (404, "Not Found")
    assert parsed.headers["X-A"] == "1" and parsed.headers["X-B"] == "2"
    assert parsed.body == b"partial"
    assert response_from_head(b"HTTP/1.1 404 Not Found\r\nbroken line\r\n\r\n") is None
    assert response_from_head(b"HTTP/2 404\r\n\r\n") is None
    # A value websockets refuses (control characters: why it could not read the answer)
    # still leaves the status to decide, the characters written out.
    hostile = response_from_head(b"HTTP/1.1 403 No\x1b[2J\r\nContent-Type: text/\x1b]0;t\x07"
                                 b"\r\n\r\n")
    assert hostile is not None and hostile.status_code == 403
    assert hostile.headers["Content-Type"] == "text/\\x1b]0;t\\x07"


# --------------------------------------------------------------------------- 101 answers

OFFERED = ("jwt-auth", token_subprotocol(TOKEN))

ANSWERS_101 = [
    # the exception websockets raises on a 101, the answer, outcome, words
    (NegotiationError("unsupported subprotocol: graphql-ws"),
     answer(101, "Switching Protocols", Sec_WebSocket_Protocol="graphql-ws"),
     Outcome.SUBPROTOCOL_MISMATCH, ["selected subprotocol graphql-ws", "which was not offered",
                                    "offered: "]),
    (InvalidHeader("Sec-WebSocket-Protocol", "a, b"),
     answer(101, "Switching Protocols", Sec_WebSocket_Protocol="a, b"),
     Outcome.SUBPROTOCOL_MISMATCH, ["selected subprotocol a, b"]),
    (NegotiationError("unsupported subprotocol: x"), None,
     Outcome.SUBPROTOCOL_MISMATCH, ["selected subprotocol (unknown)"]),
    (InvalidHeader("Sec-WebSocket-Accept", "bm90LXRoaXM="),
     answer(101, "Switching Protocols", Sec_WebSocket_Accept="bm90LXRoaXM="),
     Outcome.PROTOCOL_ERROR, ["wrong Sec-WebSocket-Accept", "cache or a broken proxy"]),
    (InvalidUpgrade("Upgrade", "h2c"), answer(101, "Switching Protocols", Upgrade="h2c"),
     Outcome.PROTOCOL_ERROR, ["101 answer without a valid upgrade", "h2c"]),
    (NegotiationError("unsupported extension: permessage-foo"), answer(101, "OK"),
     Outcome.PROTOCOL_ERROR, ["invalid upgrade answer", "permessage-foo"]),
]


@pytest.mark.parametrize(("exc", "response", "outcome", "words"), ANSWERS_101,
                         ids=["unoffered", "two-chosen", "no-response", "accept", "upgrade",
                              "extension"])
def test_a_101_that_is_not_a_valid_upgrade(exc: BaseException, response: Response | None,
                                          outcome: Outcome, words: list[str]) -> None:
    verdict = classify(exc, response, offered=OFFERED)
    assert verdict.outcome is outcome, verdict.detail
    for word in words:
        assert word in verdict.detail, (word, verdict.detail)
    assert TOKEN not in verdict.detail and OFFERED[1] not in verdict.detail
    if response is not None:
        assert verdict.status_code == 101


def test_the_offered_token_subprotocol_is_redacted_in_the_detail() -> None:
    redactor = Redactor()
    redactor.add(TOKEN)
    verdict = classify(NegotiationError("unsupported subprotocol: x"),
                       answer(101, "Switching Protocols", Sec_WebSocket_Protocol="x"),
                       offered=OFFERED, redactor=redactor)
    assert "offered: jwt-auth, " in verdict.detail
    assert OFFERED[1] not in verdict.detail
    assert verdict.subprotocol == "x"


@pytest.mark.parametrize(("expected", "selected", "mismatch"), [
    (None, None, False), (None, "jwt-auth", False), ("jwt-auth", "jwt-auth", False),
    ("jwt-auth", None, True), ("jwt-auth", "graphql-ws", True),
    ("jwt-auth", OFFERED[1], True),
])
def test_expect_subprotocol(expected: str | None, selected: str | None, mismatch: bool) -> None:
    verdict = subprotocol_verdict(expected, selected, OFFERED, Redactor(),
                                  (("Sec-WebSocket-Protocol", selected or ""),))
    if not mismatch:
        assert verdict is None
        return
    assert verdict is not None and verdict.outcome is Outcome.SUBPROTOCOL_MISMATCH
    assert f"expected subprotocol {expected}, the server selected {selected or 'none'}" \
        in verdict.detail
    assert verdict.subprotocol == selected


# --------------------------------------------------------------------------- no answer

NO_ANSWER = [
    (caused(InvalidMessage("no response"), EOFError("stream ends")), "handshake",
     Outcome.CONNECTION_RESET, "closed the connection before answering"),
    (caused(InvalidMessage("bad"), ValueError("invalid status line")), "handshake",
     Outcome.PROTOCOL_ERROR, "not valid HTTP: invalid status line"),
    (SecurityError("line too long"), "handshake", Outcome.PROTOCOL_ERROR, "size limit"),
    (TimeoutError(), "handshake", Outcome.TIMEOUT, "timed out during handshake"),
    (TimeoutError(), "tls", Outcome.CONNECT_TIMEOUT, "(tls)"),
    (TimeoutError(), "connect", Outcome.CONNECT_TIMEOUT, "(connect)"),
    (ConnectionRefusedError(), "connect", Outcome.CONNECT_REFUSED, "connection refused"),
    (ConnectionResetError(), "handshake", Outcome.CONNECTION_RESET, "during handshake"),
]


@pytest.mark.parametrize(("exc", "phase", "outcome", "words"), NO_ANSWER,
                         ids=["eof", "not-http", "too-long", "hang", "tls-hang", "connect-hang",
                              "refused", "reset"])
def test_no_usable_answer(exc: BaseException, phase: str, outcome: Outcome, words: str) -> None:
    verdict = classify(exc, phase=phase)
    assert verdict.outcome is outcome, verdict.detail
    assert words in verdict.detail
    assert verdict.status_code is None


# --------------------------------------------------------------------------- closes

CLOSES = [
    # received, sent by the probe, rcvd_then_sent, outcome, close code, words
    (Close(1000, ""), None, None, Outcome.CLOSED_BY_SERVER, 1000, "closed the connection with "
     "1000 during step 1"),
    (Close(1001, "going away"), None, None, Outcome.CLOSED_BY_SERVER, 1001, "1001 'going away'"),
    (Close(1003, "text only"), None, None, Outcome.CLOSED_BY_SERVER, 1003, "1003 'text only'"),
    (None, None, None, Outcome.CLOSED_BY_SERVER, 1006, "dropped without a close frame"),
    (Close(1008, "AUTH_FAILED"), None, None, Outcome.AUTH_REJECTED, 1008,
     "1008 'AUTH_FAILED' (policy violation: usually refused credentials)"),
    (Close(1008, ""), Close(1008, ""), True, Outcome.AUTH_REJECTED, 1008, "policy violation"),
    (Close(1011, "not ready"), None, None, Outcome.CLOSED_BY_SERVER, 1011, "1011 'not ready'"),
    (Close(1012, ""), None, None, Outcome.CLOSED_BY_SERVER, 1012, "with 1012 during"),
    (Close(1013, "try again later"), None, None, Outcome.CLOSED_BY_SERVER, 1013, "1013"),
    (Close(4000, "app"), None, None, Outcome.CLOSED_BY_SERVER, 4000, "4000 'app'"),
    (Close(4001, "unauthorized"), None, None, Outcome.CLOSED_BY_SERVER, 4001, "4001"),
    (Close(4401, ""), None, None, Outcome.CLOSED_BY_SERVER, 4401, "4401"),
    (Close(4999, ""), None, None, Outcome.CLOSED_BY_SERVER, 4999, "4999"),
    # The probe refused a frame: its own close code says which.
    (None, Close(1002, "bad opcode"), None, Outcome.PROTOCOL_ERROR, 1002,
     "the server sent an invalid frame during step 1; bad opcode"),
    (None, Close(1007, ""), None, Outcome.PROTOCOL_ERROR, 1007, "not valid UTF-8 during step 1"),
    (None, Close(1009, "over size limit"), None, Outcome.PROTOCOL_ERROR, 1009,
     "larger than max_message_bytes (65536 bytes) during step 1; over size limit"),
    (Close(1000, ""), Close(1009, ""), False, Outcome.PROTOCOL_ERROR, 1009,
     "larger than max_message_bytes"),
    # The server closed first and the probe only echoed: the server's code decides.
    (Close(1011, ""), Close(1002, ""), True, Outcome.CLOSED_BY_SERVER, 1011, "with 1011"),
    # A close the probe started normally does not count as its failure.
    (None, Close(1000, ""), None, Outcome.CLOSED_BY_SERVER, 1006, "without a close frame"),
]


@pytest.mark.parametrize(("rcvd", "sent", "rcvd_then_sent", "outcome", "code", "words"), CLOSES,
                         ids=[f"{row[4]}-{i}" for i, row in enumerate(CLOSES)])
def test_a_close_decides_by_its_code(rcvd: Close | None, sent: Close | None,
                                     rcvd_then_sent: bool | None, outcome: Outcome, code: int,
                                     words: str) -> None:
    closed = close_verdict(sent, rcvd, rcvd_then_sent, "during step 1", max_message_bytes=65536)
    assert closed.verdict.outcome is outcome, closed.verdict.detail
    assert closed.code == code
    assert words in closed.verdict.detail, closed.verdict.detail
    if outcome is Outcome.PROTOCOL_ERROR:
        assert sent is not None and closed.reason == sent.reason  # as sent, even ""
    elif rcvd is None:
        assert closed.reason is None
    else:
        assert closed.reason == (rcvd.reason or None)


def test_a_ping_flood_decides_before_any_close_frame() -> None:
    closed = close_verdict(Close(1008, ""), Close(1008, ""), True, "during step 2",
                           flood="the server flooded the connection with pings")
    assert closed.verdict.outcome is Outcome.PROTOCOL_ERROR
    assert closed.verdict.detail == "the server flooded the connection with pings during step 2"
    assert (closed.code, closed.reason) == (None, None)


# --------------------------------------------------------------------------- messages

@pytest.mark.parametrize(("message", "auth"), [
    ({"type": "error_message", "error_code": "AUTH_FAILED"}, True),
    ({"type": "error", "code": "auth_expired"}, True),
    ({"type": "error", "payload": {"error_code": "NOT_AUTHENTICATED"}}, True),
    ({"data": {"code": "Unauthorized-AUTH"}}, True),
    ({"error": {"code": "TOKEN_AUTH_INVALID"}}, True),
    ({"type": "error_message", "error_code": "RATE_LIMITED"}, False),
    ({"type": "connect"}, False),
    ({"payload": {"deep": {"code": "AUTH"}}}, False),
    ({"code": 401}, False),
    (["AUTH_FAILED"], False),
    ("AUTH_FAILED", False),
    (None, False),
])
def test_auth_error_messages(message: object, auth: bool) -> None:
    assert is_auth_error(message) is auth


# --------------------------------------------------------------------------- diagnosis hints

HINTS = [
    # upgrade status, GET status, GET content type, words in the hint, words not in it
    (200, 200, "application/json; charset=utf-8",
     ["answered the upgrade as a plain request", "route is missing or a proxy dropped the "
      "Upgrade header", "GET on this path answers 200 application/json"], ["cannot tell"]),
    (302, 302, None, ["plain request", "answers 302 no content type"], []),
    (403, 200, "application/json",
     ["answers 200 application/json: the path is served by a plain HTTP route",
      "A 403 to the upgrade alone cannot tell a missing WebSocket route from refused "
      "credentials"], ["as well"]),
    (403, 403, "text/plain", ["answers 403 text/plain as well", "not specific to the upgrade",
                              "cannot tell"], []),
    (401, 401, "application/json", ["answers 401 application/json as well",
                                    "A 401 to the upgrade"], []),
    (403, 401, None, ["answers 401 no content type as well"], []),
    (404, 404, "text/html", ["no plain HTTP route here", "served only as a WebSocket",
                             "A 404 to the upgrade"], []),
    (403, 405, "text/plain", ["GET on this path answers 405 text/plain. A 403"], ["as well"]),
    (426, 426, None, ["answers 426", "A 426 to the upgrade"], []),
    (429, 200, "text/plain", ["plain HTTP route", "A 429"], []),
    (500, 200, "text/html", ["the server failed on the upgrade (500)",
                             "answers 200 text/html: compare whether the failure is specific"],
     ["cannot tell"]),
    (503, 503, None, ["failed on the upgrade (503)", "answers 503"], []),
    (403, None, None, ["the diagnostic GET got no answer, so it adds nothing"], ["cannot"]),
    (200, None, "text/plain", ["got no answer"], []),
]


@pytest.mark.parametrize(("upgrade", "get", "ctype", "words", "absent"), HINTS,
                         ids=[f"{h[0]}-{h[1]}" for h in HINTS])
def test_diagnosis_hints(upgrade: int, get: int | None, ctype: str | None, words: list[str],
                         absent: list[str]) -> None:
    hint = diagnosis_hint(upgrade, get, ctype)
    for word in words:
        assert word in hint, (word, hint)
    for word in absent:
        assert word not in hint, (word, hint)


def test_a_hint_for_an_informational_upgrade_answer_only_reports_the_get() -> None:
    assert diagnosis_hint(100, 200, "text/plain") == "GET on this path answers 200 text/plain"


# --------------------------------------------------------------------------- budgets


def spec_of(body: str) -> WebSocketSpec:
    config = load_text(f"probes:\n  - name: w\n    websocket:\n      url: ws://127.0.0.1:1/ws\n"
                       f"{body}", env={})
    spec = config.probes[0].spec.websocket
    assert spec is not None
    return spec


BUDGETED = spec_of("      max_latency: 50ms\n      steps:\n"
                   "        - expect: {json: {type: connect}, max_latency: 100ms}\n"
                   "        - send: {text: hi}\n"
                   "        - expect_events: {types: [a], max_latency: 1s}\n")
PHASES = [("resolve", 0.001), ("connect", 0.002), ("tls", 0.003), ("handshake", 0.004)]


@pytest.mark.parametrize(("open_seconds", "steps", "refused", "words"), [
    (0.010, [], False, []),
    (0.050, [], False, []),  # the budget is a maximum: equal is within it
    (0.060, [], False, ["opening the WebSocket took 60ms (resolve 1ms, connect 2ms, tls 3ms, "
                        "handshake 4ms), over the 50ms max_latency"]),
    (0.010, [StepTiming(0, "1 (expect)", 0.2)], False, ["step 1 (expect) took 200ms, over "
                                                        "its 100ms max_latency"]),
    (0.010, [StepTiming(1, "2 (send)", 9.0)], False, []),  # a send has no budget
    (0.010, [StepTiming(2, "3 (events)", 1.5)], False, ["step 3 (events) took"]),
    (0.070, [StepTiming(0, "1", 0.2), StepTiming(2, "3", 2.0)], False,
     ["opening the WebSocket took 70ms", "; step 1 took 200ms", "; step 3 took"]),
    (None, [], True, []),  # a refusal is measured by its phases: 10 ms
], ids=["fast", "equal", "slow-open", "slow-step", "send", "slow-events", "all", "refused"])
def test_budgets(open_seconds: float | None, steps: list[StepTiming], refused: bool,
                 words: list[str]) -> None:
    over = budget_exceeded(BUDGETED, PHASES, steps, open_seconds, refused=refused)
    if not words:
        assert over is None
        return
    assert over is not None
    for word in words:
        assert word in over, (word, over)


def test_a_slow_refusal_is_slow_and_a_quick_one_success() -> None:
    slow_phases = [*PHASES[:3], ("handshake", 0.104), ("steps", 5.0)]  # steps never count
    over = budget_exceeded(BUDGETED, slow_phases, [], None, refused=True)
    assert over is not None and over.startswith("the refusal took 110ms (resolve 1ms, "), over
    refused = Verdict(Outcome.HANDSHAKE_REJECTED, "the server refused the upgrade: HTTP 403",
                      status_code=403)
    assert refused_as_expected(refused, over).outcome is Outcome.SLOW
    quick = refused_as_expected(refused, None)
    assert quick.outcome is Outcome.SUCCESS
    assert quick.detail == "refused as expected: the server refused the upgrade: HTTP 403"
    assert quick.status_code == 403


def test_no_budget_means_never_slow() -> None:
    plain = spec_of("      steps: [{expect: {regex: x}}]\n")
    assert budget_exceeded(plain, PHASES, [StepTiming(0, "1", 60.0)], 30.0) is None


def test_redacted_marker_is_what_the_redactor_writes() -> None:
    # The details above are redacted later, by the run; this pins the marker they expect.
    redactor = Redactor()
    redactor.add(TOKEN)
    assert redactor.redact(f"x {TOKEN} y") == f"x {REDACTED} y"
