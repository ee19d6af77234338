"""What one HTTP probe run costs in instructions, step by step from a bare aiohttp request
to the daemon's whole run path: counted by valgrind (cachegrind, no cache simulation), so
the machine's load does not enter the numbers.

    python -m bench.cost [--runs 200] [--variant NAME]...    # a few minutes

Each variant runs in its own process under ``valgrind --tool=cachegrind --cache-sim=no``,
twice: ``--runs`` sequential runs and three times as many, each after the same warm-up.
The instructions of a run are the difference of the two totals over the difference of the
run counts: the interpreter's start, the imports and the warm-up cancel out. The target
(nginx when installed, else the bench's own) runs natively in another process and is not
counted. PYTHONHASHSEED is fixed, so that a variant counts the same from one run to the
next (within a few tenths of a percent).

Variants, each one step further along the daemon's path:

- ``aiohttp``: a plain ``aiohttp.ClientSession`` (``force_close``), GET and read;
- ``session``: the same GET through synthmon's session (trace hooks, resolver, cookies);
- ``run_http``: the HTTP kind's runner (expectations, evidence, the Result);
- ``run_probe``: ``run_probe`` (the hard deadline, a new trace context per run);
- ``retries``: ``run_with_retries`` (attempt numbering), the results dropped;
- ``+metrics``, ``+history``, ``+log``: ``retries`` with that one sink;
- ``daemon``: ``retries`` with every sink the daemon feeds (``default_sinks``);
- ``scheduled``: ``daemon`` started by the daemon's scheduler (``ProbeScheduler``, APScheduler
  jobs) instead of a loop: 20 probes every second, 20 runs a second, the event loop idle in
  between. Its runs are counted as they end (a run or two in flight when the count is
  reached still ends), and the instructions of a run are over the runs counted; its line
  also gives the scheduler's timer wake-ups a run (one a run, or fewer when runs fall due
  together, unless the timer wakes before a run is due).

Not part of ``python -m bench``: it is the evidence for where a run's CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from monitor import eventloop

VARIANTS = ("aiohttp", "session", "run_http", "run_probe", "retries", "+metrics", "+history",
            "+log", "daemon", "scheduled")
# The scheduled variant's probes: runs a second, each probe every second.
SCHEDULED_PROBES = 20
WARMUP = 30


async def _worker(variant: str, url: str, runs: int) -> dict[str, Any]:
    import aiohttp

    from bench.servers import http_probes_yaml
    from monitor.config import load_text
    from monitor.probes.context import open_context
    from monitor.probes.run import RUNNERS, run_probe
    from monitor.redact import Redactor
    from monitor.result import Result
    from monitor.runtime import run_with_retries
    from monitor.sinks import default_sinks
    from monitor.sinks.log import configure_logging

    # Ten probes, each run many times: the sinks' steady state (a probe's first runs make
    # its series, its history ring and its first shape).
    config = load_text(http_probes_yaml([f"{url}p{i}" for i in range(10)], 60, 10))
    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - for the whole process
    redactor = Redactor()
    configure_logging(redactor, stream=devnull, json=True)
    plain = (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
             if variant == "aiohttp" else None)
    ctx = open_context(redactor, session=plain)
    sinks = default_sinks(environ={})
    sinks.configure(config)
    one: dict[str, Callable[[Result], None]] = {
        "+metrics": sinks.metrics.observe, "+history": sinks.history.observe,
        "+log": sinks.log.observe}
    observe: Callable[[Result], None] | None = (
        sinks.observe if variant == "daemon" else
        one.get(variant))

    if variant == "scheduled":
        return await _scheduled(url, runs, ctx, sinks, devnull)

    async def step(i: int) -> bool:
        probe = config.probes[i % len(config.probes)]
        if variant in ("aiohttp", "session"):
            async with ctx.session.get(probe.spec.url) as resp:
                await resp.read()
                return resp.status == 200
        if variant == "run_http":
            return (await RUNNERS["http"](probe, ctx)).success
        if variant == "run_probe":
            return (await run_probe(probe, ctx)).success
        return (await run_with_retries(probe, ctx, observe)).success

    ok = 0
    for i in range(WARMUP + runs):
        ok += await step(i)
    await ctx.close()
    devnull.close()
    return {"variant": variant, "runs": runs, "ok": ok}


async def _scheduled(url: str, runs: int, ctx: Any, sinks: Any, devnull: Any
                     ) -> dict[str, Any]:
    from bench.servers import http_probes_yaml
    from monitor.config import Probe, load_text
    from monitor.runtime import run_with_retries
    from monitor.scheduler import ProbeScheduler

    config = load_text(http_probes_yaml(
        [f"{url}s{i}" for i in range(SCHEDULED_PROBES)], 1, 0.9))
    sinks.configure(config)
    enough = asyncio.Event()
    counted = ok = 0
    wakeups = 0  # the scheduler's timer's, after the warm-up

    async def run_one(probe: Probe) -> None:
        nonlocal counted, ok, wakeups
        result = await run_with_retries(probe, ctx, sinks.observe)
        counted += 1
        ok += result.success
        if counted == WARMUP:
            wakeups = -scheduler.wakeups
        if counted >= WARMUP + runs:
            enough.set()

    skipped: list[str] = []
    scheduler = ProbeScheduler(run_one, on_lag=sinks.metrics.observe_lag,
                               on_skip=lambda _name, reason: skipped.append(reason))
    scheduler.start(config.probes)
    await asyncio.wait_for(enough.wait(), timeout=600)
    wakeups += scheduler.wakeups
    await scheduler.stop(grace=10)
    await ctx.close()
    devnull.close()
    return {"variant": "scheduled", "runs": counted - WARMUP, "ok": ok, "counted": counted,
            "skipped": skipped, "wakeups": wakeups}


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _count(variant: str, url: str, runs: int) -> tuple[int, int, int]:
    """Instructions of a whole worker process with ``runs`` runs after the warm-up, the
    runs it made after the warm-up (``runs``, or a few more for ``scheduled``), and the
    scheduler's wake-ups over them (``scheduled``; 0 for the others)."""
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, "-m", "bench.cost", "--worker", variant, url, "--runs", str(runs)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600,
                          check=False)
    found = _IREFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{variant}: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    made = out.get("counted", WARMUP + runs)
    if out["ok"] != made:
        raise RuntimeError(f"{variant}: only {out['ok']} of {made} runs succeeded")
    if out.get("skipped"):
        raise RuntimeError(f"{variant}: runs skipped: {out['skipped']}")
    return int(found.group(1).replace(",", "")), int(out["runs"]), int(out.get("wakeups", 0))


def per_run(variant: str, url: str, runs: int) -> tuple[float, float]:
    """Instructions of one run of ``variant`` (two processes, ``runs`` and ``3 * runs``),
    and the scheduler's wake-ups a run (in the second)."""
    (few, n_few, _), (many, n_many, wakeups) = (_count(variant, url, runs),
                                                _count(variant, url, 3 * runs))
    return (many - few) / (n_many - n_few), wakeups / n_many


def measure(url: str, variants: Sequence[str], runs: int,
            report: Callable[[str, float, float], None] | None = None) -> dict[str, float]:
    results: dict[str, float] = {}
    for v in variants:
        results[v], wakeups = per_run(v, url, runs)
        if report is not None:
            report(v, results[v], wakeups)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cost")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--variant", choices=VARIANTS, action="append", default=[])
    p.add_argument("--url", help="an HTTP target answering 200 to GET /p<N> (default: "
                   "nginx or the bench's own, started here)")
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    p.add_argument("--worker", nargs=2, metavar=("VARIANT", "URL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        out = eventloop.run(_worker(args.worker[0], args.worker[1], args.runs), "uvloop")
        print(json.dumps(out))
        return 0

    from bench import servers
    from bench.util import temp_dir

    variants = args.variant or list(VARIANTS)
    base: list[float] = []

    def report(v: str, n: float, wakeups: float) -> None:
        if not base:
            base.append(n)
        woken = f"   {wakeups:.2f} scheduler wake-ups/run" if v == "scheduled" else ""
        print(f"{v:10s} {n / 1000:10.1f} k instructions/run   {n / base[0]:5.2f}x "
              f"{variants[0]}{woken}", flush=True)

    if args.url:
        results = measure(args.url, variants, args.runs, report)
    else:
        with temp_dir("synthmon-cost-") as wd, servers.http_target(wd, None) as (url, kind):
            print(f"target: {kind}; {args.runs} and {3 * args.runs} runs a variant, "
                  "under cachegrind", file=sys.stderr)
            results = measure(url, variants, args.runs, report)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
