"""A flow's runs (issue 23) over real loopback sockets: the simulator's end-to-end suite, and
small aiohttp apps written here for what the simulator cannot do (answer late, count the
requests of a retried flow). The runner is reached as the daemon reaches it (run_probe,
run_with_retries), never called around."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict

import pytest
from aiohttp import web

from monitor.config import Probe, load_text
from monitor.demo.simulator import DEMO_PASSWORD, RunningSimulator
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.redact import REDACTED
from monitor.result import Result
from monitor.runtime import run_with_retries
from monitor.sinks.spans import records_of
from tests.support.servers import serving

E2E = """\
defaults: {{interval: 60s, timeout: {timeout}, retries: {retries}, retry_delay: 100ms}}
probes:
  - name: e2e
    flow:
      - name: login
        http:
          url: {url}/auth/login
          method: POST
          json_body: {{email: e2e@example.com, password: "${{E2E_PASSWORD}}"}}
        extract: {{token: {{json: access_token}}}}
      - name: thread
        http:
          url: {url}/api/threads
          method: POST
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          expect: {{status: [201]}}
        extract: {{thread_id: {{json: id}}}}
      - name: chat
        websocket:
          url: {ws}/api/v1/websocket
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          steps:
            - name: welcome
              expect: {{json: {{type: connect}}}}
            - send: {{json: {{type: user_message, thread_id: "${{steps.thread.thread_id}}",
                             payload: {{content: ping}}}}}}
            - name: events
              expect_events: {{types: [agent_started, agent_completed], timeout: {events}}}
        extract: {{connection: {{json: data.connection_id, secret: true}}}}
      - name: read
        http:
          url: "{url}/api/threads/${{steps.thread.thread_id}}"
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          expect: {{json: {{id: "${{steps.thread.thread_id}}"}}}}
      - name: cleanup
        always: true
        timeout: 1s
        http:
          url: "{url}/api/threads/${{steps.thread.thread_id}}"
          method: DELETE
          headers: {{Authorization: "Bearer ${{steps.login.token}}"}}
          expect: {{status: [204]}}
"""


def e2e(sim: RunningSimulator, timeout: str = "5s", retries: int = 0,
        events: str = "3s") -> Probe:
    text = E2E.format(url=sim.url, ws=sim.ws_url, timeout=timeout, retries=retries,
                      events=events)
    (probe,) = load_text(text, env={"E2E_PASSWORD": DEMO_PASSWORD}).probes
    return probe


def every_string(result: Result) -> str:
    return json.dumps(asdict(result), default=str)


async def test_the_suite_as_one_run(sim: RunningSimulator, ctx: ProbeContext) -> None:
    result = await run_probe(e2e(sim), ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail
    assert result.type == "flow" and result.step is None
    assert result.target == sim.url + "/auth/login"  # a passing flow: its first step's
    assert result.evidence.detail == "4 steps passed"
    assert [(s.name, s.type, s.outcome, s.status_code) for s in result.step_results] == [
        ("login", "http", Outcome.SUCCESS, 200), ("thread", "http", Outcome.SUCCESS, 201),
        ("chat", "websocket", Outcome.SUCCESS, 101), ("read", "http", Outcome.SUCCESS, 200),
        ("cleanup", "http", Outcome.SUCCESS, 204)]
    assert [s.values for s in result.step_results] == [("token",), ("thread_id",),
                                                       ("connection",), (), ()]
    assert [t.name for t in result.steps] == ["login", "thread", "chat", "read", "cleanup"]
    assert {(e.step, e.event) for e in result.events} == {
        ("chat/events", "agent_started"), ("chat/events", "agent_completed")}
    assert len(sim.sim.threads) == 0  # cleaned up
    # Every value extracted as secret is redacted wherever the run shows it.
    token_seen = result.step_results[0].evidence.body_excerpt or ""
    assert '"access_token": "' + REDACTED in token_seen
    assert "eyJ" not in every_string(result)
    # A child span per step, laid end to end under the run's span.
    _, spans = records_of(result, "POST")
    assert [s.name for s in spans[1:]] == [f"step {n}" for n in
                                          ("login", "thread", "chat", "read", "cleanup")]
    assert all(s.parent_id == spans[0].span_id for s in spans[1:])


async def test_the_first_failing_step_is_the_outcome_and_cleanup_still_runs(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    sim.sim.mode = "agent_dies"
    result = await run_probe(e2e(sim, events="300ms"), ctx)
    assert result.outcome is Outcome.MESSAGE_TIMEOUT and result.step == "chat"
    # The failing step's URL is the run's target (incidents group by it, the span names it).
    assert result.target == sim.ws_url + "/api/v1/websocket"
    assert result.evidence.detail.startswith("step chat: step events: events still missing")
    assert result.evidence.step == 2 and result.evidence.step_name == "chat"
    assert [(s.name, s.outcome) for s in result.step_results] == [
        ("login", Outcome.SUCCESS), ("thread", Outcome.SUCCESS),
        ("chat", Outcome.MESSAGE_TIMEOUT), ("read", None), ("cleanup", Outcome.SUCCESS)]
    assert result.step_results[3].evidence.detail == "not run: step chat failed"
    assert len(sim.sim.threads) == 0
    # The failing step's conversation is the run's transcript; the connection id it
    # extracted as secret from the welcome is redacted there, in a frame before the
    # extraction.
    welcome = result.transcript[0]
    assert welcome.direction == "received" and '"connection_id": "' + REDACTED in welcome.data
    assert "ws_" not in every_string(result)


async def test_a_cleanup_whose_values_were_never_extracted_is_skipped(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    sim.sim.mode = "thread_create_fails"
    result = await run_probe(e2e(sim), ctx)
    assert result.outcome is Outcome.UNEXPECTED_STATUS and result.step == "thread"
    cleanup = result.step_results[-1]
    assert cleanup.outcome is None and cleanup.always
    assert cleanup.evidence.detail == ("skipped: it uses ${steps.thread.thread_id}, which step "
                                       "thread never extracted")
    assert result.evidence.detail == (
        "step thread: HTTP 500, expected 201; always step cleanup skipped: it uses "
        "${steps.thread.thread_id}, which step thread never extracted")


async def test_values_are_extracted_before_the_answer_is_judged(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    sim.sim.mode = "thread_create_200"
    result = await run_probe(e2e(sim), ctx)
    assert result.outcome is Outcome.UNEXPECTED_STATUS and result.step == "thread"
    assert result.step_results[1].values == ("thread_id",)
    assert result.step_results[-1].outcome is Outcome.SUCCESS  # the thread it made, deleted
    assert len(sim.sim.threads) == 0


async def test_a_value_that_cannot_be_extracted_fails_its_step(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    sim.sim.mode = "token_in_header"
    result = await run_probe(e2e(sim), ctx)
    assert result.outcome is Outcome.ASSERTION_FAILED and result.step == "login"
    assert result.evidence.detail.startswith(
        "step login: could not extract token: the JSON has no access_token")
    assert result.status_code == 200


@pytest.fixture
async def slow_app() -> AsyncIterator[tuple[str, list[str]]]:
    """/fast answers at once with an id; /slow after 10 s; every request noted."""
    seen: list[str] = []

    async def fast(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"id": "t1", "secret": "s3cr3t-value"})

    async def slow(request: web.Request) -> web.Response:
        seen.append(request.path)
        await asyncio.sleep(10)
        return web.json_response({})

    async def fail(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"detail": "no"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/fast", fast)
    app.router.add_route("*", "/slow/{id}", slow)
    app.router.add_route("*", "/fail", fail)
    async with serving(app) as base:
        yield base, seen


def _probe(text: str) -> Probe:
    (probe,) = load_text(text, env={}).probes
    return probe


async def test_the_probe_timeout_bounds_the_steps_and_cleanup_has_its_own_time(
        slow_app: tuple[str, list[str]], ctx: ProbeContext) -> None:
    base, seen = slow_app
    probe = _probe(f"""\
probes:
  - name: f
    timeout: 400ms
    retries: 0
    flow:
      - {{name: a, http: {{url: "{base}/fast"}}, extract: {{id: {{json: id}}}}}}
      - {{name: b, http: {{url: "{base}/slow/${{steps.a.id}}"}}}}
      - {{name: c, http: {{url: "{base}/fast"}}}}
      - {{name: d, always: true, timeout: 300ms, http: {{url: "{base}/slow/${{steps.a.id}}"}}}}
""")
    started = time.monotonic()
    result = await run_probe(probe, ctx)
    took = time.monotonic() - started
    assert result.outcome is Outcome.TIMEOUT and result.step == "b"
    assert [s.outcome for s in result.step_results] == [
        Outcome.SUCCESS, Outcome.TIMEOUT, None, Outcome.TIMEOUT]
    assert seen == ["/fast", "/slow/t1", "/slow/t1"]
    # 400 ms for a and b, then 300 ms of d's own: not a second more.
    assert 0.65 <= took < 0.7 + 0.5
    assert "always step d failed (timeout)" in result.evidence.detail


async def test_a_step_timeout_is_its_own_bound(slow_app: tuple[str, list[str]],
                                               ctx: ProbeContext) -> None:
    base, _ = slow_app
    probe = _probe(f"""\
probes:
  - name: f
    timeout: 5s
    retries: 0
    flow:
      - {{name: a, http: {{url: "{base}/fast"}}, extract: {{id: {{json: id}}}}}}
      - {{name: b, timeout: 200ms, http: {{url: "{base}/slow/${{steps.a.id}}"}}}}
""")
    started = time.monotonic()
    result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.TIMEOUT and result.step == "b"
    assert time.monotonic() - started < 2.0


async def test_retries_retry_the_whole_flow(slow_app: tuple[str, list[str]],
                                            ctx: ProbeContext) -> None:
    base, seen = slow_app
    probe = _probe(f"""\
probes:
  - name: f
    timeout: 2s
    retries: 1
    retry_delay: 50ms
    flow:
      - {{name: a, http: {{url: "{base}/fast"}}}}
      - {{name: b, http: {{url: "{base}/fail"}}}}
""")
    attempts: list[Result] = []
    result = await run_with_retries(probe, ctx, attempts.append)
    assert result.outcome is Outcome.UNEXPECTED_STATUS and result.step == "b"
    assert [r.attempt for r in attempts] == [1, 2]
    assert seen == ["/fast", "/fail", "/fast", "/fail"]


async def test_a_secret_seen_before_the_step_that_extracts_it_is_redacted_there_too(
        slow_app: tuple[str, list[str]], ctx: ProbeContext) -> None:
    base, _ = slow_app
    probe = _probe(f"""\
probes:
  - name: f
    retries: 0
    flow:
      - {{name: a, http: {{url: "{base}/fast", expect: {{status: [200]}}}}}}
      - {{name: b, http: {{url: "{base}/fast"}}, extract: {{s: {{json: secret, secret: true}}}}}}
      - {{name: c, http: {{url: "{base}/fail"}}}}
""")
    result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.UNEXPECTED_STATUS
    assert "s3cr3t-value" not in every_string(result)
    assert REDACTED in (result.step_results[0].evidence.body_excerpt or "")


async def test_a_stream_step_hands_on_the_event_that_matched(
        sim: RunningSimulator, slow_app: tuple[str, list[str]], ctx: ProbeContext) -> None:
    """An ``sse`` step (a kind registered after the flow, found in the registry): its values
    come from the events that matched, secret ones redacted in its transcript too."""
    base, seen = slow_app
    probe = _probe(f"""\
probes:
  - name: f
    retries: 0
    timeout: 5s
    flow:
      - name: stream
        sse:
          url: {sim.url}/v1/chat/completions
          method: POST
          json_body: {{model: staging, stream: true}}
          events: {{field: [data.object], types: [chat.completion.chunk]}}
          done: "[DONE]"
        extract:
          completion: {{json: id, secret: true}}
          first: {{json: choices.0.delta.content}}
          ctype: {{header: Content-Type}}
      - name: use
        timeout: 300ms
        http: {{url: "{base}/slow/${{steps.stream.first}}"}}
""")
    result = await run_probe(probe, ctx)
    stream, use = result.step_results
    assert (stream.type, stream.outcome) == ("sse", Outcome.SUCCESS), stream.evidence.detail
    assert set(stream.values) == {"completion", "first", "ctype"}
    assert seen == ["/slow/Synthetic"]  # the first token, carried into the next request's URL
    assert use.outcome is Outcome.TIMEOUT and result.step == "use"
    assert "chatcmpl-" not in every_string(result)  # the completion id, extracted as secret
