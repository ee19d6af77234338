"""One line of what a run saw, in plain words: shared by the status page, the results API
and ``synthmon once``, so that all three say the same thing about the same run."""

from __future__ import annotations

from collections.abc import Mapping

from monitor.outcomes import MEANING
from monitor.outcomes import NOT_RUN as NOT_RUN_OUTCOMES
from monitor.probes.kind import NOT_RUN
from monitor.probes.kinds import kind_of
from monitor.result import Result
from monitor.web.incidents import Since, incidents


def handshake(r: Result) -> str | None:
    """How the target answered, in one phrase, where the probe's kind has one (a
    WebSocket's upgrade, a stream's opening); None for a plain HTTP answer."""
    kind = kind_of(r.type)
    return None if kind is None else kind.words.answer(r)


def answer_label(r: Result) -> str:
    """The name of :func:`handshake`'s phrase: "handshake", "stream", ..."""
    kind = kind_of(r.type)
    return "answer" if kind is None else kind.words.answer_label


def seen(r: Result) -> str:
    """One line of what the server answered, for the overview and the API."""
    ev = r.evidence
    if r.outcome in NOT_RUN_OUTCOMES:
        return f"{NOT_RUN}: {ev.detail or 'nothing was sent'}"
    parts: list[str] = []
    hs = handshake(r)
    if hs is not None:
        # The probe's detail usually names the answer already ("refused the upgrade: HTTP
        # 403", "upgraded (subprotocol jwt-auth)"); the phrase is only added when it does not.
        if not (str(r.status_code) in ev.detail or "upgraded" in ev.detail
                or hs in ev.detail):
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
                credentials: Mapping[str, str | None] | None = None,
                since: Since | None = None) -> str | None:
    """The verdict of the incident ``r`` belongs to, for a failing run; None for a passing
    one. The same words as the incident card of the overview (monitor.web.incidents)."""
    if r.success:
        return None
    for incident in incidents({**lasts, r.key: r}, credentials, since=since):
        if r.key in incident.probes:
            peers = [p for p in incident.probes if p != r.key]
            also = f" One incident with {', '.join(peers)}." if peers else ""
            return f"{incident.why}{also}"
    return None


__all__ = ["MEANING", "NOT_RUN", "answer_label", "cross_check", "handshake", "hint", "seen"]
