"""The retry loop (monitor/runtime.py) against the real simulator over loopback: a blip
healed by the retry, a failure confirmed by it, no retry when none is configured or when
no retry can help, and every attempt handed to the sinks typed (attempt, final)."""

from __future__ import annotations

import asyncio

import pytest

from monitor.config import Probe, load_text
from monitor.demo.simulator import RunningSimulator
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.result import Result
from monitor.runtime import run_with_retries
from tests.support.servers import SECRET


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHMON_TEST_RETRY_JWT", SECRET)  # tokens are minted from os.environ


def probe(sim: RunningSimulator, retries: int, delay: str = "300ms",
          secret_env: str = "SYNTHMON_TEST_RETRY_JWT") -> Probe:
    text = f"""\
defaults: {{interval: 10s, timeout: 2s, retries: {retries}, retry_delay: {delay}}}
auth:
  jwt: {{type: jwt, secret_env: {secret_env}, claims: {{sub: retry-user}}, ttl: 5m}}
probes:
  - name: ws
    websocket:
      url: {sim.ws_url}/api/v1/websocket
      auth: jwt
      subprotocols: [jwt-auth]
      expect_subprotocol: jwt-auth
      steps: [{{expect: {{json: {{type: connect}}, timeout: 1s}}}}]
"""
    (p,) = load_text(text, env={"SYNTHMON_TEST_RETRY_JWT": SECRET}).probes
    return p


async def test_a_blip_that_heals_before_the_retry_is_not_a_failure(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    seen: list[Result] = []
    first = asyncio.Event()

    def observe(result: Result) -> None:
        seen.append(result)
        first.set()

    sim.sim.mode = "ws_route_missing"
    run = asyncio.create_task(run_with_retries(probe(sim, retries=1), ctx, observe))
    await asyncio.wait_for(first.wait(), 5)
    sim.sim.mode = "healthy"  # healed within the retry delay
    final = await asyncio.wait_for(run, 10)
    assert [(r.attempt, r.final, r.outcome) for r in seen] == [
        (1, False, Outcome.HANDSHAKE_REJECTED), (2, True, Outcome.SUCCESS)]
    assert final is seen[-1] and final.success
    assert seen[1].started_at - (seen[0].started_at + seen[0].duration_seconds) >= 0.29


async def test_a_failure_is_confirmed_by_every_retry(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    seen: list[Result] = []
    sim.sim.mode = "upgrade_json"
    final = await run_with_retries(probe(sim, retries=2, delay="100ms"), ctx, seen.append)
    assert [(r.attempt, r.final) for r in seen] == [(1, False), (2, False), (3, True)]
    assert {r.outcome for r in seen} == {Outcome.NOT_UPGRADED}
    assert final.outcome is Outcome.NOT_UPGRADED and final.attempt == 3


async def test_no_retry_when_it_succeeds_or_retries_are_off(
        sim: RunningSimulator, ctx: ProbeContext) -> None:
    seen: list[Result] = []
    ok = await run_with_retries(probe(sim, retries=3), ctx, seen.append)
    sim.sim.mode = "ws_route_missing"
    failed = await run_with_retries(probe(sim, retries=0), ctx, seen.append)
    assert ok.success and failed.outcome is Outcome.HANDSHAKE_REJECTED
    assert [(r.attempt, r.final) for r in seen] == [(1, True), (1, True)]


async def test_a_config_error_is_not_retried(sim: RunningSimulator, ctx: ProbeContext) -> None:
    """A secret missing at run time fails the same way on every try."""
    seen: list[Result] = []
    final = await run_with_retries(probe(sim, retries=2, secret_env="NOT_SET_ANYWHERE"), ctx,
                                   seen.append)
    assert final.outcome is Outcome.CONFIG_ERROR
    assert [(r.attempt, r.final) for r in seen] == [(1, True)]
