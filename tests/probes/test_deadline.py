"""monitor.probes.deadline keeps asyncio.timeout's promise: each scenario is run under both,
and what comes out (the exception, the task's pending cancel requests, what ran) must be
the same."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import pytest

from monitor.probes.deadline import deadline, deadline_at

pytestmark = pytest.mark.both_loops


class _Ours:
    """deadline, entered as asyncio.timeout is (async with), to run the same scenarios."""

    def __init__(self, seconds: float) -> None:
        self.inner = deadline(seconds)

    async def __aenter__(self) -> None:
        self.inner.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.inner.__exit__(exc_type, exc, tb)


class _OursAt(_Ours):
    """deadline_at, at the loop's time ``seconds`` from now (what asyncio.timeout works
    out and hands to asyncio.timeout_at)."""

    def __init__(self, seconds: float) -> None:
        self.inner = deadline_at(asyncio.get_running_loop().time() + seconds)  # type: ignore[assignment]


Timeout = Callable[[float], Any]
KINDS: dict[str, Timeout] = {"asyncio.timeout": asyncio.timeout, "deadline": _Ours,
                             "deadline_at": _OursAt}
OURS = ("deadline", "deadline_at")


async def _outcome(scenario: Callable[[Timeout, list[str]], Awaitable[None]],
                   bound: Timeout) -> tuple[str, int, list[str]]:
    """What the scenario ended in, the task's pending cancel requests after it, and what
    it noted on the way."""
    notes: list[str] = []

    async def run() -> tuple[str, int]:
        task = asyncio.current_task()
        assert task is not None
        try:
            await scenario(bound, notes)
            ended = "returned"
        except TimeoutError as exc:
            cause = type(exc.__cause__).__name__ if exc.__cause__ else None
            ended = f"TimeoutError from {cause}"
        except asyncio.CancelledError:
            ended = "CancelledError"
        return ended, task.cancelling()

    task = asyncio.ensure_future(run())
    try:
        ended, cancelling = await asyncio.wait_for(asyncio.shield(task), 5)
    except asyncio.CancelledError:
        ended, cancelling = "task cancelled", -1
    return ended, cancelling, notes


async def _in_time(bound: Timeout, notes: list[str]) -> None:
    async with bound(5):
        await asyncio.sleep(0)
        notes.append("body done")


async def _expires(bound: Timeout, notes: list[str]) -> None:
    async with bound(0.01):
        await asyncio.sleep(5)
        notes.append("never")


async def _already_past(bound: Timeout, notes: list[str]) -> None:
    async with bound(-1):
        notes.append("entered")
        await asyncio.sleep(1)


async def _cancelled_from_outside(bound: Timeout, notes: list[str]) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().call_later(0.01, task.cancel)
    async with bound(5):
        await asyncio.sleep(5)


async def _cancelled_and_expired(bound: Timeout, notes: list[str]) -> None:
    # The deadline passes and someone else cancels too: a cancellation, not a timeout.
    task = asyncio.current_task()
    assert task is not None
    async with bound(0.01):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            task.cancel()
            notes.append("cancelled again")
            await asyncio.sleep(0)
            raise


async def _swallowed(bound: Timeout, notes: list[str]) -> None:
    async with bound(0.01):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            notes.append("swallowed")
    notes.append("after")


async def _inner_first(bound: Timeout, notes: list[str]) -> None:
    async with bound(5):
        try:
            async with bound(0.01):
                await asyncio.sleep(5)
        except TimeoutError:
            notes.append("inner timed out")
        await asyncio.sleep(0)
        notes.append("outer goes on")


async def _outer_first(bound: Timeout, notes: list[str]) -> None:
    async with bound(0.01):
        try:
            async with bound(5):
                await asyncio.sleep(5)
        except TimeoutError:
            notes.append("wrongly the inner's")
        except asyncio.CancelledError:
            notes.append("inner lets it through")
            raise


async def _error_inside(bound: Timeout, notes: list[str]) -> None:
    async with bound(5):
        await asyncio.sleep(0)
        raise TimeoutError("the body's own")


SCENARIOS = [_in_time, _expires, _already_past, _cancelled_from_outside,
             _cancelled_and_expired, _swallowed, _inner_first, _outer_first, _error_inside]


@pytest.mark.parametrize("ours", OURS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__.strip("_"))
async def test_the_same_as_asyncio_timeout(
        scenario: Callable[[Timeout, list[str]], Awaitable[None]], ours: str) -> None:
    theirs = await _outcome(scenario, KINDS["asyncio.timeout"])
    assert await _outcome(scenario, KINDS[ours]) == theirs


@pytest.mark.parametrize("ours", OURS)
async def test_the_outcomes_are_what_each_scenario_is_about(ours: str) -> None:
    """The comparison above is only worth its scenarios: each shows what it is about."""
    got = {s.__name__: await _outcome(s, KINDS[ours]) for s in SCENARIOS}
    assert got["_in_time"] == ("returned", 0, ["body done"])
    assert got["_expires"] == ("TimeoutError from CancelledError", 0, [])
    assert got["_already_past"] == ("TimeoutError from CancelledError", 0, ["entered"])
    assert got["_cancelled_from_outside"][0] == "CancelledError"
    assert got["_cancelled_and_expired"][0] == "CancelledError"
    assert got["_swallowed"] == ("returned", 0, ["swallowed", "after"])
    assert got["_inner_first"] == ("returned", 0, ["inner timed out", "outer goes on"])
    assert got["_outer_first"] == ("TimeoutError from CancelledError", 0,
                                   ["inner lets it through"])
    assert got["_error_inside"] == ("TimeoutError from None", 0, [])


async def test_the_timer_is_gone_once_left() -> None:
    loop = asyncio.get_running_loop()
    for make in (lambda: deadline(0.01), lambda: deadline_at(loop.time() + 0.01)):
        kept = make()
        with kept:
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)  # past the deadline: nothing cancels the task now
        assert not kept.expired
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0


def test_outside_an_event_loop_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        deadline(1).__enter__()
    with pytest.raises(RuntimeError):
        deadline_at(1).__enter__()


async def test_deadlines_of_one_length_share_a_timer_and_leave_nothing_behind() -> None:
    """One timer serves the deadlines of one length (the module docstring): a deadline left
    goes from the queue once nothing older is queued, one in force keeps those behind it
    until it leaves, and each still expires on its own time."""
    from monitor.probes import deadline as module

    for _ in range(50):
        with deadline(7):
            await asyncio.sleep(0)
    queue = module._local.lengths[7]
    assert not queue.entries  # left, and let go of at once
    assert queue.handle is not None  # the first one's timer, not one per deadline

    held = asyncio.Event()

    async def long_run() -> None:
        with deadline(7):
            await held.wait()

    task = asyncio.ensure_future(long_run())
    await asyncio.sleep(0)
    for _ in range(5):
        with deadline(7):
            await asyncio.sleep(0)
    assert len(queue.entries) == 6  # behind the one in force
    assert all(entry._task is None for entry in list(queue.entries)[1:])
    held.set()
    await task
    assert not queue.entries

    # Two tasks' deadlines of one length, entered one after the other: each expires.
    async def expires(notes: list[str]) -> None:
        try:
            with deadline(0.02):
                await asyncio.sleep(5)
        except TimeoutError:
            notes.append("timed out")

    notes: list[str] = []
    first = asyncio.ensure_future(expires(notes))
    await asyncio.sleep(0.005)
    second = asyncio.ensure_future(expires(notes))
    await asyncio.wait_for(asyncio.gather(first, second), 2)
    assert notes == ["timed out", "timed out"]
    assert 0.02 not in module._local.lengths  # an emptied queue goes with its last timer
