"""The status page and /api/v1/results: rendered from a history of made-up runs, and served
by a real daemon against the simulator."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import MEANING, Outcome
from monitor.result import (
    Diagnosis,
    EventMatch,
    EventTiming,
    Evidence,
    Frame,
    FrameTypes,
    Result,
    StepTiming,
)
from monitor.sinks import Sinks
from monitor.sinks.history import History
from monitor.web.api import results_payload
from monitor.web.statuspage import latency_height, render_index, render_probe, sparkline
from monitor.web.summary import cross_check, seen
from tests.support.servers import (
    ROOT,
    DaemonProc,
    SimProc,
    http_get,
    serving_daemon,
    start_daemon,
)

CONFIG = """\
probes:
  - name: api
    http: {url: "http://127.0.0.1:1/api"}
  - name: ws-main
    websocket: {url: "ws://127.0.0.1:1/api/v1/websocket"}
  - name: ws-alt
    websocket: {url: "ws://127.0.0.1:1/ws"}
  - name: never-ran
    http: {url: "http://127.0.0.1:1/x"}
"""

EVIL = '<script>alert("x")</script>'


def history() -> History:
    h = History()
    h.configure(load_text(CONFIG, env={}))
    return h


def run(probe: str, outcome: Outcome, started: float, **kw: Any) -> Result:
    kind = "websocket" if probe.startswith("ws") else "http"
    target = {"api": "http://127.0.0.1:1/api", "ws-main": "ws://127.0.0.1:1/api/v1/websocket",
              "ws-alt": "ws://127.0.0.1:1/ws"}[probe]
    return Result(probe=probe, type=kind, target=target, outcome=outcome, started_at=started,
                  duration_seconds=kw.pop("duration", 0.012), **kw)


def refused_403(started: float, body: str = "Forbidden") -> Result:
    return run("ws-main", Outcome.HANDSHAKE_REJECTED, started, status_code=403,
               evidence=Evidence(
                   detail="the server refused the upgrade: HTTP 403 Forbidden",
                   status_code=403, headers=(("Content-Type", "text/plain"), ("X-Evil", EVIL)),
                   content_type="text/plain", body_excerpt=body,
                   diagnosis=Diagnosis(200, "application/json",
                                       '{"data": {"service": "websocket_ssot"}}',
                                       "GET on this path answers 200 application/json: the path "
                                       "is served by a plain HTTP route.")))


def test_overview_lists_failing_first_with_diagnosis_and_since() -> None:
    h = history()
    now = time.time()
    h.observe(run("api", Outcome.SUCCESS, now - 100, status_code=200,
                  evidence=Evidence(detail="HTTP 200 in 12ms", status_code=200)))
    h.observe(run("ws-alt", Outcome.SUCCESS, now - 100, status_code=101, upgraded=True,
                  evidence=Evidence(detail="upgraded (subprotocol jwt-auth)",
                                    subprotocol="jwt-auth")))
    h.observe(run("ws-main", Outcome.SUCCESS, now - 300, status_code=101, upgraded=True))
    h.observe(refused_403(now - 120))
    h.observe(refused_403(now - 60))
    page = render_index(h)

    assert "1 of 4 probes failing" in page
    assert '<meta http-equiv="refresh"' in page
    assert "<script" not in page  # no scripts of its own, none injected
    cards = page.split("<h2>All probes</h2>")[0]
    assert 'data-probe="ws-main"' in cards and 'data-probe="api"' not in cards
    assert "served by a plain HTTP route" in cards
    assert "refused: HTTP 403 text/plain instead of 101" in cards
    # the streak started with the first of the two 403s, not the latest run
    assert re.search(r"failing since \d\d:\d\d:\d\d UTC \(2m\)", cards), cards
    # the alternate path on the same host got in: the page points at the route
    assert 'data-verdict="route suspected"' in cards
    assert "Route suspected: ws-alt upgraded on /ws of the same host" in cards
    assert 'data-probe="never-ran" data-outcome="pending"' in page
    assert 'href="probe/ws-main"' in page


def test_everything_from_the_server_is_escaped() -> None:
    h = history()
    now = time.time()
    r = refused_403(now, body=f"<html>{EVIL}</html>")
    h.observe(r)
    h.observe(run("api", Outcome.ASSERTION_FAILED, now, status_code=200, evidence=Evidence(
        detail=f"json data.x: expected 1, got {EVIL}", body_excerpt=EVIL,
        headers=(("Set-Cookie", "<b>"),))))
    h.observe(run("ws-alt", Outcome.AUTH_REJECTED, now, status_code=101, upgraded=True,
                  close_code=1008, evidence=Evidence(
                      detail="step welcome: auth error", close_code=1008, close_reason=EVIL,
                      step=0, step_name="welcome", last_message=EVIL,
                      events_seen=(EVIL,))))
    pages = [render_index(h)] + [render_probe(h, n) for n in ("api", "ws-main", "ws-alt")]
    for page in pages:
        assert "<script>" not in page and 'alert("x")' not in page
        assert "<b>" not in re.sub(r"<b>(diagnosis|cross-check[^<]*|Reload failed)</b>", "",
                                   page)
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert escaped in render_probe(h, "ws-main")  # body and header
    assert escaped in render_probe(h, "api")
    probe_alt = render_probe(h, "ws-alt")
    assert probe_alt.count(escaped) >= 3  # close reason, last message, events seen
    assert "welcome" in probe_alt and "1008" in probe_alt


def test_probe_page_keeps_the_last_100_runs_with_evidence() -> None:
    h = history()
    now = time.time()
    for i in range(130):
        ok = i % 10 != 0
        h.observe(run("ws-main", Outcome.SUCCESS if ok else Outcome.CLOSED_BY_SERVER,
                      now - 130 + i, status_code=101, upgraded=True,
                      close_code=None if ok else 1011,
                      steps=(StepTiming(0, "welcome", 0.002),),
                      evidence=Evidence(detail="upgraded; 1 step passed" if ok else
                                        "step welcome: closed by the server 1011",
                                        subprotocol="jwt-auth",
                                        close_code=None if ok else 1011,
                                        close_reason=None if ok else "not ready",
                                        step=None if ok else 0,
                                        step_name=None if ok else "welcome")))
    page = render_probe(h, "ws-main")
    assert "Last 100 runs" in page
    assert page.count('<tr class="') == 100
    assert "1011 “not ready”" in page
    assert "upgraded: 101 Switching Protocols, subprotocol jwt-auth" in page
    assert "outcome changed" in page
    # the big sparkline: one outcome mark and one latency bar per kept run, full width
    assert page.count('<rect class="mark ') == 100 and page.count('<rect class="lat"') == 100
    assert 'class="spark wide"' in page and 'preserveAspectRatio="none"' in page


def test_sparkline_colours_failures_and_handles_no_runs() -> None:
    assert "no runs yet" in sparkline([])
    now = time.time()
    runs = [run("api", Outcome.SUCCESS, now), run("api", Outcome.TIMEOUT, now - 1, duration=5.0),
            run("api", Outcome.SLOW, now - 2)]
    svg = sparkline(runs)
    assert svg.count('<rect class="mark ') == 3 and svg.count('<rect class="lat"') == 3
    assert "var(--bar-bad)" in svg and "var(--bar-slow)" in svg and "var(--bar-ok)" in svg
    assert "1 failed" not in svg and "2 failed" in svg


def marks(svg: str) -> list[tuple[str, float]]:
    """(outcome class, mark height) of every run's outcome mark, oldest first."""
    return [(kind, float(h)) for kind, h in re.findall(
        r'<rect class="mark (\w+)" [^>]*height="([\d.]+)"', svg)]


def lat_heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect class="lat" [^>]*height="([\d.]+)"', svg)]


def test_sparkline_shows_every_failure_whatever_the_latencies() -> None:
    # 3 ms 403s beside 6 s timeouts and 20 ms successes: each failure has a mark as tall as
    # any other, and one outlier leaves the ordinary runs well above a pixel.
    now = time.time()
    mix = [(Outcome.SUCCESS, 0.020), (Outcome.HANDSHAKE_REJECTED, 0.003),
           (Outcome.SUCCESS, 0.025), (Outcome.TIMEOUT, 6.0), (Outcome.SUCCESS, 0.018),
           (Outcome.HANDSHAKE_REJECTED, 0.002)]
    runs = [run("ws-main", o, now - i, duration=d) for i, (o, d) in enumerate(mix)]
    for width, height in ((160, 30), (1000, 84)):
        svg = sparkline(runs, width, height)
        got = marks(svg)
        assert [k for k, _ in got] == ["bad", "ok", "bad", "ok", "bad", "ok"]  # oldest first
        assert len({h for _, h in got}) == 1  # outcome marks all full height
        heights = lat_heights(svg)
        assert max(heights) <= height
        ordinary = heights[-1]  # the 20 ms success, newest
        assert ordinary >= 0.25 * max(heights), heights  # not flattened by the 6 s run
        assert min(heights) >= 1.5  # the 2 ms 403 still has a bar


def test_latency_scale_is_logarithmic_and_bounded() -> None:
    assert latency_height(6.0, 6.0) == 1.0
    assert latency_height(0.0, 6.0) == 0.0
    assert 0.2 < latency_height(0.010, 6.0) < 0.4
    assert latency_height(0.1, 6.0) > 2 * latency_height(0.003, 6.0)
    assert latency_height(10.0, 6.0) == 1.0  # clipped
    assert latency_height(0.0005, 0.0005) == 1.0


def test_no_probes_and_no_runs_yet() -> None:
    empty = History()
    assert "no probes configured" in render_index(empty)
    assert results_payload(empty)["probes"] == []
    h = history()
    page = render_index(h)
    assert "waiting for the first runs of 4 probes" in page and "Failing now" not in page
    assert "no runs yet" in render_probe(h, "api")


def test_every_outcome_is_explained() -> None:
    assert set(MEANING) == set(Outcome)


def test_the_readmes_outcome_table_names_every_outcome() -> None:
    table = (ROOT / "README.md").read_text().split("\n## Outcomes\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^\|[^|]*", table, re.M))
    rows = " ".join(named)
    assert [o.value for o in Outcome if f"`{o.value}`" not in rows] == []


def test_seen_does_not_repeat_what_the_detail_says() -> None:
    now = time.time()
    assert seen(refused_403(now)) == "the server refused the upgrade: HTTP 403 Forbidden"
    closed = run("ws-main", Outcome.AUTH_REJECTED, now, status_code=101, upgraded=True,
                 close_code=1008, evidence=Evidence(detail="step welcome: auth error message",
                                                    close_reason="Authentication failed",
                                                    subprotocol="jwt-auth"))
    assert seen(closed) == ("upgraded: 101 Switching Protocols, subprotocol jwt-auth · "
                            "close 1008 Authentication failed · step welcome: auth error message")


def test_cross_check_always_concludes_and_never_points_at_itself() -> None:
    now = time.time()
    refused = refused_403(now)
    alt_ok = run("ws-alt", Outcome.SUCCESS, now, status_code=101, upgraded=True)
    alt_refused = run("ws-alt", Outcome.HANDSHAKE_REJECTED, now, status_code=403)
    pending = cross_check(refused, {"ws-main": refused, "ws-alt": None})
    assert pending is not None and pending.startswith("Cannot tell")
    both = cross_check(refused, {"ws-main": refused, "ws-alt": alt_refused})
    assert both is not None and both.startswith("Credentials suspected")
    assert both.endswith("One incident with ws-alt.")
    route = cross_check(refused, {"ws-main": refused, "ws-alt": alt_ok}) or ""
    assert route.startswith("Route suspected") and "ws-alt upgraded" in route
    # the alternate path's own refusal never sends the reader to the alternate path
    alt_view = cross_check(alt_refused, {"ws-main": refused, "ws-alt": alt_refused}) or ""
    assert "compare with the alternate" not in alt_view and "ws-alt upgraded" not in alt_view
    other_host = Result(probe="ws-alt", type="websocket", target="ws://elsewhere:1/ws",
                        outcome=Outcome.SUCCESS, started_at=now, duration_seconds=0.1,
                        upgraded=True)
    far = cross_check(refused, {"ws-main": refused, "ws-alt": other_host}) or ""
    assert far.startswith("Cannot tell")
    assert cross_check(alt_ok, {"ws-main": refused, "ws-alt": alt_ok}) is None


def test_results_payload_keeps_its_shape() -> None:
    h = history()
    now = time.time()
    h.observe(refused_403(now - 5))
    h.observe(refused_403(now))
    data = json.loads(json.dumps(results_payload(h)))
    assert [p["probe"] for p in data["probes"]] == ["api", "ws-main", "ws-alt", "never-ran"]
    main = data["probes"][1]
    assert {"probe", "last", "since", "runs"} <= set(main)
    assert main["since"] == now - 5
    assert len(main["runs"]) == 2 and main["runs"][0]["started_at"] == now
    assert main["last"]["outcome"] == "handshake_rejected"
    assert main["last"]["evidence"]["diagnosis"]["status_code"] == 200
    assert main["hint"].startswith("GET on this path answers 200")
    assert main["handshake"] == "refused: HTTP 403 text/plain instead of 101"
    assert data["failing"] == 1
    [incident] = data["incidents"]  # the status page's card, for machines
    assert incident["probes"] == ["ws-main"] and incident["verdict"] == "cannot tell"
    assert incident["cause"] == "handshake_rejected, HTTP 403" and incident["why"]
    assert incident["evidence"][0].startswith("ws-main (/api/v1/websocket): HTTP 403")
    never = data["probes"][3]
    assert never["last"] is None and never["runs"] == [] and never["since"] is None


PROBES = """\
defaults: {retries: 0, interval: 1s, timeout: 900ms}
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: page-user}, ttl: 5m}
probes:
  - name: health
    http: {url: "${STAGING_URL}/health", expect: {status: 200}}
  - name: ws-golden-path
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      expect_subprotocol: jwt-auth
      diagnose: true
  - name: ws-alternate-path
    websocket:
      url: ${STAGING_WS_URL}/ws
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
"""


def wait_runs(d: DaemonProc, n: int, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = http_get(d.url + "/api/v1/results")
        assert status == 200
        data: dict[str, Any] = json.loads(body)
        if all(len(p["runs"]) >= n for p in data["probes"]):
            return data
        assert time.monotonic() < deadline, f"fewer than {n} runs per probe: {body[:2000]}"
        time.sleep(0.2)


def serve_failing_and_passing(sim_proc: SimProc, tmp_path: Path,
                              daemons: list[DaemonProc]) -> DaemonProc:
    """A daemon whose main WebSocket path fails the way the incident did."""
    sim_proc.set_mode("ws_route_missing")
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)
    return d


def test_daemon_serves_page_probe_pages_and_api(sim_proc: SimProc, tmp_path: Path,
                                                daemons: list[DaemonProc]) -> None:
    d = serve_failing_and_passing(sim_proc, tmp_path, daemons)
    data = wait_runs(d, 2)
    by_name = {p["probe"]: p for p in data["probes"]}
    assert by_name["health"]["outcome"] == "success"
    assert by_name["ws-golden-path"]["outcome"] == "handshake_rejected"
    assert "plain HTTP route" in by_name["ws-golden-path"]["hint"]

    status, page = http_get(d.url + "/")
    assert status == 200
    assert "1 of 3 probes failing" in page
    assert "Route suspected: ws-alternate-path upgraded on /ws" in page
    status, page = http_get(d.url + "/probe/ws-golden-path")
    assert status == 200
    assert "refused: HTTP 403" in page and "websocket_ssot" in page
    assert http_get(d.url + "/probe/nope")[0] == 404


class _ThreadNotingHistory(History):
    """The real history, noting which threads read it."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[int] = set()

    def runs(self, probe: str, limit: int | None = None) -> list[Result]:
        self.readers.add(threading.get_ident())
        return super().runs(probe, limit)

    def latest(self) -> dict[str, Result | None]:
        self.readers.add(threading.get_ident())
        return super().latest()


async def test_pages_and_results_are_built_off_the_event_loop(tmp_path: Path) -> None:
    # At 10,000 probes the status page takes seconds to render: on the loop, that would hold
    # back every probe start and inflate every latency being measured.
    path = tmp_path / "probes.yaml"
    path.write_text(CONFIG.replace("probes:\n", "defaults: {retries: 0, interval: 1h}\nprobes:\n"))
    daemon = Daemon(DaemonOptions(str(path)))
    noting = _ThreadNotingHistory()
    daemon.sinks = Sinks(daemon.sinks.metrics, noting, daemon.sinks.log)
    async with serving_daemon(daemon) as base:
        daemon.record(refused_403(time.time()))
        async with aiohttp.ClientSession() as session:
            for path_ in ("/", "/probe/ws-main", "/api/v1/results"):
                async with session.get(base + path_) as resp:
                    assert resp.status == 200, path_
                    body = await resp.text()
                assert "ws-main" in body
                assert noting.readers, path_
                assert threading.get_ident() not in noting.readers, path_
                noting.readers.clear()
            async with session.get(base + "/api/v1/results") as resp:
                assert resp.headers["Content-Type"].startswith("application/json")
                assert "probes" in await resp.json()


def test_probe_page_shows_the_transcript_hint_and_variant_of_a_failing_run() -> None:
    config = load_text("""\
auth:
  jwt: {type: jwt, secret_env: NOT_NEEDED, claims: {sub: a}}
probes:
  - name: neg
    websocket:
      url: ws://127.0.0.1:9/ws
      auth: jwt
      expect_rejected: true
      variants: [no_token]
""")
    history = History()
    history.configure(config)
    now = time.time()
    frames = (Frame("sent", 1.0, "text", 20, '{"type": "user_message"}'),
              Frame("received", 3.5, "close", 9, "1000 cleanup <b>"))
    failing = Result(
        probe="neg", type="websocket", target="ws://127.0.0.1:9/ws",
        outcome=Outcome.AUTH_NOT_ENFORCED, started_at=now, duration_seconds=0.1,
        status_code=101, upgraded=True, variant="no_token",
        events=(EventTiming("2-events", "agent_started", 0.25),),
        transcript=frames, transcript_omitted=3,
        evidence=Evidence(detail="variant no_token got in", hint="a plain-words hint",
                          event_matches=(EventMatch("agent_started", "event",
                                                    "agent_start"),),
                          duplicates=(("agent_started", 2),),
                          frames_seen=(FrameTypes(2.0, (("type", "system_message"),
                                                        ("event", "agent_start"))),)))
    history.observe(failing)
    assert history.probes() == ["neg@no_token"]
    page = render_probe(history, "neg@no_token")
    assert "transcript (2 frames)" in page and "3 more frames not kept" in page
    assert "1000 cleanup &lt;b&gt;" in page  # escaped like every value from a server
    assert "a plain-words hint" in page and "<dt>variant</dt><dd>no_token</dd>" in page
    assert "agent_started at event as agent_start" in page
    assert "agent_started ×2" in page and "event=agent_start" in page
    # A passing run keeps no transcript on the page.
    history.observe(replace(failing, outcome=Outcome.SUCCESS, started_at=now + 1))
    assert "transcript (" not in render_probe(history, "neg@no_token").split("Last 2 runs")[0]


def test_the_page_says_what_a_flooding_target_sent_beyond_what_was_kept() -> None:
    """Counted, not kept: the headers, event types and frames beyond the bounds, and the
    bulk of an older run's evidence the history trimmed, are said to be missing."""
    h = history()
    now = time.time()
    frame = FrameTypes(1.0, (("type", "flood_0"),))
    flood = run("ws-main", Outcome.MESSAGE_TIMEOUT, now, status_code=101, upgraded=True,
                evidence=Evidence(detail="step 1: events still missing", status_code=101,
                                  headers=(("Server", "x"),), headers_omitted=36,
                                  events_seen=("flood_0", "flood_1"),
                                  events_seen_omitted=41_230, frames_seen=(frame,),
                                  frames_seen_omitted=41_231))
    h.observe(replace(flood, started_at=now - 10,
                      evidence=replace(flood.evidence, trimmed=True, headers=())))
    h.observe(flood)
    page = render_probe(h, "ws-main")
    assert "response headers (1, 36 more not kept)" in page
    assert "flood_0, flood_1 … and 41,230 more" in page
    assert "frames that arrived (the first 1 of 41,232)" in page
    assert page.count("were not kept: the history keeps 1 MiB of them per probe") == 1
