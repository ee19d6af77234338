"""A flow on the status page and in the results API (issue 23): the failing step named, every
step in a table, the extracted secret redacted, everything a target sent escaped; from real
runs against loopback servers (the simulator, and an app that answers hostile bytes)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from monitor.config import Config, load_text
from monitor.demo.simulator import DEMO_PASSWORD, RunningSimulator
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.sinks.history import History
from monitor.web.api import results_payload
from monitor.web.statuspage import render_index, render_probe
from tests.support.html import parse_strict, texts
from tests.support.servers import serving

EVIL = '<script>alert("x")</script>'


def flow_config(base: str, ws: str) -> Config:
    return load_text(f"""\
probes:
  - name: e2e
    retries: 0
    flow:
      - name: login
        http: {{url: "{base}/auth/login", method: POST,
                json_body: {{email: e2e@example.com, password: "${{E2E_PASSWORD}}"}}}}
        extract: {{token: {{json: access_token}}}}
      - name: create-thread
        http: {{url: "{base}/api/threads", method: POST, expect: {{status: [201]}},
                headers: {{Authorization: "Bearer ${{steps.login.token}}"}}}}
        extract: {{thread_id: {{json: id}}}}
      - name: chat
        websocket: {{url: "{ws}/api/v1/websocket",
                     headers: {{Authorization: "Bearer ${{steps.login.token}}"}}}}
      - name: delete-thread
        always: true
        http: {{url: "{base}/api/threads/${{steps.create-thread.thread_id}}", method: DELETE,
                headers: {{Authorization: "Bearer ${{steps.login.token}}"}}}}
""", env={"E2E_PASSWORD": DEMO_PASSWORD})


async def test_the_failing_step_on_every_page(sim: RunningSimulator, ctx: ProbeContext) -> None:
    config = flow_config(sim.url, sim.ws_url)
    history = History()
    history.configure(config)
    sim.sim.mode = "thread_create_fails"
    result = await run_probe(config.probes[0], ctx)
    history.observe(result)
    index, page = render_index(history), render_probe(history, "e2e")
    for html in (index, page):
        tree = parse_strict(html)
        said = texts(tree)
        assert "step create-thread: HTTP 500, expected 201" in said
        assert "eyJ" not in html  # the login's token, extracted as secret
    said = texts(parse_strict(page))
    assert "failing step create-thread" in said
    # The table of steps: each with its kind, what it did, its answer and detail.
    assert "login http success" in said and "HTTP 200" in said
    assert "create-thread http unexpected_status" in said
    assert "chat websocket not run" in said and "not run: step create-thread failed" in said
    assert "delete-thread (always) http skipped" in said
    assert '<tr class="fail"><td>create-thread</td>' in page
    # The API says the same, the failing step as "step".
    payload = results_payload(history)
    (entry,) = payload["probes"]
    assert entry["last"]["step"] == "create-thread"
    assert [s["name"] for s in entry["last"]["step_results"]] == [
        "login", "create-thread", "chat", "delete-thread"]
    assert "eyJ" not in json.dumps(payload)


@pytest.fixture
async def hostile() -> AsyncIterator[str]:
    async def login(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok-" + "x" * 20, "note": EVIL},
                                 headers={"X-Evil": EVIL})

    async def threads(request: web.Request) -> web.Response:
        return web.json_response({"detail": EVIL}, status=500, reason="Oops <b>",
                                 headers={"X-Evil": EVIL})

    app = web.Application()
    app.router.add_post("/auth/login", login)
    app.router.add_post("/api/threads", threads)
    async with serving(app) as base:
        yield base


async def test_what_a_target_sends_is_escaped_in_the_steps(hostile: str,
                                                           ctx: ProbeContext) -> None:
    config = flow_config(hostile, "ws://127.0.0.1:1")
    history = History()
    history.configure(config)
    history.observe(await run_probe(config.probes[0], ctx))
    for html in (render_index(history), render_probe(history, "e2e")):
        parse_strict(html)
        assert "<script>" not in html and 'alert("x")' not in html
        assert "tok-xxxx" not in html
    assert "&lt;script&gt;" in render_probe(history, "e2e")
