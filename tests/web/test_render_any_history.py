"""Every page renders from any history: generated configs (HTTP and WebSocket probes on two
hosts, negative probes with any subset of the variants), generated runs of every outcome
with hostile evidence, a reload that drops and adds probes, late runs of a dropped probe,
and the empty history. Each page must be strictly well-formed HTML (tests/support/html.py)
that names every run as everywhere else (NAME@VARIANT), and /api/v1/results must say the
same.

The 500 of issue 20 (an incident made only of a negative probe's variants) is one of the
histories this space holds; test_an_incident_of_variants_only pins it by hand as well.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Config, load_text
from monitor.config.schema.negative import VARIANTS
from monitor.outcomes import Outcome
from monitor.result import (
    Diagnosis,
    Evidence,
    Frame,
    FrameTypes,
    Redirect,
    Result,
    StepTiming,
)
from monitor.runname import run_name
from monitor.sinks.history import History
from monitor.web.api import results_payload
from monitor.web.statuspage import render_index, render_probe, render_variants, variants_of
from tests.support.html import parse_strict, texts

RENDER = settings(max_examples=60, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HOSTS = ("127.0.0.1:1", "127.0.0.2:1")
PATHS = ("/api/v1/websocket", "/ws", "/api/health")
# Anything a target can send: markup, quotes, controls (C0, DEL, C1), noncharacters.
HOSTILE = st.lists(st.characters().map(str) | st.sampled_from(
    ["<", ">", "&", '"', "'", "\x1b[2J", "\x00", "\x85", "\ud800", "\ufffe", "</td>",
     "<script>", "&amp;", "]]>", "\r\n"]), max_size=8).map("".join)


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # http | websocket
    host: str
    path: str
    negative: bool
    variants: tuple[str, ...]

    def run_names(self) -> list[str]:
        return [run_name(self.name, v) for v in (self.variants or (None,))]

    def url(self) -> str:
        return f"{'ws' if self.kind == 'websocket' else 'http'}://{self.host}{self.path}"


def config_text(specs: list[Spec]) -> str:
    """probes.yaml as JSON (YAML reads it): a jwt provider the negative probes derive their
    variants from (iss and aud, so that every variant can be built)."""
    probes: list[dict[str, Any]] = []
    for s in specs:
        body: dict[str, Any] = {"url": s.url()}
        if s.negative:
            body.update(auth="jwt", expect_rejected=True)
            if s.variants:
                body["variants"] = list(s.variants)
        probes.append({"name": s.name, s.kind: body})
    return json.dumps({"auth": {"jwt": {"type": "jwt", "secret_env": "NOT_NEEDED",
                                        "claims": {"sub": "a", "iss": "i", "aud": "x"}}},
                       "probes": probes})


def load(specs: list[Spec]) -> Config:
    return load_text(config_text(specs), env={})


names = st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True).filter(
    lambda n: n not in (".", ".."))  # refused at load: not a usable URL path segment
specs = st.lists(
    st.builds(Spec, name=names, kind=st.sampled_from(["http", "websocket"]),
              host=st.sampled_from(HOSTS), path=st.sampled_from(PATHS),
              negative=st.booleans(),
              variants=st.lists(st.sampled_from(VARIANTS), unique=True, max_size=4)
              .map(tuple)),
    max_size=6, unique_by=lambda s: s.name,
).map(lambda xs: [s if s.negative else Spec(s.name, s.kind, s.host, s.path, False, ())
                  for s in xs])


@st.composite
def run_of(draw: st.DrawFn, spec: Spec, key: str, started: float) -> Result:
    variant = key.partition("@")[2] or None
    upgraded = spec.kind == "websocket" and draw(st.booleans())
    status = 101 if upgraded else draw(st.sampled_from([None, 200, 307, 403, 404, 500]))
    final = draw(st.booleans()) or draw(st.booleans())
    diagnosis = draw(st.none() | st.builds(
        Diagnosis, st.sampled_from([None, 200, 404]), st.none() | HOSTILE, st.none() | HOSTILE,
        HOSTILE, st.none() | HOSTILE))
    evidence = Evidence(
        detail=draw(HOSTILE), status_code=status,
        headers=tuple(draw(st.lists(st.tuples(HOSTILE, HOSTILE), max_size=2))),
        content_type=draw(st.none() | HOSTILE), body_excerpt=draw(st.none() | HOSTILE),
        close_code=draw(st.sampled_from([None, 1000, 1008, 1011])),
        close_reason=draw(st.none() | HOSTILE),
        step=draw(st.sampled_from([None, 0, 2])), step_name=draw(st.none() | HOSTILE),
        last_message=draw(st.none() | HOSTILE), subprotocol=draw(st.none() | HOSTILE),
        events_seen=tuple(draw(st.lists(HOSTILE, max_size=2))), diagnosis=diagnosis,
        hint=draw(st.none() | HOSTILE), retry_after=draw(st.none() | HOSTILE),
        reflected_in=draw(st.none() | HOSTILE),
        frames_seen=tuple(FrameTypes(1.0, ((p, v),)) for p, v in
                          draw(st.lists(st.tuples(HOSTILE, st.none() | HOSTILE), max_size=2))),
        redirects=tuple(Redirect(c, loc) for c, loc in
                        draw(st.lists(st.tuples(st.sampled_from([301, 307]), HOSTILE),
                                      max_size=2))))
    return Result(
        probe=spec.name, type=spec.kind, target=spec.url(),
        outcome=draw(st.sampled_from(list(Outcome))), started_at=started,
        duration_seconds=draw(st.floats(0, 30)), status_code=status,
        close_code=evidence.close_code if upgraded else None, upgraded=upgraded,
        phases=(("connect", 0.001),),
        steps=tuple(StepTiming(i, n, 0.01) for i, n in
                    enumerate(draw(st.lists(HOSTILE, max_size=2)))),
        evidence=evidence, attempt=1 if final else 2, final=final,
        trace_id=draw(st.sampled_from([None, "0af7651916cd43dd8448eb211c80319c"])),
        span_id="b7ad6b7169203331", variant=variant,
        transcript=tuple(Frame("received", 1.0, "text", 3, t)
                         for t in draw(st.lists(HOSTILE, max_size=2))),
        transcript_omitted=draw(st.sampled_from([0, 3])))


@st.composite
def feed(draw: st.DrawFn, history: History, all_specs: list[Spec], t0: float) -> None:
    """Runs of some of ``all_specs``' runs (which may include probes the history does not
    hold: late runs of a dropped probe), in time order."""
    keyed = [(s, k) for s in all_specs for k in s.run_names()]
    if not keyed:
        return
    for i in range(draw(st.integers(0, 12))):
        spec, key = draw(st.sampled_from(keyed))
        history.observe(draw(run_of(spec, key, t0 + i)))


def every_page(history: History) -> dict[str, str]:
    """Every page the daemon serves for this history, by path, and the API's JSON."""
    pages = {"/": render_index(history)}
    keys = history.probes()
    for key in keys:
        pages[f"/probe/{key}"] = render_probe(history, key)
    for name in {k.partition("@")[0] for k in keys if "@" in k}:
        assert variants_of(history, name)
        pages[f"/probe/{name}"] = render_variants(history, name)
    pages["/api/v1/results"] = json.dumps(results_payload(history))
    return pages


def check_pages(history: History) -> None:
    keys = history.probes()
    pages = every_page(history)
    trees = {}
    for path, page in pages.items():
        if path == "/api/v1/results":
            continue
        trees[path] = tree = parse_strict(page, path)
        assert "<script" not in page, path
        assert not tree.findall(".//script")
    index = trees["/"]
    rows = [tr.get("data-probe") for tr in index.iter("tr") if tr.get("data-probe")]
    assert rows == keys  # one row per run, named NAME@VARIANT, in config order
    links = {a.get("href") for a in index.iter("a")}
    for key in keys:
        assert "probe/" + quote(key, safe="") in links, key
    # Every member of an incident card links to a run the daemon has a page for.
    for li in index.iter("li"):
        for a in li.iter("a"):
            if a.get("data-probe") is not None:
                assert a.get("data-probe") in keys
    api = json.loads(pages["/api/v1/results"])
    assert [p["probe"] for p in api["probes"]] == keys
    for p in api["probes"]:
        for r in [p["last"], *p["runs"]]:
            if r is not None:
                assert r["probe"] == p["probe"]  # the records name their run the same way
    for incident in api["incidents"]:
        assert set(incident["probes"]) <= set(keys)


@given(first=specs, second=specs, data=st.data())
@RENDER
def test_every_page_renders_from_any_history(first: list[Spec], second: list[Spec],
                                             data: st.DataObject) -> None:
    history = History()
    history.configure(load(first))
    t0 = time.time() - 1000
    data.draw(feed(history, first, t0))
    check_pages(history)
    # A reload keeping some probes, dropping the others and adding new ones; runs of the
    # dropped ones that were under way arrive after it and are not kept.
    kept = [s for s in first if data.draw(st.booleans())]
    fresh = [s for s in second if s.name not in {k.name for k in first}]
    history.configure(load(kept + fresh))
    data.draw(feed(history, first + fresh, t0 + 100))
    check_pages(history)
    assert history.probes() == [k for s in kept + fresh for k in s.run_names()]


def test_the_empty_history_and_no_probes() -> None:
    for history in (History(), _configured([])):
        pages = every_page(history)
        index = parse_strict(pages["/"])
        assert "no probes configured" in texts(index)
        assert json.loads(pages["/api/v1/results"])["probes"] == []
    history = _configured([Spec("neg", "websocket", HOSTS[0], PATHS[0], True, VARIANTS)])
    pages = every_page(history)  # configured, no run yet: every page still renders
    assert len(pages) == 1 + len(VARIANTS) + 1 + 1
    for path, page in pages.items():
        if path != "/api/v1/results":
            assert "pending" in page or "no runs yet" in page, path
            parse_strict(page, path)


def _configured(all_specs: list[Spec]) -> History:
    history = History()
    history.configure(load(all_specs))
    return history


def negative_ws() -> list[Spec]:
    return [Spec("health", "http", HOSTS[0], "/api/health", False, ()),
            Spec("ws-golden-path", "websocket", HOSTS[0], "/api/v1/websocket", False, ()),
            Spec("ws-fails-closed", "websocket", HOSTS[0], "/api/v1/websocket", True,
                 ("no_token", "expired", "token_in_query_only"))]


def got_in(variant: str, started: float) -> Result:
    return Result(probe="ws-fails-closed", type="websocket",
                  target=f"ws://{HOSTS[0]}/api/v1/websocket",
                  outcome=Outcome.AUTH_NOT_ENFORCED, started_at=started,
                  duration_seconds=0.01, status_code=101, upgraded=True, variant=variant,
                  evidence=Evidence(detail=f"variant {variant} got in"))


@pytest.mark.parametrize("failing", [("no_token",), ("no_token", "token_in_query_only")])
def test_an_incident_of_variants_only(failing: tuple[str, ...]) -> None:
    """auth_demo_mode's page: only ws-fails-closed's variants fail (the 500 of issue 20)."""
    history = _configured(negative_ws())
    now = time.time()
    for variant in ("no_token", "expired", "token_in_query_only"):
        if variant not in failing:
            history.observe(Result(probe="ws-fails-closed", type="websocket",
                                   target=f"ws://{HOSTS[0]}/api/v1/websocket",
                                   outcome=Outcome.SUCCESS, started_at=now, status_code=403,
                                   duration_seconds=0.01, variant=variant))
    for variant in failing:
        history.observe(got_in(variant, now))
    check_pages(history)
    index = parse_strict(render_index(history))
    (card,) = [s for s in index.iter("section") if s.get("data-incident")]
    assert card.get("data-verdict") == "authentication not enforced"
    members = [a.get("data-probe") for a in card.iter("a")]
    assert members == [f"ws-fails-closed@{v}" for v in failing]
    assert f"{len(failing)} of {len(history.probes())} probes failing" in texts(index)
    api = results_payload(history)
    assert api["incidents"][0]["probes"] == members
    group = parse_strict(render_variants(history, "ws-fails-closed"))
    assert f"{len(failing)} of 3 variants failing" in texts(group)
    assert [tr.get("data-probe") for tr in group.iter("tr") if tr.get("data-probe")] == [
        "ws-fails-closed@no_token", "ws-fails-closed@expired",
        "ws-fails-closed@token_in_query_only"]
    page = parse_strict(render_probe(history, "ws-fails-closed@no_token"))
    assert "all variants of ws-fails-closed" in texts(page)


def test_controls_from_a_target_are_shown_not_sent() -> None:
    """ESC, NUL, C1 and noncharacters cannot be carried by HTML: the page shows them as
    control pictures (or U+FFFD) and stays well-formed."""
    history = _configured(negative_ws())
    history.observe(Result(probe="health", type="http", target=f"http://{HOSTS[0]}/api/health",
                           outcome=Outcome.UNEXPECTED_STATUS, started_at=time.time(),
                           duration_seconds=0.01, status_code=500,
                           evidence=Evidence(detail="HTTP 500 \x1b[2J\x00\x85\ufffe",
                                             body_excerpt="\x1b]0;owned\x07<b>")))
    page = render_probe(history, "health")
    parse_strict(page)
    assert "\x1b" not in page and "\x00" not in page and "\x85" not in page
    assert "\u241b[2J\u2400" in page and "\u241b]0;owned\u2407&lt;b&gt;" in page
