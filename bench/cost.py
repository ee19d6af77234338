"""What one probe run costs in instructions, step by step from a bare client exchange to
the daemon's whole run path: counted by valgrind (cachegrind, no cache simulation), so the
machine's load does not enter the numbers.

    python -m bench.cost [--kind http|websocket] [--runs 200] [--variant NAME]...

Each variant runs in its own process under ``valgrind --tool=cachegrind --cache-sim=no``,
twice: ``--runs`` sequential runs and three times as many, each after the same warm-up.
The instructions of a run are the difference of the two totals over the difference of the
run counts: the interpreter's start, the imports and the warm-up cancel out. The target
runs natively in another process and is not counted: for ``http`` nginx when installed,
else the bench's own; for ``websocket`` the simulator (``/ws``: a JWT in the Authorization
header, permessage-deflate, a ``connect`` message, the close answered). PYTHONHASHSEED is
fixed, so that a variant counts the same from one run to the next (within a few tenths of
a percent).

Variants, each one step further along the daemon's path. The bare exchange and the kind's
runner are the kind's own (``KINDS``); from ``run_probe`` on the steps are the same code for
every kind:

- ``aiohttp`` (http): a plain ``aiohttp.ClientSession`` (``force_close``), GET and read;
- ``session`` (http): the same GET through synthmon's session (trace hooks, resolver,
  cookies);
- ``run_http`` (http): the HTTP kind's runner (expectations, evidence, the Result);
- ``websockets`` (websocket): a bare ``websockets`` client exchange doing what the probe's
  spec asks (``bench.workers.ws_exchange``: upgrade with the bearer JWT, compression
  offered, the ``connect`` message read and checked, close 1000);
- ``run_websocket`` (websocket): the WebSocket kind's runner (token, resolve, traced
  connection, the step's match, the close, transcript, the Result);
- ``run_probe``: ``run_probe`` (the hard deadline, a new trace context per run);
- ``retries``: ``run_with_retries`` (attempt numbering), the results dropped;
- ``+metrics``, ``+history``, ``+log``: ``retries`` with that one sink;
- ``daemon``: ``retries`` with every sink the daemon feeds (``default_sinks``);
- ``scheduled``: ``daemon`` started by the daemon's scheduler (``ProbeScheduler``, APScheduler
  jobs) instead of a loop: 20 probes every second, 20 runs a second (websocket: every 6 s,
  3.3 runs a second), the event loop idle in between. Its runs are counted as they end (a
  run or two in flight when the count is reached still ends), and the instructions of a
  run are over the runs counted; its line also gives the scheduler's timer wake-ups a run
  (one a run, or fewer when runs fall due together, unless the timer wakes before a run is
  due).

Not part of ``python -m bench``: it is the evidence for where a run's CPU goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor import eventloop

if TYPE_CHECKING:
    from monitor.config import Probe
    from monitor.probes.context import ProbeContext

# The steps every kind shares, from the generic run path to the scheduler.
SHARED = ("run_probe", "retries", "+metrics", "+history", "+log", "daemon", "scheduled")
# The scheduled variant's probes, each run every ``Kind.interval`` seconds.
SCHEDULED_PROBES = 20
WARMUP = 30
# The share of scheduled runs that may fail or be skipped and still be counted: under
# valgrind, on this loaded machine, one WebSocket handshake in several hundred missed its
# timeout (at 10 and at 20 runs a second), or a run its misfire grace; each is reported. A
# loop variant's runs must all succeed.
SCHEDULED_FAILURES = 0.01
# The probes the loop variants run in turn: ten, each run many times, the sinks' steady
# state (a probe's first runs make its series, its history ring and its first shape).
LOOP_PROBES = 10

# A bare step: one exchange with the target for ``probe``; True when it succeeded.
Bare = Callable[["Probe", "ProbeContext"], Awaitable[bool]]


@dataclass(frozen=True)
class Kind:
    """What a probe kind brings to the count: its first variants (the bare client exchange,
    then synthmon's steps up to its runner) and its probes.yaml."""

    variants: tuple[str, ...]  # before SHARED; the first is the bare exchange
    runner: str  # the variant that calls the kind's runner (``RUNNERS[name]``)
    name: str  # the kind, as ``RUNNERS`` knows it
    # probes.yaml: (url, probes, interval, timeout, name prefix) -> text
    config: Callable[[str, int, float, float, str], str]
    # The scheduled variant's interval (its timeout 0.9 of it). A WebSocket run under
    # valgrind took ~60 ms of a shared core here: at 20 and at 10 runs a second the process
    # fell behind on the loaded machine (runs overlapping, skipped, timed out).
    interval: float = 1.0

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.variants, *SHARED)


def _http_config(url: str, count: int, interval: float, timeout: float, prefix: str) -> str:
    from bench.servers import http_probes_yaml

    return http_probes_yaml([f"{url}{prefix}{i}" for i in range(count)], interval, timeout)


def _ws_config(url: str, count: int, interval: float, timeout: float, _prefix: str) -> str:
    from bench.servers import ws_probes_yaml

    return ws_probes_yaml(url, count, interval, timeout)


KINDS: dict[str, Kind] = {
    "http": Kind(("aiohttp", "session", "run_http"), "run_http", "http", _http_config),
    "websocket": Kind(("websockets", "run_websocket"), "run_websocket", "websocket",
                      _ws_config, interval=6.0),
}
VARIANTS = KINDS["http"].all  # the default kind's, in order


async def _bare_http(probe: Probe, ctx: ProbeContext) -> bool:
    async with ctx.session.get(probe.spec.url) as resp:
        await resp.read()
        return resp.status == 200


def _bare_ws(token: str) -> Bare:
    from bench.workers import ws_exchange

    async def step(probe: Probe, _ctx: ProbeContext) -> bool:
        spec = probe.spec.websocket
        assert spec is not None
        return await ws_exchange(spec.url, token)

    return step


def _bare(variant: str) -> Bare | None:
    if variant in ("aiohttp", "session"):
        return _bare_http
    if variant == "websockets":
        from bench.servers import mint_token

        return _bare_ws(mint_token())
    return None


async def _worker(kind_name: str, variant: str, url: str, runs: int, warmup: int = WARMUP
                  ) -> dict[str, Any]:
    import aiohttp

    from monitor.config import load_text
    from monitor.probes.context import open_context
    from monitor.probes.run import RUNNERS, run_probe
    from monitor.redact import Redactor
    from monitor.result import Result
    from monitor.runtime import run_with_retries
    from monitor.sinks import default_sinks
    from monitor.sinks.log import configure_logging

    kind = KINDS[kind_name]
    config = load_text(kind.config(url, LOOP_PROBES, 60, 10, "p"))
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
        return await _scheduled(kind, url, runs, warmup, ctx, sinks, devnull)

    bare = _bare(variant)
    runner = RUNNERS[kind.name]

    async def step(i: int) -> bool:
        probe = config.probes[i % len(config.probes)]
        if bare is not None:
            return await bare(probe, ctx)
        if variant == kind.runner:
            return (await runner(probe, ctx)).success
        if variant == "run_probe":
            return (await run_probe(probe, ctx)).success
        return (await run_with_retries(probe, ctx, observe)).success

    ok = 0
    for i in range(warmup + runs):
        ok += await step(i)
    await ctx.close()
    devnull.close()
    return {"variant": variant, "runs": runs, "ok": ok}


async def _scheduled(kind: Kind, url: str, runs: int, warmup: int, ctx: Any, sinks: Any,
                     devnull: Any) -> dict[str, Any]:
    from monitor.config import load_text
    from monitor.runtime import run_with_retries
    from monitor.scheduler import ProbeScheduler

    config = load_text(kind.config(url, SCHEDULED_PROBES, kind.interval,
                                   0.9 * kind.interval, "s"))
    sinks.configure(config)
    enough = asyncio.Event()
    counted = ok = 0
    failed: list[str] = []  # the first few failures' outcomes and details
    wakeups = 0  # the scheduler's timer's, after the warm-up

    async def run_one(probe: Probe) -> None:
        nonlocal counted, ok, wakeups
        result = await run_with_retries(probe, ctx, sinks.observe)
        counted += 1
        ok += result.success
        if not result.success and len(failed) < 5:
            failed.append(f"{result.outcome.value}: {result.evidence.detail}")
        if counted == warmup:
            wakeups = -scheduler.wakeups
        if counted >= warmup + runs:
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
    return {"variant": "scheduled", "runs": counted - warmup, "ok": ok, "counted": counted,
            "skipped": skipped, "failed": failed, "wakeups": wakeups}


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _count(kind: str, variant: str, url: str, runs: int) -> tuple[int, int, int]:
    """Instructions of a whole worker process with ``runs`` runs after the warm-up, the
    runs it made after the warm-up (``runs``, or a few more for ``scheduled``), and the
    scheduler's wake-ups over them (``scheduled``; 0 for the others)."""
    from bench.servers import JWT_SECRET

    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
           sys.executable, "-m", "bench.cost", "--worker", kind, variant, url,
           "--runs", str(runs)]
    # The WebSocket probes' JWT is signed with the secret the simulator checks.
    env = dict(os.environ, PYTHONHASHSEED="0", JWT_SECRET_STAGING=JWT_SECRET)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600,
                          check=False)
    found = _IREFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{variant}: {done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    problem = _problem(out, WARMUP + runs, SCHEDULED_FAILURES if variant == "scheduled" else 0)
    if problem is not None:
        raise RuntimeError(f"{variant}: {problem}")
    if out["ok"] != out.get("counted", WARMUP + runs) or out.get("skipped"):
        print(f"{variant}: {out['counted'] - out['ok']} of {out['counted']} runs failed, "
              f"{len(out['skipped'])} skipped, counted all the same: {out['failed']} "
              f"{out['skipped'][:5]}", file=sys.stderr, flush=True)
    return int(found.group(1).replace(",", "")), int(out["runs"]), int(out.get("wakeups", 0))


def _problem(out: dict[str, Any], runs: int, tolerated: float = 0.0) -> str | None:
    """What went wrong in a worker's ``runs`` runs (warm-up included), if anything: a run
    that failed, beyond the ``tolerated`` share."""
    made = out.get("counted", runs)
    skipped = out.get("skipped", [])
    if made - out["ok"] + len(skipped) > tolerated * made:
        return (f"{out['ok']} of {made} runs succeeded {out.get('failed', '')}, "
                f"{len(skipped)} skipped {skipped[:5]}")
    return None


async def check(kind: str, url: str, runs: int = 2, warmup: int = 1) -> dict[str, str]:
    """Every variant of ``kind`` run natively in this one process, ``runs`` runs each
    after ``warmup``: "ok", or what went wrong. The smoke test's way to keep the variants
    from rotting; only valgrind's counts are the measure."""
    found: dict[str, str] = {}
    for v in KINDS[kind].all:
        out = await _worker(kind, v, url, runs, warmup)
        found[v] = _problem(out, warmup + runs) or "ok"
    return found


def per_run(kind: str, variant: str, url: str, runs: int) -> tuple[float, float]:
    """Instructions of one run of ``variant`` (two processes, ``runs`` and ``3 * runs``),
    and the scheduler's wake-ups a run (in the second)."""
    (few, n_few, _), (many, n_many, wakeups) = (_count(kind, variant, url, runs),
                                                _count(kind, variant, url, 3 * runs))
    return (many - few) / (n_many - n_few), wakeups / n_many


def measure(kind: str, url: str, variants: Sequence[str], runs: int,
            report: Callable[[str, float, float], None] | None = None) -> dict[str, float]:
    results: dict[str, float] = {}
    for v in variants:
        results[v], wakeups = per_run(kind, v, url, runs)
        if report is not None:
            report(v, results[v], wakeups)
    return results


@contextlib.contextmanager
def target(kind: str) -> Iterator[tuple[str, str]]:
    """The kind's loopback target, started natively (never under valgrind): (url, what)."""
    from bench import servers
    from bench.util import HOST, running, temp_dir, wait_port

    with temp_dir("synthmon-cost-") as wd:
        if kind == "http":
            with servers.http_target(wd, None) as found:
                yield found
            return
        sim, port = servers.simulator(None)
        with running(sim, wd):
            wait_port(port, 30, sim)
            yield f"ws://{HOST}:{port}/ws", "the simulator's /ws"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cost")
    p.add_argument("--kind", choices=tuple(KINDS), default="http")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--variant", action="append", default=[],
                   choices=sorted({v for k in KINDS.values() for v in k.all}),
                   help="(repeatable) the kind's variants to count; default: all of them")
    p.add_argument("--url", help="a target of the kind: for http one answering 200 to GET "
                   "/p<N> and /s<N>, for websocket one answering the bench's probe "
                   "(default: nginx or the bench's own, or the simulator, started here)")
    p.add_argument("--json", action="store_true", help="print the results as JSON too")
    p.add_argument("--worker", nargs=3, metavar=("KIND", "VARIANT", "URL"),
                   help=argparse.SUPPRESS)
    p.add_argument("--check", action="store_true",
                   help="run every variant natively, a few runs each (no valgrind, no "
                   "counts): do they all still run and succeed?")
    args = p.parse_args(argv)
    if args.check:
        from bench.servers import JWT_SECRET

        os.environ.setdefault("JWT_SECRET_STAGING", JWT_SECRET)
        with contextlib.ExitStack() as stack:
            url = args.url or stack.enter_context(target(args.kind))[0]
            found = eventloop.run(check(args.kind, url), "uvloop")
        print(json.dumps(found))
        return 0 if all(v == "ok" for v in found.values()) else 1
    if args.worker:
        out = eventloop.run(_worker(*args.worker, args.runs), "uvloop")
        print(json.dumps(out))
        return 0

    kind = KINDS[args.kind]
    wrong = [v for v in args.variant if v not in kind.all]
    if wrong:
        p.error(f"not a {args.kind} variant: {', '.join(wrong)} (its variants: "
                f"{', '.join(kind.all)})")
    variants = args.variant or list(kind.all)
    base: list[float] = []

    def report(v: str, n: float, wakeups: float) -> None:
        if not base:
            base.append(n)
        woken = f"   {wakeups:.2f} scheduler wake-ups/run" if v == "scheduled" else ""
        print(f"{v:13s} {n / 1000:10.1f} k instructions/run   {n / base[0]:5.2f}x "
              f"{variants[0]}{woken}", flush=True)

    if args.url:
        results = measure(args.kind, args.url, variants, args.runs, report)
    else:
        with target(args.kind) as (url, what):
            print(f"target: {what}; {args.runs} and {3 * args.runs} runs a variant, "
                  "under cachegrind", file=sys.stderr)
            results = measure(args.kind, url, variants, args.runs, report)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
