"""Small programs the benchmarks run as subprocesses (so each can be pinned and measured).

    python -m bench.workers target --port P [--delay 0.1]
        a loopback HTTP target: answers every request with 200 "ok", after ``delay``.
    python -m bench.workers wsfloor --url U --token T --rate R --duration D
        the floor of a WebSocket probe: a bare ``websockets`` client loop doing
        handshake, welcome message, close; prints a JSON summary.
    python -m bench.workers otlpsink --config C --runs N
        what the OTLP span sink alone costs a run: one real run of each probe of the
        config, then N copies of those results (a trace of their own each) through the
        sink the daemon builds from the OTEL_* variables; prints a JSON summary.
    python -m bench.workers tracectx --config C --batch N --pairs P
        what trace context alone adds to a run: the config's probes run in process (the
        daemon's run_probe and sinks), P pairs of short batches with trace off and on;
        prints a JSON summary with the mean added CPU per run and its 95 % interval.
    python -m bench.workers sched --probes N --interval I --duration D
        synthmon's ProbeScheduler in-process with a trivial run function that still does
        the real sinks work (metrics, history, log line); prints a JSON summary.
    python -m bench.workers flood --config C --runs N
        what one hostile target costs the daemon: the config's probe run N times in
        process (the daemon's run path and sinks, the log formatted as the daemon's JSON),
        this process's peak RSS above what it held before the first run (VmHWM, reset
        after the setup), each run's duration, the longest log line and what the history
        kept; prints a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitor import eventloop

if TYPE_CHECKING:  # the workers import monitor's parts only when they need them
    from monitor.config import Config
    from monitor.probes.context import ProbeContext
    from monitor.sinks import Sinks

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            b"Connection: close\r\n\r\nok\n")
MAX_HEADER_BYTES = 64 * 1024


# --------------------------------------------------------------------------- target


class _TargetProtocol(asyncio.Protocol):
    """Reads one request head, answers after ``delay`` seconds, closes."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answered:
            return
        self.buf += data
        if b"\r\n\r\n" in self.buf or len(self.buf) > MAX_HEADER_BYTES:
            self.answered = True
            if self.delay > 0:
                asyncio.get_running_loop().call_later(self.delay, self._answer)
            else:
                self._answer()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def _serve_target(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _TargetProtocol(delay), "127.0.0.1", port,
                                      backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# --------------------------------------------------------------------------- wsfloor


async def ws_exchange(url: str, token: str) -> bool:
    """One bare ``websockets`` exchange doing the protocol work of the bench's WebSocket
    probe (:func:`bench.servers.ws_probes_yaml`), with websockets' own client: the upgrade
    with the JWT as a bearer header and permessage-deflate offered (websockets' default,
    which the probe keeps), the first message read and checked to be JSON of type
    ``connect``, then a close with 1000 and the server's answer awaited.

    Like the probe, it neither looks for a proxy in the environment nor starts keepalive
    pings. websockets' defaults do both (``proxy=True``: urllib's ``proxy_bypass`` and
    ``getproxies`` scan ``os.environ`` at every connect; ``ping_interval=20``: a keepalive
    task a connection), work the probe never does, which made this "floor" dearer than the
    probe itself under cachegrind."""
    from websockets.asyncio.client import connect

    async with asyncio.timeout(5.0):
        async with connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                           proxy=None, ping_interval=None, ping_timeout=None,
                           open_timeout=None, close_timeout=1.0) as ws:
            message = await ws.recv()
            data = json.loads(message)
            return isinstance(data, dict) and data.get("type") == "connect"


async def _wsfloor(url: str, token: str, rate: float, duration: float,
                   warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        await ws_exchange(url, token)
    count = max(1, int(rate * duration))
    ok = failed = 0
    errors: list[str] = []
    tasks: set[asyncio.Task[bool]] = set()

    def done(task: asyncio.Task[bool]) -> None:
        nonlocal ok, failed
        tasks.discard(task)
        exc = task.exception()
        if exc is None and task.result():
            ok += 1
        else:
            failed += 1
            if len(errors) < 5:
                errors.append(repr(exc))

    cpu0 = _cpu()
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(ws_exchange(url, token))
        tasks.add(task)
        task.add_done_callback(done)
    if tasks:
        await asyncio.wait(list(tasks), timeout=10.0)
    wall = time.monotonic() - t0
    cpu = _cpu() - cpu0
    return {"ok": ok, "failed": failed, "cpu_seconds": cpu, "wall_seconds": wall,
            "errors": errors}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------- otlpsink


async def _otlpsink(config_path: str, runs: int) -> dict[str, Any]:
    # The sink is measured on its own because the daemon's CPU per run drifts by more
    # between windows (10-15 % here) than the sink adds: the same copies are made once
    # without the sink and once through it, and the difference is the sink's.
    from monitor.cli.once import run_all
    from monitor.config import load_file
    from monitor.sinks import otel
    from monitor.trace import TraceContext

    config = load_file(config_path)
    samples = [r for r in await run_all(config, retries=0) if r.success]
    if not samples:
        return {"error": "no probe of the config succeeded"}

    def copies() -> list[Any]:
        out = []
        for i in range(runs):
            trace = TraceContext.new()
            out.append(dataclasses.replace(samples[i % len(samples)], trace_id=trace.trace_id,
                                           span_id=trace.span_id))
        return out

    # process_time, not os.times: the sink's few hundred ms need better than a 10 ms tick.
    t0 = time.process_time()
    copies()
    bare = time.process_time() - t0
    sink = otel.from_env(os.environ)
    if sink is None:
        return {"error": "OTLP export is not configured (OTEL_EXPORTER_OTLP_ENDPOINT)"}
    sink.configure(config)
    t0 = time.process_time()
    for result in copies():
        sink.observe(result)
    sink.close(timeout=120)
    cost = time.process_time() - t0 - bare
    exported, dropped = sink.stats()
    return {"runs": runs, "samples": len(samples), "cpu_seconds": cost,
            "cpu_ms_per_run": cost / runs * 1000, "spans_per_run": exported / runs,
            "exported": exported, "dropped": sum(dropped.values())}


# --------------------------------------------------------------------------- in process


async def _in_process(config: Config) -> tuple[ProbeContext, Sinks]:
    """The daemon's probe context and sinks for ``config``, in this process: its secrets
    redacted, each run's log line formatted as the daemon's (JSON) but written to
    /dev/null. Close the context when done."""
    from monitor.probes.context import open_context
    from monitor.redact import Redactor
    from monitor.sinks import default_sinks
    from monitor.sinks.log import configure_logging

    devnull = await asyncio.to_thread(open, os.devnull, "w")  # lives as long as the process
    redactor = Redactor()
    for secret in config.secrets:
        redactor.add(secret)
    configure_logging(redactor, stream=devnull, json=True)
    sinks = default_sinks()
    sinks.configure(config)
    return open_context(redactor), sinks


# --------------------------------------------------------------------------- tracectx


async def _tracectx(config_path: str, batch: int, pairs: int) -> dict[str, Any]:
    # One process, one loop, the same probes and target: only the trace setting differs
    # between the two short batches of a pair, in an order of a coin's toss. The
    # machine drifts by 10-15 % over seconds here, more than the 5 % measured; batches of a
    # few tens of milliseconds, interleaved hundreds of times, leave that drift in neither
    # mode. What trace context adds is the mean of the paired differences, with its
    # standard error: one figure with the bound that the noise leaves on it.
    from monitor.config import load_file
    from monitor.probes.run import run_probe

    config = load_file(config_path)
    ctx, sinks = await _in_process(config)
    modes = {mode: [dataclasses.replace(p, trace=mode == "on") for p in config.probes]
             for mode in ("off", "on")}
    failed = runs = 0

    async def cpu_per_run(probes: list[Any]) -> float:
        nonlocal failed, runs
        t0, done = time.process_time(), 0
        while done < batch:
            for result in await asyncio.gather(*(run_probe(p, ctx) for p in probes)):
                sinks.observe(result)  # the log line, exemplar and history ids included
                done += 1
                failed += not result.success
        runs += done
        return (time.process_time() - t0) / done

    for _ in range(3):  # warm-up: connections, caches, the first token
        for probes in modes.values():
            await cpu_per_run(probes)
    failed = runs = 0
    off: list[float] = []
    on: list[float] = []
    # Which mode comes first in a pair is a coin's toss: strictly alternating (off-on,
    # on-off, ...) made a pattern of period four that something periodic in the process
    # (the collector's generations, most likely) locked onto: one position read 150-200 µs
    # a WebSocket run dearer, whichever mode sat there.
    coin = random.Random(1)
    for _ in range(pairs):
        order = ("off", "on") if coin.random() < 0.5 else ("on", "off")
        got = {mode: await cpu_per_run(modes[mode]) for mode in order}
        off.append(got["off"])
        on.append(got["on"])
    await ctx.close()
    diffs = [b - a for a, b in zip(off, on, strict=True)]
    base, added = statistics.fmean(off), statistics.fmean(diffs)
    margin = 1.96 * statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    size = pairs // 5
    return {"pairs": pairs, "batch": batch, "runs": runs, "failed": failed,
            "off_ms_per_run": base * 1000, "on_ms_per_run": statistics.fmean(on) * 1000,
            "added_us_per_run": added * 1e6, "added_us_ci95": margin * 1e6,
            "ratio": 1 + added / base, "ratio_ci95": [1 + (added - margin) / base,
                                                      1 + (added + margin) / base],
            # The same figure over each fifth of the pairs: how steady it was.
            "ratio_per_block": [round(sum(on[k:k + size]) / sum(off[k:k + size]), 3)
                                for k in range(0, size * 5, size)] if size > 1 else []}


# --------------------------------------------------------------------------- sched


async def _sched(probes: int, interval: float, duration: float, warmup: float,
                 url: str | None = None) -> dict[str, Any]:
    """With ``url``, each run is a real HTTP probe of ``url`` (the daemon's run path,
    sinks included, without its HTTP server); without, a canned result."""
    from monitor.config import Config, load_text
    from monitor.outcomes import Outcome
    from monitor.probes.run import run_probe
    from monitor.result import Evidence, Result
    from monitor.scheduler import ProbeScheduler

    # One tiny config parsed by the real loader, replicated: parsing thousands of probes
    # would only measure the YAML parser (the startup benchmark covers that).
    timeout = min(1.0, interval / 2)
    one = load_text(f"defaults: {{retries: 0, interval: {interval:g}s, timeout: {timeout:g}s}}\n"
                    "probes:\n  - name: p\n    http: {url: 'http://127.0.0.1:9/x'}\n")
    tmpl = one.probes[0]
    assert tmpl.spec.http is not None
    http = tmpl.spec.http

    def spec(i: int) -> Any:
        update: dict[str, Any] = {"name": f"p{i:06d}"}
        if url is not None:
            update["http"] = http.model_copy(update={"url": f"{url}s{i}"})
        return tmpl.spec.model_copy(update=update)

    items = tuple(dataclasses.replace(tmpl, spec=spec(i)) for i in range(probes))
    config = Config(path="bench", probes=items, label_names=())
    ctx, sinks = await _in_process(config)
    failed = 0
    surfacer = sinks.metrics
    lags: list[float] = []
    skips: dict[str, int] = {}
    runs = 0
    measuring = False

    async def run(probe: Any) -> None:
        nonlocal runs, failed
        if url is not None:
            real = await run_probe(probe, ctx)
            sinks.observe(real)
            if measuring:
                runs += 1
                failed += not real.success
            return
        result = Result(probe=probe.name, type="http", target="http://127.0.0.1:9/x",
                        outcome=Outcome.SUCCESS, started_at=time.time(),
                        duration_seconds=0.001, status_code=200,
                        phases=(("resolve", 0.0), ("connect", 0.0002), ("tls", 0.0),
                                ("processing", 0.0005), ("transfer", 0.0001)),
                        evidence=Evidence(detail="HTTP 200 in 1ms", status_code=200))
        sinks.observe(result)
        if measuring:
            runs += 1

    def on_lag(seconds: float) -> None:
        surfacer.observe_lag(seconds)
        if measuring:
            lags.append(seconds)

    def on_skip(name: str, reason: str) -> None:
        surfacer.skip(reason)
        if measuring:
            skips[reason] = skips.get(reason, 0) + 1

    scheduler = ProbeScheduler(run, on_lag=on_lag, on_skip=on_skip)
    scheduler.start(items)
    await asyncio.sleep(warmup)
    measuring = True
    cpu0, t0 = _cpu(), time.monotonic()
    await asyncio.sleep(duration)
    measuring = False
    cpu, wall = _cpu() - cpu0, time.monotonic() - t0
    await scheduler.stop(1.0)
    await ctx.close()
    lags.sort()

    def q(p: float) -> float | None:
        if not lags:
            return None
        return lags[min(len(lags) - 1, max(0, int(p * len(lags) + 0.999999) - 1))]

    return {"runs": runs, "expected_runs": probes * wall / interval, "lag_p50": q(0.5),
            "lag_p99": q(0.99), "lag_max": lags[-1] if lags else None, "skipped": skips,
            "cpu_seconds": cpu, "wall_seconds": wall, "failed": failed}


# --------------------------------------------------------------------------- flood


class _LineMeter:
    """A log stream that keeps nothing but the length of the longest line written."""

    def __init__(self) -> None:
        self.longest = 0
        self.lines = 0

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.longest = max(self.longest, len(line.encode("utf-8", "replace")))
            self.lines += 1
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _reset_peak() -> None:
    """Linux resets VmHWM to the current RSS on "5" (proc(5), clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


async def _flood(config_path: str, runs: int) -> dict[str, Any]:
    import gc

    from monitor.config import load_file
    from monitor.probes.context import open_context
    from monitor.redact import Redactor
    from monitor.runtime import run_with_retries
    from monitor.sinks import default_sinks
    from monitor.sinks.log import configure_logging
    from monitor.web.api import results_payload

    config = load_file(config_path)
    probe = config.probes[0]
    redactor = Redactor(config.secrets)
    meter = _LineMeter()
    configure_logging(redactor, stream=meter, json=True)  # type: ignore[arg-type]
    sinks = default_sinks()
    sinks.configure(config)
    ctx = open_context(redactor)
    gc.collect()
    # The peak from here on is what the runs cost: the imports and the setup above are not
    # the target's doing.
    _reset_peak()
    before = _status_kib()
    out: list[dict[str, Any]] = []
    # The longest this process kept its event loop from a 10 ms timer during the runs: the
    # timer's lateness, counted only as far as the process was running meanwhile (CPU time),
    # so that time the machine gave to other processes is not taken for a blocked loop.
    stall = 0.0

    async def tick() -> None:
        nonlocal stall
        loop = asyncio.get_running_loop()
        while True:
            due, cpu = loop.time() + 0.01, time.process_time()
            await asyncio.sleep(0.01)
            late = loop.time() - due
            stall = max(stall, min(late, time.process_time() - cpu))

    ticker = asyncio.create_task(tick())
    for _ in range(runs):
        t0 = time.monotonic()
        result = await run_with_retries(probe, ctx, sinks.observe)
        took = time.monotonic() - t0
        out.append({"outcome": result.outcome.value, "seconds": round(took, 3),
                    "detail_chars": len(result.evidence.detail),
                    "detail": result.evidence.detail[:1000],
                    "result_json_bytes": len(json.dumps(result.to_dict()))})
    await asyncio.sleep(0.05)  # the ticker's turn after the last run: how late it is now
    ticker.cancel()
    await ctx.close()
    after = _status_kib()
    kept = json.dumps(results_payload(sinks.history))
    return {"probe": probe.name, "timeout": probe.timeout, "runs": out,
            "rss_before_mib": before["VmRSS"] / 1024, "hwm_mib": after["VmHWM"] / 1024,
            "rss_after_mib": after["VmRSS"] / 1024,
            "peak_cost_mib": (after["VmHWM"] - before["VmRSS"]) / 1024,
            "longest_log_line_bytes": meter.longest, "log_lines": meter.lines,
            "max_loop_stall_ms": round(stall * 1000, 1),
            "history_json_bytes": len(kept)}


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("target")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--delay", type=float, default=0.0)
    w = sub.add_parser("wsfloor")
    w.add_argument("--url", required=True)
    w.add_argument("--token", required=True)
    w.add_argument("--rate", type=float, required=True)
    w.add_argument("--duration", type=float, required=True)
    w.add_argument("--warmup", type=int, default=5)
    w.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.DEFAULT)
    tc = sub.add_parser("tracectx")
    tc.add_argument("--config", required=True)
    tc.add_argument("--batch", type=int, required=True)
    tc.add_argument("--pairs", type=int, required=True)
    o = sub.add_parser("otlpsink")
    o.add_argument("--config", required=True)
    o.add_argument("--runs", type=int, required=True)
    s = sub.add_parser("sched")
    s.add_argument("--probes", type=int, required=True)
    s.add_argument("--interval", type=float, required=True)
    s.add_argument("--duration", type=float, required=True)
    s.add_argument("--warmup", type=float, default=None)
    s.add_argument("--url", default=None, help="probe this URL for real (path s<i> appended)")
    s.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.DEFAULT)
    f = sub.add_parser("flood")
    f.add_argument("--config", required=True)
    f.add_argument("--runs", type=int, default=1)
    f.add_argument("--event-loop", choices=eventloop.CHOICES, default=eventloop.DEFAULT)
    args = parser.parse_args(argv)
    if args.cmd == "target":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_target(args.port, args.delay))
        return 0
    if args.cmd == "tracectx":
        out = eventloop.run(_tracectx(args.config, args.batch, args.pairs), eventloop.DEFAULT)
    elif args.cmd == "flood":
        out = eventloop.run(_flood(args.config, args.runs), args.event_loop)
    elif args.cmd == "otlpsink":
        out = eventloop.run(_otlpsink(args.config, args.runs), eventloop.DEFAULT)
    elif args.cmd == "wsfloor":
        out = eventloop.run(_wsfloor(args.url, args.token, args.rate, args.duration,
                                     args.warmup), args.event_loop)
    else:
        warmup = args.interval + 0.5 if args.warmup is None else args.warmup
        out = eventloop.run(_sched(args.probes, args.interval, args.duration, warmup, args.url),
                            args.event_loop)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
