"""The HTTP probe: one request, its answer checked against ``http.expect``.

:func:`run_http` is pure: a probe spec in, an immutable :class:`Result` out. It never
raises (cancellation from outside excepted), never touches metrics or logs, and returns
within ``probe.timeout``: one deadline covers the token, the connection, the request and
the body. Whatever was seen before a failure (status, headers, phases so far) is kept.

``expect.max_latency`` budgets the request itself, from sending it to the end of the body:
fetching a token (cached, rarely slow, and not the target's fault) is left out.
``duration_seconds`` is the whole run.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict

from monitor.auth import AuthError
from monitor.config import HttpExpect, HttpSpec, Probe, status_matches
from monitor.durations import format_duration, ms
from monitor.outcomes import Outcome
from monitor.probes import redirects
from monitor.probes.context import ProbeContext
from monitor.probes.errors import classify_exception
from monitor.probes.jsonmatch import check_json_paths
from monitor.probes.net.cookies import run_cookies
from monitor.probes.net.phases import PhaseTimer
from monitor.probes.net.watch import watching
from monitor.probes.reflection import reflected_detail, reflected_in
from monitor.probes.refusal import http_reading
from monitor.probes.tls import TlsConfigError, cert_expiry, client_context
from monitor.redact import Redactor
from monitor.result import Evidence, Result
from monitor.targets import target_of

READ_CHUNK = 64 * 1024

# aiohttp's own timeouts stay off: the probe's deadline is the only clock, so that a
# timeout is always reported with the phase it hit.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None,
                                    sock_read=None)

_STAGE_WORDS = {
    "auth": "getting the auth token",
    "prepare": "preparing the request",
    "resolve": "resolving the host name",
    "connect": "connecting",
    "tls": "in the TLS handshake",
    "processing": "waiting for the response headers",
    "redirect": "following a redirect",
    "transfer": "reading the body",
}


@dataclass
class _Seen:
    """What one run has seen so far, kept for the result when the run fails midway."""

    timer: PhaseTimer = field(default_factory=PhaseTimer)
    stage: str = "auth"  # before the request: "auth"; then the timer's stage
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: bytes | bytearray | None = None
    request_started: float | None = None
    token: str | None = None  # the credential sent, to spot it reflected in the answer
    hops: tuple[redirects.Hop, ...] = ()  # the redirect answers before the final one
    version: str | None = None  # of the final answer: "HTTP/1.1"
    final_url: str | None = None  # where the final answer came from (redirects followed)

    def where(self) -> str:
        return self.timer.stage if self.stage == "request" else self.stage


async def run_http(probe: Probe, ctx: ProbeContext) -> Result:
    spec = probe.spec.http
    assert spec is not None, "run_probe dispatches only http probes here"
    started_at = time.time()
    t0 = time.perf_counter()
    seen = _Seen()
    outcome: Outcome
    detail: str
    hint: str | None = None
    reflected: str | None = None
    try:
        async with asyncio.timeout(probe.timeout):
            body, truncated, resp_headers = await _exchange(probe, spec, ctx, seen)
        latency = time.perf_counter() - (seen.request_started or t0)
        if spec.expect_rejected:
            reading = http_reading(seen.status or 0, spec.refused_with, probe.variant,
                                   spec.bypass_headers or ())
            outcome, detail, hint = reading.outcome, reading.detail, reading.hint
        else:
            outcome, detail = _evaluate(spec.expect, seen.status or 0, body, truncated,
                                        resp_headers, latency, ctx.redactor,
                                        _Channel(seen.version, seen.final_url or spec.url,
                                                 redirected=bool(seen.hops)))
        reflected = reflected_in(resp_headers.items(), seen.token)
        if reflected is not None:
            outcome, detail = Outcome.TOKEN_REFLECTED, reflected_detail(reflected)
    except aiohttp.TooManyRedirects as exc:
        # Every answer was HTTP, and the chain never came to an end: its own verdict, with
        # the last answer's status and headers and every Location on the way.
        _seen_chain(exc.history, seen)
        for last in exc.history[-1:]:
            seen.status = last.status
            seen.headers = ctx.redactor.headers(last.headers.items())
            seen.content_type = last.headers.get("Content-Type")
        outcome = Outcome.TOO_MANY_REDIRECTS
        detail, hint = redirects.too_many(seen.hops, spec.max_redirects)
    except AuthError as exc:
        outcome, detail = exc.outcome, f"auth: {exc}"
    except TlsConfigError as exc:
        outcome, detail = Outcome.CONFIG_ERROR, str(exc)
    except TimeoutError as exc:
        where = seen.where()
        outcome, _ = classify_exception(exc, where)
        detail = (f"no answer within the probe timeout ({format_duration(probe.timeout)}) "
                  f"while {_STAGE_WORDS.get(where, where)}")
    except (ValueError, TypeError) as exc:
        if seen.where() in ("auth", "prepare"):
            # aiohttp refuses what it cannot send (a bad header value, an unencodable
            # json_body) before any connection: the config is at fault, not the target.
            outcome, detail = Outcome.CONFIG_ERROR, f"cannot build the request: {_why(exc)}"
        else:
            outcome, detail = classify_exception(exc, seen.where())
    except aiohttp.ClientConnectionResetError as exc:
        # "Cannot write to closing transport" when the server talked first and its bytes
        # were refused: what it said is the finding, not that the write failed.
        outcome, detail = classify_exception(seen.timer.unparsable or exc, seen.where())
    except Exception as exc:
        outcome, detail = classify_exception(exc, seen.where())
    return Result(
        probe=probe.name,
        type="http",
        target=target_of(probe.spec.url),
        outcome=outcome,
        started_at=started_at,
        duration_seconds=time.perf_counter() - t0,
        status_code=seen.status,
        phases=seen.timer.phases() if seen.stage == "request" else (),
        cert_expiry=cert_expiry(seen.timer.peer_cert),
        # The ids the requests carried, set here rather than by a copy in run_probe.
        trace_id=ctx.trace_id, span_id=ctx.span_id,
        evidence=Evidence(
            detail=ctx.redactor.redact(detail) or "",
            status_code=seen.status,
            headers=seen.headers,
            content_type=seen.content_type,
            body_excerpt=ctx.redactor.excerpt(seen.body),
            hint=ctx.redactor.redact(hint),
            retry_after=_retry_after(seen.status, seen.headers),
            reflected_in=reflected,
            redirects=redirects.evidence(seen.hops, ctx.redactor),
        ),
    )


async def _exchange(probe: Probe, spec: HttpSpec, ctx: ProbeContext, seen: _Seen
                    ) -> tuple[bytes, bool, CIMultiDict[str]]:
    """Send the request and read the answer; returns (body, truncated, headers)."""
    credential = await ctx.tokens.credential(probe, ctx.session, ctx.trace)
    headers: CIMultiDict[str] = CIMultiDict(spec.headers)
    headers.update(credential.headers)
    if ctx.trace is not None:
        # The run's trace context replaces any traceparent written in the config: the
        # result's trace id must be the one the target saw.
        headers.update(ctx.trace.headers())
    token = seen.token = credential.token
    placements = ("authorization_header",) if credential.placements is None \
        else credential.placements
    url = spec.url
    if token is not None and "authorization_header" in placements:
        headers["Authorization"] = f"Bearer {token}"
    if token is not None and "query" in placements:
        url = with_query(url, "token", token)
    kwargs: dict[str, Any] = {}
    if spec.json_body is not None:
        kwargs["json"] = spec.json_body
    elif spec.body is not None:
        kwargs["data"] = spec.body.encode("utf-8")
    tls: ssl.SSLContext | bool = True
    if spec.url.lower().startswith("https:") or spec.follow_redirects:
        tls = client_context(spec.tls)

    seen.stage = "request"
    # A jar of the run's own, for the cookies its redirects set (net/cookies.py).
    with watching(seen.timer), run_cookies():
        seen.request_started = time.perf_counter()
        async with ctx.session.request(
            spec.method, url, headers=headers, allow_redirects=spec.follow_redirects,
            # aiohttp refuses the max_redirects-th redirect answer: one more than the
            # redirects a run may follow.
            max_redirects=spec.max_redirects + 1,
            ssl=tls, server_hostname=spec.tls.server_name, timeout=_NO_TIMEOUT,
            trace_request_ctx=seen.timer, **kwargs,
        ) as resp:
            _seen_chain(resp.history, seen)
            if resp.version is not None:
                seen.version = f"HTTP/{resp.version.major}.{resp.version.minor}"
            seen.final_url = str(resp.url)
            seen.status = resp.status
            seen.headers = ctx.redactor.headers(resp.headers.items())
            content_type = resp.headers.get("Content-Type")
            # One object per distinct type: the newest result of every probe keeps it.
            seen.content_type = None if content_type is None else sys.intern(content_type)
            body, truncated = await _read_capped(resp, spec.max_body_bytes, seen)
            # Closing (rather than releasing) does not wait for the rest of a long body.
            resp.close()
            seen.timer.finish()
            return body, truncated, resp.headers.copy()


def _seen_chain(history: tuple[aiohttp.ClientResponse, ...], seen: _Seen) -> None:
    seen.hops = tuple(redirects.Hop(url=str(r.url), status=r.status,
                                    location=r.headers.get("Location"))
                      for r in history)


async def _read_capped(resp: aiohttp.ClientResponse, cap: int, seen: _Seen
                       ) -> tuple[bytes, bool]:
    """Up to ``cap`` bytes of the body, and whether there was more.

    Reads one byte past the cap to know that the body really is longer, and never holds
    more than that: aiohttp's flow control stops reading the socket while its small
    buffer is full, so an endless body costs no memory.
    """
    buf = bytearray()
    seen.body = buf  # if the deadline cuts the read short, the evidence shows the start
    while len(buf) <= cap:
        chunk = await resp.content.read(min(READ_CHUNK, cap + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
    truncated = len(buf) > cap
    body = bytes(buf[:cap])
    seen.body = body
    return body, truncated


@dataclass(frozen=True, slots=True)
class _Channel:
    """How the final answer came: its HTTP version, and from which URL (TLS or not)."""

    version: str | None
    url: str
    redirected: bool = False


def _evaluate(expect: HttpExpect, status: int, body: bytes, truncated: bool,
              headers: CIMultiDict[str], latency: float, redactor: Redactor,
              channel: _Channel) -> tuple[Outcome, str]:
    """Check the answer in order: TLS, status, HTTP version, JSON, body regex, headers,
    headers_not, latency."""
    if expect.tls and not channel.url.lower().startswith("https:"):
        # First: an answer that travelled in clear is the finding, whatever it says.
        how = " after redirects" if channel.redirected else ""
        return Outcome.ASSERTION_FAILED, (
            f"the final answer came over plain HTTP{how} ({target_of(channel.url)}), "
            "not TLS (expect.tls)")
    if not status_matches(status, expect.status):
        return Outcome.UNEXPECTED_STATUS, (
            f"HTTP {status}, expected {_show_status(expect.status)}"
            + _location(status, headers, redactor))
    if expect.http_version and channel.version not in expect.http_version:
        return Outcome.ASSERTION_FAILED, (
            f"answered in {channel.version}, expected {' or '.join(expect.http_version)}")
    cut = f" (only the first {len(body)} bytes were read: max_body_bytes)" if truncated else ""
    if expect.json_ is not None:
        if truncated:
            return Outcome.ASSERTION_FAILED, (
                f"body is larger than max_body_bytes ({len(body)}): it was truncated, so "
                "its JSON cannot be checked")
        try:
            data = json.loads(body)
        except ValueError as exc:
            return Outcome.ASSERTION_FAILED, f"body is not JSON: {exc}"
        except RecursionError:
            return Outcome.ASSERTION_FAILED, "body is not usable JSON: nested too deeply"
        reason = check_json_paths(data, expect.json_)
        if reason is not None:
            return Outcome.ASSERTION_FAILED, f"JSON {reason}"
    if expect.body_regex is not None:
        text = body.decode(_charset(headers), "replace")
        if re.search(expect.body_regex, text) is None:
            return Outcome.ASSERTION_FAILED, f"body does not match /{expect.body_regex}/{cut}"
    for name, pattern in expect.headers.items():
        values = headers.getall(name, [])
        if not values:
            return Outcome.ASSERTION_FAILED, f"header {name}: missing"
        if not any(re.search(pattern, v) for v in values):
            shown = redactor.header(name, ", ".join(values))
            return Outcome.ASSERTION_FAILED, (
                f"header {name}: expected to match /{pattern}/, got {shown[:200]!r}")
    for name, pattern in expect.headers_not.items():
        # Every value: one matching value among several fails (fail_if_header_matches).
        values = headers.getall(name, [])
        hit = next((v for v in values if re.search(pattern, v)), None)
        if hit is not None:
            shown = redactor.header(name, hit)
            return Outcome.ASSERTION_FAILED, (
                f"header {name}: no value may match /{pattern}/, got {shown[:200]!r}"
                + (f" (one of {len(values)} values)" if len(values) > 1 else ""))
    took = f"HTTP {status} in {ms(latency)}"
    if expect.max_latency is not None and latency > expect.max_latency:
        budget = format_duration(expect.max_latency)
        return Outcome.SLOW, f"{took}, over the max_latency of {budget}"
    return Outcome.SUCCESS, took + cut


def with_query(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (name, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _retry_after(status: int | None, headers: tuple[tuple[str, str], ...]) -> str | None:
    """Retry-After of a 429 or 503, the server's own word on when to come back."""
    if status not in (429, 503):
        return None
    return next((v for k, v in headers if k.lower() == "retry-after"), None)


def _why(exc: Exception) -> str:
    if isinstance(exc, aiohttp.InvalidURL):
        # Its message is the URL itself, credentials included.
        return "invalid URL" + (f" ({exc.description})" if exc.description else "")
    return str(exc)


def _show_status(ranges: tuple[tuple[int, int], ...]) -> str:
    parts = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return parts[0] if len(parts) == 1 else "one of " + ", ".join(parts)


def _location(status: int, headers: CIMultiDict[str], redactor: Redactor) -> str:
    # A redirect nobody expected is diagnosed by where it points.
    loc = headers.get("Location")
    if 300 <= status < 400 and loc:
        return f" (Location: {redactor.redact(loc[:300])})"
    return ""


def _charset(headers: CIMultiDict[str]) -> str:
    match = re.search(r"charset=\"?([\w.:-]+)", headers.get("Content-Type", ""), re.I)
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"


__all__ = ["run_http"]
