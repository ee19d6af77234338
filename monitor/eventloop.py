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
        return runner.run(main)


def current() -> str:
    """The name of the running loop, for the start-up log line."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
