"""The two promises of ``monitor/probes/run.py`` that no well-behaved probe reaches: a probe
never outlives its timeout, and a probe bug never takes the scheduler down.

The real dispatcher runs; only the protocol runner behind it is swapped (``RUNNERS``) for
one with the bug each promise is about.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiohttp import web

from monitor.config import Probe, load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.probes import run as run_module
from monitor.probes.context import ProbeContext
from monitor.probes.run import HARD_DEADLINE_GRACE, run_probe
from monitor.result import Result
from tests.support.servers import serving

SECRET = "fallback-Secret-9f8e7d6c5b4a"
MARGIN = 1.0  # beyond timeout + grace: the loop getting round to it on a loaded machine


def probe(kind: str = "http", timeout: str = "0.3s") -> Probe:
    url = "http://127.0.0.1:9/" if kind == "http" else "ws://127.0.0.1:9/"
    return load_text(f"probes:\n  - {{name: buggy, timeout: {timeout}, "
                     f"{kind}: {{url: '{url}'}}}}\n", env={}).probes[0]


async def hangs(probe: Probe, ctx: ProbeContext) -> Result:
    """A runner that ignores its timeout (it would wait for an hour)."""
    await asyncio.sleep(3600)
    raise AssertionError("not reached")


async def raises(probe: Probe, ctx: ProbeContext) -> Result:
    raise RuntimeError(f"bug while building the request with key={SECRET}")


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_runner_that_ignores_its_timeout_is_cut_at_the_hard_deadline(
        kind: str, ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(run_module.RUNNERS, kind, hangs)
    p = probe(kind)
    t0 = time.monotonic()
    result = await run_probe(p, ctx)
    took = time.monotonic() - t0
    assert result.outcome is Outcome.TIMEOUT
    assert not result.success
    assert result.evidence.detail == "no result within the probe timeout (0.3s)"
    assert (result.probe, result.type) == ("buggy", kind)
    # cut at timeout + grace: not before (the runner's own timeout comes first), not long after
    assert p.timeout + HARD_DEADLINE_GRACE <= took < p.timeout + HARD_DEADLINE_GRACE + MARGIN
    assert result.duration_seconds == pytest.approx(took, abs=0.1)


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_runner_that_raises_gives_a_redacted_protocol_error(
        kind: str, ctx: ProbeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(run_module.RUNNERS, kind, raises)
    ctx.redactor.add(SECRET)
    result = await run_probe(probe(kind), ctx)
    assert result.outcome is Outcome.PROTOCOL_ERROR
    detail = result.evidence.detail or ""
    assert detail.startswith(f"internal error in the {kind} probe: RuntimeError: "
                             "bug while building the request with key="), detail
    assert SECRET not in detail


async def test_a_probe_bug_does_not_take_the_scheduler_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a real daemon: a websocket runner that raises on every run and one that hangs
    beside a healthy http probe. The buggy probes report, run after run, and the healthy
    one keeps its schedule."""
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", ok)
    calls = {"raises": 0, "hangs": 0}

    async def websocket_runner(p: Probe, ctx: ProbeContext) -> Result:
        calls[p.name] += 1
        return await (raises if p.name == "raises" else hangs)(p, ctx)

    monkeypatch.setitem(run_module.RUNNERS, "websocket", websocket_runner)
    async with serving(app) as base:
        config = tmp_path / "probes.yaml"
        ws = "websocket: {url: 'ws://127.0.0.1:9/'}"
        http = f"http: {{url: '{base}/health'}}"
        config.write_text(
            "defaults: {retries: 0}\nprobes:\n"
            f"  - {{name: healthy, interval: 0.3s, timeout: 0.2s, {http}}}\n"
            f"  - {{name: raises, interval: 0.3s, timeout: 0.2s, {ws}}}\n"
            f"  - {{name: hangs, interval: 1s, timeout: 0.2s, {ws}}}\n")
        daemon = Daemon(DaemonOptions(config_path=str(config)))
        await daemon.start()
        try:
            await asyncio.sleep(3.0)
        finally:
            await daemon.stop()

    healthy = daemon.history.runs("healthy")
    raised = daemon.history.runs("raises")
    hung = daemon.history.runs("hangs")
    # 3 s at 0.3 s: ~10 runs each; at least a few, whatever the load
    assert len(healthy) >= 4 and all(r.outcome is Outcome.SUCCESS for r in healthy)
    assert len(raised) >= 4 and calls["raises"] == len(raised)
    assert all(r.outcome is Outcome.PROTOCOL_ERROR for r in raised)
    assert {(r.evidence.detail or "").split(" with key=")[0] for r in raised} == {
        "internal error in the websocket probe: RuntimeError: bug while building the request"}
    assert len(hung) >= 1 and all(r.outcome is Outcome.TIMEOUT for r in hung)
    assert all(r.duration_seconds < 0.2 + HARD_DEADLINE_GRACE + MARGIN for r in hung)
    assert daemon.in_flight == 0


async def test_a_context_with_its_trace_is_the_shared_one_with_that_trace() -> None:
    """``with_trace`` makes, once a run and cheaply, what ``replace`` would: every field of
    the shared context kept, the trace set (a field added to ProbeContext must be kept too)."""
    from dataclasses import fields, replace

    from monitor.probes.context import open_context
    from monitor.redact import Redactor
    from monitor.trace import TraceContext

    ctx = open_context(Redactor())
    try:
        trace = TraceContext.new("k=v")
        mine = ctx.with_trace(trace)
        assert mine == replace(ctx, trace=trace)
        assert all(getattr(mine, f.name) is getattr(replace(ctx, trace=trace), f.name)
                   for f in fields(ProbeContext))
    finally:
        await ctx.close()
