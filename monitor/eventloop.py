"""The event loop the daemon runs on: uvloop unless asked for the standard library's.

uvloop is the default because the daemon's cost per run is mostly event-loop work (socket
set-up, callbacks, timers): with uvloop a WebSocket probe run costs less CPU and a reported
latency carries less of the loop's own delay (``make bench`` measures both loops side by
side). ``--event-loop asyncio`` is the way back, e.g. to rule the loop out while debugging.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import sys
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
            return _uvloop_class()
        except ImportError:
            return None
    return None


# The answers numeric_addrinfo gave, by its arguments: ~73 thousand instructions a call
# (cachegrind; the C library's call ~24, socket.getaddrinfo turning each entry's family and
# type into enums in Python the rest), once for every HTTP run's connect. Bounded: emptied
# when full (a config has a few literal addresses and ports, not thousands).
_ANSWERS: dict[tuple[Any, ...], tuple[Any, ...]] = {}
ANSWERS_MAX = 1024
_ADDRCONFIG = int(socket.AI_ADDRCONFIG)  # an int: socket's IntFlag takes its & in Python


def numeric_addrinfo(host: Any, port: Any, family: int, type: int, proto: int, flags: int
                     ) -> list[Any] | None:  # socket.getaddrinfo's entries
    """The C library's own ``getaddrinfo`` answer when ``host`` is an address literal and
    ``port`` a number, which it gives without asking anyone (``AI_NUMERICHOST``); None
    when it would have to look something up (a name, a service name, ``AI_ADDRCONFIG``,
    which reads the interfaces). An answer is remembered: for a literal it depends on the
    arguments alone (one address, its entries in the order of their socket types), except
    for an IPv6 scope (``fe80::1%eth0``), whose interface may come and go, which is asked
    each time. A new list each call, as ``socket.getaddrinfo`` gives."""
    if (not isinstance(host, str) or flags & _ADDRCONFIG
            or not (port is None or (isinstance(port, int) and 0 <= port <= 65535))):
        return None
    key = (host, port, family, type, proto, flags)
    known = _ANSWERS.get(key)
    if known is not None:
        return list(known)
    try:
        found = socket.getaddrinfo(host, port, family, type, proto,
                                   flags | socket.AI_NUMERICHOST)
    except (OSError, OverflowError, UnicodeError, ValueError):
        return None  # not a literal (or a bad port): the loop's own path answers or fails
    if "%" not in host:
        if len(_ANSWERS) >= ANSWERS_MAX:
            _ANSWERS.clear()
        _ANSWERS[key] = tuple(found)
    return found


@functools.cache
def _uvloop_class() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    class Loop(uvloop.Loop):
        """uvloop's loop, whose ``sock_connect`` does not send an address literal through
        the thread pool.

        aiohttp connects every probe's socket with ``loop.sock_connect`` (aiohappyeyeballs),
        and uvloop's asks ``self.getaddrinfo`` for the address without a socket type,
        which its own no-lookup path for literals does not take: every HTTP run sent
        ``127.0.0.1`` to libuv's thread pool and waited for a worker thread to hand it
        back (four threads woken in turn, an eventfd write, a loop wake-up), ~50 µs of CPU
        a connect of ~120 and that much more in the connect phase's time. A literal is
        answered here, exactly as the C library answers it; anything else goes on to
        uvloop. tests/test_eventloop.py fails if uvloop stops asking ``self.getaddrinfo``
        (the hook is then no longer needed) or the answers ever differ."""

        numeric_answers = 0  # counted for the test that this path is taken

        async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                              proto: int = 0, flags: int = 0) -> Any:  # as the loop's
            found = numeric_addrinfo(host, port, family, type, proto, flags)
            if found is not None:
                self.numeric_answers += 1
                return found
            return await super().getaddrinfo(host, port, family=family, type=type,
                                             proto=proto, flags=flags)

    return Loop


def run(main: Coroutine[Any, Any, T], name: str = DEFAULT) -> T:
    """``asyncio.run(main)`` on the loop called ``name``."""
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        runner.get_loop().set_exception_handler(quiet_orphaned_connect_errors)
        return runner.run(main)


# How long a Ctrl-C'd command waits for its cancelled work before it exits regardless.
INTERRUPT_GRACE = 2.0


class Interrupted(Exception):
    """Ctrl-C ended the coroutine that :func:`interruptible` ran (exit code 130)."""


def _exit_interrupted() -> None:
    print(f"interrupted: the runs did not stop within {INTERRUPT_GRACE:g}s of Ctrl-C; exiting",
          file=sys.stderr, flush=True)
    os._exit(130)


async def interruptible(main: Coroutine[Any, Any, T], grace: float = INTERRUPT_GRACE,
                        give_up: Callable[[], None] = _exit_interrupted) -> T:
    """Await ``main``; Ctrl-C (SIGINT) cancels it and raises :class:`Interrupted`.

    Through the loop's own signal handler, as the daemon does, rather than the Python-level
    handler that :class:`asyncio.Runner` installs: on uvloop, under heavy load, ``once`` was
    seen still running 10 s after a SIGINT, inside ``run_until_complete``. Whatever holds
    it, a command must end on Ctrl-C: if the cancelled work has not ended ``grace`` seconds
    later, ``give_up`` runs (by default: say so on stderr and exit 130 at once)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    inner = loop.create_task(main)
    interrupted = False
    deadline: asyncio.TimerHandle | None = None

    def on_sigint() -> None:
        nonlocal interrupted, deadline
        if interrupted:  # a second Ctrl-C: no more waiting
            give_up()
            return
        interrupted = True
        inner.cancel()
        deadline = loop.call_later(grace, give_up)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await inner
    except asyncio.CancelledError:
        if interrupted and not task.cancelling():
            raise Interrupted from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if deadline is not None:
            deadline.cancel()


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
    return "uvloop" if any(c.__module__.startswith("uvloop") for c in type(loop).__mro__) \
        else "asyncio"
