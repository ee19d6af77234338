"""The deadline of a run: :func:`asyncio.timeout`'s promise at a third of its cost.

``with deadline(seconds):`` cancels the task when ``seconds`` have passed and turns that
cancellation into :class:`TimeoutError` as it leaves the block, exactly as
``async with asyncio.timeout(seconds):`` does: a cancellation from outside (the task
cancelled by someone else, before or during the block) stays a cancellation, nested
deadlines each raise only for their own expiry, and the task's count of cancel requests is
left as it was found (``Task.uncancel``).

Every run goes through two (the hard deadline of :func:`monitor.probes.run.run_probe` and
the kind's own), and ``asyncio.timeout`` is a state machine of its own with a rescheduling
API that a run never uses, entered and left through two coroutines; with ``bench.cost``
that was about 12,000 instructions a run. This is a plain context manager: entering it
schedules one timer, leaving it cancels that timer.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class deadline:  # lower case: used as asyncio.timeout is
    """``with deadline(seconds):`` inside a task (see the module docstring)."""

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_task")

    def __init__(self, seconds: float) -> None:
        self._delay = seconds
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None

    def __enter__(self) -> deadline:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline is kept inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = loop.call_at(loop.time() + self._delay, self._expire)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # As asyncio.timeout: the cancel request this deadline made is taken back; only
        # when no other one is pending is the CancelledError its own, and a TimeoutError.
        if self._expired and self._task.uncancel() <= self._cancelling \
                and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    @property
    def expired(self) -> bool:
        """Whether the deadline passed (and cancelled the task)."""
        return self._expired

    def _expire(self) -> None:
        self._handle = None
        self._expired = True
        self._task.cancel()


__all__ = ["deadline"]
