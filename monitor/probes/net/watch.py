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
from contextvars import ContextVar, Token
from typing import Protocol


class ConnectionWatcher(Protocol):
    def tls_handshake_started(self, obj: ssl.SSLObject) -> None: ...

    def answer_unparsable(self, exc: BaseException) -> None: ...


WATCHER: ContextVar[ConnectionWatcher | None] = ContextVar("synthmon_watcher", default=None)


class watching:  # lower case: used as the function it was
    """``with watching(watcher):`` the run's watcher is ``watcher``. A class rather than a
    generator made a context manager: entered on every run, at a fifth of the cost."""

    __slots__ = ("_token", "_watcher")

    def __init__(self, watcher: ConnectionWatcher) -> None:
        self._watcher = watcher
        self._token: Token[ConnectionWatcher | None] | None = None

    def __enter__(self) -> None:
        self._token = WATCHER.set(self._watcher)

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            WATCHER.reset(self._token)
            self._token = None


__all__ = ["WATCHER", "ConnectionWatcher", "watching"]
