"""What a run hears from the layers it cannot pass arguments to.

One aiohttp session and one cached ``SSLContext`` serve every run, so their callbacks find
the run in progress through a contextvar: asyncio (and uvloop) run a connection's protocol
callbacks in a copy of the context of the task that opened it. A run sets its watcher with
:func:`watching` around the connection it wants to hear about:

- the TLS context (:mod:`monitor.probes.net.tls`) calls
  :meth:`ConnectionWatcher.tls_handshake_started` as the handshake begins, which splits
  the TCP connect from the TLS handshake (aiohttp and the event loop report only
  "connection made", after both);
- the HTTP session's protocol calls :meth:`ConnectionWatcher.answer_unparsable` when the
  answer is not HTTP, an error aiohttp drops when a server talks first (see
  :mod:`monitor.probes.net.session`).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class ConnectionWatcher(Protocol):
    def tls_handshake_started(self, obj: ssl.SSLObject) -> None: ...

    def answer_unparsable(self, exc: BaseException) -> None: ...


WATCHER: ContextVar[ConnectionWatcher | None] = ContextVar("synthmon_watcher", default=None)


@contextmanager
def watching(watcher: ConnectionWatcher) -> Iterator[None]:
    token = WATCHER.set(watcher)
    try:
        yield
    finally:
        WATCHER.reset(token)


__all__ = ["WATCHER", "ConnectionWatcher", "watching"]
