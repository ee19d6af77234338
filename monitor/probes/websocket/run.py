"""The WebSocket probe: open a WebSocket the way the product's clients do, run the
configured conversation, and say precisely where and how it failed.

The probe resolves and connects the TCP socket itself and hands it to ``websockets``, so
the resolve / connect / tls / handshake phases are measured separately rather than
guessed. Every wait is bounded by the probe's overall deadline. The probe never raises:
every failure becomes one outcome with evidence, and all evidence passes through the
redactor before it leaves this module.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
    InvalidUpgrade,
    NegotiationError,
    SecurityError,
)
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol

from monitor import __version__
from monitor.auth import AuthError
from monitor.config import ExpectEventsStep, ExpectStep, Probe, SendStep, Step, WebSocketSpec
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext, target_of
from monitor.probes.errors import classify_exception
from monitor.probes.jsonmatch import lookup, match_subset
from monitor.probes.tls import TlsConfigError, cert_expiry, client_context, peer_certificate
from monitor.probes.watch import watching
from monitor.redact import REDACT_WINDOW, Redactor
from monitor.result import Diagnosis, Evidence, Result, StepTiming, ms

USER_AGENT = f"synthmon/{__version__}"

# After accept, how long a negative probe waits for the server to throw it out.
REJECTION_GRACE = 2.0
# The diagnostic GET gets at most this long (and never more than what is left).
DIAGNOSE_TIMEOUT = 3.0
# The diagnostic GET reads this much of the body: enough for the redacted excerpt.
DIAGNOSE_BODY = REDACT_WINDOW
# A clean close waits at most this long for the server's close frame.
CLOSE_TIMEOUT = 1.0
# After an auth error message, how long to wait for the close frame that usually follows,
# so the evidence carries the close code too.
LINGER_FOR_CLOSE = 0.3
# The start of the answer to the upgrade is kept raw, up to this many bytes: when websockets
# gives up on a non-101 answer because of its body (over 1 MiB, or an endless chunked body),
# the status line and headers still say what the server answered.
HEAD_CAPTURE = 16 * 1024
# More pings than this within one second is a flood, not a heartbeat: answering each costs
# this process CPU that every other probe would pay for in latency, so the probe hangs up
# and reports it. Data is fed to websockets in slices so that a flood is caught after one
# slice (about a hundred frames) rather than after a whole 256 KiB read.
PING_FLOOD = 100
FEED_SLICE = 16 * 1024

_AUTH_CODE = re.compile(r"auth", re.IGNORECASE)

_OWN_FAILURE_CODES = {
    CloseCode.PROTOCOL_ERROR: "the server sent an invalid frame",
    CloseCode.INVALID_DATA: "the server sent a text message that is not valid UTF-8",
    CloseCode.MESSAGE_TOO_BIG: "the server sent a message larger than max_message_bytes",
}


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome and the evidence behind it, before redaction (``_Run.result`` redacts
    every string and header on the way into the :class:`Result`)."""

    outcome: Outcome
    detail: str
    status_code: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: bytes | None = None
    subprotocol: str | None = None
    diagnosis: Diagnosis | None = None


class _Failed(Exception):
    """Ends a run early with ``verdict``; only used inside this module."""

    def __init__(self, verdict: Verdict, **evidence: Any) -> None:
        super().__init__(verdict.detail)
        self.verdict = verdict
        self.evidence = evidence


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _response_evidence(response: Response) -> dict[str, Any]:
    return {
        "status_code": response.status_code,
        "headers": tuple(response.headers.raw_items()),
        "content_type": response.headers.get("Content-Type"),
        "body": bytes(response.body) if response.body else None,
    }


def _offered_text(offered: Sequence[str], redactor: Redactor) -> str:
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
            return _status_verdict(e.response)
    if response is None and head:
        # websockets could not finish reading a non-101 answer (a body over its 1 MiB
        # limit, an endless chunked body): its status line and headers still decide.
        parse_error = next((e for e in chain if isinstance(e, InvalidMessage)), None)
        partial = _response_from_head(head) if parse_error is not None else None
        if parse_error is not None and partial is not None and partial.status_code != 101:
            why = parse_error.__cause__ or parse_error
            return _status_verdict(partial, f"; its body was not read to the end ({why})")
    ev = _response_evidence(response) if response is not None else {}
    for e in chain:
        subprotocol_error = (
            isinstance(e, NegotiationError) and "subprotocol" in str(e)
        ) or (isinstance(e, InvalidHeader) and e.name.lower() == "sec-websocket-protocol")
        if subprotocol_error:
            answered = _answered_subprotocol(response)
            return Verdict(Outcome.SUBPROTOCOL_MISMATCH,
                           f"the server selected subprotocol {answered or '(unknown)'!s}, "
                           f"which was not offered; offered: {_offered_text(offered, redactor)}",
                           subprotocol=answered, **ev)
    for e in chain:
        if isinstance(e, InvalidMessage):
            if any(isinstance(c, EOFError) for c in _chain(e)[1:]):
                return Verdict(Outcome.CONNECTION_RESET,
                               "the server closed the connection before answering the upgrade",
                               **ev)
            cause = e.__cause__
            words = f": {cause}" if cause is not None else ""
            return Verdict(Outcome.PROTOCOL_ERROR,
                           f"the answer to the upgrade is not valid HTTP{words}", **ev)
        if isinstance(e, SecurityError):
            return Verdict(Outcome.PROTOCOL_ERROR,
                           f"the answer to the upgrade exceeds a size limit: {e}", **ev)
        if isinstance(e, InvalidUpgrade):
            return Verdict(Outcome.PROTOCOL_ERROR,
                           f"101 answer without a valid upgrade: {e}", **ev)
        if isinstance(e, InvalidHeader) and e.name.lower() == "sec-websocket-accept":
            return Verdict(Outcome.PROTOCOL_ERROR,
                           f"101 answer with a wrong Sec-WebSocket-Accept ({e}): the answer "
                           "does not come from a WebSocket server that read this request "
                           "(a cache or a broken proxy?)", **ev)
        if isinstance(e, InvalidHandshake):
            return Verdict(Outcome.PROTOCOL_ERROR, f"invalid upgrade answer: {e}", **ev)
    outcome, detail = classify_exception(exc, phase)
    return Verdict(outcome, detail, **ev)


def _status_verdict(response: Response, note: str = "") -> Verdict:
    """The verdict for a non-101 answer to the upgrade."""
    ev = _response_evidence(response)
    code = response.status_code
    reason = response.reason_phrase
    if code >= 400:
        return Verdict(Outcome.HANDSHAKE_REJECTED,
                       f"the server refused the upgrade: HTTP {code} {reason}{note}", **ev)
    if code >= 200:
        kind = "redirect" if 300 <= code < 400 else "plain answer"
        return Verdict(Outcome.NOT_UPGRADED,
                       f"the server answered the upgrade with HTTP {code} {reason} "
                       f"({kind}) instead of 101 Switching Protocols{note}", **ev)
    return Verdict(Outcome.PROTOCOL_ERROR,
                   f"the server answered the upgrade with HTTP {code}, not 101{note}", **ev)


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([^\r\n]*))?\r\n")


def _response_from_head(head: bytes) -> Response | None:
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
        headers[name.decode("latin-1").strip()] = value.decode("latin-1").strip()
    return Response(int(match.group(1)), (match.group(2) or b"").decode("latin-1"), headers,
                    bytes(head[end + 4:]))


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
                     "route from refused credentials; compare with the alternate WebSocket path.")
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


# --------------------------------------------------------------------------- connection


@dataclass
class _Trace:
    """What the connection saw while websockets drove it, filled from its callbacks."""

    tls_started: float | None = None  # the TCP connection is up and TLS begins (wss://)
    made_at: float | None = None  # the connection is ready for the upgrade request
    connection: ClientConnection | None = None
    cert_expiry: float | None = None
    head: bytearray = field(default_factory=bytearray)  # the start of the answer, raw
    pings: int = 0  # pings in the current one-second window
    ping_window: float = 0.0  # start of that window
    flood: str | None = None  # set when the server floods pings; the connection is aborted

    def tls_handshake_started(self, _obj: ssl.SSLObject) -> None:
        self.tls_started = asyncio.get_running_loop().time()

    def answer_unparsable(self, _exc: BaseException) -> None:
        """Never called: websockets, not aiohttp, reads the upgrade's answer (``head``)."""

    @property
    def connected_at(self) -> float | None:
        """When the TCP connect completed, if it did."""
        return self.tls_started if self.tls_started is not None else self.made_at


class _TracedConnection(ClientConnection):
    """websockets builds the connection itself; its ``create_connection`` hook takes this
    subclass, which notes when the connection came up and keeps the start of a failed
    answer. One class for every run (the run's :class:`_Trace` is an argument): a class
    made per run took 13 µs to create and started with cold method caches."""

    def __init__(self, *args: Any, trace: _Trace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trace = trace
        trace.connection = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.trace.made_at = asyncio.get_running_loop().time()
        self.trace.cert_expiry = _cert_expiry(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        trace = self.trace
        if self.response is None and len(trace.head) < HEAD_CAPTURE:
            trace.head += data[:HEAD_CAPTURE - len(trace.head)]
        for start in range(0, len(data), FEED_SLICE):
            super().data_received(data if len(data) <= FEED_SLICE
                                  else data[start:start + FEED_SLICE])
            if trace.flood is not None or self.protocol.parser_exc is not None:
                # A flood, or a frame this side refused (too big, invalid): the verdict is
                # decided and the close frame sent; a hostile server may never close its
                # end, and websockets would wait for that until the probe timeout.
                self.transport.abort()
                return
        if self.response is None and self.protocol.handshake_exc is not None:
            # websockets gave up on the answer (not HTTP, or a body it will not read) and
            # then waits for the server to close the connection, which a hostile server
            # never does: the verdict is known, end the wait now.
            self.transport.abort()

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            trace = self.trace
            now = self.loop.time()
            if now - trace.ping_window >= 1.0:
                trace.ping_window, trace.pings = now, 0
            trace.pings += 1
            if trace.pings > PING_FLOOD and trace.flood is None:
                trace.flood = (f"the server flooded the connection with pings (more than "
                               f"{PING_FLOOD} in a second), so the probe hung up")
        super().process_event(event)


class _Connect(connect):
    """websockets' ``connect`` without following redirects: a redirected upgrade is a
    finding for the probe to report (the route moved), not a detour to take quietly."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _cert_expiry(transport: asyncio.BaseTransport) -> float | None:
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    return cert_expiry(peer_certificate(ssl_object))


def _token_subprotocol(token: str) -> str:
    return "jwt." + base64.urlsafe_b64encode(token.encode()).decode("ascii").rstrip("=")


def _with_query_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _http_url(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    return urlunsplit(parts._replace(scheme="https" if parts.scheme == "wss" else "http"))


@dataclass(frozen=True, slots=True)
class _Request:
    url: str
    headers: tuple[tuple[str, str], ...]
    subprotocols: tuple[str, ...]


def _build_request(spec: WebSocketSpec, token: str | None) -> _Request:
    url = spec.url
    headers = list(spec.headers.items())
    subprotocols = list(spec.subprotocols)
    if token is not None:
        if "authorization_header" in spec.send_token_as:
            headers.append(("Authorization", f"Bearer {token}"))
        if "subprotocol" in spec.send_token_as:
            subprotocols.append(_token_subprotocol(token))
        if "query" in spec.send_token_as:
            url = _with_query_token(url, token)
    return _Request(url, tuple(headers), tuple(subprotocols))


# --------------------------------------------------------------------------- messages


def _is_auth_error(data: Any) -> bool:
    """``{"type": "error_message", "error_code": "AUTH_FAILED", ...}`` and its relatives."""
    if not isinstance(data, dict):
        return False
    candidates = [data]
    candidates += [v for k in ("payload", "data", "error") if isinstance(v := data.get(k), dict)]
    for item in candidates:
        code = item.get("error_code") or item.get("code")
        if isinstance(code, str) and _AUTH_CODE.search(code):
            return True
    return False


def _parse_json(message: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(message)
    except ValueError:
        return False, None


def _show_types(types: Iterable[str]) -> str:
    return ", ".join(types) or "nothing"


# --------------------------------------------------------------------------- the run


@dataclass
class _Run:
    probe: Probe
    ctx: ProbeContext
    spec: WebSocketSpec
    loop: asyncio.AbstractEventLoop
    started_at: float
    t0: float
    deadline: float
    phases: list[tuple[str, float]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    status_code: int | None = None
    close_code: int | None = None
    upgraded: bool = False
    cert_expiry: float | None = None
    subprotocol: str | None = None
    open_seconds: float | None = None
    trace: _Trace | None = None

    def now(self) -> float:
        return self.loop.time()

    def remaining(self) -> float:
        return max(0.0, self.deadline - self.now())

    def result(self, verdict: Verdict, **evidence: Any) -> Result:
        """The immutable result, with every evidence string redacted here, in one place."""
        r = self.ctx.redactor
        status = verdict.status_code if verdict.status_code is not None else self.status_code
        diagnosis = verdict.diagnosis
        if diagnosis is not None:
            diagnosis = replace(
                diagnosis,
                content_type=r.redact(diagnosis.content_type),
                body_excerpt=r.excerpt(diagnosis.body_excerpt),
                hint=r.redact(diagnosis.hint) or "",
                error=r.redact(diagnosis.error),
            )
        last_message = evidence.pop("last_message", None)
        events: tuple[str, ...] = tuple(evidence.pop("events_seen", ()))
        close_reason: str | None = evidence.pop("close_reason", None)
        ev = Evidence(
            detail=r.redact(verdict.detail) or "",
            status_code=status,
            headers=r.headers(verdict.headers),
            content_type=r.redact(verdict.content_type),
            body_excerpt=r.excerpt(verdict.body),
            close_code=self.close_code,
            close_reason=r.redact(close_reason),
            step=evidence.pop("step", None),
            step_name=r.redact(evidence.pop("step_name", None)),
            last_message=r.excerpt(last_message),
            subprotocol=r.redact(verdict.subprotocol or self.subprotocol),
            events_seen=tuple(r.redact(e) or "" for e in events),
            diagnosis=diagnosis,
        )
        return Result(
            probe=self.probe.name,
            type="websocket",
            target=target_of(self.spec.url),
            outcome=verdict.outcome,
            started_at=self.started_at,
            duration_seconds=self.now() - self.t0,
            status_code=status,
            close_code=self.close_code,
            upgraded=self.upgraded,
            phases=tuple(self.phases),
            steps=tuple(self.steps),
            cert_expiry=self.cert_expiry,
            evidence=ev,
        )


async def run_websocket(probe: Probe, ctx: ProbeContext) -> Result:
    """Run one WebSocket probe. Never raises (except cancellation); never outlives
    ``probe.timeout``."""
    spec = probe.spec.websocket
    assert spec is not None, "run_websocket needs a websocket probe"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    run = _Run(probe=probe, ctx=ctx, spec=spec, loop=loop, started_at=time.time(), t0=t0,
               deadline=t0 + probe.timeout)
    try:
        return await _run(run)
    except _Failed as failed:
        return run.result(failed.verdict, **failed.evidence)
    except Exception as exc:  # a bug here must still end as a result, not kill the scheduler
        outcome, detail = classify_exception(exc, "handshake")
        return run.result(Verdict(outcome, f"probe failed unexpectedly: {detail}"))


async def _run(run: _Run) -> Result:
    spec, ctx = run.spec, run.ctx
    try:
        token = await asyncio.wait_for(ctx.token_for(run.probe), run.remaining())
    except AuthError as exc:
        return run.result(Verdict(exc.outcome, str(exc)))
    except TimeoutError:
        return run.result(Verdict(Outcome.TIMEOUT, "no token before the probe timeout"))
    request = _build_request(spec, token)
    try:
        ssl_context = client_context(spec.tls) if spec.url.startswith("wss:") else None
    except TlsConfigError as exc:
        return run.result(Verdict(Outcome.CONFIG_ERROR, str(exc)))

    ws = await _open(run, request, ssl_context)
    try:
        if spec.expect_rejected:
            return await _after_accept_negative(run, ws)
        steps_start = run.now()
        try:
            for index, step in enumerate(spec.steps):
                await _run_step(run, ws, index, step)
        finally:
            run.phases.append(("steps", run.now() - steps_start))
        budget = _budget_exceeded(run)
        await _close(run, ws)
        if budget is not None:
            return run.result(Verdict(Outcome.SLOW, budget))
        return run.result(Verdict(Outcome.SUCCESS, _success_detail(run)))
    except _Failed:
        await _close(run, ws)
        raise
    finally:
        if ws.transport is not None and not ws.transport.is_closing():
            ws.transport.abort()


def _success_detail(run: _Run) -> str:
    n = len(run.spec.steps)
    protocol = f" (subprotocol {run.subprotocol})" if run.subprotocol else ""
    return f"upgraded{protocol}" + (f"; {n} step{'s' * (n != 1)} passed" if n else "")


async def _open(run: _Run, request: _Request, ssl_context: ssl.SSLContext | None
                ) -> ClientConnection:
    """Resolve, connect, TLS and upgrade; raise :class:`_Failed` with the verdict."""
    spec, loop = run.spec, run.loop
    parts = urlsplit(spec.url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as exc:  # the config only checks the scheme and host
        raise _Failed(Verdict(Outcome.CONFIG_ERROR, f"invalid URL: {exc}")) from None

    phase_start = run.now()
    try:
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            # RFC 6761 6.4: never resolves; glibc would still ask the DNS server and wait.
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (.invalid)")
        async with asyncio.timeout_at(run.deadline):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except Exception as exc:
        run.phases.append(("resolve", run.now() - phase_start))
        outcome, detail = classify_exception(exc, "resolve")
        raise _Failed(Verdict(outcome, f"{detail} ({host})")) from None
    run.phases.append(("resolve", run.now() - phase_start))

    tls_kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        tls_kwargs = {"ssl": ssl_context, "server_hostname": spec.tls.server_name or host}
    connect_start = run.now()
    for index, (family, _, _, _, address) in enumerate(infos):
        trace = run.trace = _Trace()
        try:
            # Watched for the connect only: the diagnostic GET below is not this trace's.
            with watching(trace):
                async with asyncio.timeout_at(run.deadline):
                    # The event loop connects (uvloop's native connect costs half of a
                    # socket connected by hand); the address is the one resolved above, so
                    # the resolve phase stays ours and no proxy from the environment applies.
                    ws = await _Connect(
                        request.url,
                        host=address[0],
                        port=address[1],
                        family=family,
                        proxy=None,
                        additional_headers=Headers(request.headers),
                        subprotocols=[Subprotocol(s) for s in request.subprotocols] or None,
                        user_agent_header=USER_AGENT,
                        open_timeout=None,
                        ping_interval=None,
                        ping_timeout=None,
                        close_timeout=CLOSE_TIMEOUT,
                        max_size=spec.max_message_bytes,
                        create_connection=cast(type[ClientConnection],
                                               partial(_TracedConnection, trace=trace)),
                        **tls_kwargs,
                    )
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if trace.connected_at is None:
                if (isinstance(exc, OSError) and not isinstance(exc, TimeoutError)
                        and index + 1 < len(infos)):
                    continue  # the next address, in resolver order
                run.phases.append(("connect", run.now() - connect_start))
                outcome, detail = classify_exception(exc, "connect")
                raise _Failed(Verdict(outcome, f"{detail} ({host}:{port})")) from None
            _record_upgrade_phases(run, trace, connect_start)
            phase = "tls" if ssl_context is not None and trace.made_at is None else "handshake"
            response = trace.connection.response if trace.connection is not None else None
            verdict = classify_handshake_failure(exc, phase=phase, response=response,
                                                 offered=request.subprotocols,
                                                 redactor=run.ctx.redactor,
                                                 head=bytes(trace.head))
            if verdict.status_code is not None:
                run.status_code = verdict.status_code
            raise _Failed(await _after_refusal(run, verdict, request, ssl_context)) from None
    else:
        raise _Failed(Verdict(Outcome.CONNECT_REFUSED,
                              f"the name resolved to no address ({host}:{port})"))
    _record_upgrade_phases(run, trace, connect_start)
    run.status_code = 101
    run.upgraded = True
    run.open_seconds = run.now() - run.t0
    run.subprotocol = ws.subprotocol
    expected = spec.expect_subprotocol
    if expected is not None and ws.subprotocol != expected:
        ws.transport.abort()
        run.upgraded = False
        answered = ws.subprotocol or "none"
        raise _Failed(Verdict(
            Outcome.SUBPROTOCOL_MISMATCH,
            f"expected subprotocol {expected}, the server selected {answered}; "
            f"offered: {_offered_text(request.subprotocols, run.ctx.redactor)}",
            headers=tuple(ws.response.headers.raw_items()) if ws.response is not None else (),
            subprotocol=ws.subprotocol,
        ))
    return ws


def _record_upgrade_phases(run: _Run, trace: _Trace, connect_start: float) -> None:
    """connect: until TCP is up (failed addresses included); tls: until TLS is done (wss://);
    handshake: the upgrade request and its answer."""
    end = run.now()
    run.cert_expiry = trace.cert_expiry
    connected = trace.connected_at if trace.connected_at is not None else end
    run.phases.append(("connect", connected - connect_start))
    start = connected
    if trace.tls_started is not None:
        tls_end = trace.made_at if trace.made_at is not None else end
        run.phases.append(("tls", tls_end - start))
        start = tls_end
    if trace.made_at is not None:
        run.phases.append(("handshake", end - start))


async def _after_refusal(run: _Run, verdict: Verdict, request: _Request,
                         ssl_context: ssl.SSLContext | None) -> Verdict:
    """The verdict for a handshake that did not open, after negative-probe logic."""
    code = verdict.status_code
    if run.spec.expect_rejected and code is not None and 400 <= code < 500:
        # The expected answer: a diagnostic GET every run would only add load.
        budget = _budget_exceeded(run, refused=True)
        if budget is not None:
            return replace(verdict, outcome=Outcome.SLOW, detail=budget)
        return replace(verdict, outcome=Outcome.SUCCESS,
                       detail=f"refused as expected: {verdict.detail}")
    if code is not None and code != 101 and run.spec.diagnose:
        verdict = replace(verdict, diagnosis=await _diagnose(run, request, ssl_context, code))
    return verdict


async def _diagnose(run: _Run, request: _Request, ssl_context: ssl.SSLContext | None,
                    upgrade_status: int) -> Diagnosis:
    """One plain GET of the same URL, with the same headers, bounded by the deadline."""
    timeout = min(DIAGNOSE_TIMEOUT, run.remaining())
    if timeout <= 0:
        return Diagnosis(None, None, None, "no time was left for the diagnostic GET",
                         error="probe timeout reached")
    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs["ssl"] = ssl_context
        if run.spec.tls.server_name:
            kwargs["server_hostname"] = run.spec.tls.server_name
    try:
        async with asyncio.timeout(timeout), run.ctx.session.get(
            _http_url(request.url),
            headers=list(request.headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
            **kwargs,
        ) as resp:
            body = await _read_capped(resp.content, DIAGNOSE_BODY + 1)
            ctype = resp.headers.get("Content-Type")
            return Diagnosis(
                status_code=resp.status,
                content_type=ctype,
                # Cut to an excerpt in _Run.result, after redaction.
                body_excerpt=body.decode("utf-8", "replace"),
                hint=diagnosis_hint(upgrade_status, resp.status, ctype),
            )
    except Exception as exc:
        _, detail = classify_exception(exc, "diagnose")
        return Diagnosis(None, None, None, diagnosis_hint(upgrade_status, None, None),
                         error=detail)


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- after accept


async def _recv(run: _Run, ws: ClientConnection, until: float) -> str | bytes:
    """The next message; ConnectionClosed and TimeoutError propagate."""
    async with asyncio.timeout_at(min(until, run.deadline)):
        return await ws.recv()


def _closed_verdict(run: _Run, ws: ClientConnection, exc: ConnectionClosed, where: str
                    ) -> tuple[Verdict, str | None]:
    """Classify a closed connection; also records close_code. Returns (verdict, reason)."""
    if run.trace is not None and run.trace.flood is not None:
        return Verdict(Outcome.PROTOCOL_ERROR, f"{run.trace.flood} {where}"), None
    sent, rcvd = exc.sent, exc.rcvd
    we_failed = sent is not None and sent.code in _OWN_FAILURE_CODES and (
        rcvd is None or exc.rcvd_then_sent is False)
    if we_failed and sent is not None:
        run.close_code = sent.code
        what = _OWN_FAILURE_CODES[CloseCode(sent.code)]
        if sent.code == CloseCode.MESSAGE_TOO_BIG:
            what += f" ({run.spec.max_message_bytes} bytes)"
        return Verdict(Outcome.PROTOCOL_ERROR, f"{what} {where}; {sent.reason}".rstrip("; ")
                       ), sent.reason
    if rcvd is None:
        run.close_code = CloseCode.ABNORMAL_CLOSURE
        return Verdict(Outcome.CLOSED_BY_SERVER,
                       f"the connection dropped without a close frame {where}"), None
    run.close_code = rcvd.code
    reason = rcvd.reason or None
    said = f"{rcvd.code}" + (f" {rcvd.reason!r}" if rcvd.reason else "")
    if rcvd.code == CloseCode.POLICY_VIOLATION:
        return Verdict(Outcome.AUTH_REJECTED,
                       f"the server closed the connection with {said} (policy violation: "
                       f"usually refused credentials) {where}"), reason
    return Verdict(Outcome.CLOSED_BY_SERVER,
                   f"the server closed the connection with {said} {where}"), reason


async def _linger_for_close(run: _Run, ws: ClientConnection) -> str | None:
    """After an auth error message, catch the close frame that usually follows."""
    try:
        await _recv(run, ws, run.now() + LINGER_FOR_CLOSE)
    except ConnectionClosed as exc:
        if exc.rcvd is not None:
            run.close_code = exc.rcvd.code
            return exc.rcvd.reason or None
    except TimeoutError:
        pass
    return None


async def _after_accept_negative(run: _Run, ws: ClientConnection) -> Result:
    """A negative probe got a 101: success only if the server throws it out right away."""
    grace = min(REJECTION_GRACE, run.remaining())
    start = run.now()
    try:
        message = await _recv(run, ws, start + grace)
    except ConnectionClosed as exc:
        verdict, reason = _closed_verdict(run, ws, exc, "right after accepting")
        if verdict.outcome is Outcome.AUTH_REJECTED:
            return run.result(replace(verdict, outcome=Outcome.SUCCESS,
                                      detail=f"refused as expected: {verdict.detail}"),
                              close_reason=reason)
        return run.result(verdict, close_reason=reason)
    except TimeoutError:
        await _close(run, ws)
        return run.result(Verdict(
            Outcome.AUTH_NOT_ENFORCED,
            f"the server accepted the connection (101) and did not reject it within "
            f"{ms(run.now() - start)}"))
    if isinstance(message, str):
        ok, data = _parse_json(message)
        if ok and _is_auth_error(data):
            reason = await _linger_for_close(run, ws)
            await _close(run, ws)
            budget = _budget_exceeded(run, refused=True)
            verdict = Verdict(Outcome.SLOW, budget) if budget else Verdict(
                Outcome.SUCCESS, "refused as expected: the server accepted the upgrade, then "
                "sent an auth error message")
            return run.result(verdict, last_message=message, close_reason=reason)
    await _close(run, ws)
    return run.result(Verdict(
        Outcome.AUTH_NOT_ENFORCED,
        "the server accepted the connection (101) and sent a message instead of rejecting it"),
        last_message=message)


async def _run_step(run: _Run, ws: ClientConnection, index: int, step: Step) -> None:
    label = step.label(index)
    start = run.now()
    try:
        if step.expect is not None:
            await _expect(run, ws, index, label, step.expect)
        elif step.send is not None:
            await _send(run, ws, step.send)
        elif step.expect_events is not None:
            await _expect_events(run, ws, index, label, step.expect_events)
    except ConnectionClosed as exc:
        verdict, reason = _closed_verdict(run, ws, exc, f"during step {label}")
        raise _Failed(verdict, step=index, step_name=label, close_reason=reason) from None
    except TimeoutError:
        # Only sends get here: receives turn their timeouts into message_timeout.
        raise _Failed(Verdict(Outcome.TIMEOUT, f"step {label} did not finish before the "
                              "probe timeout"), step=index, step_name=label) from None
    finally:
        run.steps.append(StepTiming(index, label, run.now() - start))


def _step_deadline(run: _Run, timeout: float | None) -> float:
    return run.deadline if timeout is None else min(run.deadline, run.now() + timeout)


def _timeout_words(run: _Run, timeout: float | None, until: float) -> str:
    if timeout is not None and until < run.deadline:
        return f"within the step timeout ({ms(timeout)})"
    return f"before the probe timeout ({ms(run.probe.timeout)})"


async def _expect(run: _Run, ws: ClientConnection, index: int, label: str,
                  expect: ExpectStep) -> None:
    until = _step_deadline(run, expect.timeout)
    where = {"step": index, "step_name": label}
    try:
        message = await _recv(run, ws, until)
    except TimeoutError:
        raise _Failed(Verdict(Outcome.MESSAGE_TIMEOUT,
                              f"no message {_timeout_words(run, expect.timeout, until)} "
                              f"at step {label}"), **where) from None
    if isinstance(message, bytes):
        raise _Failed(Verdict(Outcome.UNEXPECTED_MESSAGE,
                              f"step {label}: expected a text message, got a binary frame "
                              f"({len(message)} bytes)"), last_message=message, **where)
    reason = _mismatch(message, expect)
    if reason is None:
        return
    ok, data = _parse_json(message)
    if ok and _is_auth_error(data):
        close_reason = await _linger_for_close(run, ws)
        raise _Failed(Verdict(Outcome.AUTH_REJECTED,
                              f"step {label}: the server sent an auth error message"),
                      last_message=message, close_reason=close_reason, **where)
    raise _Failed(Verdict(Outcome.UNEXPECTED_MESSAGE, f"step {label}: {reason}"),
                  last_message=message, **where)


def _mismatch(message: str, expect: ExpectStep) -> str | None:
    if expect.regex is not None and re.search(expect.regex, message) is None:
        return f"the message does not match /{expect.regex}/"
    if expect.json_ is not None:
        ok, data = _parse_json(message)
        if not ok:
            return "expected a JSON message, got text that is not JSON"
        return match_subset(data, expect.json_)
    return None


async def _send(run: _Run, ws: ClientConnection, send: SendStep) -> None:
    payload = send.text if send.text is not None else json.dumps(send.json_)
    async with asyncio.timeout_at(run.deadline):
        await ws.send(payload)


async def _expect_events(run: _Run, ws: ClientConnection, index: int, label: str,
                         spec: ExpectEventsStep) -> None:
    until = _step_deadline(run, spec.timeout)
    seen: list[str] = []
    wanted = list(spec.types)
    missing: Counter[str] = Counter(spec.types)
    position = 0  # in_order: index in wanted of the next expected type

    def fail(outcome: Outcome, detail: str, message: str | bytes | None) -> _Failed:
        return _Failed(Verdict(outcome, f"step {label}: {detail}"), step=index,
                       step_name=label, last_message=message, events_seen=tuple(seen))

    while +missing:
        try:
            message = await _recv(run, ws, until)
        except TimeoutError:
            still = wanted[position:] if spec.in_order else list((+missing).elements())
            raise fail(Outcome.MESSAGE_TIMEOUT,
                       f"events still missing {_timeout_words(run, spec.timeout, until)}: "
                       f"{_show_types(still)} (seen: {_show_types(seen)})", None) from None
        except ConnectionClosed as exc:
            verdict, reason = _closed_verdict(run, ws, exc, f"during step {label}")
            raise _Failed(verdict, step=index, step_name=label, close_reason=reason,
                          events_seen=tuple(seen)) from None
        if isinstance(message, bytes):
            raise fail(Outcome.UNEXPECTED_MESSAGE,
                       f"expected JSON events, got a binary frame ({len(message)} bytes)",
                       message)
        ok, data = _parse_json(message)
        if not ok:
            raise fail(Outcome.UNEXPECTED_MESSAGE, "expected JSON events, got text that is "
                       "not JSON", message)
        value = lookup(data, spec.field)
        event = value if isinstance(value, str) else None
        seen.append(event if event is not None else f"(no {spec.field})")
        if event in spec.fail_on or (event not in spec.types and _is_auth_error(data)):
            if _is_auth_error(data):
                close_reason = await _linger_for_close(run, ws)
                raise _Failed(Verdict(Outcome.AUTH_REJECTED,
                                      f"step {label}: the server sent an auth error message "
                                      f"(seen: {_show_types(seen)})"),
                              step=index, step_name=label, last_message=message,
                              close_reason=close_reason, events_seen=tuple(seen))
            raise fail(Outcome.UNEXPECTED_MESSAGE,
                       f"got {event}, which is in fail_on (seen: {_show_types(seen)})", message)
        if event is None or missing[event] <= 0:
            continue
        if spec.in_order:
            if event == wanted[position]:
                position += 1
                missing[event] -= 1
            elif event in wanted[:position]:
                continue  # a repeat of an earlier event (e.g. several agent_thinking)
            else:
                raise fail(Outcome.UNEXPECTED_MESSAGE,
                           f"got {event} before {wanted[position]} (expected order: "
                           f"{_show_types(wanted)}; seen: {_show_types(seen)})", message)
        else:
            missing[event] -= 1


# --------------------------------------------------------------------------- budgets, close


def _budget_exceeded(run: _Run, refused: bool = False) -> str | None:
    """Every exceeded ``max_latency`` budget in words, or None."""
    over: list[str] = []
    budget = run.spec.max_latency
    opened = run.open_seconds
    if refused:
        opened = sum(d for name, d in run.phases if name != "steps")
    if budget is not None and opened is not None and opened > budget:
        split = ", ".join(f"{name} {ms(d)}" for name, d in run.phases if name != "steps")
        what = "the refusal" if refused else "opening the WebSocket"
        over.append(f"{what} took {ms(opened)} ({split}), over the {ms(budget)} "
                    "max_latency")
    for timing in run.steps:
        step = run.spec.steps[timing.index]
        action = step.expect or step.expect_events
        limit = action.max_latency if action is not None else None
        if limit is not None and timing.duration_seconds > limit:
            over.append(f"step {timing.name} took {ms(timing.duration_seconds)}, over its "
                        f"{ms(limit)} max_latency")
    return "; ".join(over) or None


async def _close(run: _Run, ws: ClientConnection) -> None:
    """Close with 1000; a server that never answers the close must not hold the probe."""
    wait = min(CLOSE_TIMEOUT, run.remaining())
    if wait <= 0:
        ws.transport.abort()
        return
    try:
        async with asyncio.timeout(wait):
            await ws.close(CloseCode.NORMAL_CLOSURE)
    except Exception:  # the verdict is already decided; closing is housekeeping
        ws.transport.abort()


__all__ = ["Verdict", "classify_handshake_failure", "diagnosis_hint", "run_websocket"]
