"""Incidents: failing probes grouped by cause and host, each with one cross-checked verdict.

Several probes failing for one reason (every token refused, a route gone) are one incident;
the status page shows one card per incident instead of one per probe, and the cross-check
says what the failing probes and their healthy neighbours on the same host, taken together,
point at. Pure: the newest run of every probe in, incidents out; the page only renders them.

The verdict compares like with like, as PRODUCT.md's incident did by hand: a WebSocket
probe on another path of the same host, with the same credentials, that did upgrade proves
that the server accepts WebSocket connections and those credentials, so a refusal on this
path points at its route; refusals on every path point at the credentials; every WebSocket
probe failing at the connection while plain HTTP passes points at the WebSocket layer.
A probe is never compared with itself nor with another probe of its own incident, and
only with an answer of the same moment: the peer's run after the failure began, the failure
after the peer's streak began (probes that send the same credentials to the same host run
in one round, seconds apart: monitor.scheduler). A refusal of a negative probe on a path
that refuses valid credentials too (a plain route there) proves nothing about auth: the
incident names such probes (``moot``) so that the page does not show them as passing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from monitor.outcomes import NOT_RUN, Outcome
from monitor.probes.kinds import kind_of
from monitor.result import Result
from monitor.scheduler import ROUND_SPREAD

# Two answers of one round are at most this far apart (its spread, and a margin for the
# start lag of a loaded machine).
SAME_MOMENT = ROUND_SPREAD + 1.0
Since = Callable[[str], float | None]


class Verdict(StrEnum):
    ROUTE = "route suspected"
    CREDENTIALS = "credentials suspected"
    WEBSOCKET_DOWN = "whole WebSocket layer down"
    HOST_DOWN = "host unreachable"
    AUTH_NOT_ENFORCED = "authentication not enforced"
    CANNOT_TELL = "cannot tell"


# No answer from the host at all: nothing above TCP/TLS can be judged.
NETWORK: frozenset[Outcome] = frozenset({
    Outcome.DNS_ERROR, Outcome.CONNECT_REFUSED, Outcome.CONNECT_TIMEOUT, Outcome.TLS_ERROR,
    Outcome.CONNECTION_RESET})
# The WebSocket could not be had at all: the layer itself, when it happens on every path.
_WS_BROKEN: frozenset[Outcome] = NETWORK | {
    Outcome.TIMEOUT, Outcome.PROTOCOL_ERROR, Outcome.CLOSED_BY_SERVER, Outcome.NOT_UPGRADED,
    Outcome.HANDSHAKE_REJECTED}
# After a 101: the route and the credentials demonstrably work.
_AFTER_UPGRADE: frozenset[Outcome] = frozenset({
    Outcome.SUBPROTOCOL_MISMATCH, Outcome.UNEXPECTED_MESSAGE, Outcome.MESSAGE_TIMEOUT})


@dataclass(frozen=True, slots=True)
class Incident:
    host: str
    outcome: Outcome
    cause: str                  # the shared cause in words: "handshake_rejected, HTTP 403"
    probes: tuple[str, ...]     # their run names (monitor.runname), in config order
    paths: tuple[str, ...]      # the distinct URL paths they fail on, in config order
    verdict: Verdict
    why: str                    # the conclusion, with its reason, in one or two sentences
    evidence: tuple[str, ...]   # each names a probe (or the diagnostic GET) and what it saw
    # The newest run of the first of them, which the card shows: carried, not looked up
    # again by name, so that a card can never ask for a run its page does not have.
    first: Result
    # Negative probes on these paths whose refusal proves nothing while valid credentials
    # are refused there too (no WebSocket route): not "refused as expected".
    moot: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable id for the page (data-incident) and for tests."""
        return f"{self.host} {self.cause}"


@functools.lru_cache(maxsize=1 << 16)
def _split(target: str) -> tuple[str, str]:
    # Every render asks for the same few thousand targets, several times each.
    parts = urlsplit(target)
    return parts.netloc, parts.path or "/"


def host_of(r: Result) -> str:
    return _split(r.target)[0]


def path_of(r: Result) -> str:
    return _split(r.target)[1]


def cause_of(r: Result) -> str:
    """The outcome with the code that makes it one cause: 403 and 404 refusals are two. Late
    answers are one cause whatever their status: the status was the expected one."""
    if r.outcome is Outcome.SLOW:
        return r.outcome.value
    if r.close_code is not None:
        return f"{r.outcome.value}, close {r.close_code}"
    if r.status_code is not None and not (r.upgraded and r.status_code == 101):
        return f"{r.outcome.value}, HTTP {r.status_code}"
    return r.outcome.value


def upgrades(r: Result) -> bool:
    """The run's kind upgrades its connection (a WebSocket): only such probes are compared
    by the route and credentials cross-check."""
    kind = kind_of(r.type)
    return kind is not None and kind.upgrades


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(names)


def _said(r: Result) -> str:
    """What one probe's last run saw, for an evidence line."""
    where = f"{path_of(r)}"
    if r.upgraded or r.status_code == 101:
        tail = f" then close {r.close_code}" if r.close_code is not None else ""
        return f"{r.key} ({where}): upgraded, 101{tail} · {r.outcome.value}"
    if r.status_code is not None:
        return f"{r.key} ({where}): HTTP {r.status_code} · {r.outcome.value}"
    return f"{r.key} ({where}): {r.outcome.value}"


def _same_credentials(a: str, b: str, credentials: Mapping[str, str | None]) -> bool:
    return credentials.get(a) == credentials.get(b)


def incidents(lasts: Mapping[str, Result | None],
              credentials: Mapping[str, str | None] | None = None, *,
              since: Since | None = None,
              negative: Collection[str] = ()) -> list[Incident]:
    """Failing probes (newest runs in config order) as incidents, in the order of their
    first probe. ``credentials`` maps a probe to what it authenticates with (its auth
    provider's name, or a key of its own for inline auth); a peer only proves the
    credentials fine when it uses the same ones. Unknown probes compare as unauthenticated.
    ``since`` gives the start of a probe's current streak (History.since): with it, a peer
    counts only with an answer of the same moment. ``negative``: the negative probes."""
    creds: Mapping[str, str | None] = credentials or {}
    groups: dict[tuple[str, str], list[Result]] = {}
    # Each incident is judged against the other probes of its host only: indexed once, so
    # that 10,000 probes on many hosts stay one pass, not one pass per incident.
    by_host: dict[str, list[Result]] = {}
    for r in lasts.values():
        if r is None:
            continue
        host = host_of(r)
        by_host.setdefault(host, []).append(r)
        if not r.success:
            groups.setdefault((host, cause_of(r)), []).append(r)
    out = []
    for (host, cause), members in groups.items():
        paths = tuple(dict.fromkeys(path_of(r) for r in members))
        verdict, why, evidence = _verdict(members, host, by_host[host], creds, since)
        moot = _moot(members, by_host[host], negative, verdict)
        if moot:
            where = _names(sorted({path_of(r) for r in moot}))
            evidence.append(f"{_names([r.key for r in moot])} ({where}): refused, but this "
                            "path refuses valid credentials too: their refusal says nothing "
                            "about auth now")
        out.append(Incident(host=host, outcome=members[0].outcome, cause=cause,
                            probes=tuple(r.key for r in members), paths=paths,
                            verdict=verdict, why=why, evidence=tuple(evidence),
                            first=members[0], moot=tuple(r.key for r in moot)))
    return out


def _moot(members: list[Result], on_host: list[Result], negative: Collection[str],
          verdict: Verdict) -> list[Result]:
    """Negative probes that pass on a path that looks like a plain route while a valid probe
    there is refused: its upgrade answered 2xx/3xx, or the route is suspected, or a plain
    GET there answers 2xx (unless the credentials are the suspect). The path refuses
    everyone, so their refusal is no evidence of auth."""
    if verdict is Verdict.CREDENTIALS:
        return []
    refused = [r for r in members if _authz_refusal(r) or r.outcome is Outcome.NOT_UPGRADED]
    plain = {path_of(r) for r in refused if r.outcome is Outcome.NOT_UPGRADED
             or verdict is Verdict.ROUTE
             or (r.evidence.diagnosis is not None
                 and r.evidence.diagnosis.status_code is not None
                 and 200 <= r.evidence.diagnosis.status_code < 300)}
    return [r for r in on_host if r.key in negative and r.success and path_of(r) in plain]


def _comparable(peer: Result, members: list[Result], since: Since | None) -> bool:
    """Whether ``peer``'s answer and a member's failure are of the same moment: the peer's
    last run started after that member's failure began, and the peer's streak (its answer
    unchanged) began before the member's last run. One answer from before a change and
    one from after it say nothing about each other."""
    if since is None:
        return True
    peer_since = since(peer.key)
    for m in members:
        failing_since = since(m.key)
        if failing_since is None or peer_since is None:
            return True
        if (peer.started_at >= failing_since - SAME_MOMENT
                and peer_since <= m.started_at + SAME_MOMENT):
            return True
    return False


def _verdict(members: list[Result], host: str, on_host: list[Result],
             creds: Mapping[str, str | None],
             since: Since | None = None) -> tuple[Verdict, str, list[str]]:
    mine = {r.key for r in members}
    first = members[0]
    outcome = first.outcome
    others = [r for r in on_host if r.key not in mine]
    evidence = [_said(r) for r in members]
    diagnosis = next((r for r in members if r.evidence.diagnosis is not None), None)
    if diagnosis is not None and diagnosis.evidence.diagnosis is not None:
        d = diagnosis.evidence.diagnosis
        got = " ".join(x for x in (f"HTTP {d.status_code}" if d.status_code else "",
                                   d.content_type or "", d.error or "") if x) or "nothing"
        evidence.append(f"a plain GET of {path_of(diagnosis)} answered {got}")

    if outcome in NETWORK and all(r.outcome in NETWORK for r in on_host):
        return (Verdict.HOST_DOWN,
                f"every probe on {host} with a run ({len(on_host)}) fails before any answer "
                f"({outcome.value}): the host or the network to it, not a route or the "
                "credentials.", evidence)

    if outcome is Outcome.AUTH_NOT_ENFORCED:
        return (Verdict.AUTH_NOT_ENFORCED,
                f"Authentication not enforced: {_names(sorted(mine))} got in with a "
                "deliberately wrong token; a security problem, not a route or the probes' "
                "credentials.", evidence)
    if outcome is Outcome.SLOW:
        return (Verdict.CANNOT_TELL,
                "Cannot tell, and nothing to tell apart: every probe here got the answer it "
                "expected, over its max_latency budget; route and credentials work.", evidence)
    if outcome is Outcome.TOO_MANY_REDIRECTS:
        return (Verdict.CANNOT_TELL,
                "Not a route or credentials question: the server answers, with redirects "
                f"that do not end ({_names(sorted(mine))}); the probe's hint says whether "
                "they loop, and its evidence lists every Location.", evidence)
    if outcome in NOT_RUN:
        return (Verdict.CANNOT_TELL,
                f"Nothing to compare: {first.probe} did not reach the target "
                f"({outcome.value}: {first.evidence.detail or 'not run'}); the target was not "
                "asked.", evidence)
    if first.upgraded and outcome is Outcome.CLOSED_BY_SERVER:
        close = f"close {first.close_code}" if first.close_code is not None else "a close"
        return (Verdict.CANNOT_TELL,
                f"Not a route or credentials question, and the WebSocket layer answers: "
                f"{first.probe} got a 101, then the server ended the connection ({close}); "
                "the failure is after the handshake, where no other probe can be compared.",
                evidence)
    if outcome in _AFTER_UPGRADE:
        return (Verdict.CANNOT_TELL,
                f"Not a route or credentials question: {first.key} got a 101, so the route "
                "and the credentials work; the failure is after the handshake "
                f"({outcome.value}), where no other probe can be compared.", evidence)
    if not any(upgrades(r) for r in members):
        passing = [r.key for r in others if r.success]
        nouns = sorted({_noun(r) for r in members})
        reason = (f"the cross-check compares WebSocket paths, and these are "
                  f"{' and '.join(nouns)} probes"
                  + (f"; {_names(passing)} on the same host pass, so the host answers"
                     if passing else "; no other probe on this host passes"))
        return Verdict.CANNOT_TELL, f"Cannot tell route from credentials: {reason}.", evidence

    ws_others = [r for r in others if upgrades(r)]
    upgraded = [r for r in ws_others if r.upgraded and r.outcome is not Outcome.AUTH_NOT_ENFORCED
                and any(_same_credentials(r.key, m.key, creds) for m in members)]
    got_in = [r for r in upgraded if _comparable(r, members, since)]
    stale = [r for r in upgraded if r not in got_in]
    refused = outcome in (Outcome.HANDSHAKE_REJECTED, Outcome.NOT_UPGRADED, Outcome.AUTH_REJECTED)
    paths = tuple(dict.fromkeys(path_of(r) for r in members))
    elsewhere = [r for r in got_in if path_of(r) not in paths]
    same_path = [r for r in got_in if path_of(r) in paths]

    # A peer on the very path proves the route: what differs is how the token is sent.
    authz = _authz_refusal(first)
    if authz and same_path:
        peer = same_path[0]
        evidence.append(f"{peer.key} ({path_of(peer)}): upgraded, 101, same path and "
                        "credentials")
        return (Verdict.CREDENTIALS,
                f"Credentials suspected, in how they are sent: {peer.key} upgraded on the "
                f"same path with the same credentials, so the route works; these probes "
                "present the token differently (header or subprotocol).", evidence)

    if refused and outcome is not Outcome.AUTH_REJECTED and elsewhere:
        peer = elsewhere[0]
        evidence.append(f"{peer.key} ({path_of(peer)}): upgraded, 101, same host and "
                        "credentials")
        return (Verdict.ROUTE,
                f"Route suspected: {peer.key} upgraded on {path_of(peer)} of the same host "
                "with the same credentials at its last run, so the server accepts WebSocket "
                f"connections and these credentials; suspect the route of {_names(paths)}.",
                evidence)
    if authz and len(paths) > 1:
        ok_http = [r.key for r in others if not upgrades(r) and r.success
                   and creds.get(r.key) is not None
                   and any(_same_credentials(r.key, m.key, creds) for m in members)]
        if ok_http:
            evidence.append(f"{_names(ok_http)} (HTTP, same credentials): passing")
        return (Verdict.CREDENTIALS,
                f"Credentials suspected: refused on every path tried ({_names(paths)}) and no "
                f"WebSocket probe on {host} with the same credentials got in; a missing route "
                "would not refuse them all"
                + (f" ({_names(ok_http)} accepts them over plain HTTP: suspect the WebSocket "
                   "side's check of the token)." if ok_http else "."), evidence)

    if stale:
        peer = stale[0]
        return (Verdict.CANNOT_TELL,
                f"Cannot tell yet: {peer.key} upgraded on {path_of(peer)} of the same host "
                f"with the same credentials at {_clock(peer.started_at)}, but that answer and "
                f"the failure of {first.probe} ({_clock(first.started_at)}) are not of the "
                "same moment (one is from before a change); the next runs will tell.",
                evidence)

    ws_all = [r for r in on_host if upgrades(r)]
    # A refusal of the token is not the layer being down: it proves the layer answers; nor
    # is a close after a 101.
    ws_failing = [r for r in ws_all if r.outcome in _WS_BROKEN and not _authz_refusal(r)
                  and not r.upgraded]
    http_ok = [r.key for r in others if not upgrades(r) and r.success]
    ws_ok = [r for r in ws_all if r.success and r.upgraded]
    layer_paths = {path_of(r) for r in ws_failing}
    if outcome in _WS_BROKEN and not authz and not ws_ok and not got_in and len(layer_paths) > 1:
        if http_ok:
            evidence.append(f"{_names(http_ok)} (HTTP): passing")
        return (Verdict.WEBSOCKET_DOWN,
                f"Whole WebSocket layer down: no WebSocket probe on {host} upgrades on any "
                f"path ({_names(sorted(layer_paths))})"
                + (f" while plain HTTP answers ({_names(http_ok)})" if http_ok else "")
                + "; not one route, and a refusal of the credentials would be a 401/403.",
                evidence)

    return Verdict.CANNOT_TELL, _cannot_tell(members, ws_others, paths, host), evidence


def _noun(r: Result) -> str:
    kind = kind_of(r.type)
    return r.type if kind is None else kind.words.noun


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + " UTC"


def _authz_refusal(r: Result) -> bool:
    return r.outcome is Outcome.AUTH_REJECTED or (
        r.outcome is Outcome.HANDSHAKE_REJECTED and r.status_code in (401, 403))


def _cannot_tell(members: list[Result], ws_others: list[Result], paths: tuple[str, ...],
                 host: str) -> str:
    """Why the cross-check has no conclusion, and what would give it one."""
    head = "Cannot tell route from credentials: "
    other_paths = [r for r in ws_others if path_of(r) not in paths]
    if not ws_others:
        return (head + f"no other WebSocket probe on {host} has a run to compare with; a probe on "
                "another path with the same credentials would tell (see ws-alternate-path in "
                "the shipped probes.yaml).")
    if not other_paths:
        return (head + f"every other WebSocket probe on {host} uses the same path "
                f"({_names(paths)}); a probe on another path with the same credentials "
                "would tell.")
    failing = [r for r in other_paths if not r.success]
    if failing:
        return (head + "the other path fails too, differently ("
                + _names([f"{r.key}: {cause_of(r)}" for r in failing]) + ").")
    return (head + "the probes on other paths that passed use other credentials or did not "
            "upgrade (" + _names([r.key for r in other_paths]) + ").")
