"""The status page in headless Chromium, in the four states an on-call engineer meets:
healthy, one probe failing, an incident of three probes, a failed reload; each at a desktop
width (1400 px) and a phone's (390 px).

A real daemon probes the simulator; the simulator's mode makes the states. Each screenshot
is checked by pixel sampling (Pillow): the sparklines' failure colour is drawn nowhere else
on the page, so its pixels are the failures the sparklines show; the page's HTML (it has no
scripts, so that is the DOM) is checked for the cards and the verdict. The PNGs land in
tests/artifacts/ for a person.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import DaemonProc, SimProc, http_get, http_post, start_daemon
from tests.web.test_browser import ARTIFACTS, browse, chromium

Image = pytest.importorskip("PIL.Image")

PROBES = """\
defaults: {interval: 2s, timeout: 1900ms, retries: 0}  # generous: the machine may be loaded
auth:
  jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: screens}, ttl: 5m}
probes:
  - name: health
    http: {url: "${STAGING_URL}/health", expect: {status: 200}}
  - name: ws-golden-path
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
      diagnose: true
      steps:
        - {name: welcome, expect: {json: {type: connect}, timeout: 1500ms}}
        - {name: ask, send: {json: {type: user_message, payload: {content: hi}}}}
        - name: events
          expect_events:
            types: [agent_started, agent_thinking, tool_executing, tool_completed,
                    agent_completed]
            timeout: 1500ms
  - name: ws-subprotocol-only
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
      send_token_as: [subprotocol]
      subprotocols: [jwt-auth]
  - name: ws-header-only
    websocket:
      url: ${STAGING_WS_URL}/api/v1/websocket
      auth: jwt
  - name: ws-alternate-path
    websocket:
      url: ${STAGING_WS_URL}/ws
      auth: jwt
      send_token_as: [authorization_header, subprotocol]
      subprotocols: [jwt-auth]
"""
BAR_BAD = (0xD9, 0x30, 0x25)   # --bar-bad: the sparklines' failure marks, nothing else
BAR_OK = (0x34, 0xA8, 0x53)    # --bar-ok
BAD_BG = (0xFC, 0xE8, 0xE6)    # --bad-bg: the reload banner (and failing pills)
WIDTHS = {"desktop": "1400,1000", "phone": "390,2200"}
WAIT = 45.0


def results(d: DaemonProc) -> dict[str, dict[str, Any]]:
    data = json.loads(http_get(d.url + "/api/v1/results")[1])
    return {p["probe"]: p for p in data["probes"]}


def wait_until(d: DaemonProc, what: str, ok: Callable[[dict[str, dict[str, Any]]], bool]
               ) -> None:
    deadline = time.monotonic() + WAIT
    while not ok(by := results(d)):
        assert time.monotonic() < deadline, f"not {what} within {WAIT}s: " + json.dumps(
            {n: (p["outcome"], len(p["runs"])) for n, p in by.items()})
        time.sleep(0.3)


def count(img: Any, colour: tuple[int, int, int], tolerance: int = 6) -> int:
    rgb = img.convert("RGB")
    return sum(n for n, c in rgb.getcolors(maxcolors=1 << 24)
               if all(abs(a - b) <= tolerance for a, b in zip(c, colour, strict=True)))


def shoot(d: DaemonProc, state: str) -> dict[str, tuple[Any, str]]:
    """Screenshot of / at both widths, with the page's HTML (the page has no scripts: what
    the server sends is the DOM Chromium renders)."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = {}
    status, dom = http_get(d.url + "/")
    assert status == 200
    for label, size in WIDTHS.items():
        target = ARTIFACTS / f"screen-{state}-{label}.png"
        target.unlink(missing_ok=True)
        browse(d.url + "/", f"--screenshot={target}", size=size)
        assert target.is_file(), f"chromium wrote no screenshot to {target}"
        img = Image.open(target)
        img.load()
        width = int(size.split(",")[0])
        assert img.size[0] == width, img.size
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 24)) > 50, f"{target} is blank"
        out[label] = (img, dom)
    return out


def test_status_page_screens(sim_proc: SimProc, tmp_path: Path,
                             daemons: list[DaemonProc]) -> None:
    chromium()
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    d = start_daemon(path, sim_proc.env(), tmp_path)
    daemons.append(d)

    # Healthy: green sparklines, not one failure mark.
    wait_until(d, "healthy with 3 runs each", lambda by: all(
        p["outcome"] == "success" and len(p["runs"]) >= 3 for p in by.values()))
    for label, (img, dom) in shoot(d, "healthy").items():
        assert "all 5 probes passing" in dom, label
        assert "Failing now" not in dom
        assert count(img, BAR_OK) > 100, label
        assert count(img, BAR_BAD) == 0, label

    # One failure: the agent skips events; only the golden path fails, fast (a few ms).
    sim_proc.set_mode("events_missing")
    wait_until(d, "golden path failing twice", lambda by: sum(
        r["outcome"] == "unexpected_message" for r in by["ws-golden-path"]["runs"]) >= 2)
    for label, (img, dom) in shoot(d, "one-failure").items():
        assert "1 of 5 probes failing" in dom, label
        assert dom.count("data-incident=") == 1 and 'data-probes="1"' in dom
        # one sparkline counts the failures, the other four none
        assert len(re.findall(r'data-failed="[1-9]\d*"', dom)) == 1
        assert dom.count('data-failed="0"') == 4
        assert count(img, BAR_BAD) >= 30, f"{label}: the failures are not visible"

    # An incident of three probes: the main path's route is gone, /ws still gets in.
    sim_proc.set_mode("ws_route_missing")
    wait_until(d, "three probes refused", lambda by: all(
        by[n]["outcome"] == "handshake_rejected"
        for n in ("ws-golden-path", "ws-subprotocol-only", "ws-header-only"))
        and by["ws-alternate-path"]["outcome"] == "success")
    for label, (img, dom) in shoot(d, "incident").items():
        assert "3 of 5 probes failing · 1 incident" in dom, label
        assert dom.count("data-incident=") == 1
        assert 'data-verdict="route suspected" data-probes="3"' in dom
        assert "Route suspected: ws-alternate-path upgraded on /ws" in dom
        assert count(img, BAR_BAD) >= 60, label
    probe_page_chart_is_full_width(d)

    # A failed reload, on a healthy page: the banner, with the error, until a good reload.
    sim_proc.set_mode("healthy")
    wait_until(d, "healthy again", lambda by: all(
        p["outcome"] == "success" for p in by.values()))
    path.write_text(PROBES + "  - name: health\n    http: {url: \"${STAGING_URL}/x\"}\n")
    status, body = http_post(d.url + "/-/reload")
    assert status == 400, body
    for label, (img, dom) in shoot(d, "reload-failed").items():
        assert 'class="reload" role="alert"' in dom, label
        assert "Reload failed" in dom and "health" in dom
        assert count(img, BAD_BG) > 2000, f"{label}: no reload banner to be seen"
    path.write_text(PROBES)
    assert http_post(d.url + "/-/reload")[0] == 200
    assert "Reload failed" not in http_get(d.url + "/")[1]


def probe_page_chart_is_full_width(d: DaemonProc) -> None:
    """The failure marks of /probe/NAME reach the right edge of the page's content (newest
    right): the chart spans the width (it used to stop at two thirds)."""
    dom = browse(d.url + "/probe/ws-golden-path", "--dump-dom", size="1400,900")
    assert 'class="spark wide"' in dom
    target = ARTIFACTS / "screen-probe-desktop.png"
    target.unlink(missing_ok=True)
    browse(d.url + "/probe/ws-golden-path", f"--screenshot={target}", size="1400,900")
    img = Image.open(target).convert("RGB")
    xs = [x for x in range(0, img.size[0], 2) for y in range(0, img.size[1], 3)
          if all(abs(a - b) <= 6 for a, b in zip(img.getpixel((x, y)), BAR_BAD, strict=True))]
    assert xs, "no failure marks on the probe page"
    assert max(xs) > 0.9 * img.size[0], max(xs)
