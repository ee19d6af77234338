"""One WebSocket run: token, resolve, connect, TLS and upgrade, then the conversation
(:mod:`.steps`), each phase timed; a refused upgrade gets its diagnostic GET.

The run resolves the name itself and has the event loop connect to each address in turn,
so the resolve / connect / tls / handshake phases are measured separately rather than
guessed. Every wait is bounded by the probe's deadline. The run never raises: every
failure becomes one outcome with evidence, redacted in
:meth:`~monitor.probes.websocket.state.Run.result`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from monitor.auth import AuthError
from monitor.config import Probe
from monitor.eventloop import numeric_addrinfo
from monitor.keep import Keeper
from monitor.limits import EXCERPT_BYTES, REDACT_MARGIN
from monitor.outcomes import Outcome
from monitor.probes.answer import Answer
from monitor.probes.context import ProbeContext
from monitor.probes.deadline import deadline_at
from monitor.probes.errors import classify_exception
from monitor.probes.net.watch import watching
from monitor.probes.net.wsconn import Trace, TracedConnection
from monitor.probes.record import DiagnosticGet
from monitor.probes.tls import TlsConfigError, client_context
from monitor.probes.transcript import Transcript
from monitor.probes.websocket.adapter import Request, build_request, http_url, open_connection
from monitor.probes.websocket.state import Failure, Handshake, Run
from monitor.probes.websocket.steps import after_accept_negative, close, run_step
from monitor.probes.websocket.verdicts import (
    Verdict,
    budget_exceeded,
    classify_handshake_failure,
    diagnosis_words,
    negative_answer,
    reflection_verdict,
    refused_as_expected,
    subprotocol_verdict,
)
from monitor.result import Result

# The diagnostic GET gets at most this long (and never more than what is left).
DIAGNOSE_TIMEOUT = 3.0
# The diagnostic GET reads this much of the body: enough for the redacted excerpt.
DIAGNOSE_BODY = EXCERPT_BYTES + REDACT_MARGIN


async def run_websocket(probe: Probe, ctx: ProbeContext) -> Result:
    """Run one WebSocket probe. Never raises (except cancellation); never outlives
    ``probe.timeout``."""
    spec = probe.spec.websocket
    assert spec is not None, "run_websocket needs a websocket probe"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    run = Run(probe=probe, ctx=ctx, spec=spec, loop=loop, started_at=time.time(), t0=t0,
              deadline=t0 + probe.timeout, transcript=Transcript(Keeper(ctx.redactor), t0))
    try:
        return await _run(run)
    except Failure as failed:
        return run.result(failed.verdict, failed.found)
    except Exception as exc:  # a bug here must still end as a result, not kill the scheduler
        outcome, detail = classify_exception(exc, "handshake")
        return run.result(Verdict(outcome, f"probe failed unexpectedly: {detail}"))


async def _run(run: Run) -> Result:
    spec, ctx = run.spec, run.ctx
    # Nearly always the token is cached: taken without a wait (or its deadline's timer).
    credential = ctx.tokens.cached_credential(run.probe)
    try:
        if credential is None:
            # In this task, not wait_for's own (a task, its scheduling and a timer were
            # ~26,000 instructions a run).
            with deadline_at(run.deadline):
                credential = await ctx.tokens.credential(run.probe, ctx.session, ctx.trace)
    except AuthError as exc:
        return run.result(Verdict(exc.outcome, str(exc), hint=exc.hint))
    except TimeoutError:
        # Fetching the token took the whole run: the target was never asked.
        return run.result(Verdict(Outcome.CREDENTIALS_UNAVAILABLE,
                                  "no token before the probe timeout",
                                  hint="The auth provider's token endpoint did not answer "
                                       "within the probe's timeout. The probe did not reach "
                                       "its target, so this says nothing about the target "
                                       "itself."))
    run.token = credential.token
    request = build_request(spec, credential.token, credential.placements,
                            credential.headers, ctx.trace_headers())
    try:
        ssl_context = client_context(spec.tls) if spec.url.startswith("wss:") else None
    except TlsConfigError as exc:
        return run.result(Verdict(Outcome.CONFIG_ERROR, str(exc)))

    ws = await _open(run, request, ssl_context)
    try:
        if spec.expect_rejected:
            return await after_accept_negative(run, ws)
        steps_start = run.now()
        try:
            for index, step in enumerate(spec.steps):
                await run_step(run, ws, index, step)
        finally:
            run.phases.append(("steps", run.now() - steps_start))
        budget = budget_exceeded(spec, run.phases, run.steps, run.handshake.open_seconds)
        await close(run, ws)
        if budget is not None:
            return run.result(Verdict(Outcome.SLOW, budget))
        # With what the handshake established already: Run.result copies it in otherwise.
        hs = run.handshake
        return run.result(Verdict(Outcome.SUCCESS, _success_detail(run), hs.status_code,
                                  subprotocol=hs.subprotocol))
    except Failure:
        await close(run, ws)
        raise
    finally:
        if ws.transport is not None and not ws.transport.is_closing():
            ws.transport.abort()


def _success_detail(run: Run) -> str:
    n = len(run.spec.steps)
    selected = run.handshake.subprotocol
    protocol = f" (subprotocol {selected})" if selected else ""
    return f"upgraded{protocol}" + (f"; {n} step{'s' * (n != 1)} passed" if n else "")


async def _open(run: Run, request: Request, ssl_context: ssl.SSLContext | None
                ) -> TracedConnection:
    """Resolve, connect, TLS and upgrade; raise :class:`Failure` with the verdict."""
    spec, loop = run.spec, run.loop
    parts = urlsplit(spec.url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as exc:  # the config only checks the scheme and host
        raise Failure(Verdict(Outcome.CONFIG_ERROR, f"invalid URL: {exc}")) from None

    phase_start = run.now()
    try:
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            # RFC 6761 6.4: never resolves; glibc would still ask the DNS server and wait.
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (.invalid)")
        # An address literal is answered from its text, as the loop's resolver answers
        # it (monitor.eventloop), without a wait: no thread, no deadline's timer.
        infos = numeric_addrinfo(host, port, 0, socket.SOCK_STREAM, 0, 0)
        if infos is None:
            with deadline_at(run.deadline):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except Exception as exc:
        run.phases.append(("resolve", run.now() - phase_start))
        outcome, detail = classify_exception(exc, "resolve")
        raise Failure(Verdict(outcome, f"{detail} ({host})")) from None
    run.phases.append(("resolve", run.now() - phase_start))

    server_hostname = spec.tls.server_name or host
    connect_start = run.now()
    for index, (family, _, _, _, address) in enumerate(infos):
        trace = Trace(on_frame=partial(_received, run))
        try:
            # Watched for the connect only: the diagnostic GET below is not this trace's.
            with watching(trace), deadline_at(run.deadline):
                ws = await open_connection(request, family, address, trace, ssl_context,
                                           server_hostname, spec.max_message_bytes)
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
                raise Failure(Verdict(outcome, f"{detail} ({host}:{port})")) from None
            _record_upgrade_phases(run, trace, connect_start)
            phase = "tls" if ssl_context is not None and trace.made_at is None else "handshake"
            response = trace.connection.response if trace.connection is not None else None
            verdict = classify_handshake_failure(exc, phase=phase, response=response,
                                                 offered=request.subprotocols,
                                                 redactor=run.ctx.redactor,
                                                 head=bytes(trace.head))
            run.handshake = Handshake(status_code=verdict.status_code,
                                      cert_expiry=trace.cert_expiry)
            verdict = await _after_refusal(run, verdict, request, ssl_context)
            reflected = reflection_verdict(verdict.headers, run.token)
            if reflected is not None:  # whatever the refusal meant, the credential is out
                verdict = replace(verdict, outcome=reflected.outcome, detail=reflected.detail,
                                  reflected_in=reflected.reflected_in)
            raise Failure(verdict) from None
    else:
        raise Failure(Verdict(Outcome.CONNECT_REFUSED,
                              f"the name resolved to no address ({host}:{port})"))
    _record_upgrade_phases(run, trace, connect_start)
    run.handshake = Handshake(status_code=101, upgraded=True, subprotocol=ws.subprotocol,
                              open_seconds=run.now() - run.t0, cert_expiry=trace.cert_expiry)
    answer_headers = tuple(ws.response.headers.raw_items()) if ws.response is not None else ()
    reflected = reflection_verdict(answer_headers, run.token)
    if reflected is not None:
        # Before anything else: the credential is out, whatever the rest of the run shows.
        ws.transport.abort()
        raise Failure(replace(reflected, headers=answer_headers, subprotocol=ws.subprotocol))
    mismatch = subprotocol_verdict(spec.expect_subprotocol, ws.subprotocol,
                                   request.subprotocols, run.ctx.redactor, answer_headers)
    if mismatch is not None:
        ws.transport.abort()
        run.handshake = Handshake(status_code=101, upgraded=False, subprotocol=ws.subprotocol,
                                  open_seconds=run.handshake.open_seconds,
                                  cert_expiry=trace.cert_expiry)
        raise Failure(mismatch)
    run.ctx.answered(Answer(headers=answer_headers))  # a flow step's header values
    return ws


def _received(run: Run, kind: str, payload: bytes | str) -> None:
    if run.transcript is not None:
        run.transcript.add("received", kind, payload, run.now())


def _record_upgrade_phases(run: Run, trace: Trace, connect_start: float) -> None:
    """connect: until TCP is up (failed addresses included); tls: until TLS is done (wss://);
    handshake: the upgrade request and its answer."""
    end = run.now()
    connected = trace.connected_at if trace.connected_at is not None else end
    run.phases.append(("connect", connected - connect_start))
    start = connected
    if trace.tls_started is not None:
        tls_end = trace.made_at if trace.made_at is not None else end
        run.phases.append(("tls", tls_end - start))
        start = tls_end
    if trace.made_at is not None:
        run.phases.append(("handshake", end - start))


async def _after_refusal(run: Run, verdict: Verdict, request: Request,
                         ssl_context: ssl.SSLContext | None) -> Verdict:
    """The verdict for a handshake that did not open, after negative-probe logic."""
    code = verdict.status_code
    if run.spec.expect_rejected:
        answer = negative_answer(verdict, run.spec.refused_with)
        if answer.outcome is Outcome.SUCCESS:
            # The expected answer: a diagnostic GET every run would only add load.
            return refused_as_expected(verdict, budget_exceeded(
                run.spec, run.phases, run.steps, run.handshake.open_seconds, refused=True))
        verdict = answer
    # A server that hung up without answering the upgrade: the GET still shows what the
    # path serves.
    unanswered = code is None and verdict.outcome is Outcome.CONNECTION_RESET
    if (unanswered or (code is not None and code != 101)) and run.spec.diagnose:
        verdict = replace(verdict, diagnosis=await _diagnose(
            run, request, ssl_context, code, verdict.content_type))
    return verdict


async def _diagnose(run: Run, request: Request, ssl_context: ssl.SSLContext | None,
                    upgrade_status: int | None, upgrade_type: str | None) -> DiagnosticGet:
    """One plain GET of the same URL, with the same headers, bounded by the deadline."""
    timeout = min(DIAGNOSE_TIMEOUT, run.remaining())
    if timeout <= 0:
        return DiagnosticGet(None, None, None, "no time was left for the diagnostic GET",
                             error="probe timeout reached")
    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs["ssl"] = ssl_context
        if run.spec.tls.server_name:
            kwargs["server_hostname"] = run.spec.tls.server_name
    try:
        async with asyncio.timeout(timeout), run.ctx.session.get(
            http_url(request.url),
            headers=list(request.headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
            **kwargs,
        ) as resp:
            body = await _read_capped(resp.content, DIAGNOSE_BODY + 1)
            ctype = resp.headers.get("Content-Type")
            return DiagnosticGet(
                status_code=resp.status,
                content_type=ctype,
                body=body,  # cut to an excerpt in Run.result, after redaction
                hint=diagnosis_words(upgrade_status, upgrade_type, resp.status, ctype),
            )
    except Exception as exc:
        _, detail = classify_exception(exc, "diagnose")
        return DiagnosticGet(None, None, None,
                             diagnosis_words(upgrade_status, upgrade_type, None, None),
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


__all__ = ["DIAGNOSE_BODY", "DIAGNOSE_TIMEOUT", "run_websocket"]
