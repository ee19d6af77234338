"""The event loop the daemon runs on: uvloop unless asked for the standard library's.

uvloop is the default because the daemon's cost per run is mostly event-loop work (socket
set-up, callbacks, timers): with uvloop a WebSocket probe run costs less CPU and a reported
latency carries less of the loop's own delay (``make bench`` measures both loops side by
side). ``--event-loop asyncio`` is the way back, e.g. to rule the loop out while debugging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHOICES = ("uvloop", "asyncio")
DEFAULT = "uvloop"


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``name``; None means asyncio's default. Falls back to asyncio where
    uvloop is not installed (it has no Windows build)."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            return None
        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], name: str = DEFAULT) -> T:
    """``asyncio.run(main)`` on the loop called ``name``."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        runner.get_loop().set_exception_handler(quiet_orphaned_connect_errors)
        return runner.run(main)


def quiet_orphaned_connect_errors(loop: asyncio.AbstractEventLoop,
                                  context: dict[str, Any]) -> None:
    """The loop's exception handler: a connection error left in a future nobody awaits any
    more is logged as one structured event instead of a traceback on stderr.

    uvloop's ``create_connection`` sets the handshake's error (a certificate refused, a
    reset) on its waiter even when the connect was cancelled by the probe's timeout a moment
    before (uvloop#437, open): the probe has already reported its outcome, and asyncio's
    default handler would print "Future exception was never retrieved" with a traceback
    into the daemon's log. Everything else goes to the default handler as before."""
    exc = context.get("exception")
    if context.get("message") == "Future exception was never retrieved" \
            and isinstance(exc, OSError):  # ssl.SSLError and ConnectionError are OSErrors
        import structlog

        structlog.get_logger("synthmon").debug(
            "orphaned_connect_error", error=f"{type(exc).__name__}: {exc}")
        return
    loop.default_exception_handler(context)


def current() -> str:
    """The name of the running loop, for the start-up log line."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
