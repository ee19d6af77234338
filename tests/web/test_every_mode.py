"""Every page in every simulator mode: the simulator and the daemon (the shipped probes.yaml,
the demo's environment at a 1.5 s interval) as processes; the simulator switched through every
mode it lists itself; in each, once every run has been made in that mode, `/`,
`/probe/NAME@VARIANT` for every run, `/probe/NAME` for every probe (its variants' list for a
negative probe) and `/api/v1/results` fetched, each a 200 and, for the pages, strictly
well-formed HTML (tests/support/html.py) that names every run as the API does.

This is the class of issue 20's first bug: `/` answered 500 whenever an incident held only a
negative probe's variants (auth_demo_mode, auth_test_headers, auth_lax_validation,
auth_query_token). Headless Chromium opens a sample of the pages in one of those modes.

The pages of one mode are parsed while the daemon runs the next, and a run's row already
checked is not parsed again (StrictPages): html5lib takes a second a megabyte, and the
probe pages grow by a run or two a mode.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element

from prometheus_client.parser import text_string_to_metric_families

from monitor.config import SHIPPED_CONFIG, load_file
from monitor.demo.modes import MODES
from monitor.demo.run import REGRESSIONS, demo_env
from monitor.runname import split
from tests.support.browser import browse, chromium
from tests.support.html import StrictPages, texts
from tests.support.servers import SECRET, DaemonProc, SimProc, http_get, start_daemon

INTERVAL = 1.5
ROUND_TIMEOUT = 20.0  # one round is about INTERVAL + the 1.6 s timeout; generous under load
# The modes issue 20 found the 500 in, and the one where every bad token gets in: the runs
# each lets in must show before its pages are judged (they do not depend on timings).
SECURITY = ("auth_demo_mode", "auth_test_headers", "auth_lax_validation", "auth_query_token",
            "auth_emergency_bypass")
EXPECTED = {r.mode: r.fails for r in REGRESSIONS}
BROWSER_MODE = "auth_demo_mode"


@dataclass
class Fetched:
    mode: str
    pages: dict[str, str]  # path -> body
    api: dict[str, Any]


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()


# The two families run_starts reads: the exposition's other lines (hundreds, histograms
# among them) are left out before parsing, which is most of a poll's CPU.
STARTS_FAMILIES = ("synthmon_probe_last_run_timestamp_seconds", "probe_duration_seconds")


def run_starts(d: DaemonProc) -> dict[str, float]:
    """Run name -> when its last run started, from /metrics (end minus duration)."""
    status, text = http_get(d.url + "/metrics")
    assert status == 200
    ends: dict[str, float] = {}
    took: dict[str, float] = {}
    wanted = "\n".join(line for line in text.splitlines()
                       if line.removeprefix("# HELP ").removeprefix("# TYPE ")
                       .startswith(tuple(f"{f} " for f in STARTS_FAMILIES) +
                                   tuple(f"{f}{{" for f in STARTS_FAMILIES)))
    for family in text_string_to_metric_families(wanted + "\n"):
        for s in family.samples:
            key = s.labels.get("probe", "")
            if s.labels.get("variant"):
                key += "@" + s.labels["variant"]
            if s.name == "synthmon_probe_last_run_timestamp_seconds":
                ends[key] = s.value
            elif s.name == "probe_duration_seconds":
                took[key] = s.value
    return {k: ends[k] - took.get(k, 0.0) for k in ends}


def wait_round(d: DaemonProc, keys: list[str], since: float, mode: str) -> None:
    """Until every run has started (and ended) after ``since``; in a security mode, until
    the runs it lets in show it as well."""
    deadline = time.monotonic() + ROUND_TIMEOUT
    want = EXPECTED.get(mode, {}) if mode in SECURITY else {}
    while True:
        starts = run_starts(d)
        fresh = all(starts.get(k, 0.0) > since for k in keys)
        if fresh and want:
            got = {p["probe"]: p["outcome"] for p in
                   json.loads(http_get(d.url + "/api/v1/results")[1])["probes"]}
            fresh = all(got.get(k) == outcome for k, outcome in want.items())
        if fresh:
            return
        assert time.monotonic() < deadline, (
            f"mode {mode}: not every run made in it within {ROUND_TIMEOUT}s: "
            f"{sorted(k for k in keys if starts.get(k, 0.0) <= since)}")
        time.sleep(0.25)


def fetch_all(d: DaemonProc, mode: str, keys: list[str], groups: list[str]) -> Fetched:
    paths = ["/", *(f"/probe/{quote(k, safe='')}" for k in keys),
             *(f"/probe/{quote(g, safe='')}" for g in groups)]
    pages = {}
    for path in paths:
        status, ctype, body = get(d.url + path)
        assert status == 200, (mode, path, body[:500])
        assert ctype.startswith("text/html"), (mode, path, ctype)
        pages[path] = body
    status, ctype, body = get(d.url + "/api/v1/results")
    assert status == 200 and ctype.startswith("application/json"), (mode, status, ctype)
    return Fetched(mode, pages, json.loads(body))


def rows(tree: Element) -> list[str]:
    return [tr.get("data-probe", "") for tr in tree.iter("tr") if tr.get("data-probe")]


def check(f: Fetched, keys: list[str], groups: list[str], strict: StrictPages) -> None:
    """Every page of one mode: strictly well-formed, saying what the API says."""
    trees = {path: strict.parse(page, f"mode {f.mode}: {path}")
             for path, page in f.pages.items()}
    api_keys = [p["probe"] for p in f.api["probes"]]
    assert api_keys == keys, f.mode
    for p in f.api["probes"]:
        assert all(r["probe"] == p["probe"] for r in [p["last"], *p["runs"]] if r), f.mode
    failing = [p["probe"] for p in f.api["probes"] if p["success"] is False]

    index = trees["/"]
    assert rows(index) == keys, f.mode
    shown_failing = [tr.get("data-probe") for tr in index.iter("tr")
                     if tr.get("data-probe") and "fail" in (tr.get("class") or "").split()]
    cards = [s for s in index.iter("section") if s.get("data-incident")]
    members = [a.get("data-probe") for c in cards for a in c.iter("a") if a.get("data-probe")]
    # The page and the API were fetched a moment apart: a run may have ended in between.
    # What the page says of itself must hold: every failing row is on exactly one card.
    assert sorted(members) == sorted(shown_failing), (f.mode, members, shown_failing)
    for incident in f.api["incidents"]:
        assert set(incident["probes"]) <= set(keys), (f.mode, incident)
    if sorted(failing) == sorted(shown_failing):  # no run ended between the two fetches
        assert sorted(m for i in f.api["incidents"] for m in i["probes"]) == sorted(members)

    for key in keys:
        tree = trees[f"/probe/{quote(key, safe='')}"]
        (h1,) = list(tree.iter("h1"))
        assert h1.text == key, (f.mode, key)
        name, variant = split(key)
        if variant is not None:
            assert f"all variants of {name}" in texts(tree), (f.mode, key)
    for group in groups:
        tree = trees[f"/probe/{quote(group, safe='')}"]
        assert rows(tree) == [k for k in keys if split(k)[0] == group], (f.mode, group)


def test_every_page_in_every_simulator_mode(sim_proc: SimProc, tmp_path: Path,
                                            daemons: list[DaemonProc]) -> None:
    status, body = http_get(sim_proc.url + "/-/simulator/mode")
    assert status == 200
    modes: list[str] = json.loads(body)["modes"]
    assert modes == list(MODES) and len(modes) > 20  # the simulator's own list, all of it

    env = {**sim_proc.env(), **demo_env(SECRET, sim_proc.url, sim_proc.ws_url, INTERVAL)}
    config = load_file(str(SHIPPED_CONFIG), env=env)
    keys = [p.key for p in config.probes]
    groups = list(dict.fromkeys(p.name for p in config.probes if p.variant is not None))
    assert groups == ["ws-fails-closed"] and len(keys) > len(set(p.name for p in config.probes))
    d = start_daemon(SHIPPED_CONFIG, env, tmp_path)
    daemons.append(d)

    started = time.monotonic()
    strict = StrictPages()
    pending: Fetched | None = None
    failing_by_mode: dict[str, list[str]] = {}
    for mode in modes:
        sim_proc.set_mode(mode)
        switched = time.time()
        if pending is not None:
            check(pending, keys, groups, strict)  # while the daemon runs this mode's round
        wait_round(d, keys, switched, mode)
        pending = fetch_all(d, mode, keys, groups)
        failing_by_mode[mode] = [p["probe"] for p in pending.api["probes"]
                                 if p["success"] is False]
        if mode == BROWSER_MODE:
            browser_sample(d, pending)
    assert pending is not None
    check(pending, keys, groups, strict)
    took = time.monotonic() - started

    # The walk reached the states of the bug: incidents made only of a negative probe's
    # variants, in each of the modes the issue names.
    for mode in SECURITY[:4]:
        variants_only = [k for k in failing_by_mode[mode] if "@" in k]
        assert variants_only, (mode, failing_by_mode[mode])
    print(f"\n{len(modes)} modes, {len(keys)} runs, "
          f"{len(modes) * (2 + len(keys) + len(groups))} responses in {took:.0f}s")


def browser_sample(d: DaemonProc, fetched: Fetched) -> None:
    """The overview, a variant's page and the variants' list in headless Chromium."""
    chromium()
    failing = [p["probe"] for p in fetched.api["probes"] if p["success"] is False]
    variant = next(k for k in failing if "@" in k)
    dom = browse(d.url + "/", "--dump-dom")
    assert re.search(r'<section class="card bad" data-incident="[^"]*" '
                     r'data-verdict="authentication not enforced"', dom), dom[:3000]
    assert f'data-probe="{variant}"' in dom and "probes failing" in dom
    dom = browse(d.url + "/probe/" + quote(variant, safe=""), "--dump-dom")
    assert f"<h1>{variant}</h1>" in dom and "auth_not_enforced" in dom, dom[:3000]
    dom = browse(d.url + "/probe/" + quote(split(variant)[0], safe=""), "--dump-dom")
    assert f'data-probe="{variant}" data-outcome="auth_not_enforced"' in dom, dom[:3000]
