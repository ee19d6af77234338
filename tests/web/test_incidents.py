"""The incident grouping and its cross-check verdict, table-tested on the shipped probes'
shape (two WebSocket paths with one token, a negative probe, HTTP probes on the same host)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monitor.outcomes import Outcome
from monitor.result import Diagnosis, Evidence, Result
from monitor.web.incidents import Incident, Verdict, incidents

HOST = "staging:443"
# probe -> (type, path, credentials)
SHIPPED: dict[str, tuple[str, str, str | None]] = {
    "health": ("http", "/health", None),
    "api-health": ("http", "/api/health", None),
    "threads-with-token": ("http", "/api/threads", "staging_jwt"),
    "ws-golden-path": ("websocket", "/api/v1/websocket", "staging_jwt"),
    "ws-alternate-path": ("websocket", "/ws", "staging_jwt"),
    "ws-subprotocol-only": ("websocket", "/api/v1/websocket", "staging_jwt"),
    "ws-header-only": ("websocket", "/api/v1/websocket", "staging_jwt"),
    "ws-rejects-bad-token": ("websocket", "/api/v1/websocket", "inline:ws-rejects-bad-token"),
}
CREDS = {name: cred for name, (_, _, cred) in SHIPPED.items()}
WS_MAIN = ("ws-golden-path", "ws-subprotocol-only", "ws-header-only")
WS_ALL = ("ws-golden-path", "ws-alternate-path", "ws-subprotocol-only", "ws-header-only")


@dataclass(frozen=True)
class Seen:
    outcome: Outcome
    status: int | None = None
    close: int | None = None
    upgraded: bool = False
    host: str = HOST


OK_WS = Seen(Outcome.SUCCESS, 101, upgraded=True)
REFUSED = Seen(Outcome.HANDSHAKE_REJECTED, 403)


def result(name: str, seen: Seen) -> Result:
    kind, path, _ = SHIPPED[name]
    scheme = "wss" if kind == "websocket" else "https"
    diagnosis = (Diagnosis(200, "application/json", "{}", "served by a plain HTTP route")
                 if seen.outcome is Outcome.HANDSHAKE_REJECTED and path == "/api/v1/websocket"
                 and name == "ws-golden-path" else None)
    return Result(probe=name, type=kind, target=f"{scheme}://{seen.host}{path}",
                  outcome=seen.outcome, started_at=0.0, duration_seconds=0.003,
                  status_code=seen.status, close_code=seen.close, upgraded=seen.upgraded,
                  evidence=Evidence(diagnosis=diagnosis))


def lasts(failing: dict[str, Seen], pending: tuple[str, ...] = ()) -> dict[str, Result | None]:
    """Every shipped probe: passing unless listed as failing or pending."""
    out: dict[str, Result | None] = {}
    for name, (kind, _, _) in SHIPPED.items():
        if name in pending:
            out[name] = None
        elif name in failing:
            out[name] = result(name, failing[name])
        elif name == "ws-rejects-bad-token":
            out[name] = result(name, Seen(Outcome.SUCCESS, 403))  # refused, as it should be
        else:
            out[name] = result(name, OK_WS if kind == "websocket" else Seen(Outcome.SUCCESS, 200))
    return out


def every(names: tuple[str, ...], seen: Seen) -> dict[str, Seen]:
    return dict.fromkeys(names, seen)


NET = Seen(Outcome.CONNECT_REFUSED)

# (id, failing, pending, [(probes of the incident, verdict, words of its why)...],
#  evidence lines some incident must name)
CASES: list[tuple[str, dict[str, Seen], tuple[str, ...],
                  list[tuple[tuple[str, ...], Verdict, str]], tuple[str, ...]]] = [
    ("route missing: /ws gets in with the same token",
     every(WS_MAIN, REFUSED), (),
     [(WS_MAIN, Verdict.ROUTE, "suspect the route of /api/v1/websocket")],
     ("ws-alternate-path (/ws): upgraded, 101",
      "a plain GET of /api/v1/websocket answered HTTP 200 application/json")),
    ("upgrade answered 200 JSON on the main path, negative probe included",
     every((*WS_MAIN, "ws-rejects-bad-token"), Seen(Outcome.NOT_UPGRADED, 200)), (),
     [((*WS_MAIN, "ws-rejects-bad-token"), Verdict.ROUTE, "ws-alternate-path upgraded")],
     ("ws-rejects-bad-token (/api/v1/websocket): HTTP 200 · not_upgraded",)),
    ("every token refused on both paths",
     every(WS_ALL, REFUSED), (),
     [(WS_ALL, Verdict.CREDENTIALS, "refused on every path tried (/api/v1/websocket, /ws)")],
     ("threads-with-token (HTTP, same credentials): passing",)),
    ("accepted then closed 1008 on both paths",
     every(WS_ALL, Seen(Outcome.AUTH_REJECTED, 101, 1008, True)), (),
     [(WS_ALL, Verdict.CREDENTIALS, "no WebSocket probe")],
     ("ws-alternate-path (/ws): upgraded, 101 then close 1008 · auth_rejected",)),
    # Upgraded, then closed: the layer answers, whatever the close (issue 21: it used to say
    # "whole WebSocket layer down" above evidence saying "upgraded, 101 then close 1011").
    *[(f"close {code} after the 101 everywhere: not the layer",
       every(WS_ALL, Seen(Outcome.CLOSED_BY_SERVER, 101, code, True)), (),
       [(WS_ALL, Verdict.CANNOT_TELL, f"got a 101, then the server ended the connection "
                                      f"(close {code})")],
       (f"ws-golden-path (/api/v1/websocket): upgraded, 101 then close {code}",))
      for code in (1011, 1003, 1000, 1013, 1006)],
    ("no answer to the upgrade anywhere while HTTP answers",
     every(WS_ALL, Seen(Outcome.CONNECTION_RESET)), (),
     [(WS_ALL, Verdict.WEBSOCKET_DOWN, "while plain HTTP answers (health, api-health")],
     ("health, api-health, threads-with-token (HTTP): passing",)),
    ("a token that could not be obtained: nothing to compare",
     every(WS_ALL, Seen(Outcome.CREDENTIALS_UNAVAILABLE)), (),
     [(WS_ALL, Verdict.CANNOT_TELL, "did not reach the target (credentials_unavailable")], ()),
    ("connection refused on every probe of the host",
     every(tuple(SHIPPED), NET), (),
     [(tuple(SHIPPED), Verdict.HOST_DOWN, "every probe on staging:443 with a run (8)")], ()),
    ("the other path has not run yet",
     {"ws-golden-path": REFUSED, "ws-subprotocol-only": REFUSED, "ws-header-only": REFUSED},
     ("ws-alternate-path",),
     [(WS_MAIN, Verdict.CANNOT_TELL, "every other WebSocket probe on staging:443 uses the "
       "same path")], ()),
    ("the other path fails differently",
     {**every(WS_MAIN, REFUSED), "ws-alternate-path": Seen(Outcome.CLOSED_BY_SERVER, 101, 1011,
                                                           True)}, (),
     [(WS_MAIN, Verdict.ROUTE, "ws-alternate-path upgraded on /ws"),
      (("ws-alternate-path",), Verdict.CANNOT_TELL, "got a 101, then the server ended the "
       "connection (close 1011)")], ()),
    ("one main-path probe refused while the golden path gets in",
     {"ws-subprotocol-only": REFUSED}, (),
     [(("ws-subprotocol-only",), Verdict.CREDENTIALS, "in how they are sent")], ()),
    ("the agent skips events",
     {"ws-golden-path": Seen(Outcome.UNEXPECTED_MESSAGE, 101, upgraded=True)}, (),
     [(("ws-golden-path",), Verdict.CANNOT_TELL, "the failure is after the handshake")], ()),
    ("a wrong token gets in",
     {"ws-rejects-bad-token": Seen(Outcome.AUTH_NOT_ENFORCED, 101, upgraded=True)}, (),
     [(("ws-rejects-bad-token",), Verdict.AUTH_NOT_ENFORCED, "deliberately wrong token")],
     ()),
    ("slow over HTTP and WebSocket is one incident",
     {"api-health": Seen(Outcome.SLOW, 200), "ws-golden-path": Seen(Outcome.SLOW, 101,
                                                                    upgraded=True)}, (),
     [(("api-health", "ws-golden-path"), Verdict.CANNOT_TELL, "over its max_latency")], ()),
    ("an HTTP assertion",
     {"api-health": Seen(Outcome.ASSERTION_FAILED, 200)}, (),
     [(("api-health",), Verdict.CANNOT_TELL, "these are HTTP probes; health, "
       "threads-with-token")], ()),
    ("403 and 404 on one host are two causes",
     {"ws-golden-path": REFUSED, "ws-subprotocol-only": REFUSED,
      "ws-header-only": Seen(Outcome.HANDSHAKE_REJECTED, 404)}, (),
     [(("ws-golden-path", "ws-subprotocol-only"), Verdict.ROUTE, "suspect the route"),
      (("ws-header-only",), Verdict.ROUTE, "suspect the route")], ()),
    ("one cause on two hosts is two incidents",
     {"ws-golden-path": REFUSED, "ws-subprotocol-only": REFUSED,
      "ws-header-only": Seen(Outcome.HANDSHAKE_REJECTED, 403, host="other:443")}, (),
     [(("ws-golden-path", "ws-subprotocol-only"), Verdict.ROUTE, "ws-alternate-path upgraded"),
      (("ws-header-only",), Verdict.CANNOT_TELL, "no other WebSocket probe on other:443")], ()),
]


@pytest.mark.parametrize(("failing", "pending", "expected", "evidence"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_incidents_and_verdicts(failing: dict[str, Seen], pending: tuple[str, ...],
                                expected: list[tuple[tuple[str, ...], Verdict, str]],
                                evidence: tuple[str, ...]) -> None:
    found = incidents(lasts(failing, pending), CREDS)
    assert [(i.probes, i.verdict) for i in found] == [(p, v) for p, v, _ in expected]
    for incident, (_, _, words) in zip(found, expected, strict=True):
        assert words in incident.why, incident.why
        never_itself(incident)
    lines = [line for i in found for line in i.evidence]
    for wanted in evidence:
        assert any(wanted in line for line in lines), (wanted, lines)


def never_itself(incident: Incident) -> None:
    """A conclusion in every case, and the cross-check never sends a probe to itself or to
    another probe of its own incident as the one that got in."""
    assert incident.why and incident.verdict.value
    for member in incident.probes:
        assert f"{member} upgraded" not in incident.why
        assert not any(line.startswith(f"{member} (") and "same host and credentials" in line
                       for line in incident.evidence)
    for line in incident.evidence:  # every piece of evidence names its probe(s) or the GET
        assert line.startswith("a plain GET") or line.split(" (")[0].split(", ")[0] in SHIPPED


def test_other_credentials_prove_nothing() -> None:
    # /ws gets in, but with a token of its own: the main path's refusal could be either.
    creds = {**CREDS, "ws-alternate-path": "another_provider"}
    found = incidents(lasts(every(WS_MAIN, REFUSED)), creds)
    assert [(i.probes, i.verdict) for i in found] == [(WS_MAIN, Verdict.CANNOT_TELL)]
    assert "other credentials" in found[0].why


def test_everything_passing_is_no_incident() -> None:
    assert incidents(lasts({}), CREDS) == []
    assert incidents({"x": None}) == []


# --------------------------------------------------------------------------- the same moment

def _at(failing: dict[str, tuple[Seen, float, float]]) -> tuple[dict[str, Result | None],
                                                                dict[str, float]]:
    """Every shipped probe, each with its run's start and its streak's start."""
    base = lasts({k: v[0] for k, v in failing.items()})
    out: dict[str, Result | None] = {}
    since: dict[str, float] = {}
    for name, r in base.items():
        assert r is not None
        start, streak = failing[name][1:] if name in failing else (1000.0, 0.0)
        out[name] = Result(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                              "started_at": start})
        since[name] = streak
    return out, since


def test_a_peer_answer_from_before_the_change_is_not_compared() -> None:
    """The credentials break on every path; /ws runs first. ws-golden-path's upgrade is from
    the round before (12:00 s), /ws's 403 from after the change (60 s): not "route
    suspected" (what the page said), but "cannot tell yet", until the golden path runs."""
    ok_before = Seen(Outcome.SUCCESS, 101, upgraded=True)
    probes, since = _at({"ws-alternate-path": (REFUSED, 60.0, 60.0),
                         **{n: (ok_before, 12.0, 0.0) for n in WS_MAIN}})
    found = incidents(probes, CREDS, since=since.get)
    assert [(i.probes, i.verdict) for i in found] == [(("ws-alternate-path",),
                                                        Verdict.CANNOT_TELL)]
    assert "Cannot tell yet" in found[0].why and "not of the same moment" in found[0].why
    # The same answers of one round (golden path a second after /ws): the route.
    probes, since = _at({"ws-alternate-path": (REFUSED, 60.0, 60.0),
                         **{n: (ok_before, 61.0, 0.0) for n in WS_MAIN}})
    (incident,) = incidents(probes, CREDS, since=since.get)
    assert incident.verdict is Verdict.ROUTE


def test_a_stale_refusal_is_not_compared_with_a_fresh_recovery() -> None:
    """Healing: the golden path upgrades again (its streak began at 120 s) while /ws still
    shows its 403 from 70 s: that 403 is from before the change."""
    probes, since = _at({"ws-alternate-path": (REFUSED, 70.0, 10.0),
                         **{n: (Seen(Outcome.SUCCESS, 101, upgraded=True), 121.0, 120.0)
                            for n in WS_MAIN}})
    (incident,) = incidents(probes, CREDS, since=since.get)
    assert incident.verdict is Verdict.CANNOT_TELL and "Cannot tell yet" in incident.why


def test_a_refusal_on_a_plain_route_proves_nothing_about_auth() -> None:
    """The route is gone (403 to a valid token, a plain GET answers 200): the negative
    probe's 403 there is no longer "refused as expected"; the incident names it."""
    negative = {"ws-rejects-bad-token"}
    (incident,) = incidents(lasts(every(WS_MAIN, REFUSED)), CREDS, negative=negative)
    assert incident.verdict is Verdict.ROUTE
    assert incident.moot == ("ws-rejects-bad-token",)
    assert any(line.startswith("ws-rejects-bad-token (/api/v1/websocket): refused, but")
               for line in incident.evidence)
    # The upgrade answered like a plain GET (200 JSON): the same, even undiagnosed.
    found = incidents(lasts(every(WS_MAIN, Seen(Outcome.NOT_UPGRADED, 200))), CREDS,
                      negative=negative)
    assert found[0].moot == ("ws-rejects-bad-token",)
    # Tokens refused on every path: a credentials question, where the negative probe's
    # refusal is not put in doubt (a plain GET answering 200 there changes nothing).
    (incident,) = incidents(lasts(every(WS_ALL, REFUSED)), CREDS, negative=negative)
    assert incident.verdict is Verdict.CREDENTIALS and incident.moot == ()
