"""The stream probe's CPU beside a bare aiohttp read of the same stream.

``python -m bench.sse serve --port P --events N --pace S`` serves an OpenAI-style stream of
N ``chat.completion.chunk`` events S seconds apart, then ``data: [DONE]``.
``python -m bench.sse measure --url U --runs R`` runs, in one process and by turns in
batches, the stream probe as the daemon runs it (``run_probe`` with the context every run
gets: its session, phase timer, parser, matcher, transcript, Result) and a bare read (a
plain ``aiohttp.ClientSession``: the same POST, every chunk read until the end, nothing
parsed), and prints the CPU per run of each as JSON. Batches alternate so that a drift of
the machine's load falls on every side alike; the ratio is the median of the batches'.

The bare read the target is judged against opens a connection for each read
(``force_close``), as every probe run does (each run measures its own connect, see
monitor.probes.net.session) and as the HTTP benchmark's bare aiohttp does (bench.cost,
bench.breakdown). A bare read over a kept-alive connection, which no probe run makes, is
measured beside them and reported too (``ratio_reused``).

``python -m bench.sse count [--runs R]`` counts the instructions of the run's own work on
such a stream, without sockets (what the bare read does not do: the parser, JSON, the
matcher, the timeline, the transcript kept), under ``valgrind --tool=cachegrind
--cache-sim=no`` as bench.cost counts: R and 3R passes in two processes, their difference
over 2R, so that the start and the imports cancel out. Deterministic where the CPU ratio
moves with the machine's load (and where a whole run under valgrind is slowed enough for
its 2 ms pace to change how the stream arrives).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time

import aiohttp
from aiohttp import web

from monitor import eventloop
from monitor.config import load_text
from monitor.probes.context import open_context
from monitor.probes.run import run_probe
from monitor.redact import Redactor

REQUEST = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "ping"}]}


def probe_yaml(url: str, events: int) -> str:
    return f"""
probes:
  - name: bench-stream
    timeout: 30s
    retries: 0
    sse:
      url: {url}
      method: POST
      json_body: {json.dumps(REQUEST)}
      first_event_within: 5s
      max_gap: 5s
      events:
        field: [event, data.object]
        types: [chat.completion.chunk]
        count: {{chat.completion.chunk: {{min: {events}}}}}
      done: "[DONE]"
"""


def app(events: int, pace: float) -> web.Application:
    line = chunk_line()

    async def stream(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(events):
            await resp.write(line)
            await asyncio.sleep(pace)
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    application = web.Application()
    application.router.add_post("/v1/chat/completions", stream)
    return application


async def _bare(session: aiohttp.ClientSession, url: str) -> int:
    n = 0
    async with session.post(url, json=REQUEST, headers={"Accept": "text/event-stream"}) as r:
        async for _ in r.content.iter_any():
            n += 1
    return n


def chunk_line() -> bytes:
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "model": "bench",
             "choices": [{"index": 0, "delta": {"content": " token"}, "finish_reason": None}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def judge(passes: int, events: int) -> None:
    """``passes`` times, a stream of ``events`` chunks and ``[DONE]`` judged as a run judges
    it (monitor.probes.sse.run: begin, judge_chunk a chunk, the transcript kept)."""
    from monitor.keep import Keeper
    from monitor.probes.sse.run import Stream, begin, judge_chunk

    spec = load_text(probe_yaml("http://127.0.0.1:9/v1/chat/completions", events),
                     env={}).probes[0].spec.sse
    line = chunk_line()
    keep = Keeper(Redactor())
    for _ in range(3 + passes):  # three first: the imports' and first calls' work
        stream = Stream(spec=spec)
        parser = begin(stream, keep, None)
        for i in range(events):
            judge_chunk(spec, stream, parser, line, 0.002 * i, False)
        if judge_chunk(spec, stream, parser, b"data: [DONE]\n\n", 0.002 * events,
                       False) is None or stream.transcript is None:
            raise SystemExit("the stream did not end at [DONE]")
        stream.transcript.frames()


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(passes: int, events: int) -> float:
    """Instructions of one pass of :func:`judge` (see the module's docstring)."""
    totals = []
    for n in (passes, 3 * passes):
        done = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
             sys.executable, "-m", "bench.sse", "judge", "--runs", str(n), "--events",
             str(events)], capture_output=True, text=True, check=False, timeout=1800,
            env=dict(os.environ, PYTHONHASHSEED="0"))
        found = _IREFS.search(done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(done.stderr[-2000:])
        totals.append(int(found.group(1).replace(",", "")))
    return (totals[1] - totals[0]) / (2 * passes)


SIDES = ("sse", "bare", "bare_reused")


async def measure(url: str, runs: int, batch: int, events: int) -> dict[str, object]:
    probe = load_text(probe_yaml(url, events), env={}).probes[0]
    ctx = open_context(Redactor())
    fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
    reused = aiohttp.ClientSession()
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    outcomes: dict[str, int] = {}
    try:
        # One of each first: imports, the session's setup, the first connection.
        await run_probe(probe, ctx)
        await _bare(fresh, url)
        await _bare(reused, url)
        for i in range(max(1, runs // batch)):
            order = SIDES if i % 2 == 0 else SIDES[::-1]
            for side in order:
                start = time.process_time()
                for _ in range(batch):
                    if side == "sse":
                        result = await run_probe(probe, ctx)
                        outcomes[result.outcome.value] = outcomes.get(result.outcome.value,
                                                                      0) + 1
                    else:
                        await _bare(fresh if side == "bare" else reused, url)
                cpu[side].append((time.process_time() - start) / batch)
    finally:
        await fresh.close()
        await reused.close()
        await ctx.close()
    ratios = [s / b for s, b in zip(cpu["sse"], cpu["bare"], strict=True) if b > 0]
    reused_ratios = [s / b for s, b in zip(cpu["sse"], cpu["bare_reused"], strict=True)
                     if b > 0]
    return {"sse_ms_per_run": statistics.median(cpu["sse"]) * 1000,
            "bare_ms_per_run": statistics.median(cpu["bare"]) * 1000,
            "bare_reused_ms_per_run": statistics.median(cpu["bare_reused"]) * 1000,
            "ratio": statistics.median(ratios) if ratios else None,
            "ratios": [round(r, 3) for r in ratios],
            "ratio_reused": statistics.median(reused_ratios) if reused_ratios else None,
            "outcomes": outcomes, "runs_per_side": len(cpu["sse"]) * batch, "events": events}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sse")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--events", type=int, default=100)
    s.add_argument("--pace", type=float, default=0.002)
    m = sub.add_parser("measure")
    m.add_argument("--url", required=True)
    m.add_argument("--runs", type=int, default=200)
    m.add_argument("--batch", type=int, default=10)
    m.add_argument("--events", type=int, default=100)
    m.add_argument("--loop", default=eventloop.DEFAULT)
    for name in ("count", "judge"):  # judge: what count runs under valgrind
        c = sub.add_parser(name)
        c.add_argument("--runs", type=int, default=20)
        c.add_argument("--events", type=int, default=100)
    args = p.parse_args(argv)
    if args.cmd == "judge":
        judge(args.runs, args.events)
        return 0
    if args.cmd == "count":
        n = count(args.runs, args.events)
        print(json.dumps({"instructions_per_run": round(n), "per_event": round(n / args.events),
                          "events": args.events}))
        return 0
    if args.cmd == "serve":
        web.run_app(app(args.events, args.pace), host="127.0.0.1", port=args.port,
                    print=None, access_log=None)
        return 0
    t0 = time.monotonic()
    out = eventloop.run(measure(args.url, args.runs, args.batch, args.events), args.loop)
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
