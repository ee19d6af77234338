"""The ten benchmarks. Each returns a JSON-able dict with ``status`` and ``rows``.

A row is one line of the printed table: ``metric``, ``synthmon``, ``baseline`` (with
``baseline_name``), ``ratio`` (synthmon / baseline), ``target``, ``pass`` and ``detail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import statistics
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench import servers
from bench.driver import REQUEST_TIMEOUT, Stream, run_drive
from bench.util import (
    HOST,
    PYTHON,
    BenchError,
    Cores,
    Proc,
    bucket_estimate,
    bucket_quantile,
    free_port,
    histogram,
    histogram_delta,
    http_get,
    http_json,
    metric_sum,
    parse_metrics,
    pinned,
    proc_rss,
    quantile,
    rnd,
    running,
    scrape,
    wait_port,
    wait_until,
)
from monitor import eventloop
from monitor.sinks.history import DEFAULT_DEPTH, MIN_DEPTH, TOTAL_RUNS

Row = dict[str, Any]


@dataclass
class Ctx:
    quick: bool
    cores: Cores
    workdir: Path
    have_blackbox: bool
    have_nginx: bool
    both_loops: bool  # also measure synthmon (and floors) on asyncio's own loop
    notes: list[str] = field(default_factory=list)

    def size(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full

    def settle(self, interval: float) -> float:
        """How long after ready until every probe has run once and the spread-in is over."""
        return interval + (0.2 if self.quick else 1.0)

    def enough(self, ok: float, total: float) -> bool:
        """Whether enough runs succeeded for the numbers to mean something. Quick runs
        (the smoke test, perhaps on a loaded machine with tight timeouts) only need one."""
        return ok >= 1 if self.quick else ok >= 0.99 * total


def row(metric: str, synthmon: float | None, baseline: float | None = None,
        baseline_name: str = "", target: str = "", ok: bool | None = None,
        unit: str = "", detail: str = "", ratio: float | None = None) -> Row:
    """One line of the table; ``ratio`` when it is not synthmon / baseline (a median of
    paired ratios)."""
    if ratio is None:
        ratio = (synthmon / baseline) if synthmon is not None and baseline else None
    return {"metric": metric, "unit": unit, "synthmon": rnd(synthmon, 4),
            "baseline": rnd(baseline, 4), "baseline_name": baseline_name,
            "ratio": rnd(ratio, 3), "target": target, "pass": ok, "detail": detail}


# --------------------------------------------------------------------------- synthmon


def start_synthmon(ctx: Ctx, yaml_text: str, name: str, loop: str = eventloop.DEFAULT,
                   pin: bool = True, env: dict[str, str] | None = None,
                   extra: Sequence[str] = ()) -> servers.Synthmon:
    cfg = ctx.workdir / f"{name}.yaml"
    cfg.write_text(yaml_text)
    return servers.synthmon(cfg, ctx.cores.subject if pin else None, name=name, loop=loop,
                            env=env, extra=extra)


def wait_ready(sm: servers.Synthmon, timeout: float) -> float:
    return wait_until(lambda: http_get(sm.base + "/-/ready", 2)[0] == 200, timeout,
                      interval=0.02, proc=sm.proc, what=f"{sm.proc.name} /-/ready")


@dataclass
class Window:
    """CPU, runs, lag and skips of a running daemon between two scrapes."""

    cpu: float
    wall: float  # between the CPU readings (the scrapes excluded)
    runs_wall: float  # between the two scrapes: the window the counters cover
    scrape_seconds: float  # time of the closing scrape of /metrics
    scrape_bytes: int
    runs: float
    success: float
    skipped: float
    lag: dict[float, float]

    @property
    def cpu_per_run_ms(self) -> float | None:
        return self.cpu / self.runs * 1000 if self.runs else None

    @property
    def lag_p99(self) -> float | None:
        return bucket_quantile(self.lag, 0.99)

    @property
    def lag_p50(self) -> float | None:
        return bucket_quantile(self.lag, 0.5)

    @property
    def lag_p99_estimate(self) -> float | None:
        return bucket_estimate(self.lag, 0.99)


def measure_window(sm: servers.Synthmon, seconds: float) -> Window:
    s0 = time.monotonic()
    # The opening scrape is parsed after the window: parsing it here (prometheus-client's
    # parser, ~1 s of CPU for a shard's 2.8 MB at 50,000 runs a minute) took the core this
    # process shares with a measured daemon (the shards' bench: shard 1, core 1) during the
    # window's first seconds, and that daemon's runs started up to 50 ms late.
    status, opening = http_get(sm.base + "/metrics", 60)
    if status != 200:
        raise BenchError(f"{sm.proc.name}: /metrics answered {status}")
    t0 = sm.proc.times()
    time.sleep(seconds)
    sm.proc.check_alive()
    t1 = sm.proc.times()
    s1 = time.monotonic()
    status, body = http_get(sm.base + "/metrics", 60)
    s2 = time.monotonic()
    if status != 200:
        raise BenchError(f"{sm.proc.name}: /metrics answered {status}")
    before = parse_metrics(opening.decode("utf-8", "replace"))
    after = parse_metrics(body.decode("utf-8", "replace"))

    def delta(name: str, **labels: str) -> float:
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    lag = histogram_delta(histogram(after, "synthmon_scheduler_lag_seconds"),
                          histogram(before, "synthmon_scheduler_lag_seconds"))
    return Window(cpu=t1.cpu - t0.cpu, wall=t1.wall - t0.wall, runs_wall=s1 - s0,
                  scrape_seconds=s2 - s1, scrape_bytes=len(body),
                  runs=delta("synthmon_probe_runs_total"),
                  success=delta("synthmon_probe_runs_total", outcome="success"),
                  skipped=delta("synthmon_probe_skipped_total"), lag=lag)


def outcomes(sm: servers.Synthmon) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, lb, v in scrape(sm.base + "/metrics"):
        if n == "synthmon_probe_runs_total":
            out[lb["outcome"]] = out.get(lb["outcome"], 0.0) + v
    return out


def window_dict(w: Window) -> dict[str, Any]:
    return {"cpu_seconds": rnd(w.cpu), "wall_seconds": rnd(w.wall), "runs": w.runs,
            "success": w.success, "skipped": w.skipped,
            "cpu_per_run_ms": rnd(w.cpu_per_run_ms, 4),
            "cpu_utilisation": rnd(w.cpu / w.wall if w.wall else None),
            "lag_p50_le": w.lag_p50, "lag_p99_le": w.lag_p99,
            "lag_p99_estimate": rnd(w.lag_p99_estimate, 4),
            "scrape_seconds": rnd(w.scrape_seconds), "scrape_bytes": w.scrape_bytes}


def synthmon_http_cpu(ctx: Ctx, url: str, rate: float, seconds: float, loop: str
                      ) -> dict[str, Any]:
    interval = ctx.size(0.5, 2.0)
    count = max(1, round(rate * interval))
    urls = [f"{url}p{i}" for i in range(count)]
    name = f"synthmon-http-{loop}"
    sm = start_synthmon(ctx, servers.http_probes_yaml(urls, interval, interval / 2), name,
                        loop)
    with running(sm.proc, ctx.workdir):
        wait_ready(sm, 60)
        time.sleep(ctx.settle(interval))  # every probe has run; the spread-in is over
        w = measure_window(sm, seconds)
        seen = outcomes(sm)
    if not ctx.enough(w.success, w.runs):
        raise BenchError(f"{name}: only {w.success:g} of {w.runs:g} runs succeeded: {seen}")
    return {"probes": count, "interval": interval, "event_loop": loop, **window_dict(w)}


def http_floor(ctx: Ctx, url: str, rate: float, seconds: float, loop: str) -> dict[str, Any]:
    """The event loop's own floor: a bare protocol doing connect, write GET, read to EOF,
    paced like the probes (``bench.breakdown``'s ``raw`` variant), pinned like synthmon."""
    res = _floor_worker(ctx, f"httpfloor-{loop}", [
        PYTHON, "-m", "bench.breakdown", "--worker", "raw", url, "--rate", repr(rate),
        "--seconds", repr(seconds), "--worker-loop", loop], seconds)
    if not ctx.enough(res["ok"], res["runs"]):
        raise BenchError(f"the {loop} HTTP floor: only {res['ok']} of {res['runs']} ok")
    return {"runs": res["runs"], "ok": res["ok"], "event_loop": loop,
            "cpu_per_run_ms": res["cpu_ms_per_run"]}


def _floor_worker(ctx: Ctx, name: str, argv: list[str], seconds: float,
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a floor loop on synthmon's core until it ends by itself; its JSON summary."""
    floor = Proc(name, argv, env=env, cpus=ctx.cores.subject)
    floor.start(ctx.workdir)
    try:
        floor.popen.wait(seconds + 60)  # type: ignore[union-attr]
    except subprocess.TimeoutExpired:
        floor.stop()
        raise BenchError(f"{name} did not finish") from None
    floor.stop()
    lines = [ln for ln in floor.tail(100_000).splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"{name} printed no summary: {floor.tail()}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def blackbox_http_cpu(ctx: Ctx, url: str, rate: float, seconds: float) -> dict[str, Any]:
    bb = servers.blackbox(ctx.workdir, ctx.cores.subject)
    count = max(1, round(rate * 2.0))
    urls = [bb.probe_url(f"{url}p{i}") for i in range(count)]
    with running(bb.proc, ctx.workdir):
        wait_port(bb.port, 15, bb.proc)
        run_drive([Stream("warmup", urls, rate)], ctx.size(0.3, 2.0))
        t0 = bb.proc.times()
        stream = Stream("probe", urls, rate)
        run_drive([stream], seconds)
        t1 = bb.proc.times()
        bb.proc.check_alive()
    ok = stream.completed - stream.probe_failed
    if not ctx.enough(ok, stream.completed + stream.failed):
        raise BenchError(f"blackbox: {stream.failed} failed requests, {stream.probe_failed} "
                         f"failed probes of {stream.completed}: {stream.errors}")
    cpu = t1.cpu - t0.cpu
    return {"runs": stream.completed, "cpu_seconds": rnd(cpu), "wall_seconds":
            rnd(t1.wall - t0.wall), "cpu_per_run_ms": rnd(cpu / ok * 1000, 4) if ok else None,
            "cpu_utilisation": rnd(cpu / (t1.wall - t0.wall))}


# --------------------------------------------------------------------------- 1. HTTP CPU


def bench_http_cpu(ctx: Ctx) -> dict[str, Any]:
    rate = ctx.size(20.0, 50.0)
    seconds = ctx.size(0.5, 20.0)
    out: dict[str, Any] = {"rate_per_second": rate, "seconds": seconds, "notes": []}
    loops = _loops(ctx)
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind):
        out["target"] = kind
        for loop, suffix in loops:
            out["synthmon" + suffix] = synthmon_http_cpu(ctx, url, rate, seconds, loop)
            out["floor" + suffix] = http_floor(ctx, url, rate, seconds, loop)
        if ctx.have_blackbox:
            out["blackbox"] = blackbox_http_cpu(ctx, url, rate, seconds)
        else:
            out["notes"].append("blackbox_exporter not installed: no baseline")
    bb = out.get("blackbox", {}).get("cpu_per_run_ms")
    rows = []
    for loop, suffix in loops:
        sm = out["synthmon" + suffix]["cpu_per_run_ms"]
        floor = out["floor" + suffix]["cpu_per_run_ms"]
        rows.append(row("HTTP probe CPU/run" + _loop_label(loop), sm, bb, "blackbox 0.23",
                        "<= 0.5x", sm / bb <= 0.5 if bb else None, "ms",
                        f"{sm / floor:.3g}x the bare-loop floor" if floor else ""))
        rows.append(row(f"  floor: bare {loop} GET, no HTTP client", floor, bb,
                        "blackbox 0.23", "", None, "ms",
                        "connect, write, read to EOF; nothing parsed, checked or recorded"))
    return {"status": "ok", "rows": rows, **out}


def _synthmon_successes(sm: servers.Synthmon) -> float:
    return metric_sum(scrape(sm.base + "/metrics"), "synthmon_probe_runs_total",
                      outcome="success")


def bench_http_at_once(ctx: Ctx) -> dict[str, Any]:
    """synthmon's daemon and blackbox_exporter probing the same nginx at the same rate, at
    the same time, both pinned to the measured core: each process's CPU per successful run
    over the same windows, the ratio per window, and its median. Side by side, load on the
    machine and on that core reaches both alike, which sequential windows cannot give:
    measured one after the other the same comparison drifted from 0.87x to 1.10x. Without
    blackbox_exporter, synthmon's side alone."""
    rate = ctx.size(20.0, 100.0)
    windows, seconds = ctx.size((3, 1.0), (7, 6.0))
    interval = ctx.size(0.5, 2.0)
    count = max(1, round(rate * interval))
    out: dict[str, Any] = {"rate_per_second": rate, "windows": windows,
                           "window_seconds": seconds, "notes": []}
    if not ctx.have_blackbox:
        out["notes"].append("blackbox_exporter not installed: synthmon's side alone")
    per_window: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        url, kind = stack.enter_context(servers.http_target(ctx.workdir, ctx.cores.others,
                                                            ctx.have_nginx))
        out["target"] = kind
        sm = start_synthmon(ctx, servers.http_probes_yaml(
            [f"{url}s{i}" for i in range(count)], interval, interval / 2), "synthmon-at-once")
        stack.enter_context(running(sm.proc, ctx.workdir))
        bb: servers.Blackbox | None = None
        stream: Stream | None = None
        total = ctx.settle(interval) + windows * seconds + ctx.size(0.5, 2.0)
        driver: threading.Thread | None = None
        if ctx.have_blackbox:
            bb = servers.blackbox(ctx.workdir, ctx.cores.subject)
            stack.enter_context(running(bb.proc, ctx.workdir))
            stream = Stream("probe", [bb.probe_url(f"{url}b{i}") for i in range(count)], rate)
        wait_ready(sm, 60)
        if bb is not None and stream is not None:
            wait_port(bb.port, 15, bb.proc)
            driver = threading.Thread(target=run_drive, args=([stream], total), daemon=True)
            driver.start()
        time.sleep(ctx.settle(interval))  # both warm: every probe ran, the spread-in over

        def reading() -> tuple[float, float, float, float]:
            bb_cpu = bb.proc.times().cpu if bb is not None else 0.0
            sm_cpu = sm.proc.times().cpu
            bb_ok = stream.completed - stream.probe_failed if stream is not None else 0
            return sm_cpu, bb_cpu, _synthmon_successes(sm), float(bb_ok)

        last = reading()
        for _ in range(windows):
            time.sleep(seconds)
            now = reading()  # the scrape's own CPU opens the next window, alike in each
            sm_cpu, bb_cpu, sm_runs, bb_runs = (b - a for a, b in zip(last, now, strict=True))
            w: dict[str, Any] = {"synthmon_cpu_seconds": rnd(sm_cpu), "synthmon_runs": sm_runs,
                                 "blackbox_cpu_seconds": rnd(bb_cpu), "blackbox_runs": bb_runs}
            if sm_runs:
                w["synthmon_cpu_per_run_ms"] = rnd(sm_cpu / sm_runs * 1000, 4)
            if bb_runs and bb_cpu:
                w["blackbox_cpu_per_run_ms"] = rnd(bb_cpu / bb_runs * 1000, 4)
                if sm_runs:
                    w["ratio"] = rnd((sm_cpu / sm_runs) / (bb_cpu / bb_runs), 4)
            per_window.append(w)
            last = now
        sm.proc.check_alive()
        if bb is not None:
            bb.proc.check_alive()
        if driver is not None:  # its last requests answered before blackbox stops
            driver.join(timeout=total + REQUEST_TIMEOUT + 2)
    out["per_window"] = per_window
    mine = [w["synthmon_cpu_per_run_ms"] for w in per_window if "synthmon_cpu_per_run_ms" in w]
    if not mine:
        raise BenchError(f"at once: no window with synthmon runs: {per_window}")
    ratios = sorted(w["ratio"] for w in per_window if "ratio" in w)
    theirs = [w["blackbox_cpu_per_run_ms"] for w in per_window if "ratio" in w]
    ratio = statistics.median(ratios) if ratios else None
    if stream is not None:
        out.update(blackbox_failed=stream.failed + stream.probe_failed,
                   errors=stream.errors)
    if ratios:
        out.update(ratio_median=rnd(ratio, 4), ratio_min=ratios[0], ratio_max=ratios[-1])
    detail = (f"median of {len(ratios)} windows' ratios ({ratios[0]:.2f}-{ratios[-1]:.2f}x), "
              if ratios else "") + f"{rate:g} runs/s each, the same core, the same windows"
    return {"status": "ok", "rows": [row(
        "HTTP probe CPU/run, both at once", statistics.median(mine),
        statistics.median(theirs) if theirs else None, "blackbox 0.23", "<= 0.8x",
        ratio <= 0.8 if ratio is not None else None, "ms", detail, ratio=ratio)], **out}


def _loops(ctx: Ctx) -> list[tuple[str, str]]:
    """(event loop, result key suffix): the daemon's default first, with no suffix."""
    others = [lp for lp in eventloop.CHOICES if lp != eventloop.DEFAULT]
    return [(eventloop.DEFAULT, "")] + ([(lp, f"_{lp}") for lp in others]
                                        if ctx.both_loops else [])


def _loop_label(loop: str) -> str:
    return "" if loop == eventloop.DEFAULT else f", --event-loop {loop}"


# --------------------------------------------------------------------------- 2. WS CPU


def bench_ws_cpu(ctx: Ctx) -> dict[str, Any]:
    rate = ctx.size(10.0, 25.0)
    interval = ctx.size(1.0, 2.0)
    # A quick window as long as the interval: in a shorter one every probe's phase may fall
    # outside it (0 runs counted).
    seconds = ctx.size(interval, 20.0)
    count = max(1, round(rate * interval))
    sim, port = servers.simulator(ctx.cores.others)
    ws_url = f"ws://{HOST}:{port}/ws"
    out: dict[str, Any] = {"rate_per_second": rate, "seconds": seconds, "target": "simulator",
                           "notes": []}
    with running(sim, ctx.workdir):
        wait_port(port, 30, sim)
        for loop, suffix in _loops(ctx):
            key = "synthmon" + suffix
            sm = start_synthmon(ctx, servers.ws_probes_yaml(ws_url, count, interval,
                                                            interval * 0.75),
                                f"{key}-ws-{loop}", loop)
            with running(sm.proc, ctx.workdir):
                wait_ready(sm, 60)
                time.sleep(ctx.settle(interval))
                w = measure_window(sm, seconds)
                seen = outcomes(sm)
            if not ctx.enough(w.success, w.runs):
                raise BenchError(f"{key}: only {w.success:g} of {w.runs:g} WebSocket runs "
                                 f"succeeded: {seen}")
            out[key] = {"probes": count, "interval": interval, "event_loop": loop,
                        **window_dict(w)}
            out["floor" + suffix] = _ws_floor(ctx, ws_url, rate, seconds, loop)
    rows = []
    for loop, suffix in _loops(ctx):
        sm_ms = out["synthmon" + suffix]["cpu_per_run_ms"]
        floor_ms = out["floor" + suffix]["cpu_per_run_ms"]
        rows.append(row("WS handshake probe CPU/run" + _loop_label(loop), sm_ms, floor_ms,
                        f"bare websockets loop, {loop}", "<= 1.1x",  # issue 24
                        sm_ms / floor_ms <= 1.1 if floor_ms else None, "ms"))
    return {"status": "ok", "rows": rows, **out}


def _ws_floor(ctx: Ctx, ws_url: str, rate: float, seconds: float, loop: str
              ) -> dict[str, Any]:
    fl = _floor_worker(ctx, f"wsfloor-{loop}", [
        PYTHON, "-m", "bench.workers", "wsfloor", "--url", ws_url, "--token",
        servers.mint_token(), "--rate", repr(rate), "--duration", repr(seconds),
        "--event-loop", loop], seconds)
    if not ctx.enough(fl["ok"], fl["ok"] + fl["failed"]):
        raise BenchError(f"wsfloor: {fl['failed']} of {fl['ok'] + fl['failed']} failed: "
                         f"{fl['errors']}")
    fl["cpu_per_run_ms"] = rnd(fl["cpu_seconds"] / fl["ok"] * 1000, 4) if fl["ok"] else None
    return fl


# --------------------------------------------------------------------------- 3. scheduler


LAG_BUDGET = 0.020


def _sched_inprocess(ctx: Ctx, per_minute: int, seconds: float, url: str | None = None
                     ) -> dict[str, Any]:
    interval = ctx.size(0.5, 2.0)
    probes = max(1, round(per_minute * interval / 60))
    argv = [PYTHON, "-m", "bench.workers", "sched", "--probes", str(probes), "--interval",
            repr(interval), "--duration", repr(seconds), "--warmup",
            repr(ctx.settle(interval))]
    worker = Proc(f"sched-{'real' if url else 'trivial'}-{per_minute}",
                  [*argv, "--url", url] if url else argv, cpus=ctx.cores.subject)
    worker.start(ctx.workdir)
    try:
        worker.popen.wait(interval + seconds + 60)  # type: ignore[union-attr]
    except subprocess.TimeoutExpired:
        worker.stop()
        raise BenchError(f"scheduler worker at {per_minute}/min did not finish") from None
    worker.stop()
    lines = [ln for ln in worker.tail(100_000).splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"scheduler worker printed no summary: {worker.tail()}")
    res: dict[str, Any] = json.loads(lines[-1])
    skipped = sum(res["skipped"].values())
    res.update(probes=probes, interval=interval,
               cpu_utilisation=rnd(res["cpu_seconds"] / res["wall_seconds"]),
               cpu_per_run_ms=rnd(res["cpu_seconds"] / res["runs"] * 1000, 4)
               if res["runs"] else None,
               sustained=(res["lag_p99"] is not None and res["lag_p99"] < LAG_BUDGET
                          and skipped == 0 and res["runs"] >= 0.95 * res["expected_runs"]
                          and res["failed"] <= 0.01 * res["runs"]))
    return res


def _sched_daemon(ctx: Ctx, url: str, per_minute: int, seconds: float) -> dict[str, Any]:
    interval = ctx.size(0.5, 2.0)
    probes = max(1, round(per_minute * interval / 60))
    urls = [f"{url}s{i}" for i in range(probes)]
    sm = start_synthmon(ctx, servers.http_probes_yaml(urls, interval, interval / 2),
                        f"synthmon-sched-{per_minute}")
    with running(sm.proc, ctx.workdir):
        wait_ready(sm, 120)
        time.sleep(ctx.settle(interval))
        w = measure_window(sm, seconds)
    expected = probes * w.runs_wall / interval
    p99 = w.lag_p99
    return {"probes": probes, "interval": interval, "expected_runs": rnd(expected, 1),
            **window_dict(w),
            "sustained": (p99 is not None and p99 <= LAG_BUDGET and w.skipped == 0
                          and w.runs >= 0.95 * expected and w.success >= 0.99 * w.runs)}


def _sched_shards(ctx: Ctx, url: str, per_minute: int, seconds: float, shards: int = 2
                  ) -> dict[str, Any]:
    """``per_minute`` real HTTP runs split over ``shards`` daemons (``--shard I/N`` of one
    config), shard I pinned to core I (of this machine's), measured over the same window."""
    interval = ctx.size(0.5, 2.0)
    probes = max(shards, round(per_minute * interval / 60))
    cfg = ctx.workdir / f"synthmon-shards-{per_minute}.yaml"
    cfg.write_text(servers.http_probes_yaml([f"{url}h{i}" for i in range(probes)], interval,
                                            interval / 2))
    cpus = sorted(ctx.cores.subject | ctx.cores.others)
    daemons = [servers.synthmon(cfg, {cpus[i % len(cpus)]}, name=f"shard-{i}-{per_minute}",
                                extra=("--shard", f"{i}/{shards}")) for i in range(shards)]
    with contextlib.ExitStack() as stack:
        for sm in daemons:
            stack.enter_context(running(sm.proc, ctx.workdir))
        for sm in daemons:
            wait_ready(sm, 120)
        time.sleep(ctx.settle(interval))
        with ThreadPoolExecutor(shards) as pool:
            windows = list(pool.map(lambda sm: measure_window(sm, seconds), daemons))
    runs = sum(w.runs for w in windows)
    wall = statistics.mean(w.runs_wall for w in windows)
    expected = probes * wall / interval
    lags = [w.lag_p99 for w in windows]
    p99 = None if None in lags else max(lag for lag in lags if lag is not None)
    skipped = sum(w.skipped for w in windows)
    success = sum(w.success for w in windows)
    return {"probes": probes, "interval": interval, "shards": shards,
            "expected_runs": rnd(expected, 1), "runs": runs, "success": success,
            "skipped": skipped, "lag_p99_le": p99,
            "per_shard": [window_dict(w) for w in windows],
            "cpu_utilisation": [rnd(w.cpu / w.wall) for w in windows],
            "sustained": (p99 is not None and p99 <= LAG_BUDGET and skipped == 0
                          and runs >= 0.95 * expected and success >= 0.99 * runs)}


def bench_shards(ctx: Ctx) -> dict[str, Any]:
    """The sustained ceiling of real HTTP runs a minute with two shards of one config on
    this machine (p99 lag < 20 ms, none skipped): each shard a ``synthmon run``, one core
    each, nginx beside them."""
    levels = ctx.size([1000], [25000, 50000, 75000, 100000])
    seconds = ctx.size(0.5, 10.0)
    out: dict[str, Any] = {"levels_per_minute": levels, "seconds": seconds,
                           "lag_budget_seconds": LAG_BUDGET}
    per: dict[str, Any] = {}
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind):
        out["target"] = kind
        for n in levels:
            per[str(n)] = _sched_shards(ctx, url, n, seconds)
            if not per[str(n)]["sustained"] and not ctx.quick:
                break  # the ceiling is below; the higher levels only take longer to fail
    out["per_level"] = per
    ok = [int(n) for n, r in per.items() if r["sustained"]]
    best = max(ok) if ok else 0
    top = max(levels)
    rows = [row("two shards, real HTTP, 1 scrape per window", best, None, "", f">= {top:,}",
                best >= top, "/min", "two `synthmon run --shard I/2`, a core each")]
    for n, r in per.items():
        rows.append(row(f"  two shards @{int(n):,}/min: p99 lag <=", r["lag_p99_le"], None, "",
                        "< 20 ms", r["sustained"], "s",
                        f"skipped {r['skipped']:g}, runs {r['runs']:g}/{r['expected_runs']:g}, "
                        f"cpu {r['cpu_utilisation']}, p99 ~"
                        + "/".join(f"{1000 * (s['lag_p99_estimate'] or 0):.1f}"
                                   for s in r["per_shard"]) + " ms interpolated"))
    return {"status": "ok", "rows": rows, **out}


def bench_scheduler(ctx: Ctx) -> dict[str, Any]:
    levels = ctx.size([1000], [1000, 10000, 50000, 100000])
    seconds = ctx.size(0.5, 10.0)  # whole intervals, so every probe runs equally often
    out: dict[str, Any] = {"levels_per_minute": levels, "seconds": seconds,
                           "lag_budget_seconds": LAG_BUDGET, "notes": [
                               "daemon: p99 lag is the upper bound of the histogram bucket "
                               "(synthmon_scheduler_lag_seconds) holding the 99th percentile, "
                               "over a window after every probe ran once; in-process: exact "
                               "(scheduler_only: canned results; run_path: real HTTP probes)",
                               "each daemon window holds one scrape of /metrics (as a "
                               "Prometheus scraping every ~10 s would); its render blocks the "
                               "event loop for scrape_seconds",
                               "both pinned to one core"]}
    out["scheduler_only"] = {str(n): _sched_inprocess(ctx, n, seconds) for n in levels}
    daemon: dict[str, Any] = {}
    run_path: dict[str, Any] = {}
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind):
        out["target"] = kind
        for n in levels:
            run_path[str(n)] = _sched_inprocess(ctx, n, seconds, url)
        for n in levels:
            daemon[str(n)] = _sched_daemon(ctx, url, n, seconds)
    out["run_path"] = run_path
    out["daemon"] = daemon

    def best(results: dict[str, Any]) -> int:
        ok = [int(n) for n, r in results.items() if r["sustained"]]
        return max(ok) if ok else 0

    top = max(levels)
    rows = [
        row("scheduler + sinks, canned result", best(out["scheduler_only"]), None, "",
            f">= {top:,}", best(out["scheduler_only"]) >= top, "/min",
            "in-process, exact p99 lag"),
        row("daemon run path, real HTTP, no scrape", best(run_path), None, "",
            f">= {top:,}", best(run_path) >= top, "/min",
            "in-process ProbeScheduler + run_probe + sinks, exact p99 lag"),
        row("daemon, real HTTP, 1 scrape per window", best(daemon), None, "",
            f">= {top:,}", best(daemon) >= top, "/min",
            "`synthmon run` subprocess, p99 lag = bucket bound"),
    ]
    for n in levels:
        r = run_path[str(n)]
        rows.append(row(f"  run path @{n:,}/min: p99 lag", r["lag_p99"], None, "",
                        "< 20 ms", r["sustained"], "s",
                        f"skipped {sum(r['skipped'].values())}, runs {r['runs']}/"
                        f"{r['expected_runs']:.0f}, failed {r['failed']}, "
                        f"cpu {r['cpu_utilisation']}"))
    for n in levels:
        r = daemon[str(n)]
        rows.append(row(f"  daemon @{n:,}/min: p99 lag <=", r["lag_p99_le"], None, "",
                        "< 20 ms", r["sustained"], "s",
                        f"skipped {r['skipped']:g}, runs {r['runs']:g}/"
                        f"{r['expected_runs']:g}, cpu {r['cpu_utilisation']}, "
                        f"/metrics {r['scrape_seconds']}s"))
    return {"status": "ok", "rows": rows, **out}


# --------------------------------------------------------------------------- 4. fidelity


DELAY = 0.100


def bench_fidelity(ctx: Ctx) -> dict[str, Any]:
    """The latency a probe reports over a target answering after exactly ``DELAY``, while
    other probes load the prober: synthmon and blackbox **at once**, both pinned to the
    measured core, each with its own background probes, over the same window (run one after
    the other, the two tools' windows met different loads on a shared machine: a p99 of
    hundreds of ms for either, at random)."""
    background = ctx.size(50, 500)
    bg_interval = ctx.size(0.5, 5.0)
    delayed = ctx.size(4, 20)
    d_interval = ctx.size(0.5, 1.0)
    seconds = ctx.size(0.5, 20.0)
    out: dict[str, Any] = {"background_probes": background,
                           "background_rate_per_second": background / bg_interval,
                           "delayed_probes": delayed, "delay_seconds": DELAY,
                           "seconds": seconds, "at_once": ctx.have_blackbox, "notes": []}
    tproc, tport = servers.py_target(ctx.cores.others, DELAY, name="delay-target")
    delay_url = f"http://{HOST}:{tport}/"
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind), \
            running(tproc, ctx.workdir), contextlib.ExitStack() as stack:
        wait_port(tport, 15, tproc)
        out["target"] = kind
        delay_lines = servers.http_probe_lines([f"{delay_url}d{i}" for i in range(delayed)],
                                               "delay", interval=d_interval,
                                               timeout=d_interval * 0.9)
        yaml_text = servers.http_probes_yaml([f"{url}bg{i}" for i in range(background)],
                                             bg_interval, bg_interval / 2, prefix="bg",
                                             more=delay_lines)
        sm = start_synthmon(ctx, yaml_text, "synthmon-fidelity")
        stack.enter_context(running(sm.proc, ctx.workdir))
        wait_ready(sm, 60)
        bb = servers.blackbox(ctx.workdir, ctx.cores.subject) if ctx.have_blackbox else None
        if bb is not None:
            stack.enter_context(running(bb.proc, ctx.workdir))
            wait_port(bb.port, 15, bb.proc)
        time.sleep(ctx.settle(bg_interval))
        warm = ctx.size(0.2, 1.0)
        with ThreadPoolExecutor(1) as pool:
            driven = None
            if bb is not None:
                bg = Stream("bg", [bb.probe_url(f"{url}bg{i}") for i in range(background)],
                            background / bg_interval)
                dl = Stream("delay", [bb.probe_url(f"{delay_url}d{i}") for i in range(delayed)],
                            delayed / d_interval)
                t0 = time.monotonic()
                driven = pool.submit(run_drive, [bg, dl], seconds + 2 * warm, ["delay"])
                time.sleep(warm)
            t_start = time.time()
            w = measure_window(sm, seconds)
            t_end = time.time()
            if driven is not None:
                driven.result()
        payload = http_json(sm.base + "/api/v1/results", 60)
    overheads = [r["duration_seconds"] - DELAY
                 for p in payload["probes"] if p["probe"].startswith("delay")
                 for r in p["runs"]
                 if t_start <= r["started_at"] <= t_end and r["outcome"] == "success"]
    out["synthmon"] = {"samples": len(overheads),
                       "overhead_p50_ms": rnd(_ms(quantile(overheads, 0.5))),
                       "overhead_p99_ms": rnd(_ms(quantile(overheads, 0.99))),
                       "overhead_max_ms": rnd(_ms(max(overheads, default=None))),
                       "daemon_cpu_utilisation": rnd(w.cpu / w.wall),
                       "lag_p99_le": w.lag_p99}
    if bb is not None:
        bbo = [d - DELAY for sent, d in dl.durations if sent >= t0 + warm]
        out["blackbox"] = {"samples": len(bbo),
                           "overhead_p50_ms": rnd(_ms(quantile(bbo, 0.5))),
                           "overhead_p99_ms": rnd(_ms(quantile(bbo, 0.99))),
                           "overhead_max_ms": rnd(_ms(max(bbo, default=None))),
                           "failed": dl.failed + dl.probe_failed + bg.failed}
    else:
        out["notes"].append("blackbox_exporter not installed: no baseline")
    sm_ = out["synthmon"]
    bb_ = out.get("blackbox", {})
    p50, bp50 = sm_["overhead_p50_ms"], bb_.get("overhead_p50_ms")
    p99, bp99 = sm_["overhead_p99_ms"], bb_.get("overhead_p99_ms")
    rows = [
        row("100ms target: overhead p50 (at once)", p50, bp50, "blackbox 0.23", "<= blackbox",
            None if p50 is None or bp50 is None else p50 <= bp50, "ms"),
        row("100ms target: overhead p99 (at once)", p99, bp99, "blackbox 0.23",
            "< 5 ms, <= blackbox",
            None if p99 is None else (p99 < 5 and (bp99 is None or p99 <= bp99)), "ms"),
    ]
    return {"status": "ok", "rows": rows, **out}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# --------------------------------------------------------------------------- 5. memory


def _result_bytes(url: str, n: int) -> float:
    """Bytes a kept run costs in the history, via tracemalloc: ``n`` real runs of one probe
    into a real History (whose depth, 100, keeps them all), counted from before the History
    was made, so the ring and the newest full result are shared out over the runs."""
    from monitor.config import load_text
    from monitor.probes.context import open_context
    from monitor.probes.run import run_probe
    from monitor.redact import Redactor
    from monitor.sinks.history import History

    config = load_text(servers.http_probes_yaml([url], 10, 1))
    probe = config.probes[0]

    async def collect() -> float:
        redactor = Redactor()
        ctx = open_context(redactor)
        try:
            await run_probe(probe, ctx)  # warm caches before counting
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            history = History()
            history.configure(config)
            for _ in range(n):
                history.observe(await run_probe(probe, ctx))
            gc.collect()  # what a run left in reference cycles is not kept
            size = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            kept = history.runs(probe.name)
            if len(kept) != n or any(not r.success for r in kept):
                raise BenchError(f"result-size probe failed: {kept[0].outcome}")
            return size / n
        finally:
            await ctx.close()

    return asyncio.run(collect())


SCRAPE_EVERY = 15.0  # as Prometheus would; at 10,000 probes one scrape is ~32 MB of text


def _runs_per_probe(sm: servers.Synthmon) -> dict[str, float]:
    """synthmon_probe_runs_total by probe, read from the text without a full parse (at
    10,000 probes prometheus-client's parser takes many seconds over it)."""
    status, body = http_get(sm.base + "/metrics", 120)
    if status != 200:
        raise BenchError(f"GET /metrics: HTTP {status}")
    runs: dict[str, float] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("synthmon_probe_runs_total{"):
            probe = line.split('probe="', 1)[1].split('"', 1)[0]
            runs[probe] = runs.get(probe, 0.0) + float(line.rsplit(" ", 1)[1])
    return runs


def _each_ran(sm: servers.Synthmon, n: int, times: int) -> bool:
    runs = _runs_per_probe(sm)
    return len(runs) >= n and min(runs.values()) >= times


def bench_memory(ctx: Ctx) -> dict[str, Any]:
    sizes = ctx.size([10], [10, 1000, 10000])
    top = max(sizes)
    out: dict[str, Any] = {"sizes": sizes, "notes": [
        "rss_warm: after every probe ran once; the history keeps up to 100 runs a probe and "
        "100,000 in all (10 a probe at 10,000 probes), only the newest and failed runs whole",
        "rss_full_history (full run, largest size only): measured after every probe ran as "
        f"often as the history keeps, /metrics scraped every {SCRAPE_EVERY:g}s meanwhile",
        "projected: rss_warm + probes x (depth - 1) x bytes_per_kept_run (tracemalloc over "
        "real runs into a real History)"]}
    per: dict[str, Any] = {}
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind):
        out["target"] = kind
        out["bytes_per_kept_run"] = rnd(_result_bytes(url, ctx.size(50, DEFAULT_DEPTH)), 0)
        for n in sizes:
            depth = max(MIN_DEPTH, min(DEFAULT_DEPTH, TOTAL_RUNS // n))
            fill = not ctx.quick and n == top
            # ~400 runs/s (about half a core) so the warm-up does not lag; ~600/s where the
            # history is filled, so that its ten rounds take under three minutes.
            interval = max(ctx.size(0.5, 10.0), n / (600 if fill else 400))
            poll = 0.5 if n <= 1000 else SCRAPE_EVERY
            urls = [f"{url}m{i}" for i in range(n)]
            sm = start_synthmon(ctx, servers.http_probes_yaml(urls, interval, interval / 2),
                                f"synthmon-mem-{n}", pin=False)
            t0 = time.monotonic()
            with running(sm.proc, ctx.workdir):
                ready = wait_ready(sm, 180)
                idle = proc_rss(sm.proc.pid)
                wait_until(partial(_each_ran, sm, n, 1), interval * 1.5 + poll + 10,
                           interval=poll, proc=sm.proc,
                           what=f"every one of {n} probes to run once")
                warm = proc_rss(sm.proc.pid)
                full: dict[str, float] | None = None
                if fill:
                    wait_until(partial(_each_ran, sm, n, depth), interval * (depth + 3) + 60,
                               interval=poll, proc=sm.proc,
                               what=f"every one of {n} probes to run {depth} times")
                    full = proc_rss(sm.proc.pid)
            projected = warm["VmRSS"] + n * (depth - 1) * out["bytes_per_kept_run"] / 2**20
            per[str(n)] = {"interval": rnd(interval, 2), "history_depth": depth,
                           "ready_seconds": rnd(ready),
                           "rss_ready_mib": rnd(idle["VmRSS"], 1),
                           "rss_warm_mib": rnd(warm["VmRSS"], 1),
                           "hwm_warm_mib": rnd(warm["VmHWM"], 1),
                           "rss_projected_full_history_mib": rnd(projected, 1),
                           "total_seconds": rnd(time.monotonic() - t0, 1)}
            if full is not None:
                per[str(n)].update(rss_full_history_mib=rnd(full["VmRSS"], 1),
                                   hwm_full_history_mib=rnd(full["VmHWM"], 1))
    out["per_size"] = per
    target = "< 100 MiB @10k"  # issue 24 (150 MB before it)

    def judged(n: int, value: float) -> tuple[str, bool | None]:
        return (target, value < 100) if n == 10000 else ("", None)

    rows = [row(f"RSS, {n} probes (after 1 run each)", per[str(n)]["rss_warm_mib"], None, "",
                *judged(n, per[str(n)]["rss_warm_mib"]), "MiB") for n in sizes]
    last = per[str(top)]
    if "rss_full_history_mib" in last:
        rows.append(row(f"RSS, {top} probes, history full (measured)",
                        last["rss_full_history_mib"], None, "",
                        *judged(top, last["rss_full_history_mib"]), "MiB",
                        detail=f"VmHWM {last['hwm_full_history_mib']} MiB"))
    else:
        rows.append(row(f"RSS, {top} probes, history full (projected)",
                        last["rss_projected_full_history_mib"], None, "",
                        *judged(top, last["rss_projected_full_history_mib"]), "MiB"))
    return {"status": "ok", "rows": rows, **out}


# --------------------------------------------------------------------------- 6. startup


def _early_name(interval: float) -> tuple[str, float]:
    """A probe name whose first run comes < 20 ms after start, so first-result time shows the
    startup (the scheduler places a new probe's first run by a hash of its name)."""
    from monitor.scheduler import first_run

    for i in range(10000):
        name = f"startup-{i}"
        if first_run(name, interval, 0.0) < 0.02:
            return name, first_run(name, interval, 0.0)
    return "startup-0", first_run("startup-0", interval, 0.0)


def _has_result(sm: servers.Synthmon) -> bool:
    return http_json(sm.base + "/api/v1/results", 5)["probes"][0]["last"] is not None


def bench_startup(ctx: Ctx) -> dict[str, Any]:
    repeats = ctx.size(1, 3)
    # Longer than the scheduler's first-run window: a probe with a shorter interval first
    # runs on its phase of the wall clock, anywhere in one interval after start.
    interval = 60.0
    name, offset = _early_name(interval)
    samples: list[dict[str, float]] = []
    with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, kind):
        yaml_text = servers.http_probes_yaml([url], interval, 1.0).replace("p000000", name)
        for i in range(repeats):
            sm = start_synthmon(ctx, yaml_text, f"synthmon-startup-{i}")
            t0 = time.monotonic()
            with running(sm.proc, ctx.workdir):
                wait_ready(sm, 60)
                t_ready = time.monotonic() - t0
                wait_until(partial(_has_result, sm), 30, interval=0.01, proc=sm.proc,
                           what="the first probe result")
                t_first = time.monotonic() - t0
            samples.append({"ready": t_ready, "first_result": t_first})
    ready = statistics.median(s["ready"] for s in samples)
    first = statistics.median(s["first_result"] for s in samples)
    out = {"target": kind, "repeats": repeats, "probe": name,
           "planned_offset_seconds": rnd(offset, 4), "samples": samples,
           "ready_seconds": rnd(ready), "first_result_seconds": rnd(first),
           "notes": ["launch = Popen of `python -m monitor run`; median of the repeats; the "
                     "probe name is chosen so its first run is planned < 20 ms after start: "
                     "with another name it waits up to 10 s (the first-run window)"]}
    rows = [row("startup: launch -> /-/ready 200", ready, None, "", "", None, "s"),
            row("startup: launch -> first result", first, None, "", "", None, "s")]
    return {"status": "ok", "rows": rows, **out}


# --------------------------------------------------------------------------- 7. tracing


TRACE_MODES = ("off", "on", "otlp")


def _trace_yaml(yaml_text: str, mode: str) -> str:
    return yaml_text.replace("defaults: {", f"defaults: {{trace: {str(mode != 'off').lower()}, ",
                             1)


def _traced_window(ctx: Ctx, yaml_text: str, name: str, interval: float, mode: str,
                   otlp: servers.OtlpSink) -> dict[str, Any]:
    # The SDK's default batching (every 5 s or 512 spans) as a user would run it; a quick
    # run's window is shorter than that, so it exports more often.
    env = None if mode != "otlp" else {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
                                       **({"OTEL_BSP_SCHEDULE_DELAY": "200"} if ctx.quick
                                          else {})}
    sm = start_synthmon(ctx, _trace_yaml(yaml_text, mode), f"{name}-trace-{mode}", env=env)
    with running(sm.proc, ctx.workdir):
        wait_ready(sm, 60)
        time.sleep(ctx.settle(interval))
        # A quick window as long as the interval: the probes' runs keep to their phases, and
        # in a shorter one all of them may fall outside it (0 runs counted).
        w = measure_window(sm, ctx.size(interval, 10.0))
        seen = outcomes(sm)
        samples = scrape(sm.base + "/metrics")
    if not ctx.enough(w.success, w.runs):
        raise BenchError(f"{name} trace {mode}: only {w.success:g} of {w.runs:g} runs "
                         f"succeeded: {seen}")
    return {**window_dict(w),
            "spans_exported": metric_sum(samples, "synthmon_otlp_spans_exported_total"),
            "spans_dropped": metric_sum(samples, "synthmon_otlp_spans_dropped_total")}


def _sink_alone(ctx: Ctx, kind: str, yaml_text: str, otlp: servers.OtlpSink) -> dict[str, Any]:
    cfg = ctx.workdir / f"otlpsink-{kind}.yaml"
    cfg.write_text(yaml_text)
    runs = ctx.size(300, 3000)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # A queue that holds every copy: they arrive at once, not one a run as in the daemon.
    env.update(JWT_SECRET_STAGING=servers.JWT_SECRET, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
               OTEL_BSP_MAX_QUEUE_SIZE=str(runs * 20))
    res = _floor_worker(ctx, f"otlpsink-{kind}", [
        PYTHON, "-m", "bench.workers", "otlpsink", "--config", str(cfg), "--runs", str(runs)],
        120, env=env)
    if "error" in res or res["dropped"]:
        raise BenchError(f"OTLP sink alone ({kind}): {res}")
    return res


def _trace_alone(ctx: Ctx, kind: str, yaml_text: str) -> dict[str, Any]:
    cfg = ctx.workdir / f"tracectx-{kind}.yaml"
    cfg.write_text(yaml_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(JWT_SECRET_STAGING=servers.JWT_SECRET)
    # Full runs: 400 pairs of 50-run batches (25-50 ms each), 20-40 s per mode. Ten rounds
    # of 400-run and then 2,000-run batches read 0.69-1.55x and 0.89-1.16x from one round to
    # the next: drift over seconds, which short batches taken by turns leave in neither mode.
    res = _floor_worker(ctx, f"tracectx-{kind}", [
        PYTHON, "-m", "bench.workers", "tracectx", "--config", str(cfg),
        "--batch", str(ctx.size(10, 50)), "--pairs", str(ctx.size(4, 400))], 300, env=env)
    if "error" in res or not ctx.enough(res["runs"] - res["failed"], res["runs"]):
        raise BenchError(f"trace context alone ({kind}): {res}")
    return res


def bench_trace_cpu(ctx: Ctx) -> dict[str, Any]:
    """CPU per run with trace context off, on, and on with spans exported over OTLP to a
    loopback endpoint, for HTTP (against nginx or the stand-in) and WebSocket probes (the
    simulator): the three daemons in turn, the same probes, the same rate, the round repeated
    (four times in a full run, every other round in reverse order, so that the machine's
    drift hits every mode alike). A mode's figure is the median of its rounds; its ratio is
    the median of the ratios within a round (the windows of one round lie a minute apart,
    rounds several). The OTLP sink is also measured alone (bench.workers otlpsink): what it
    adds to a run is smaller than the windows' drift."""
    rate = ctx.size(20.0, 50.0)
    out: dict[str, Any] = {"rate_per_second": rate, "notes": []}
    http_interval, ws_interval = ctx.size(0.5, 1.0), ctx.size(1.0, 2.0)
    rounds = ctx.size(1, 4)
    rounds_of: dict[str, list[dict[str, Any]]] = {
        f"{kind}_{mode}": [] for kind in ("http", "ws") for mode in TRACE_MODES}

    def round_robin(kind: str, yaml_text: str, interval: float) -> None:
        for i in range(rounds):
            for mode in TRACE_MODES if i % 2 == 0 else TRACE_MODES[::-1]:
                rounds_of[f"{kind}_{mode}"].append(_traced_window(
                    ctx, yaml_text, kind, interval, mode, otlp))

    with servers.OtlpSink() as otlp:
        with servers.http_target(ctx.workdir, ctx.cores.others, ctx.have_nginx) as (url, _):
            urls = [f"{url}p{i}" for i in range(max(1, round(rate * http_interval)))]
            yaml_text = servers.http_probes_yaml(urls, http_interval, http_interval / 2)
            round_robin("http", yaml_text, http_interval)
            out["http_sink_alone"] = _sink_alone(ctx, "http", _trace_yaml(yaml_text, "on"),
                                                 otlp)
            out["http_trace_alone"] = _trace_alone(ctx, "http", yaml_text)
        sim, port = servers.simulator(ctx.cores.others)
        with running(sim, ctx.workdir):
            wait_port(port, 30, sim)
            ws_rate = ctx.size(10.0, 25.0)
            yaml_text = servers.ws_probes_yaml(f"ws://{HOST}:{port}/ws",
                                               max(1, round(ws_rate * ws_interval)),
                                               ws_interval, ws_interval * 0.75)
            round_robin("ws", yaml_text, ws_interval)
            out["ws_sink_alone"] = _sink_alone(ctx, "ws", _trace_yaml(yaml_text, "on"), otlp)
            out["ws_trace_alone"] = _trace_alone(ctx, "ws", yaml_text)
        out["otlp_requests"] = otlp.requests
        out["otlp_bytes"] = otlp.bytes
    for key, windows in rounds_of.items():
        per_run = [w["cpu_per_run_ms"] for w in windows if w["cpu_per_run_ms"] is not None]
        out[key] = {**windows[-1], "cpu_per_run_ms": rnd(statistics.median(per_run), 4)
                    if per_run else None, "rounds_cpu_per_run_ms": per_run,
                    "runs": sum(w["runs"] for w in windows),
                    "spans_exported": sum(w["spans_exported"] for w in windows),
                    "spans_dropped": sum(w["spans_dropped"] for w in windows)}

    def paired(kind: str, mode: str) -> tuple[float | None, list[float]]:
        ratios = [w["cpu_per_run_ms"] / b["cpu_per_run_ms"]
                  for w, b in zip(rounds_of[f"{kind}_{mode}"], rounds_of[f"{kind}_off"],
                                  strict=True)
                  if w["cpu_per_run_ms"] and b["cpu_per_run_ms"]]
        return (statistics.median(ratios) if ratios else None), [rnd(r, 3) for r in ratios]

    rows = []
    for kind, label in (("http", "HTTP"), ("ws", "WS")):
        off = out[f"{kind}_off"]["cpu_per_run_ms"]
        on = out[f"{kind}_on"]["cpu_per_run_ms"]
        exp = out[f"{kind}_otlp"]["cpu_per_run_ms"]
        on_ratio, on_rounds = paired(kind, "on")
        exp_ratio, exp_rounds = paired(kind, "otlp")
        out[f"{kind}_on"]["paired_ratios"] = on_rounds
        out[f"{kind}_otlp"]["paired_ratios"] = exp_rounds
        alone = out[f"{kind}_sink_alone"]
        traced = out[f"{kind}_trace_alone"]
        rows.append(row(f"{label} CPU/run, trace: false", off, None, "", "", None, "ms"))
        rows.append(row(f"{label} CPU/run, trace on", on, off, "trace: false", "<= 1.05x",
                        on_ratio <= 1.05 if on_ratio else None, "ms",
                        f"ratio per round {on_rounds}; traceparent on every request, "
                        "trace id in result, log, exemplars", ratio=on_ratio))
        rows.append(row(f"{label} CPU/run, trace on + OTLP export", exp, off, "trace: false",
                        "<= 1.15x", exp_ratio <= 1.15 if exp_ratio else None, "ms",
                        f"ratio per round {exp_rounds}; "
                        f"{out[f'{kind}_otlp']['spans_exported']:g} spans exported, "
                        f"{out[f'{kind}_otlp']['spans_dropped']:g} dropped", ratio=exp_ratio))
        low, high = traced["ratio_ci95"]
        added, margin = traced["added_us_per_run"] / 1000, traced["added_us_ci95"] / 1000
        # What trace context adds to a run, measured where the drift cannot reach it, over
        # the daemon's own CPU per run (as for the sink alone); judged by the upper end of
        # its 95 % interval, so that the noise cannot hide a cost over 5 %.
        rows.append(row(f"  {label} trace context alone: CPU added per run", added, off,
                        "trace: false", "<= 0.05x",
                        (added + margin) / off <= 0.05 if off else None, "ms",
                        f"± {margin:.4f} ms (95 %); in process, {traced['pairs']} pairs of "
                        f"{traced['batch']}-run batches off and on: "
                        f"{traced['off_ms_per_run']:.3f} -> {traced['on_ms_per_run']:.3f} ms, "
                        f"{traced['ratio']:.3f}x ({low:.3f}-{high:.3f}x) of that smaller run"
                        + (f", by fifths {traced['ratio_per_block']}"
                           if traced["ratio_per_block"] else "")))
        rows.append(row(f"  {label} OTLP sink alone: CPU/run", alone["cpu_ms_per_run"], off,
                        "trace: false", "<= 0.15x",
                        alone["cpu_ms_per_run"] / off <= 0.15 if off else None, "ms",
                        f"{alone['spans_per_run']:.1f} spans a run; queue, build, encode, POST "
                        f"of {alone['runs']} real results' copies, no probe running"))
    return {"status": "ok", "rows": rows, **out}


# --------------------------------------------------------------------------- 8. passwords


def bench_password_flood(ctx: Ctx) -> dict[str, Any]:
    """``synthmon run`` behind basic auth (bcrypt cost 12, 10 in a quick run) under a flood
    of wrong passwords (bench/flood.py): the time a valid first login waits, from another
    address and from the flood's own, against the same login with no flood; a scrape with
    remembered credentials; what the flood got."""
    import bcrypt

    from bench.flood import measure

    cost = ctx.size(10, 12)
    connections, samples = ctx.size(10, 50), ctx.size(1, 5)
    password = "bench-valid-password"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    users = [f"valid{i}" for i in range(3 * samples)]
    web = ctx.workdir / "web-flood.yml"
    web.write_text("basic_auth_users:\n" + "".join(
        f"  {u}: '{hashed}'\n" for u in ("prometheus", "scraper", *users)))
    yaml_text = "probes:\n  - {name: idle, http: {url: 'http://127.0.0.1:9/'}}\n"
    sm = start_synthmon(ctx, yaml_text, "synthmon-flood", extra=["--web-config", str(web)])
    with running(sm.proc, ctx.workdir):
        wait_port(sm.port, 60, sm.proc)
        report = asyncio.run(measure(sm.base + "/metrics", "prometheus", users, password,
                                     "scraper", connections=connections, samples=samples,
                                     settle=ctx.size(0.3, 3.0), scrapes=ctx.size(2, 5)))
    out = report.summary()
    quiet, other = out["quiet_login_median_s"], out["other_address_median_s"]
    same, cached = out["same_address_median_s"], out["cached_median_s"]
    assert isinstance(quiet, float) and isinstance(other, float)
    assert isinstance(same, float) and isinstance(cached, float)
    rows = [
        row(f"password flood ({connections} conns): valid first login, other address",
            other, quiet, "no flood", "<= 3x", other <= 3 * quiet, "s",
            f"bcrypt cost {cost}; max {out['other_address_max_s']} s; statuses "
            f"{out['other_address_status']}"),
        row("  valid first login, the flood's own address", same, quiet, "no flood", "", None,
            "s", f"max {out['same_address_max_s']} s; statuses {out['same_address_status']} "
                 "(429: its waiting room was full)"),
        row("  scrape with remembered credentials", cached * 1000, None, "", "", None, "ms",
            f"max {(out['cached_max_s'] or 0) * 1000:.1f} ms"),
        row("  flood answered", out["flood_requests_per_s"], None, "", "", None, "req/s",
            f"by status {out['flood_answers']}"),
    ]
    return {"status": "ok", "rows": rows, "cost": cost, **out}


# --------------------------------------------------------------------------- streams


def bench_sse_cpu(ctx: Ctx) -> dict[str, Any]:
    """A stream probe's run (parser, matcher, timeline, transcript, Result) beside a bare
    aiohttp read of the same stream, in one process by turns (bench/sse.py)."""
    events = ctx.size(20, 100)
    runs, batch = ctx.size((20, 5), (200, 10))
    port = free_port()
    server = Proc("sse-target", [PYTHON, "-m", "bench.sse", "serve", "--port", str(port),
                                 "--events", str(events), "--pace", "0.002"],
                  cpus=ctx.cores.others)
    with running(server, ctx.workdir):
        wait_port(port, 15, server)
        argv = [PYTHON, "-m", "bench.sse", "measure", "--url",
                f"http://{HOST}:{port}/v1/chat/completions", "--runs", str(runs),
                "--batch", str(batch), "--events", str(events)]
        done = subprocess.run(pinned(argv, ctx.cores.subject), capture_output=True,
                              text=True, timeout=ctx.size(120, 900), check=False)
    if done.returncode != 0:
        raise BenchError(f"bench.sse measure failed: {done.stderr[-1500:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = out["ratio"]
    ratios = sorted(out["ratios"])
    spread = f"batches {ratios[0]:.2f}-{ratios[-1]:.2f}x" if ratios else ""
    rows = [row("SSE run: CPU/run", out["sse_ms_per_run"], out["bare_ms_per_run"],
                "bare aiohttp read", "<= 1.3x", ratio <= 1.3 if ratio else None, "ms",
                f"{events} events 2 ms apart, {out['runs_per_side']} runs a side, a "
                "connection a run on both sides (as every probe run); median of the "
                f"batches' ratios; {spread}; outcomes {out['outcomes']}",
                ratio=ratio),
            row("  beside a read over a reused connection", out["sse_ms_per_run"],
                out["bare_reused_ms_per_run"], "bare aiohttp, kept alive", "", None, "ms",
                "the bare read keeps its connection from run to run, which no probe run "
                "does (each measures its own connect): the connect's cost is on the "
                "probe's side only", ratio=out["ratio_reused"])]
    return {"status": "ok", "rows": rows, **out}


# --------------------------------------------------------------------------- 9. floods


def bench_floods(ctx: Ctx) -> dict[str, Any]:
    """One hostile target at full speed (tests.support.floods, the floods tests/test_floods.py
    asserts on), each probed in a process of its own: its peak RSS above the setup, each
    run's duration against its timeout, the longest log line, how long the event loop was
    held."""
    from tests.support.floods import FLOODS, MAX_COST_MIB, OVER_TIMEOUT, measure
    from tests.support.hostile import zoo_process

    runs = ctx.size(1, 3)
    # Quick (the smoke test, whose whole bench has 120 s): the small-frames flood alone.
    floods = ctx.size([f for f in FLOODS if f.fault == "ws/flood_small"], FLOODS)
    per: dict[str, Any] = {}
    rows: list[Row] = []
    with zoo_process(ctx.workdir / "zoo-tls") as zoo:
        for flood in floods:
            got = measure(zoo, flood, ctx.workdir, runs=runs)
            per[flood.fault] = got
            longest = max(r["seconds"] for r in got["runs"])
            outcomes = sorted({r["outcome"] for r in got["runs"]})
            rows.append(row(f"peak RSS, {flood.name}", got["peak_cost_mib"], None, "",
                            f"< {MAX_COST_MIB:g} MiB", got["peak_cost_mib"] < MAX_COST_MIB,
                            "MiB", detail=f"log line <= {got['longest_log_line_bytes']} B, "
                            f"loop held <= {got['max_loop_stall_ms']} ms"))
            rows.append(row(f"run time, {flood.name}", longest, None, "",
                            f"<= {flood.timeout + OVER_TIMEOUT:g} s "
                            f"(timeout {flood.timeout:g} s)",
                            longest <= flood.timeout + OVER_TIMEOUT, "s",
                            detail=f"slowest of {runs}; {', '.join(outcomes)}"))
    return {"status": "ok", "rows": rows, "runs": runs, "per_flood": per}


CASES: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "http_cpu": bench_http_cpu,
    "http_at_once": bench_http_at_once,
    "ws_cpu": bench_ws_cpu,
    "sse_cpu": bench_sse_cpu,
    "trace_cpu": bench_trace_cpu,
    "scheduler": bench_scheduler,
    "shards": bench_shards,
    "fidelity": bench_fidelity,
    "memory": bench_memory,
    "startup": bench_startup,
    "password_flood": bench_password_flood,
    "floods": bench_floods,
}
