"""The trace id a target saw in ``traceparent`` is the one every surface shows for that run:
the results API, the status page (per run, selectable), the log event, ``once`` JSON; and
the history keeps it for older, slimmed runs too."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from monitor.cli.once import result_json, run_all
from monitor.config import load_text
from monitor.daemon import Daemon, DaemonOptions
from monitor.outcomes import Outcome
from monitor.redact import Redactor
from monitor.result import Evidence, Result
from monitor.sinks.history import History
from monitor.sinks.log import configure_logging
from monitor.trace import TraceContext, parse_traceparent
from monitor.web.server import build_app
from tests.support.servers import serving

SEEN = web.AppKey("seen", list[str])


def recording_app() -> web.Application:
    app = web.Application()
    app[SEEN] = []

    async def handle(request: web.Request) -> web.Response:
        parsed = parse_traceparent(request.headers.get("traceparent", ""))
        assert parsed is not None
        request.app[SEEN].append(parsed[0])
        status = 200 if request.path == "/ok" else 503
        return web.json_response({"path": request.path}, status=status)

    app.router.add_get("/{tail:.*}", handle)
    return app


CONFIG = """\
defaults: {interval: 1s, timeout: 800ms, retries: 0}
probes:
  - name: ok
    http: {url: "%(base)s/ok"}
  - name: failing
    http: {url: "%(base)s/broken"}
"""


async def test_the_trace_id_the_target_saw_is_on_every_surface(tmp_path: Path) -> None:
    log = io.StringIO()
    configure_logging(Redactor(), stream=log, json=True)
    app = recording_app()
    async with serving(app) as target:
        path = tmp_path / "probes.yaml"
        path.write_text(CONFIG % {"base": target})
        daemon = Daemon(DaemonOptions(str(path)))
        await daemon.start()
        try:
            async with serving(build_app(daemon)) as base, aiohttp.ClientSession() as s:
                deadline = time.monotonic() + 20
                while len(daemon.history.runs("failing")) < 3 or \
                        len(daemon.history.runs("ok")) < 3:
                    assert time.monotonic() < deadline, "fewer than 3 runs in 20 s"
                    await asyncio.sleep(0.1)
                async with s.get(f"{base}/api/v1/results") as resp:
                    api = await resp.json()
                async with s.get(f"{base}/probe/failing") as resp:
                    page = await resp.text()
        finally:
            await daemon.stop()
    seen = set(app[SEEN])
    runs = {p["probe"]: p["runs"] for p in api["probes"]}
    ids = {name: [r["trace_id"] for r in rs] for name, rs in runs.items()}
    for name in ("ok", "failing"):
        assert len(ids[name]) >= 3 and len(set(ids[name])) == len(ids[name])
        assert set(ids[name]) <= seen  # older, slimmed successes keep theirs too
        assert all(r["span_id"] for r in runs[name])
    for tid in ids["failing"]:
        assert f">{tid}</code>" in page
    assert page.count('<code class="tid"') >= 2 * len(ids["failing"])  # column and evidence
    events = [json.loads(line) for line in log.getvalue().splitlines()
              if '"probe_run"' in line]
    logged = {(e["probe"], e["trace_id"]) for e in events}
    assert {("failing", t) for t in ids["failing"]} <= logged
    assert {("ok", t) for t in ids["ok"]} <= logged


async def test_once_json_has_the_trace_id_the_target_saw() -> None:
    app = recording_app()
    async with serving(app) as target:
        config = load_text(CONFIG % {"base": target}, env={})
        results = await run_all(config, None)
    data = [json.loads(json.dumps(result_json(r))) for r in results]
    assert list(data[0])[:8] == ["probe", "type", "outcome", "success", "duration_seconds",
                                 "status_code", "close_code", "trace_id"]
    assert {d["trace_id"] for d in data} == set(app[SEEN])
    assert {d["outcome"] for d in data} == {"success", "unexpected_status"}


def test_history_keeps_ids_of_slimmed_and_resized_runs() -> None:
    h = History()
    h.configure(load_text(CONFIG % {"base": "http://127.0.0.1:1"}, env={}))
    traces = [TraceContext.new() for _ in range(30)]
    for i, t in enumerate(traces):
        h.observe(Result(probe="ok", type="http", target="t",
                         outcome=Outcome.SUCCESS if i % 5 else Outcome.TIMEOUT,
                         started_at=float(i), duration_seconds=0.01,
                         evidence=Evidence(detail="x"),
                         trace_id=t.trace_id, span_id=t.span_id))
    h.observe(Result(probe="ok", type="http", target="t", outcome=Outcome.SUCCESS,
                     started_at=31.0, duration_seconds=0.01))  # trace: false
    h.observe(Result(probe="ok", type="http", target="t", outcome=Outcome.SUCCESS,
                     started_at=32.0, duration_seconds=0.01))
    runs = h.runs("ok")
    assert [(r.trace_id, r.span_id) for r in runs[2:]] == [
        (t.trace_id, t.span_id) for t in reversed(traces)]
    assert runs[1].trace_id is None and runs[1].span_id is None
    h.configure(load_text("probes:\n" + "".join(
        f"  - name: {n}\n    http: {{url: 'http://127.0.0.1:1/'}}\n"
        for n in ["ok", *(f"p{i}" for i in range(3999))]), env={}))
    assert h.depth == 25  # fewer kept: the ring is rebuilt
    assert [r.trace_id for r in h.runs("ok")] == [r.trace_id for r in runs[:25]]
