"""What a negative probe's answer means: an auth refusal, a way in, or nothing learned.

Only an *auth* refusal counts as refused (``refused_with``: by default 401, 403, or close
1008 / an auth error message after accept). A 404, 405 or 5xx says nothing about auth: the
run fails with the outcome the answer would get on any probe, and its hint says so, because
a negative probe that is "refused" by a missing route would stay green while auth is gone.

Pure decisions, shared by the HTTP and WebSocket probes; table-tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config import VARIANT_INFO
from monitor.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class Reading:
    """A negative probe's verdict on one answer."""

    outcome: Outcome
    detail: str
    hint: str | None = None


def sent_words(variant: str | None, bypass_headers: Iterable[str] = ()) -> str:
    if variant is None:
        return "the probe's credentials"
    info = VARIANT_INFO.get(variant)
    words = variant if info is None else info.words
    names = ", ".join(bypass_headers)
    if variant == "bypass_headers" and names:
        words += f" ({names})"
    return f"variant {variant} ({words})"


def _codes(refused_with: Iterable[int]) -> str:
    return ", ".join(str(c) for c in refused_with)


def nothing_learned(code: int, *, upgrade: bool) -> str:
    """Why an answer that is not an auth refusal teaches a negative probe nothing."""
    if code == 404:
        why = "404: nothing is routed at this URL, so no auth check ran"
    elif code == 405:
        why = ("405: a route that does not take this request (a REST route on a WebSocket "
               "path?) answered before any auth check")
    elif code >= 500:
        why = f"{code}: the server failed before deciding on the credentials"
    elif 200 <= code < 400 and upgrade:
        why = (f"{code}: the upgrade was served as a plain request (a missing WebSocket route "
               "or a proxy dropping Upgrade), so no WebSocket auth check ran")
    elif 300 <= code < 400:
        why = f"{code}: a redirect, not a decision on the credentials"
    else:
        why = f"{code} is not one of the refusals this probe counts"
    return f"{why}: the probe learned nothing about auth"


def http_reading(status: int, refused_with: tuple[int, ...], variant: str | None,
                 bypass_headers: Iterable[str] = ()) -> Reading:
    """A negative HTTP probe: refused, got in (2xx), or nothing learned."""
    if status in refused_with:
        return Reading(Outcome.SUCCESS, f"refused as expected: HTTP {status}")
    sent = sent_words(variant, bypass_headers)
    if 200 <= status < 300:
        return Reading(Outcome.AUTH_NOT_ENFORCED,
                       f"{sent} got in: HTTP {status} instead of a refusal "
                       f"({_codes(refused_with)})")
    return Reading(Outcome.UNEXPECTED_STATUS,
                   f"HTTP {status} is not an auth refusal (refused_with: "
                   f"{_codes(refused_with)})",
                   nothing_learned(status, upgrade=False))


def handshake_reading(status: int, refused_with: tuple[int, ...]) -> Reading | None:
    """A negative WebSocket probe's non-101 answer: success when it is an auth refusal,
    else None (the run keeps the outcome the answer gets anywhere, with :func:`nothing_learned`
    as its hint)."""
    if status in refused_with:
        return Reading(Outcome.SUCCESS, f"refused as expected: HTTP {status} to the upgrade")
    return None


def close_reading(code: int | None, reason: str | None, refused_with: tuple[int, ...],
                  auth_message: bool = False) -> Reading | None:
    """A negative WebSocket probe closed after accept: success for a counted close code (or
    an auth error message when 1008 counts), else None (closed_by_server, nothing learned)."""
    said = "" if code is None else f" {code}" + (f" {reason!r}" if reason else "")
    if code is not None and code in refused_with:
        return Reading(Outcome.SUCCESS, f"refused as expected: accepted, then closed with{said}")
    if auth_message and 1008 in refused_with:
        return Reading(Outcome.SUCCESS, "refused as expected: accepted, then an auth error "
                                        "message" + (f" and close{said}" if said else ""))
    return None


def got_in(variant: str | None, how: str, bypass_headers: Iterable[str] = ()) -> str:
    """The detail of auth_not_enforced on a WebSocket: what was sent and what happened."""
    return f"{sent_words(variant, bypass_headers)} got in: {how}"


__all__ = ["Reading", "close_reading", "got_in", "handshake_reading",
           "http_reading", "nothing_learned", "sent_words"]
