"""A flood of wrong passwords against a daemon's basic auth, and what honest clients see
meanwhile: how long a valid first login waits (its credentials not yet remembered), from
another address and from the flood's own, and how long a scrape with remembered
credentials takes.

The flood is ``connections`` keep-alive connections from one address, each sending the
next request as soon as the last is answered, every one with a new wrong password for a
user that exists (a repeated password would be answered from the daemon's cache of failed
checks). It runs in a process of its own (``python -m bench.flood``, :func:`flood_process`),
so that its thousands of requests a second do not slow down the clients being timed. Used
by the ``password_flood`` benchmark and by tests/web/test_password_flood.py.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

FLOOD_FROM = "127.0.0.1"
OTHER_ADDRESS = "127.0.0.2"  # a valid client on another address (all of 127/8 is loopback)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Flood:
    """A running flood: its answers by status so far."""

    answers: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def sent(self) -> int:
        return sum(self.answers.values()) + self.errors


@contextlib.asynccontextmanager
async def flooding(url: str, user: str, connections: int = 50,
                   source: str = FLOOD_FROM) -> AsyncIterator[Flood]:
    """The flood runs while the block does; ``url`` is a page behind basic auth."""
    flood = Flood()
    wrong = itertools.count()
    connector = aiohttp.TCPConnector(limit=connections, local_addr=(source, 0),
                                     force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one_connection() -> None:
            while True:
                header = basic(user, f"wrong-{next(wrong)}")
                try:
                    async with session.get(url, headers={"Authorization": header}) as resp:
                        await resp.read()
                        flood.answers[resp.status] += 1
                except (TimeoutError, aiohttp.ClientError):
                    flood.errors += 1
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(one_connection()) for _ in range(connections)]
        try:
            yield flood
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class FloodProcess:
    """A flood in a child process; ``answers`` is filled in when it stops."""

    proc: subprocess.Popen[str]
    started: float
    answers: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


@contextlib.contextmanager
def flood_process(url: str, user: str, connections: int = 50, source: str = FLOOD_FROM,
                  max_seconds: float = 300.0) -> Iterator[FloodProcess]:
    """``python -m bench.flood`` while the block runs (at most ``max_seconds``); it is
    stopped with SIGTERM by its pid, and its counts are read from its output."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.flood", url, user, "--connections", str(connections),
         "--source", source, "--max-seconds", str(max_seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    flood = FloodProcess(proc, time.monotonic())
    try:
        line = proc.stdout.readline() if proc.stdout else ""  # "flooding" once connected
        if not line.startswith("flooding"):
            raise RuntimeError(f"the flood did not start: {line}{proc.communicate()[1]}")
        yield flood
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        flood.seconds = time.monotonic() - flood.started
        with contextlib.suppress(ValueError, IndexError):
            flood.answers = {int(k): v for k, v in json.loads(out.splitlines()[-1]).items()}


async def _flood_main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with flooding(args.url, args.user, args.connections, args.source) as flood:
        print("flooding", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.max_seconds)
        answers = dict(flood.answers)
    print(json.dumps({str(k): v for k, v in answers.items()}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.flood",
                                     description="wrong passwords until SIGTERM")
    parser.add_argument("url")
    parser.add_argument("user")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--source", default=FLOOD_FROM)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    asyncio.run(_flood_main(parser.parse_args(argv)))


async def login(url: str, user: str, password: str, source: str = OTHER_ADDRESS,
                limit: float = 60.0) -> tuple[int, float]:
    """One request with these credentials on a new connection from ``source``: the status
    and the seconds from sending it to its answer."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=limit)) as s:
        t0 = time.perf_counter()
        async with s.get(url, headers={"Authorization": basic(user, password)}) as resp:
            await resp.read()
            return resp.status, time.perf_counter() - t0


@dataclass
class FloodReport:
    connections: int
    quiet_login_seconds: list[float]  # valid first logins with no flood
    other_address_seconds: list[float]  # valid first logins from another address, flooded
    other_address_status: list[int]
    same_address_seconds: list[float]  # ... from the flood's own address
    same_address_status: list[int]
    cached_seconds: list[float]  # scrapes with remembered credentials, flooded
    flood_answers: dict[int, int]
    flood_seconds: float

    def summary(self) -> dict[str, object]:
        def med(xs: Sequence[float]) -> float | None:
            return round(statistics.median(xs), 4) if xs else None

        return {
            "connections": self.connections,
            "quiet_login_median_s": med(self.quiet_login_seconds),
            "other_address_median_s": med(self.other_address_seconds),
            "other_address_max_s": round(max(self.other_address_seconds), 4)
            if self.other_address_seconds else None,
            "other_address_status": self.other_address_status,
            "same_address_median_s": med(self.same_address_seconds),
            "same_address_max_s": round(max(self.same_address_seconds), 4)
            if self.same_address_seconds else None,
            "same_address_status": self.same_address_status,
            "cached_median_s": med(self.cached_seconds),
            "cached_max_s": round(max(self.cached_seconds), 4) if self.cached_seconds else None,
            "flood_answers": {str(k): v for k, v in sorted(self.flood_answers.items())},
            "flood_requests_per_s": round(sum(self.flood_answers.values())
                                          / self.flood_seconds, 1),
        }


async def measure(url: str, flood_user: str, users: Sequence[str], password: str,
                  cached_user: str, connections: int = 50, samples: int = 3,
                  settle: float = 2.0, scrapes: int = 5) -> FloodReport:
    """The whole scenario. ``users`` are valid users none of which has logged in yet
    (``3 * samples`` of them: quiet, other address, same address); ``cached_user`` logs in
    first and is then a scraper whose credentials are remembered (``scrapes`` of its
    requests timed after each sample)."""
    assert len(users) >= 3 * samples
    quiet = iter(users[:samples])
    other = iter(users[samples:2 * samples])
    same = iter(users[2 * samples:3 * samples])
    status, _ = await login(url, cached_user, password)
    assert status == 200, f"the scraper's own login answered {status}"
    quiet_s = [(await login(url, next(quiet), password))[1] for _ in range(samples)]
    report = FloodReport(connections, quiet_s, [], [], [], [], [], {}, 0.0)
    with flood_process(url, flood_user, connections) as flood:
        await asyncio.sleep(settle)  # the flood in full swing
        for _ in range(samples):
            status, took = await login(url, next(other), password)
            report.other_address_status.append(status)
            report.other_address_seconds.append(took)
            status, took = await login(url, next(same), password, source=FLOOD_FROM)
            report.same_address_status.append(status)
            report.same_address_seconds.append(took)
            for _ in range(scrapes):
                report.cached_seconds.append((await login(url, cached_user, password))[1])
            await asyncio.sleep(0.2)
    report.flood_answers = flood.answers
    report.flood_seconds = flood.seconds
    return report


__all__ = ["FLOOD_FROM", "OTHER_ADDRESS", "Flood", "FloodProcess", "FloodReport", "basic",
           "flood_process", "flooding", "login", "measure"]


if __name__ == "__main__":
    main()
