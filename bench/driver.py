"""The load driver for blackbox_exporter: ``GET /probe`` at a fixed rate, bounded.

It runs in the bench process (on the "others" core), so its own CPU is never charged to
blackbox. It keeps its connections to blackbox alive, as Prometheus does when it scrapes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.util import parse_metrics

MAX_IN_FLIGHT = 256
REQUEST_TIMEOUT = 10.0


@dataclass
class Stream:
    """One paced stream of /probe requests, cycling over ``urls``."""

    name: str
    urls: Sequence[str]
    rate: float  # requests per second
    completed: int = 0
    failed: int = 0
    probe_failed: int = 0
    durations: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    errors: list[str] = field(default_factory=list)


async def _one(session: aiohttp.ClientSession, stream: Stream, url: str,
               sem: asyncio.Semaphore, keep: bool) -> None:
    async with sem:
        sent = time.monotonic()
        try:
            async with session.get(url) as resp:
                body = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            stream.failed += 1
            if len(stream.errors) < 5:
                stream.errors.append(repr(exc))
            return
    if status != 200:
        stream.failed += 1
        return
    stream.completed += 1
    if not keep and "probe_success 1" in body:
        return
    values = {n: v for n, _, v in parse_metrics(body)
              if n in ("probe_success", "probe_duration_seconds")}
    if values.get("probe_success") != 1.0:
        stream.probe_failed += 1
    elif keep:
        stream.durations.append((sent, values["probe_duration_seconds"]))


async def _pace(session: aiohttp.ClientSession, stream: Stream, duration: float,
                sem: asyncio.Semaphore, keep: bool, tasks: set[asyncio.Task[None]]) -> None:
    count = max(1, int(stream.rate * duration))
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i / stream.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(session, stream, stream.urls[i % len(stream.urls)],
                                        sem, keep))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def drive(streams: Sequence[Stream], duration: float, keep: Sequence[str] = ()
                ) -> None:
    """Send every stream for ``duration`` seconds, then wait (bounded) for the answers."""
    sem = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()
    conn = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=conn, timeout=client_timeout) as session:
        await asyncio.gather(*(_pace(session, s, duration, sem, s.name in keep, tasks)
                               for s in streams))
        if tasks:
            await asyncio.wait(list(tasks), timeout=REQUEST_TIMEOUT + 1)


def run_drive(streams: Sequence[Stream], duration: float, keep: Sequence[str] = ()) -> None:
    asyncio.run(drive(streams, duration, keep))
