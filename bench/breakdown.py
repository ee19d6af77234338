"""Where the CPU of one HTTP probe run goes: the same paced loop of GETs (fresh connection
each), each variant a step closer to synthmon's run path, pinned to one core.

    python -m bench.breakdown [--rate 50] [--seconds 15] [--repeats 2] [--uvloop]

About 15 s per variant and repeat: 6 variants x 2 repeats x 2 loops is 6 minutes.

Variants, cheapest first:

- ``raw``: a bare asyncio.Protocol GET (connect, write, read to EOF): the event loop floor;
- ``lean``: the same plus what a probe needs (phase times, status line and headers parsed,
  a Result with evidence) and the sinks (metrics, history, log line);
- ``aiohttp``: aiohttp's ClientSession with ``force_close`` and nothing else;
- ``session``: synthmon's own session (trace hooks, resolver);
- ``run_http``: synthmon's HTTP probe;
- ``run_probe+sinks``: run_probe and the sinks the daemon feeds (no scheduler, no server).

Not part of ``python -m bench``: it is the evidence behind the speed-up notes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from monitor import eventloop

VARIANTS = ("raw", "lean", "aiohttp", "session", "run_http", "run_probe+sinks")


class _Get(asyncio.Protocol):
    def __init__(self, fut: asyncio.Future[bytes], request: bytes) -> None:
        self.fut, self.request = fut, request
        self.buf = bytearray()
        self.connected = self.first_byte = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connected = time.perf_counter()
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance here.
        cast(asyncio.WriteTransport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.buf:
            self.first_byte = time.perf_counter()
        self.buf += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.fut.done():
            self.fut.set_result(bytes(self.buf))


async def _worker(variant: str, url: str, rate: float, seconds: float) -> dict[str, Any]:
    import aiohttp

    from bench.servers import http_probes_yaml
    from monitor.config import load_text
    from monitor.outcomes import Outcome
    from monitor.probes.context import open_context
    from monitor.probes.http import run_http
    from monitor.probes.run import run_probe
    from monitor.redact import Redactor
    from monitor.result import Evidence, Result
    from monitor.sinks import default_sinks
    from monitor.sinks.log import configure_logging

    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    config = load_text(http_probes_yaml([f"{url}p{i}" for i in range(100)], 2, 1))
    devnull = await asyncio.to_thread(open, os.devnull, "w")
    redactor = Redactor()
    configure_logging(redactor, stream=devnull, json=True)
    plain = (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
             if variant == "aiohttp" else None)
    ctx = open_context(redactor, session=plain)
    session = ctx.session
    fan_out = default_sinks()
    fan_out.configure(config)

    def sinks(result: Result) -> bool:
        fan_out.observe(result)
        return result.success

    async def raw(path: str) -> tuple[bytes, _Get]:
        fut: asyncio.Future[bytes] = loop.create_future()
        request = (f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: synthmon\r\n"
                   "Connection: close\r\n\r\n").encode()
        _, proto = await loop.create_connection(lambda: _Get(fut, request), host, port)
        return await fut, proto

    async def lean(i: int) -> bool:
        probe = config.probes[i % len(config.probes)]
        started, t0 = time.time(), time.perf_counter()
        data, proto = await raw(urlsplit(probe.spec.url).path)
        end = time.perf_counter()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = tuple((k.strip(), v.strip())
                        for k, _, v in (ln.partition(":") for ln in lines[1:]))
        phases = (("resolve", 0.0), ("connect", proto.connected - t0), ("tls", 0.0),
                  ("processing", proto.first_byte - proto.connected),
                  ("transfer", end - proto.first_byte))
        return sinks(Result(
            probe=probe.name, type="http", target=probe.spec.url,
            outcome=Outcome.SUCCESS if status == 200 else Outcome.UNEXPECTED_STATUS,
            started_at=started, duration_seconds=time.perf_counter() - t0, status_code=status,
            phases=phases, evidence=Evidence(
                detail=f"HTTP {status}", status_code=status,
                headers=redactor.headers(headers),
                body_excerpt=body[:1024].decode("utf-8", "replace"))))

    async def once(i: int) -> bool:
        async with asyncio.timeout(5):
            return await step(i)

    async def step(i: int) -> bool:
        probe = config.probes[i % len(config.probes)]
        if variant == "raw":
            return (await raw("/"))[0].startswith(b"HTTP/1.1 200")
        if variant == "lean":
            return await lean(i)
        if variant in ("aiohttp", "session"):
            async with session.get(probe.spec.url) as resp:
                await resp.read()
                return resp.status == 200
        if variant == "run_http":
            return (await run_http(probe, ctx)).success
        return sinks(await run_probe(probe, ctx))

    fn: Callable[[int], Coroutine[Any, Any, bool]] = once
    for i in range(20):
        await fn(i)
    count = int(rate * seconds)
    ok = 0
    tasks: set[asyncio.Task[bool]] = set()

    def done(task: asyncio.Task[bool]) -> None:
        nonlocal ok
        tasks.discard(task)
        ok += bool(not task.cancelled() and task.exception() is None and task.result())

    t = os.times()
    cpu0, t0 = t.user + t.system, time.monotonic()
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fn(i))
        tasks.add(task)
        task.add_done_callback(done)
    if tasks:
        await asyncio.wait(list(tasks), timeout=10)
    t = os.times()
    cpu = t.user + t.system - cpu0
    await ctx.close()
    return {"variant": variant, "runs": count, "ok": ok,
            "cpu_ms_per_run": round(cpu / count * 1000, 4)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.breakdown")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--uvloop", action="store_true", help="also every variant under uvloop")
    p.add_argument("--variant", choices=VARIANTS, action="append", default=[])
    p.add_argument("--worker", nargs=2, metavar=("VARIANT", "URL"), help=argparse.SUPPRESS)
    p.add_argument("--worker-loop", choices=eventloop.CHOICES, default="asyncio",
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        out = eventloop.run(_worker(args.worker[0], args.worker[1], args.rate, args.seconds),
                            args.worker_loop)
        print(json.dumps(out))
        return 0

    from bench import servers
    from bench.util import Cores, pin_self, pinned, temp_dir

    cores = Cores.detect()
    pin_self(cores.others)
    loops = ["asyncio", "uvloop"] if args.uvloop else ["asyncio"]
    results: dict[str, dict[str, list[float]]] = {lp: {} for lp in loops}
    with temp_dir("synthmon-breakdown-") as wd, \
            servers.http_target(wd, cores.others) as (url, kind):
        print(f"target: {kind}; {args.rate:g} runs/s for {args.seconds:g}s, "
              f"{args.repeats} repeats, pinned to CPU {sorted(cores.subject)}", file=sys.stderr)
        for _ in range(args.repeats):
            for lp in loops:
                for v in args.variant or VARIANTS:
                    cmd = [sys.executable, "-m", "bench.breakdown", "--worker", v, url,
                           "--rate", repr(args.rate), "--seconds", repr(args.seconds)]
                    cmd += ["--worker-loop", lp]
                    try:
                        done = subprocess.run(pinned(cmd, cores.subject), capture_output=True,
                                              text=True, timeout=args.seconds + 60,
                                              check=False)
                    except subprocess.TimeoutExpired:
                        print(f"{lp} {v}: timed out", file=sys.stderr)
                        continue
                    if done.returncode != 0:
                        print(f"{lp} {v}: failed: {done.stderr[-500:]}", file=sys.stderr)
                        continue
                    res = json.loads(done.stdout.strip().splitlines()[-1])
                    results[lp].setdefault(v, []).append(res["cpu_ms_per_run"])
    print(f"{'variant':18s}" + "".join(f"{lp + ' ms/run':>22s}" for lp in loops))
    for v in args.variant or VARIANTS:
        cells = []
        for lp in loops:
            xs = results[lp].get(v, [])
            cells.append(f"{min(xs):.3f} (of {len(xs)})" if xs else "-")
        print(f"{v:18s}" + "".join(f"{c:>22s}" for c in cells))
    print("(the minimum of the repeats: other load on the machine only ever adds CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
