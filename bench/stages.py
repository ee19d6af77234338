"""The daemon's memory stage by stage, in one process (issue 24).

``python -m bench.stages [--probes N] [--rounds R]``: the daemon's own parts as ``synthmon
run`` builds them (uvloop, the JSON log to /dev/null, the collector as the daemon sets it),
N HTTP probes of ``bench.servers.http_probes_yaml`` against nginx on loopback (a Python
target where nginx is missing): loaded, adopted, scheduled, served, one run each, then
R - 1 more rounds with ``/metrics`` scraped by curl after each. Printed per stage: RSS and
pymalloc's bytes in use (``sys._debugmallocstats``), both in MiB.

The machine's load cannot move these figures the way it moves ``python -m bench --only
memory``'s (there, runs pile up in flight when the machine is busy, and the heap keeps what
they touched): here APScheduler is held still and the runs are started by this script, at
most ``CONCURRENCY`` at a time, through the scheduler's own ``run_job``. ``--scheduled``
lets the scheduler run them as in the bench (interval N/600 s; with ``--scrape-every 15``
its scrapes too), while the machine is quiet enough to keep up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

CONCURRENCY = 8  # runs in flight at most, about what the bench's ~600 runs/s keep


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    assert match is not None
    return int(match.group(1)) / 1024


def pymalloc_mib() -> tuple[float, float]:
    """pymalloc's bytes in blocks in use, and in its arenas, in MiB."""
    err = io.StringIO()
    fd = sys.stderr.fileno()
    with tempfile.TemporaryFile("w+") as tmp, redirect_stderr(err):
        saved = os.dup(fd)
        os.dup2(tmp.fileno(), fd)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, fd)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read()
    used = re.search(r"# bytes in allocated blocks\s+=\s+([\d,]+)", text)
    arenas = re.search(r"Total\s+=\s+([\d,]+)", text)
    if used is None or arenas is None:  # not pymalloc's (tracemalloc wraps it)
        return float("nan"), float("nan")
    return (int(used.group(1).replace(",", "")) / 2**20,
            int(arenas.group(1).replace(",", "")) / 2**20)


def stage(name: str, t0: float) -> None:
    used, arenas = pymalloc_mib()
    print(f"{name:<12} RSS {rss_mib():7.1f} MiB   pymalloc in use {used:6.1f} of {arenas:6.1f}"
          f" MiB   ({time.monotonic() - t0:5.1f} s)", file=sys.stderr, flush=True)


async def measure(url: str, n: int, rounds: int, workdir: Path, every: bool,
                  scrapes: int, scrape_every: float, scheduled: bool) -> None:
    t0 = time.monotonic()
    stage("start", t0)
    from bench import servers
    from monitor.daemon import Daemon, DaemonOptions
    from monitor.redact import Redactor
    from monitor.sinks.log import configure_logging
    from monitor.web.serve import start_server
    from monitor.web.server import build_app

    redactor = Redactor()
    log = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - /dev/null, for the whole run
    configure_logging(redactor, stream=log, json=True)
    gc.collect()
    stage("imports", t0)
    path = workdir / "probes.yaml"
    # Scheduled: as the bench's memory case runs them (~600 runs a second); else held still.
    interval = n / 600 if scheduled else 3600
    path.write_text(servers.http_probes_yaml([f"{url}m{i}" for i in range(n)], interval,
                                             interval / 2))
    daemon = Daemon(DaemonOptions(config_path=path, own_process=True), redactor=redactor)
    cpu = time.process_time()
    config, in_round = daemon._load()
    load_cpu = time.process_time() - cpu
    gc.collect()
    stage("loaded", t0)
    print(f"             config load {load_cpu:.2f} s of CPU", file=sys.stderr)
    daemon._adopt(config)
    stage("adopted", t0)
    daemon.surfacer.reloaded(True)
    from monitor.probes.context import open_context

    daemon._ctx = open_context(daemon.redactor, daemon.tokens)
    scheduler = daemon._scheduler
    scheduler.start(config.probes, in_round)
    if not scheduled:
        scheduler._scheduler.pause()  # the runs are started below, CONCURRENCY at a time
    from monitor import gcpolicy

    gcpolicy.tune()
    gcpolicy.settle()
    daemon.ready = True
    del config, in_round
    stage("scheduled", t0)
    port = int(os.environ.get("STAGES_PORT", "0")) or servers.free_port()
    runner = await start_server(build_app(daemon), "127.0.0.1", port)
    stage("served", t0)
    names = [p.key for p in daemon.config.probes] if daemon.config else []

    async def one_round() -> None:
        it = iter(names)

        async def worker() -> None:
            for name in it:
                await scheduler.run_job(name)

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))

    async def scraping() -> None:  # as Prometheus would, while the runs go on
        while True:
            await asyncio.sleep(scrape_every)
            await asyncio.to_thread(subprocess.run, ["curl", "-sf", "-o", os.devnull,
                                                     f"http://127.0.0.1:{port}/metrics"],
                                    check=True, timeout=300)

    async def until(runs: int) -> None:  # every probe's history holds as many
        rings = daemon.history._rings
        while min((rings[x].count for x in names), default=runs) < runs:  # noqa: ASYNC110
            await asyncio.sleep(2)  # polled: a history has no event to wait on

    scraper = asyncio.ensure_future(scraping()) if scrape_every else None
    if scheduled:
        await until(1)
        stage("run x1", t0)
        await until(rounds)
    for r in range(0 if scheduled else rounds):
        await one_round()
        if every:
            stage(f"round {r + 1}", t0)
        if r:
            await asyncio.to_thread(subprocess.run, ["curl", "-sf", "-o", os.devnull,
                                                     f"http://127.0.0.1:{port}/metrics"],
                                    check=True, timeout=300)
            if every:
                stage("scraped", t0)
        if r == 0:
            stage("run x1", t0)
    if scraper is not None:
        scraper.cancel()
        stage("scraped too", t0)
    for _ in range(scrapes):
        await asyncio.to_thread(subprocess.run, ["curl", "-sf", "-o", os.devnull,
                                                 f"http://127.0.0.1:{port}/metrics"],
                                check=True, timeout=300)
        stage("scraped", t0)
    failed = sum(1 for name in names for r in daemon.history.runs(name, 1) if not r.success)
    stage(f"run x{rounds}", t0)
    print(f"             {failed} of {len(names)} newest runs failed", file=sys.stderr)
    await runner.cleanup()
    await daemon.stop()
    log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stages", description=__doc__)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--every", action="store_true",
                        help="print after every round and every scrape too")
    parser.add_argument("--scrapes", type=int, default=0,
                        help="scrapes of /metrics after the rounds, without runs")
    parser.add_argument("--scrape-every", type=float, default=0.0,
                        help="also scrape /metrics every this many seconds while runs go on")
    parser.add_argument("--scheduled", action="store_true",
                        help="the scheduler runs the probes, as in the bench's memory case "
                             "(interval N/600 s), rather than this script CONCURRENCY at a time")
    args = parser.parse_args(argv)
    from bench import servers
    from monitor import eventloop

    with tempfile.TemporaryDirectory() as tmp, \
            servers.http_target(Path(tmp), None) as (url, _kind):
        eventloop.run(measure(url, args.probes, args.rounds, Path(tmp), args.every,
                                    args.scrapes, args.scrape_every, args.scheduled))
    return 0


if __name__ == "__main__":
    sys.exit(main())
