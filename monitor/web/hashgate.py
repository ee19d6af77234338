"""Admission to the password hashing: a few at a time, a bounded waiting room, and the
waiting clients served in turn.

bcrypt costs a core for a fifth of a second by design. Without a bound, 50 connections
sending wrong passwords queued a valid first login behind all of them (7.9 s). Here:

- at most ``workers`` verifications run at once (each in the gate's own threads), and no
  client holds all of them when there are two or more;
- a client may have ``per_client`` verifications waiting, and all clients together
  ``total``; beyond that a request is refused at once (:class:`Saturated`, HTTP 429), never
  queued: a flood cannot build a backlog that honest requests then wait behind;
- when a worker frees up, the next verification is that of the waiting client served
  least recently (one never served first), not the longest queue's: a client that sends
  fifty requests gets one turn a round, as does the one that sends one, and a newcomer
  waits for no more than the verifications already running.

A client is an IP address, or an IPv6 /64 (one host's usual share). Behind a proxy that
hides the addresses every request is the same client, and the gate degrades to a bounded
queue with fast refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

PER_CLIENT = 2  # verifications a client may have waiting
TOTAL = 16  # verifications all clients together may have waiting


def default_workers() -> int:
    """Half the cores, at least one and at most four: the probes keep the other half, so
    that a flood of passwords does not inflate the latencies they measure."""
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def client_of(remote: str | None) -> str:
    """The client a request counts against: its address, an IPv6 address's /64."""
    if not remote:
        return "?"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return remote[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Saturated(Exception):
    """The waiting room is full (for this client, or for everyone)."""


class FairGate:
    """See the module docstring. Used from one event loop."""

    def __init__(self, workers: int | None = None, per_client: int = PER_CLIENT,
                 total: int = TOTAL) -> None:
        self.workers = workers or default_workers()
        self.per_client = per_client
        self.total = total
        # With two or more workers a client may hold all but one.
        self._cap = max(1, self.workers - 1)
        self._running = 0
        self._busy: dict[str, int] = {}
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}
        self._waiting = 0
        # When each client with work running or waiting was last given a worker.
        self._served: dict[str, int] = {}
        self._ticks = itertools.count()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self.refused = 0  # requests refused because the room was full

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def running(self) -> int:
        return self._running

    async def run(self, client: str, fn: Callable[[], T]) -> T:
        """``fn()`` in one of the gate's threads, when ``client``'s turn comes. Raises
        :class:`Saturated` at once when it cannot wait."""
        async with self._slot(client):
            if self._closed:
                raise Saturated(client)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers,
                                                    thread_name_prefix="synthmon-bcrypt")
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        """At shutdown: whatever waits is refused now, and nothing is admitted any more,
        so that the server's own shutdown does not wait for a queue of hashes."""
        self._closed = True
        for client, queue in list(self._queues.items()):
            for future in queue:
                if not future.done():
                    future.set_exception(Saturated(client))
        self._queues.clear()
        self._waiting = 0
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @contextlib.asynccontextmanager
    async def _slot(self, client: str) -> AsyncIterator[None]:
        await self._acquire(client)
        try:
            yield
        finally:
            self._release(client)

    async def _acquire(self, client: str) -> None:
        if self._closed:
            raise Saturated(client)
        if (self._running < self.workers and self._busy.get(client, 0) < self._cap
                and client not in self._queues):
            self._grant(client)
            return
        queue = self._queues.get(client)
        if (queue is not None and len(queue) >= self.per_client) \
                or self._waiting >= self.total:
            self.refused += 1
            raise Saturated(client)
        if queue is None:
            queue = self._queues[client] = deque()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        self._waiting += 1
        try:
            await future
        except Saturated:
            self._idle(client)
            raise
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(client)  # granted, then cancelled before it ran
            else:
                self._forget(client, future)
            raise

    def _grant(self, client: str) -> None:
        self._running += 1
        self._busy[client] = self._busy.get(client, 0) + 1
        self._served[client] = next(self._ticks)

    def _idle(self, client: str) -> None:
        """Forget a client with nothing running or waiting (the table stays bounded)."""
        if client not in self._busy and client not in self._queues:
            self._served.pop(client, None)

    def _forget(self, client: str, future: asyncio.Future[None]) -> None:
        queue = self._queues.get(client)
        if queue is not None and future in queue:
            queue.remove(future)
            self._waiting -= 1
            if not queue:
                del self._queues[client]
                self._idle(client)

    def _release(self, client: str) -> None:
        self._running -= 1
        left = self._busy[client] - 1
        if left:
            self._busy[client] = left
        else:
            del self._busy[client]
        self._dispatch()
        self._idle(client)

    def _dispatch(self) -> None:
        """Free workers to the waiting clients, the least recently served first."""
        while self._running < self.workers:
            eligible = [c for c in self._queues if self._busy.get(c, 0) < self._cap]
            if not eligible:
                return
            chosen = min(eligible, key=lambda c: self._served.get(c, -1))
            queue = self._queues[chosen]
            future = queue.popleft()
            self._waiting -= 1
            if not queue:
                del self._queues[chosen]
            if future.cancelled():
                self._idle(chosen)
                continue
            self._grant(chosen)
            future.set_result(None)


__all__ = ["PER_CLIENT", "TOTAL", "FairGate", "Saturated", "client_of", "default_workers"]
