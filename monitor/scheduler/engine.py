"""APScheduler's asyncio scheduler, fitted to many short coroutine jobs on one event loop.

Every scheduled run passes through APScheduler: the timer that wakes it, ``_process_jobs``
(job store, trigger, ``max_instances``, coalescing, the misfire grace), the executor that
starts the job. Per run that path cost ~205 thousand instructions, a third of an aiohttp
request (``python -m bench.cost``, ``scheduled`` against ``daemon``, issue 24). Five of its
parts are replaced here, each by one that gives the same answers for less; every decision
(what is due, what is skipped, what is missed) stays APScheduler's:

* The timer (:class:`LoopScheduler`). ``AsyncIOScheduler`` sleeps ``next_run - now`` with
  ``loop.call_later``. uvloop's timers count whole milliseconds (the delay rounded to the
  nearest, from a clock truncated to the millisecond), so they fire up to ~1.5 ms early;
  APScheduler then finds nothing due, sleeps the remainder, and may be early again (up to
  2.5 and 3.6 wake-ups a run at 20 and 100 runs a second). Each wake-up also hops through
  ``call_soon_threadsafe`` (``wakeup()`` may be called from any thread): a loop turn and a
  write to the loop's self-pipe. Here the timer asks for :func:`timer_delay`: whole
  milliseconds counted from the loop's own clock, never early, so a due job starts on the
  first wake-up, less than 1 ms later than it could (on uvloop ~1 ms at the median; on
  asyncio's loop, whose timers are not early, about nothing); and the timer, which fires
  on the loop, processes the jobs there directly.
* The executor (:class:`CoroutineExecutor`). ``AsyncIOExecutor`` wraps every run in
  ``run_coroutine_job`` (a datetime and a timedelta for the misfire check, a logger
  lookup, two log calls, an event for each outcome) and asks ``inspect`` whether the
  function is a coroutine function each time. Here the usual case, one run time of a
  coroutine function, becomes a task of the job's own coroutine; a missed run and a run
  that raised are reported with the same events as ``AsyncIOExecutor`` reports them
  (``EVENT_JOB_MISSED``, ``EVENT_JOB_ERROR``); a run that succeeded is not an event
  (``EVENT_JOB_EXECUTED``: nobody here listens to it). Anything else (several run times,
  a plain function) takes ``AsyncIOExecutor``'s own path.
* The pass over the jobs (``LoopScheduler._process_jobs``): APScheduler's, decision for
  decision (what is due, coalescing, ``max_instances``, the misfire grace through the
  executor, the same events to the same listeners, the same warnings), for the daemon's
  case only: one :class:`SortedJobStore`, a fixed-offset zone, APScheduler's debug log
  off. It leaves out ``Job._modify``'s checks of every change it could be asked, the
  trigger asked twice for the same answer, the submission event no listener takes and the
  three debug calls (~15 thousand instructions a run). Anything else is APScheduler's own
  pass; tests/test_scheduler_engine.py compares the two over a table of cases.
* The trigger (:class:`StepTrigger`): the run after a run is a datetime plus a timedelta.
* The job store (:class:`SortedJobStore`): ``MemoryJobStore``'s order, kept without
  turning datetimes into timestamps in Python.

The timer, the pass and the executor rely on APScheduler 3.x internals:
``AsyncIOScheduler``'s ``_start_timer``, ``_stop_timer``, ``_process_jobs``, ``_timeout``,
``_eventloop`` and the body of ``wakeup``; ``BaseScheduler._process_jobs``'s text (the pass
repeats it), ``_jobstores``, ``_jobstores_lock``, ``_executors``, ``_listeners``,
``_dispatch_event``, ``_logger``, ``jobstore_retry_interval``; ``Job._get_run_times``'s
and ``Job._modify``'s text; ``BaseExecutor.submit_job``, ``_do_submit_job``,
``_run_job_success``, ``_run_job_error``; ``AsyncIOExecutor._pending_futures``;
``Job.func``, ``args``, ``kwargs``, ``misfire_grace_time``, ``_jobstore_alias``,
``trigger``, ``coalesce``, ``executor``, ``max_instances``. The trigger and the job store are
APScheduler's public extension points. tests/test_scheduler_engine.py fails when an upgrade
renames or removes any of them, and compares each part with the one it stands in for.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from bisect import bisect_left, bisect_right, insort
from datetime import datetime, timedelta, timezone
from functools import partial
from operator import itemgetter
from threading import TIMEOUT_MAX
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.executors.base import MaxInstancesReachedError
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import iscoroutinefunction_partial

_WHEN = itemgetter(0)

# How far behind the monotonic clock a loop's clock may be: uvloop's (libuv's) counts whole
# milliseconds, truncated. A loop whose clock is further off, or ahead, is an unknown one: it
# gets the margin a truncated millisecond clock needs at most.
MAX_BEHIND = 0.005
UNKNOWN_BEHIND = 0.001


def timer_delay(wait_seconds: float, behind: float) -> float:
    """What to ask ``loop.call_later`` for, to wake ``wait_seconds`` from now and never
    sooner, on a loop whose clock is ``behind`` seconds behind the monotonic clock: a whole
    number of milliseconds (uvloop rounds to the nearest) covering the wait from the loop's
    own "now", at most 1 ms more than the wait (asyncio's loop: behind 0, the wait rounded up
    to the millisecond)."""
    if not 0.0 <= behind < MAX_BEHIND:
        behind = UNKNOWN_BEHIND
    # The microsecond's slack: a float error in the sum must not round it down onto the
    # millisecond just before the run (APScheduler compares to the microsecond).
    return math.ceil((wait_seconds + behind) * 1000.0 + 0.001) / 1000.0


class LoopScheduler(AsyncIOScheduler):
    """``AsyncIOScheduler`` whose timer wakes it when a job is due, not before
    (:func:`timer_delay`), and
    processes the jobs on the loop, where it fires, without a hop through
    ``call_soon_threadsafe``. ``wakeup()`` (called by ``add_job``, ``resume``, ...) is
    APScheduler's, unchanged."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.wakeups = 0  # the timer's, counted for the bench

    def _start_timer(self, wait_seconds: float | None) -> None:
        self._stop_timer()
        if wait_seconds is not None:
            loop = self._eventloop
            loop_now = loop.time()  # first: the monotonic clock read after it is not behind
            behind = time.monotonic() - loop_now
            self._timeout = loop.call_later(timer_delay(wait_seconds, behind), self._wake)

    def _wake(self) -> None:
        # AsyncIOScheduler.wakeup's body, on the loop already; the timer that stopped is
        # the one that fired (nothing to cancel: _start_timer stops any other).
        self.wakeups += 1
        self._timeout = None
        self._start_timer(self._process_jobs())

    def _process_jobs(self) -> float | None:
        """``BaseScheduler._process_jobs``, decision for decision, for the daemon's case:
        running, one job store (a :class:`SortedJobStore`), a fixed-offset time zone,
        APScheduler's debug log off. Anything else is APScheduler's own. What it leaves
        out: ``Job._modify``'s checks of every change it could be asked (the next run time
        is the trigger's aware datetime, which ``convert_to_datetime`` returns as it is),
        the trigger asked twice for the run after the last run time (a
        :class:`StepTrigger` that steps gives the same answer to the same question), a
        submission event when no listener's mask takes one, the debug calls, the run times'
        comparison through ``astimezone(UTC)`` (aware datetimes compare as the instants
        they are; a job whose next run time is in another zone takes ``_get_run_times``)."""
        tz = self.timezone
        stores = self._jobstores
        if (self.state != STATE_RUNNING or len(stores) != 1 or type(tz) is not timezone
                or self._logger.isEnabledFor(logging.DEBUG)):
            return super()._process_jobs()  # type: ignore[no-any-return]
        ((alias, store),) = stores.items()
        if type(store) is not SortedJobStore:
            return super()._process_jobs()  # type: ignore[no-any-return]
        heard = False  # whether any listener takes a submission event
        for _callback, mask in self._listeners:
            if mask & EVENT_JOB_SUBMITTED:
                heard = True
                break
        now = datetime.now(tz)
        next_wakeup: datetime | None = None
        events: list[JobSubmissionEvent] = []
        with self._jobstores_lock:
            try:
                due_jobs = store.get_due_jobs(now)
            except Exception as e:
                self._logger.warning("Error getting due jobs from job store %r: %s",
                                     alias, e)
                next_wakeup = now + timedelta(seconds=self.jobstore_retry_interval)
                due_jobs = None
            for job in due_jobs or ():
                executor = self._executors.get(job.executor)
                if executor is None:
                    self._logger.error(
                        'Executor lookup ("%s") failed for job "%s" -- removing it from the '
                        "job store", job.executor, job)
                    self.remove_job(job.id, alias)
                    continue
                trigger = job.trigger
                after: datetime | None = None  # the trigger's run after the last run time
                run_time: datetime | None = job.next_run_time
                if run_time is not None and run_time.tzinfo is tz:
                    run_times = []
                    while run_time is not None and run_time <= now:
                        run_times.append(run_time)
                        run_time = trigger.get_next_fire_time(run_time, now)
                    if type(trigger) is StepTrigger and trigger._steps:
                        after = run_time
                else:
                    run_times = job._get_run_times(now)
                if not run_times:
                    continue
                if job.coalesce:
                    run_times = run_times[-1:]
                try:
                    executor.submit_job(job, run_times)
                except MaxInstancesReachedError:
                    self._logger.warning(
                        'Execution of job "%s" skipped: maximum number of running '
                        "instances reached (%d)", job, job.max_instances)
                    events.append(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job.id, alias,
                                                     run_times))
                except BaseException:
                    self._logger.exception('Error submitting job "%s" to executor "%s"',
                                           job, job.executor)
                else:
                    if heard:
                        events.append(JobSubmissionEvent(EVENT_JOB_SUBMITTED, job.id, alias,
                                                         run_times))
                if after is None:
                    after = trigger.get_next_fire_time(run_times[-1], now)
                if after:
                    if after.tzinfo is not None:
                        job.next_run_time = after
                    else:
                        job._modify(next_run_time=after)
                    store.update_job(job)
                else:
                    self.remove_job(job.id, alias)
            if due_jobs is not None:
                first = store.get_next_run_time()
                if first:
                    next_wakeup = first.astimezone(tz)
        for event in events:
            self._dispatch_event(event)
        if self.state == STATE_PAUSED or next_wakeup is None:
            return None
        wait: float = min(max(next_wakeup.timestamp() - datetime.now(tz).timestamp(), 0),
                          TIMEOUT_MAX)
        return wait


class CoroutineExecutor(AsyncIOExecutor):
    """``AsyncIOExecutor`` that starts a coroutine job's run as a task of the job's own
    coroutine, and reports a missed run and a run that raised as ``AsyncIOExecutor``
    does."""

    def __init__(self) -> None:
        super().__init__()
        self._coroutine_functions: dict[Any, bool] = {}

    def _is_coroutine_function(self, func: Any) -> bool:
        known = self._coroutine_functions.get(func)
        if known is None:
            known = self._coroutine_functions[func] = bool(iscoroutinefunction_partial(func))
        return known

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        if len(run_times) != 1 or not self._is_coroutine_function(job.func):
            super()._do_submit_job(job, run_times)
            return
        run_time = run_times[0]
        grace = job.misfire_grace_time
        if grace is not None and time.time() - run_time.timestamp() > grace:
            missed = JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time)
            # Reported once the submission is counted (submit_job counts it after this
            # returns), as AsyncIOExecutor's task reports it.
            self._eventloop.call_soon(self._run_job_success, job.id, [missed])
            return
        task = self._eventloop.create_task(job.func(*job.args, **job.kwargs))
        task.add_done_callback(partial(self._finished, job.id, job._jobstore_alias, run_time))
        self._pending_futures.add(task)

    def _finished(self, job_id: str, jobstore_alias: str, run_time: datetime,
                  task: asyncio.Task[Any]) -> None:
        self._pending_futures.discard(task)
        if task.cancelled():
            # As AsyncIOExecutor's callback has it: the run never reported.
            self._run_job_error(job_id, asyncio.CancelledError())
            return
        exc = task.exception()
        if exc is None:
            self._run_job_success(job_id, [])
            return
        self._logger.error('Job "%s" raised an exception', job_id, exc_info=exc)
        self._run_job_success(job_id, [JobExecutionEvent(
            EVENT_JOB_ERROR, job_id, jobstore_alias, run_time, exception=exc,
            traceback="".join(traceback.format_tb(exc.__traceback__)))])


class StepTrigger(IntervalTrigger):
    """``IntervalTrigger`` whose run after a previous one is that run plus the interval, a
    datetime and a timedelta added in C: ``IntervalTrigger`` goes through a float timestamp
    and back (``datetime.fromtimestamp``), six times the instructions, asked twice a run.
    The same datetime to the microsecond (tests/test_scheduler_engine.py compares the two
    over anchors from 1970 to 2100, intervals and runs); taken only where that holds: a
    fixed-offset time zone (UTC: no daylight saving to step over), no jitter, no end date.
    Otherwise, and for the first run, ``IntervalTrigger``'s own answer."""

    __slots__ = ("_steps",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._steps = self._can_step()

    def _can_step(self) -> bool:
        return (isinstance(self.timezone, timezone) and self.jitter is None
                and self.end_date is None)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime
                           ) -> datetime | None:
        if (self._steps and previous_fire_time is not None
                and previous_fire_time.tzinfo is self.timezone):
            step: datetime = previous_fire_time + self.interval
            return step
        answer: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        return answer

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._steps = self._can_step()


class SortedJobStore(BaseJobStore):
    """``MemoryJobStore``'s behaviour (jobs in memory, ordered by next run time then id,
    paused jobs last, by id) with the order kept by the C ``bisect`` on ``(next run time,
    id, job)`` entries, the datetimes compared as they are: ``MemoryJobStore`` turns them
    into timestamps with ``calendar.timegm`` in Python, twice a run, and bisects in Python
    (~35 thousand instructions a run, cachegrind)."""

    def __init__(self) -> None:
        super().__init__()
        self._scheduled: list[tuple[datetime, str, Job]] = []
        self._paused: dict[str, Job] = {}
        self._by_id: dict[str, tuple[datetime | None, Job]] = {}

    def lookup_job(self, job_id: str) -> Job | None:
        entry = self._by_id.get(job_id)
        return None if entry is None else entry[1]

    def get_due_jobs(self, now: datetime) -> list[Job]:
        scheduled = self._scheduled
        end = bisect_right(scheduled, now, key=_WHEN)
        if end == 1:  # the usual case
            return [scheduled[0][2]]
        return [entry[2] for entry in scheduled[:end]]

    def get_next_run_time(self) -> datetime | None:
        return self._scheduled[0][2].next_run_time if self._scheduled else None

    def get_all_jobs(self) -> list[Job]:
        return ([entry[2] for entry in self._scheduled]
                + [self._paused[job_id] for job_id in sorted(self._paused)])

    def add_job(self, job: Job) -> None:
        if job.id in self._by_id:
            raise ConflictingIdError(job.id)
        self._place(job)

    def update_job(self, job: Job) -> None:
        old = self._by_id.get(job.id)
        if old is None:
            raise JobLookupError(job.id)
        when = job.next_run_time
        if when is not None and when == old[0]:
            # Same place: (when, id) sorts just before its entry, ids being unique.
            self._scheduled[bisect_left(self._scheduled, (when, job.id))] = (when, job.id, job)
            self._by_id[job.id] = (when, job)
            return
        self._unplace(job.id, old[0])
        self._place(job)

    def remove_job(self, job_id: str) -> None:
        old = self._by_id.get(job_id)
        if old is None:
            raise JobLookupError(job_id)
        self._unplace(job_id, old[0])
        del self._by_id[job_id]

    def remove_all_jobs(self) -> None:
        self._scheduled = []
        self._paused = {}
        self._by_id = {}

    def shutdown(self) -> None:
        self.remove_all_jobs()

    def _place(self, job: Job) -> None:
        when = job.next_run_time
        if when is None:
            self._paused[job.id] = job
        else:
            insort(self._scheduled, (when, job.id, job))
        self._by_id[job.id] = (when, job)

    def _unplace(self, job_id: str, when: datetime | None) -> None:
        if when is None:
            del self._paused[job_id]
        else:
            del self._scheduled[bisect_left(self._scheduled, (when, job_id))]
