"""APScheduler's per-run path as the scheduler fits it (monitor/scheduler/engine.py): the
internals it relies on still there, a due job started on one wake-up and never early, the
executor's outcomes those of APScheduler's own, the trigger's times and the job store's
answers those of the classes they stand in for."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import (
    EVENT_ALL,
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers import base as scheduler_base
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import convert_to_datetime

from monitor.scheduler import engine, next_run
from monitor.scheduler.engine import (
    CoroutineExecutor,
    LoopScheduler,
    SortedJobStore,
    StepTrigger,
    timer_delay,
)
from tests.test_scheduler import Recorder, probes

pytestmark = pytest.mark.both_loops  # the daemon runs on uvloop; asyncio's is the way back


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _source_digest(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def test_the_apscheduler_internals_the_engine_relies_on_are_there() -> None:
    """engine.py overrides or calls these; an APScheduler upgrade that renames, removes or
    re-signs one of them must fail here, not slow or break the scheduler quietly."""
    assert _parameters(AsyncIOScheduler._start_timer) == ["self", "wait_seconds"]
    assert _parameters(AsyncIOScheduler._stop_timer) == ["self"]
    assert _parameters(BaseScheduler._process_jobs) == ["self"]
    assert "_timeout" in vars(AsyncIOScheduler) and "_eventloop" in vars(AsyncIOScheduler)
    # wakeup's body, which LoopScheduler._wake repeats on the loop: stop the timer, process
    # the jobs, start the timer with the wait they return.
    body = inspect.getsource(AsyncIOScheduler.wakeup)
    assert body.index("self._stop_timer()") < body.index("self._process_jobs()") \
        < body.index("self._start_timer(wait_seconds)"), body
    assert _parameters(BaseExecutor._do_submit_job) == ["self", "job", "run_times"]
    assert _parameters(BaseExecutor._run_job_success) == ["self", "job_id", "events"]
    assert _parameters(BaseExecutor._run_job_error) == ["self", "job_id", "exc", "traceback"]
    assert "_pending_futures" in inspect.getsource(AsyncIOExecutor.start)
    for slot in ("func", "args", "kwargs", "misfire_grace_time", "_jobstore_alias",
                 "next_run_time", "id", "trigger", "coalesce", "executor", "max_instances"):
        assert slot in Job.__slots__, slot
    # LoopScheduler._process_jobs is BaseScheduler._process_jobs decision for decision
    # (and Job._get_run_times's loop, and what Job._modify does with an aware next run
    # time): when either changes, compare the two again and pin the new text here.
    assert _source_digest(BaseScheduler._process_jobs) == "efd3944de4e2c69e"
    assert _source_digest(Job._get_run_times) == "0b6c985b4db8fd1c"
    aware = datetime.now(UTC)
    assert convert_to_datetime(aware, UTC, "next_run_time") is aware
    assert _source_digest(Job._modify) == "e222f8aad3cd688a"
    assert _parameters(BaseExecutor.submit_job) == ["self", "job", "run_times"]
    assert _parameters(BaseScheduler._dispatch_event) == ["self", "event"]
    scheduler = LoopScheduler(timezone=UTC)
    for attribute in ("_jobstores", "_jobstores_lock", "_executors", "_listeners", "_logger",
                      "jobstore_retry_interval", "timezone", "state"):
        assert hasattr(scheduler, attribute), attribute
    for slot in ("interval", "timezone", "jitter", "end_date"):
        assert slot in IntervalTrigger.__slots__, slot
    # Every method a job store must have is the engine's own, none inherited from
    # MemoryJobStore's idea of one.
    assert BaseJobStore.__abstractmethods__ <= set(vars(SortedJobStore))


_WAITS = [0.0, 1e-9, 0.0004, 0.0005, 0.000999, 0.001, 0.0103, 0.05, 0.9999, 1.0, 59.99951,
          3600.0]


def test_a_timer_on_a_millisecond_loop_is_never_early_and_at_most_1ms_late() -> None:
    """uvloop's timer (libuv's): armed at the loop's clock, the monotonic clock truncated to
    the millisecond, for the delay rounded to the nearest millisecond; it fires once the
    loop's clock reaches that, not before. Asked for timer_delay, it fires at or after the
    wait, and less than 1 ms after it, wherever in its millisecond the clock is."""
    rng = random.Random(1)
    for wait in [*_WAITS, *(rng.uniform(0, 120) for _ in range(2000))]:
        for now in (1_000.0, 1_000.0005, 1_000.000999, *(rng.uniform(0, 1e6) for _ in range(20))):
            loop_now = math.floor(now * 1000) / 1000
            armed_for = round(timer_delay(wait, now - loop_now) * 1000) / 1000
            fires = loop_now + armed_for  # the earliest the loop's clock says so
            assert fires >= now + wait - 1e-9, (wait, now)
            assert fires < now + wait + 0.001 + 1e-6, (wait, now)


@pytest.mark.parametrize("wait", _WAITS)
def test_a_timer_on_an_exact_loop_waits_the_wait_rounded_up_to_the_millisecond(
        wait: float) -> None:
    """asyncio's loop: its clock is the monotonic clock (behind by the instant between the
    two reads), its timers are not early; the wait is rounded up to the millisecond. A loop
    with a clock of its own (ahead, or far behind) is given 1 ms, what a truncated
    millisecond clock needs."""
    for behind in (0.0, 1e-7):
        assert wait <= timer_delay(wait, behind) <= wait + 0.001 + 1e-6
    for odd in (-3.0, -1e-6, 0.2, 1e9):
        assert timer_delay(wait, odd) == timer_delay(wait, 0.001)


async def test_a_due_job_starts_on_one_wake_up_and_never_before_its_time() -> None:
    """One job every 50 ms for a second: each timer wake-up finds the job due (an early
    wake-up finds nothing and sleeps again: more wake-ups than runs), and every run starts
    at or after its planned time."""
    scheduler = LoopScheduler(timezone=UTC, executors={"default": CoroutineExecutor()},
                              jobstores={"default": SortedJobStore()})
    scheduler.start()
    early: list[float] = []
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1
        # Its planned time: the job's next run time, moved on by one interval when it
        # was submitted.
        nxt = job.next_run_time
        assert nxt is not None
        early.append(nxt.timestamp() - 0.05 - time.time())

    job = scheduler.add_job(run, StepTrigger(seconds=0.05, timezone=UTC), max_instances=1,
                            coalesce=True, misfire_grace_time=1)
    await asyncio.sleep(1.0)
    scheduler.pause()
    woken = scheduler.wakeups
    await asyncio.sleep(0.01)
    scheduler.shutdown(wait=False)
    assert runs >= 5
    assert woken == runs, (woken, runs)
    assert max(early) <= 0, early


class _Events:
    def __init__(self, scheduler: BaseScheduler) -> None:
        self.seen: list[tuple[int, str]] = []
        self.errors: list[BaseException | None] = []
        scheduler.add_listener(self.on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED
                               | EVENT_JOB_MAX_INSTANCES)

    def on_event(self, event: JobEvent) -> None:
        self.seen.append((event.code, str(event.job_id)))
        self.errors.append(getattr(event, "exception", None))


def _executor(kind: str) -> BaseExecutor:
    return AsyncIOExecutor() if kind == "apscheduler" else CoroutineExecutor()


async def _settle(scheduler: BaseScheduler, seconds: float) -> None:
    await asyncio.sleep(seconds)
    scheduler.pause()
    await asyncio.sleep(0.05)  # runs started by then report


@pytest.mark.parametrize("executor", ["apscheduler", "engine"])
async def test_the_executor_runs_reports_errors_and_overlaps_as_apschedulers_does(
        executor: str, caplog: pytest.LogCaptureFixture) -> None:
    """The same jobs through AsyncIOExecutor and CoroutineExecutor: runs with their
    arguments, a run that raises reported as EVENT_JOB_ERROR with its exception and logged,
    a run that outlives its interval skipped as EVENT_JOB_MAX_INSTANCES; every run's
    instance released."""
    scheduler = LoopScheduler(timezone=UTC, executors={"default": _executor(executor)})
    events = _Events(scheduler)
    calls: list[str] = []
    boom = ValueError("boom")

    async def fine(name: str) -> None:
        calls.append(name)

    async def fails() -> None:
        raise boom

    async def slow() -> None:
        calls.append("slow")
        await asyncio.sleep(0.35)

    scheduler.start()
    start = datetime.now(UTC) + timedelta(seconds=0.05)
    for func, args, job_id in ((fine, ("a",), "fine"), (fails, (), "fails"),
                               (slow, (), "slow")):
        scheduler.add_job(func, StepTrigger(seconds=0.1, start_date=start, timezone=UTC),
                          args=args, id=job_id, max_instances=1, coalesce=True,
                          misfire_grace_time=1)
    with caplog.at_level(logging.ERROR, logger="apscheduler"):
        await _settle(scheduler, 0.5)
    executor_instance = scheduler._lookup_executor("default")
    scheduler.shutdown(wait=False)
    assert calls.count("a") >= 3 and set(calls) == {"a", "slow"}, calls
    errors = [e for (code, job), e in zip(events.seen, events.errors, strict=True)
              if code == EVENT_JOB_ERROR]
    assert errors and all(e is boom for e in errors)
    assert {job for code, job in events.seen if code == EVENT_JOB_ERROR} == {"fails"}
    assert {job for code, job in events.seen if code == EVENT_JOB_MAX_INSTANCES} == {"slow"}
    assert not [1 for code, _ in events.seen if code == EVENT_JOB_MISSED]
    assert "boom" in caplog.text
    await asyncio.sleep(0.4)  # the slow run ends
    assert not executor_instance._instances


@pytest.mark.parametrize("executor", ["apscheduler", "engine"])
async def test_a_run_later_than_its_grace_is_missed_as_with_apschedulers_executor(
        executor: str) -> None:
    """The loop held past a run's misfire grace (1 s): the run is not started, the miss is
    an EVENT_JOB_MISSED, the job's instance is released and its next run starts."""
    scheduler = LoopScheduler(timezone=UTC, executors={"default": _executor(executor)})
    events = _Events(scheduler)
    starts: list[float] = []

    async def run() -> None:
        starts.append(time.monotonic())

    scheduler.start()
    first = datetime.now(UTC) + timedelta(seconds=0.2)
    scheduler.add_job(run, StepTrigger(seconds=2, start_date=first, timezone=UTC),
                      id="late", max_instances=1, coalesce=True, misfire_grace_time=1)
    await asyncio.sleep(0.05)
    time.sleep(0.2 + 1.3)  # noqa: ASYNC251 - the loop held, as by a stalled process
    held = time.monotonic()
    await asyncio.sleep(0.2)
    assert events.seen == [(EVENT_JOB_MISSED, "late")]
    assert starts == []
    assert not scheduler._lookup_executor("default")._instances
    await _settle(scheduler, 1.2)  # the next run, 2 s after the missed one
    scheduler.shutdown(wait=False)
    assert len(starts) == 1 and starts[0] > held, starts


@pytest.mark.parametrize("executor", ["apscheduler", "engine"])
async def test_shutdown_cancels_the_runs_in_flight(executor: str) -> None:
    scheduler = LoopScheduler(timezone=UTC, executors={"default": _executor(executor)})
    ended: list[str] = []

    async def hangs() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    scheduler.start()
    scheduler.add_job(hangs, "date", run_date=datetime.now(UTC))
    await asyncio.sleep(0.2)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.1)
    assert ended == ["cancelled"]


# ------------------------------------------------ LoopScheduler._process_jobs's fast path

async def _noop() -> None:
    pass


class _FrozenNow(datetime):
    """``datetime`` whose ``now`` is one instant: both paths of a case read the same clock."""

    at = datetime(2026, 1, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return cls.at.astimezone(tz)


_PARIS = ZoneInfo("Europe/Paris")


class _AsksCounted(BaseTrigger):
    """A trigger whose answer changes each time it is asked (as one with jitter): the
    scheduler must ask it as often as APScheduler does."""

    def __init__(self) -> None:
        self.asked = 0

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime
                           ) -> datetime:
        self.asked += 1
        return (previous_fire_time or now) + timedelta(seconds=1, microseconds=self.asked)

# name: the jobs (id, trigger, next run time's offset from now in seconds or None for a
# paused job, keyword arguments of add_job), and the ids at max_instances already.
_Cases = dict[str, tuple[list[tuple[str, Any, float | None, dict[str, Any]]], set[str]]]


def _process_cases(now: datetime) -> _Cases:
    def step(seconds: float) -> StepTrigger:
        return StepTrigger(seconds=seconds, timezone=UTC)

    grace = {"misfire_grace_time": 30}
    return {
        "one due": ([("a", step(1), -0.0005, grace)], set()),
        "due to the microsecond": ([("a", step(1), 0.0, grace)], set()),
        "not due yet": ([("a", step(1), 0.3, grace)], set()),
        "three runs behind, coalesced": ([("a", step(1), -2.5, grace)], set()),
        "three runs behind, not coalesced": (
            [("a", step(1), -2.5, {**grace, "coalesce": False})], set()),
        "at max_instances": ([("a", step(1), -0.01, grace)], {"a"}),
        "past its grace": ([("a", step(100), -60.0, {"misfire_grace_time": 10})], set()),
        "no grace": ([("a", step(1), -0.2, {"misfire_grace_time": None})], set()),
        "several due, one paused, one later": (
            [("a", step(1), -0.2, grace), ("b", step(0.3), -0.1, grace),
             ("c", step(5), None, grace), ("d", step(2), 1.5, grace),
             ("e", step(1), -0.2, grace)], {"e"}),
        "its trigger ends": (
            [("a", IntervalTrigger(seconds=1, timezone=UTC,
                                   end_date=now + timedelta(seconds=0.5)), -0.7, grace),
             ("b", step(1), 0.2, grace)], set()),
        "interval trigger": ([("a", IntervalTrigger(seconds=1, timezone=UTC), -1.2, grace)],
                             set()),
        "interval trigger in another zone": (
            [("a", IntervalTrigger(seconds=1, timezone=_PARIS), -0.3, grace)], set()),
        "step trigger in another zone": (
            [("a", StepTrigger(seconds=1, timezone=_PARIS), -0.3, grace)], set()),
        "a trigger asked twice": ([("a", _AsksCounted(), -1.5, grace)], set()),
        "cron trigger": ([("a", CronTrigger(second="*", timezone=UTC), -2.0, grace)], set()),
        "unknown executor": ([("a", step(1), -0.1, {**grace, "executor": "nowhere"}),
                              ("b", step(1), -0.1, grace)], set()),
        "only a paused job": ([("a", step(1), None, grace)], set()),
        "no jobs": ([], set()),
    }


def _event_fields(event: Any) -> tuple[Any, ...]:
    return (type(event).__name__, event.code, getattr(event, "job_id", None),
            getattr(event, "jobstore", None), getattr(event, "scheduled_run_times", None),
            getattr(event, "scheduled_run_time", None))


async def _processed(now: datetime, case: str, mask: int, own: bool, pauses: bool,
                     caplog: pytest.LogCaptureFixture) -> tuple[Any, ...]:
    """What one pass over a case's jobs does: its answer, the jobs left and when they run
    next, the runs started, the events and the log; by LoopScheduler's path (``own``) or
    APScheduler's ``BaseScheduler._process_jobs``."""
    jobs, busy = _process_cases(now)[case]
    scheduler = LoopScheduler(timezone=UTC, executors={"default": CoroutineExecutor()},
                              jobstores={"default": SortedJobStore()})
    seen: list[tuple[Any, ...]] = []

    def listen(event: Any) -> None:
        seen.append(_event_fields(event))
        if pauses:
            scheduler.pause()

    scheduler.add_listener(listen, mask)
    scheduler.start(paused=True)
    for job_id, trigger, offset, options in jobs:
        at = None if offset is None else now + timedelta(seconds=offset)
        if at is not None and isinstance(trigger, IntervalTrigger) \
                and trigger.timezone is _PARIS:
            at = at.astimezone(_PARIS)
        scheduler.add_job(_noop, trigger, id=job_id, coalesce=options.get("coalesce", True),
                          max_instances=1, next_run_time=at,
                          **{k: v for k, v in options.items() if k != "coalesce"})
        if offset is None:
            scheduler.pause_job(job_id)
    executor = scheduler._lookup_executor("default")
    for job_id in busy:
        executor._instances[job_id] = 1
    scheduler.state = STATE_RUNNING  # as resume() leaves it, without its pass over the jobs
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        wait = scheduler._process_jobs() if own else BaseScheduler._process_jobs(scheduler)
        await asyncio.sleep(0)  # a missed run is reported from the loop
        await asyncio.sleep(0)
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    left = [(j.id, j.next_run_time, j.next_run_time and j.next_run_time.tzinfo)
            for j in scheduler.get_jobs()]
    instances = dict(executor._instances)
    state, events = scheduler.state, list(seen)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)
    return wait, left, instances, events, logged, state


@pytest.mark.parametrize("case", list(_process_cases(datetime.now(UTC))))
async def test_the_schedulers_pass_over_the_jobs_is_apschedulers(
        case: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    """LoopScheduler._process_jobs against APScheduler's own, case by case, with every
    listener mask that matters (all events; the daemon's, which takes no submission; one
    that pauses the scheduler from its listener): the same wait returned, the same jobs
    with the same next run times (and zones), the same runs started, the same events with
    the same fields, the same warnings and errors logged."""
    now = datetime.now(UTC).replace(microsecond=123_456)
    monkeypatch.setattr(_FrozenNow, "at", now)
    monkeypatch.setattr(scheduler_base, "datetime", _FrozenNow)
    monkeypatch.setattr(engine, "datetime", _FrozenNow)
    for mask, pauses in ((EVENT_ALL, False), (EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED, False),
                         (EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES, True)):
        theirs = await _processed(now, case, mask, False, pauses, caplog)
        ours = await _processed(now, case, mask, True, pauses, caplog)
        assert ours == theirs, (mask, pauses)


async def test_the_pass_over_the_jobs_leaves_the_uncommon_cases_to_apscheduler(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two job stores, a MemoryJobStore, a zone with daylight saving, APScheduler's debug
    log on: APScheduler's own pass, unchanged."""
    taken: list[str] = []
    monkeypatch.setattr(BaseScheduler, "_process_jobs", lambda self: taken.append("theirs"))
    # The daemon's own case is not left to it ...
    scheduler = LoopScheduler(timezone=UTC, executors={"default": CoroutineExecutor()},
                              jobstores={"default": SortedJobStore()})
    scheduler.start(paused=True)
    scheduler.state = STATE_RUNNING
    assert scheduler._process_jobs() is None
    scheduler.shutdown(wait=False)
    assert taken == []
    # ... these are.
    options: list[dict[str, Any]] = [
        {"timezone": UTC, "jobstores": {"default": SortedJobStore(), "b": SortedJobStore()}},
        {"timezone": UTC, "jobstores": {"default": MemoryJobStore()}},
        {"timezone": _PARIS, "jobstores": {"default": SortedJobStore()}},
        {"timezone": UTC, "jobstores": {"default": SortedJobStore()}},
    ]
    for i, option in enumerate(options):
        scheduler = LoopScheduler(executors={"default": CoroutineExecutor()}, **option)
        scheduler.start(paused=True)
        scheduler.state = STATE_RUNNING
        if i == len(options) - 1:
            monkeypatch.setattr(scheduler._logger, "level", logging.DEBUG)
            monkeypatch.setattr(scheduler._logger, "_cache", {})
        scheduler._process_jobs()
        scheduler.shutdown(wait=False)
    assert taken == ["theirs"] * len(options)


_EPOCHS = [0.0, 1.0, 86_399.999_999, 1_700_000_000.0, 1_800_000_000.123_456,
           2**31 - 0.5, 2**31 + 0.25, 4_102_444_800.0]  # 1970 to 2100, 2038 on either side
_INTERVALS = [0.05, 0.1, 0.3, 1 / 3, 0.123_456_789, 1.0, 7.77, 60.0, 3600.0, 86_400.0]


def _anchors(rng: random.Random) -> list[float]:
    return _EPOCHS + [rng.uniform(0, 4.2e9) for _ in range(60)]


def test_the_step_trigger_fires_when_interval_trigger_does() -> None:
    """StepTrigger's times, run after run, are IntervalTrigger's to the microsecond (its
    own float arithmetic rounds to the same microsecond) over anchors from 1970 to 2100 and
    intervals from 50 ms to a day; and so is its first run from any ``now``."""
    rng = random.Random(24)
    compared = 0
    for anchor in _anchors(rng):
        start = datetime.fromtimestamp(anchor, UTC)
        for interval in [*_INTERVALS, rng.uniform(0.05, 86_400.0)]:
            ours = StepTrigger(seconds=interval, start_date=start, timezone=UTC)
            theirs = IntervalTrigger(seconds=interval, start_date=start, timezone=UTC)
            for now in (start - timedelta(seconds=5), start,
                        start + timedelta(seconds=rng.uniform(0, 10 * interval))):
                assert ours.get_next_fire_time(None, now) == \
                    theirs.get_next_fire_time(None, now), (anchor, interval, now)
            previous = ours.get_next_fire_time(None, start)
            assert previous is not None
            for _ in range(100):
                mine = ours.get_next_fire_time(previous, previous)
                expected = theirs.get_next_fire_time(previous, previous)
                assert mine == expected and mine is not None, (anchor, interval, previous)
                assert mine.tzinfo is expected.tzinfo  # type: ignore[union-attr]
                previous = mine
                compared += 1
    assert compared > 70_000


def test_the_step_trigger_leaves_zones_jitter_and_end_dates_to_interval_trigger() -> None:
    """Where adding the interval to the datetime is not IntervalTrigger's answer (a zone
    with daylight saving: the step is 1 h of elapsed time, not of wall clock), StepTrigger
    gives IntervalTrigger's, across a DST change and past an end date."""
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=berlin)  # 02:00 -> 03:00 that night
    ours = StepTrigger(hours=1, start_date=start, timezone=berlin)
    theirs = IntervalTrigger(hours=1, start_date=start, timezone=berlin)
    a = b = start
    for _ in range(5):
        a2, b2 = ours.get_next_fire_time(a, a), theirs.get_next_fire_time(b, b)
        assert a2 == b2 and a2 is not None and b2 is not None
        assert a2.utcoffset() == b2.utcoffset()
        a, b = a2, b2
    end = datetime(2030, 1, 1, tzinfo=UTC)
    ours = StepTrigger(seconds=60, start_date=end - timedelta(minutes=2), end_date=end,
                       timezone=UTC)
    theirs = IntervalTrigger(seconds=60, start_date=end - timedelta(minutes=2), end_date=end,
                             timezone=UTC)
    for at in (end - timedelta(minutes=1), end, end + timedelta(seconds=1)):
        assert ours.get_next_fire_time(at, at) == theirs.get_next_fire_time(at, at)
    assert ours.get_next_fire_time(end, end) is None
    jittery = StepTrigger(seconds=60, jitter=5, timezone=UTC)
    fixed = timezone(timedelta(hours=5, minutes=30))
    assert not jittery._steps and StepTrigger(seconds=60, timezone=fixed)._steps


def _job(scheduler: BaseScheduler, job_id: str, when: datetime | None,
         trigger: IntervalTrigger | None = None) -> Job:
    async def run() -> None:
        pass

    return Job(scheduler, id=job_id, func=run, args=(), kwargs={},
               trigger=trigger or IntervalTrigger(seconds=1, timezone=UTC),
               executor="default", misfire_grace_time=1, coalesce=True, max_instances=1,
               next_run_time=when, name=job_id)


def test_a_jobs_missed_runs_are_interval_triggers() -> None:
    """After a stall (a suspended machine), the runs a job missed, which APScheduler
    coalesces into one and judges against the misfire grace, are the same with either
    trigger."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    rng = random.Random(5)
    for _ in range(200):
        start = datetime.fromtimestamp(rng.uniform(1.6e9, 2.2e9), UTC)
        interval = rng.choice(_INTERVALS)
        ours, theirs = (
            _job(scheduler, "j", start,
                 trigger(seconds=interval, start_date=start, timezone=UTC))
            for trigger in (StepTrigger, IntervalTrigger))
        later = start + timedelta(seconds=interval * rng.uniform(0, 300))
        missed = ours._get_run_times(later)
        assert missed == theirs._get_run_times(later) and missed, (start, interval, later)


def test_the_sorted_job_store_answers_as_the_memory_job_store() -> None:
    """Random adds, updates (to another time, the same time, paused), removes and lookups
    on both stores: the same due jobs at every moment, the same next run time, the same
    jobs in the same order (by time, then id; paused ones last), the same errors."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    rng = random.Random(7)
    base = datetime(2026, 12, 7, tzinfo=UTC)
    times = [base + timedelta(milliseconds=rng.randrange(0, 2000)) for _ in range(30)]

    def when() -> datetime | None:
        return None if rng.random() < 0.1 else rng.choice(times)

    def outcome(store: BaseJobStore, op: str, job_id: str, job: Job, now: datetime
                ) -> object:
        try:
            if op == "add":
                store.add_job(job)
            elif op == "update":
                store.update_job(job)
            elif op == "remove":
                store.remove_job(job_id)
            else:
                return [j.id for j in store.get_due_jobs(now)]
        except (ConflictingIdError, JobLookupError) as e:
            return type(e)
        return op

    for _ in range(20):
        memory, ours = MemoryJobStore(), SortedJobStore()
        for _ in range(300):
            op = rng.choice(["add", "add", "update", "update", "update", "remove", "due"])
            job_id = f"j{rng.randrange(25)}"
            # One Job object in both stores, as APScheduler modifies a job, then updates
            # it in its store.
            job = memory.lookup_job(job_id)
            if op == "update" and job is not None:
                job.next_run_time = when()
            elif job is None or op == "add":
                job = _job(scheduler, job_id, when())
            now = rng.choice(times)
            expected = outcome(memory, op, job_id, job, now)
            assert outcome(ours, op, job_id, job, now) == expected, (op, job_id, expected)
            assert [j.id for j in ours.get_all_jobs()] == [j.id for j in memory.get_all_jobs()]
            assert ours.get_next_run_time() == memory.get_next_run_time()
            for name in (job_id, "absent"):
                assert ours.lookup_job(name) is memory.lookup_job(name)
        ours.remove_all_jobs()
        assert ours.get_all_jobs() == [] and ours.get_next_run_time() is None


async def test_the_probe_scheduler_counts_a_misfire_as_skipped() -> None:
    """skipped{reason="misfire"}: a probe's run held past its misfire grace (half its
    interval, at least 1 s) by a stalled loop is not started, and counted."""
    rec = Recorder()
    sched = rec.scheduler()
    (probe,) = probes(1, interval="3s", timeout="0.5s")
    planned = next_run(probe, time.time())  # a 3 s interval: the first run is on its phase
    sched.start((probe,))
    # The loop held from before the scheduler first looks until 1.3 s after the run's time.
    time.sleep(max(0.0, planned - time.time()) + 1.3)  # noqa: ASYNC251
    await asyncio.sleep(0.2)
    await sched.stop(1.0)
    assert rec.skips == [(probe.key, "misfire")]
    assert rec.starts == {}


async def test_the_probe_scheduler_wakes_once_a_run() -> None:
    """Ten probes every 0.2 s for a second and a half, on the engine's parts: the timer's
    wake-ups never outnumber the runs (several due at once share one)."""
    rec = Recorder()
    sched = rec.scheduler()
    sched.start(probes(10, interval="0.2s", timeout="0.1s"))
    aps = sched._scheduler
    assert isinstance(aps, LoopScheduler)
    assert isinstance(aps._lookup_executor("default"), CoroutineExecutor)
    assert isinstance(aps._lookup_jobstore("default"), SortedJobStore)
    assert all(isinstance(job.trigger, StepTrigger) for job in aps.get_jobs())
    await asyncio.sleep(0.3)
    woken, runs = sched.wakeups, sum(len(s) for s in rec.starts.values())
    await asyncio.sleep(1.2)
    woken, runs = sched.wakeups - woken, sum(len(s) for s in rec.starts.values()) - runs
    await sched.stop(1.0)
    assert runs >= 30
    assert woken <= runs, (woken, runs)
