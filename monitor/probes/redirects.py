"""Redirects a run followed, as evidence, and the verdict on a chain that never ended.

Pure: the hops of one run in, evidence and words out (the HTTP probe reads the hops off
aiohttp's answers). With ``follow_redirects: true`` a run follows at most
``max_redirects`` redirects (10 by default, as blackbox_exporter and Go's client; at most
20, as browsers); one more redirect answer ends the run in ``too_many_redirects`` with that
answer's status and the whole chain as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.keep import MORE, Keeper, Kept
from monitor.limits import LOCATION_CHARS, REDACT_MARGIN
from monitor.redact import Redactor
from monitor.result import Redirect
from monitor.targets import target_of


@dataclass(frozen=True, slots=True)
class Hop:
    """One redirect answer: the URL that answered, its status and its Location header."""

    url: str
    status: int
    location: str | None


def evidence(hops: Sequence[Hop], redactor: Redactor) -> tuple[Redirect, ...]:
    """The chain as kept in a result: each status and Location, redacted and bounded."""
    keep = Keeper(redactor)
    return tuple(Redirect(status=h.status, location=_kept_location(h.location, keep))
                 for h in hops)


def shown_location(location: str | None, redactor: Redactor) -> str:
    """A Location as evidence: a password in it masked, then kept (monitor.keep: known
    secrets redacted, control characters made visible, as it is shown in terminals and
    pages), at most LOCATION_CHARS characters with the "…" of a cut."""
    return _kept_location(location, Keeper(redactor))


def _kept_location(location: str | None, keep: Keeper) -> Kept:
    if location is None:
        return keep.words("(no Location)")
    masked = _mask_password(location[:LOCATION_CHARS + REDACT_MARGIN])
    kept = keep.words(masked, LOCATION_CHARS)
    # LOCATION_CHARS in all: a cut one's "…" included.
    return kept if len(kept) <= LOCATION_CHARS else keep.words(masked, LOCATION_CHARS - len(MORE))


def _mask_password(url: str) -> str:
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{head}://{user}:<redacted>@{host}{slash}{tail}"


def loop_of(hops: Sequence[Hop]) -> tuple[int, int] | None:
    """(first, length) of the first URL that answered twice: the chain's loop; None when
    every URL that answered was a new one."""
    first_seen: dict[str, int] = {}
    for i, hop in enumerate(hops):
        if hop.url in first_seen:
            start = first_seen[hop.url]
            return start, i - start
        first_seen[hop.url] = i
    return None


def too_many(hops: Sequence[Hop], limit: int) -> tuple[str, str]:
    """The detail and the hint of a run that met more than ``limit`` redirects; ``hops`` are
    the ``limit`` followed and the one refused. Neither says more of a URL than its target
    (no query, no credentials); the Locations are in the evidence."""
    if not hops:
        return f"more than {limit} redirects (max_redirects)", ""
    last = hops[-1]
    detail = (f"HTTP {last.status} after {limit} redirects followed (max_redirects: "
              f"{limit}): the chain did not end")
    found = loop_of(hops)
    if found is not None:
        start, length = found
        url = target_of(hops[start].url)[:200]
        if length == 1:
            where = f"{url} redirects to itself"
        else:
            where = f"{url} comes back to itself after {length} redirects"
        hint = (f"A redirect loop: {where}. Usual causes: two rules that undo each other "
                "(http->https behind a proxy that forwards plain http, a trailing slash added "
                "and removed), or a login or cookie check whose cookie never comes back (the "
                "probe keeps a run's cookies across its redirects, as a browser does; a "
                "Secure cookie is not sent to http://, nor a cookie to another domain).")
    else:
        hint = (f"No URL answered twice: each of the {len(hops)} redirects went somewhere "
                "new (a URL that grows on every hop, or a chain longer than max_redirects). "
                "If the chain is legitimate, raise max_redirects (at most 20).")
    return detail, hint


__all__ = ["Hop", "evidence", "loop_of", "shown_location", "too_many"]
