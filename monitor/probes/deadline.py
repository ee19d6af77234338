"""The deadline of a run: :func:`asyncio.timeout`'s promise at a fraction of its cost.

``with deadline(seconds):`` cancels the task when ``seconds`` have passed and turns that
cancellation into :class:`TimeoutError` as it leaves the block, exactly as
``async with asyncio.timeout(seconds):`` does: a cancellation from outside (the task
cancelled by someone else, before or during the block) stays a cancellation, nested
deadlines each raise only for their own expiry, and the task's count of cancel requests is
left as it was found (``Task.uncancel``).

Every run goes through two (the hard deadline of :func:`monitor.probes.run.run_probe` and
the kind's own), and ``asyncio.timeout`` is a state machine of its own with a rescheduling
API that a run never uses, entered and left through two coroutines; with ``bench.cost``
that was about 12,000 instructions a run. This is a plain context manager.

Nor does a deadline schedule a timer of its own: one on the event loop, scheduled when
entering and cancelled when leaving, was ~10,000 instructions (uvloop's ``call_at`` and
the handle's ``cancel``), of ~16,600 for a whole deadline. The deadlines of one event loop
that have the same length are queued in the order they end (they were entered in that
order), and one timer of the loop serves each queue: it fires when the oldest deadline
still in force ends (exactly when that deadline's own timer would have), expires what has
ended, lets go of what was left already, and is scheduled again for the next one in force.
A run's deadline leaves long before it ends, so a queue's timer fires about once per its
length (a probe's timeout), not once a run. A deadline left goes from its queue as soon
as nothing older is still queued, and keeps no reference to its task: at most one
timeout's worth of small objects waits in a queue, behind a deadline still in force.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType


class _Queue:
    """The deadlines of one length on one event loop, oldest first, and the loop's timer
    for the oldest one in force (None: not scheduled)."""

    __slots__ = ("armed_at", "entries", "handle", "length", "lengths", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, lengths: dict[float, _Queue],
                 length: float) -> None:
        self.loop = loop
        self.lengths = lengths
        self.length = length
        self.entries: deque[deadline] = deque()
        self.handle: asyncio.TimerHandle | None = None
        self.armed_at = 0.0

    def arm(self, when: float) -> None:
        self.armed_at = when
        self.handle = self.loop.call_at(when, self.fire)

    def fire(self) -> None:
        self.handle = None
        # What the timer was scheduled for has ended, even if the loop's clock (uvloop's
        # whole milliseconds) says it is a hair early: a timer of its own would have fired
        # then too.
        now = max(self.loop.time(), self.armed_at)
        entries = self.entries
        while entries:
            first = entries[0]
            if first._task is not None:  # in force
                if first._when > now:
                    self.arm(first._when)
                    return
                first._expire()
            entries.popleft()
        if self.lengths.get(self.length) is self:
            del self.lengths[self.length]


class _Local(threading.local):
    loop: asyncio.AbstractEventLoop | None = None
    lengths: dict[float, _Queue]


# Per thread: the queues of the event loop that last kept a deadline in it. Another loop
# (a test's next one) gets queues of its own; those of the one before stay with the timer
# that serves them.
_local = _Local()


class _Bound:
    """What both deadlines share with ``asyncio.Timeout``: the task they bound, how they
    cancel it, and how they take that cancellation back when the block is left."""

    __slots__ = ("_cancelling", "_expired", "_task")

    def __init__(self) -> None:
        self._expired = False
        self._task: asyncio.Task[object] | None = None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a deadline is kept inside a task")
        self._cancelling = task.cancelling()
        self._task = task

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        task = self._task
        if task is None:
            return
        self._task = None  # left: a timer that fires now finds nothing to cancel
        self._release()
        # As asyncio.timeout: the cancel request this deadline made is taken back; only
        # when no other one is pending is the CancelledError its own, and a TimeoutError.
        if self._expired and task.uncancel() <= self._cancelling \
                and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _release(self) -> None:
        """Let go of the timer, once the block is left."""

    def _expire(self) -> None:
        task = self._task
        if task is not None:
            self._expired = True
            task.cancel()

    @property
    def expired(self) -> bool:
        """Whether the deadline passed (and cancelled the task)."""
        return self._expired


class deadline(_Bound):  # lower case: used as asyncio.timeout is
    """``with deadline(seconds):`` inside a task (see the module docstring)."""

    __slots__ = ("_delay", "_queue", "_when")

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._delay = seconds

    def __enter__(self) -> deadline:
        loop = asyncio.get_running_loop()
        self._bind(loop)
        local = _local
        if local.loop is not loop:
            local.loop, local.lengths = loop, {}
        delay = self._delay
        queue = local.lengths.get(delay)
        if queue is None:
            queue = local.lengths[delay] = _Queue(loop, local.lengths, delay)
        self._queue = queue
        when = self._when = loop.time() + delay
        queue.entries.append(self)
        if queue.handle is None:
            queue.arm(when)
        return self

    def _release(self) -> None:
        # The queue's timer lets go of the entries left at its head.
        entries = self._queue.entries
        while entries and entries[0]._task is None:
            entries.popleft()


class deadline_at(_Bound):  # lower case: used as asyncio.timeout_at is
    """``with deadline_at(when):`` inside a task: :func:`asyncio.timeout_at`'s promise (the
    same as :class:`deadline`'s, at the event loop's time ``when``) with a timer of its own.

    For the waits of one run that end at one instant of that run (the WebSocket run's
    deadline, a step's timeout): each run's instant is its own, so they cannot share the
    timers of :class:`deadline`'s queues. Still a plain context manager: with ``bench.cost
    --kind websocket`` ``asyncio.timeout_at`` cost ~18,500 instructions a wait (five a
    run), the two coroutines that enter and leave it and its state machine about half."""

    __slots__ = ("_handle", "_when")

    def __init__(self, when: float) -> None:
        super().__init__()
        self._when = when
        self._handle: asyncio.Handle | None = None

    def __enter__(self) -> deadline_at:
        loop = asyncio.get_running_loop()
        self._bind(loop)
        when = self._when
        # As asyncio.timeout_at: a time already past expires at the loop's next turn, so
        # the block runs until it first waits.
        self._handle = (loop.call_soon(self._expire) if when <= loop.time()
                        else loop.call_at(when, self._expire))
        return self

    def _release(self) -> None:
        handle = self._handle
        if handle is not None:
            handle.cancel()
            self._handle = None

    def _expire(self) -> None:
        self._handle = None  # fired: nothing to cancel on leaving
        super()._expire()


__all__ = ["deadline", "deadline_at"]
