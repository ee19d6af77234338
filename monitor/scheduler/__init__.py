"""When probes run: APScheduler's asyncio scheduler, one interval job per probe.

* First results at once: after a start, or a reload that adds a probe, each new probe runs
  within the first ``FIRST_RUN_WINDOW`` (10 s), spread over it by a stable hash of its name
  so that they do not all fire together. A restarted daemon shows data within seconds, not
  after up to a whole interval. Many new probes stretch the window so that no more than
  ``FIRST_RUNS_PER_SECOND`` start a second (never past the shortest of their intervals):
  10,000 probes crammed into 10 s piled up ~1,000 runs in flight, and the heap that burst
  touched stayed with the process (+104 MiB RSS, against +15 MiB over 50 s).
* Then each probe runs on its phase: the same hash places it in the interval, counted from
  the epoch, so a hundred probes with a 60 s interval do not all fire in the same second, a
  restart keeps each probe at the same place in the minute, and daemons in several
  locations run a probe at about the same moment (a quorum of locations then confirms a
  regression within the same minute). The phase comes no sooner than one run's budget
  (timeout and retries) after the first run, so that the two never overlap.
* Probes that are compared with each other run in the same round: those that send the same
  credentials to the same host name (``round_of``), on more than one path between them
  (``rounds``), share the place of their round in the interval and start within
  ``ROUND_SPREAD`` (2 s) of each other. A 403 on one path is told from refused credentials
  by another path that accepts the same token (the status page's cross-check,
  SynthmonWebSocketRouteLikelyMissing); compared a whole interval apart, one of the two
  answers could be from before the change. Probes of one path alone (many probes of one
  URL) stay spread over the interval.
* A probe without credentials of its own that asks several URLs (a flow: its steps) and a
  round's host among them runs just after that round (``FOLLOWS``): when that host breaks,
  the round's probes see it first, so their page (SynthmonWebSocketNotUpgraded, ...) is
  out before the flow's failure at its step there is confirmed, and the flow's page, the
  same cause seen again, is left out (alerts.yml, alertmanager.yml). Run anywhere in the
  interval, the flow saw a regression of its WebSocket step up to a whole interval before
  the WebSocket probes did, and paged first: a second incident for one cause.
* A probe never overlaps itself. APScheduler's ``max_instances=1`` refuses the overlap inside
  one job; our own guard covers the gap a reload opens (a replaced job starts counting anew
  while the old run may still be in flight). Both count as ``skipped{reason="overlap"}``.
* Lag (actual start minus planned start) is measured in the job itself: planned starts are
  ``anchor + k * interval``, so the lag is the distance to the latest such point.
* APScheduler runs the jobs through the parts in ``engine.py``: a timer that is never early
  (one wake-up a run, at most 1 ms of lag added), APScheduler's pass over the jobs without
  its generic costs, an executor that starts a run as a task of its own coroutine, a
  trigger and a job store that give APScheduler's answers for less.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

from monitor.config import Probe
from monitor.scheduler.engine import (
    CoroutineExecutor,
    LoopScheduler,
    SortedJobStore,
    StepTrigger,
)

RunFn = Callable[[Probe], Awaitable[None]]
FIRST_RUN_WINDOW = 10.0
# About what this 2-core machine sustains with room to spare (bench: ~400 runs/s for half a
# core at 10,000 probes): first runs come at this rate at most, 2,500 of them in 10 s.
FIRST_RUNS_PER_SECOND = 250.0
ROUND_SPREAD = 2.0  # the probes of one round start within this (or 5 % of the interval)
# The round key of a probe that follows a round (rounds()): it starts half a spread after
# the round's last possible start.
FOLLOWS = "|follows"

# APScheduler logs every run at INFO and every skip at WARNING through stdlib logging; the
# skips are counted and logged by us in structured form, so only its errors get through.
logging.getLogger("apscheduler").setLevel(logging.ERROR)


def stable_fraction(name: str) -> float:
    """A number in [0, 1) fixed for a name across runs and machines."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Whether probe ``name`` belongs to shard ``(index, count)``; every name is in exactly one."""
    if shard is None:
        return True
    index, count = shard
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index


def first_window(new: int, shortest: float) -> float:
    """The window over which ``new`` probes added at once first run (``shortest``: the
    shortest of their intervals, all over FIRST_RUN_WINDOW): 10 s, stretched to keep to
    FIRST_RUNS_PER_SECOND, never past one interval (by then they run on their phases)."""
    return max(FIRST_RUN_WINDOW, min(new / FIRST_RUNS_PER_SECOND, shortest))


def first_run(name: str, interval: float, now: float, window: float = FIRST_RUN_WINDOW
              ) -> float:
    """When a new probe first runs: within the first ``window`` (or its interval, if
    shorter)."""
    return now + stable_fraction(name) * min(window, interval)


def round_of(probe: Probe) -> str | None:
    """The round of probes compared with this one: the host name it asks (not the port: a
    round may hold more than the probes compared, and the same name is the same staging for
    every location, whatever a test's ports) and the credentials it sends (its auth
    provider, or its own inline auth); None without credentials."""
    if probe.auth is None:
        return None
    credentials = probe.auth_name or f"inline:{probe.name}"
    return f"{urlsplit(probe.spec.url).hostname or ''}|{credentials}"


def rounds(probes: Iterable[Probe]) -> dict[str, str]:
    """The probes (by key) that run in a round, and their round: those whose round, as
    :func:`round_of` names it, asks more than one path; and the probes that follow a round
    (their round's key + ``FOLLOWS``): without credentials of their own, asking several
    URLs, one of them on the round's host (the first such round, by host, in the order the
    probe asks them)."""
    probes = list(probes)
    paths: dict[str, set[str]] = {}
    for p in probes:
        key = round_of(p)
        if key is not None:
            paths.setdefault(key, set()).add(urlsplit(p.spec.url).path)
    grouped = {p.key: key for p in probes
               if (key := round_of(p)) is not None and len(paths[key]) > 1}
    by_host: dict[str, str] = {}
    for key in sorted(set(grouped.values())):
        by_host.setdefault(key.split("|", 1)[0], key)
    for p in probes:
        urls = p.spec.kind_spec.asked_urls
        if p.auth is not None or len(urls) < 2:
            continue
        followed = next((by_host[h] for u in urls
                         if (h := urlsplit(u).hostname or "") in by_host), None)
        if followed is not None:
            grouped[p.key] = followed + FOLLOWS
    return grouped


def phase_offset(name: str, interval: float, round_key: str | None = None) -> float:
    """Where in its interval a probe runs: spread by its name over the whole interval, or,
    in a round, at the round's place plus a spread by name of at most ROUND_SPREAD, or,
    following a round, half a spread after the round's last possible start."""
    if round_key is None:
        return stable_fraction(name) * interval
    spread = min(ROUND_SPREAD, interval * 0.05)
    if round_key.endswith(FOLLOWS):
        place = stable_fraction(round_key.removesuffix(FOLLOWS)) * (interval - spread)
        return (place + 1.5 * spread) % interval
    return stable_fraction(round_key) * (interval - spread) + stable_fraction(name) * spread


def phase_after(name: str, interval: float, after: float, round_key: str | None = None
                ) -> float:
    """The first point of the probe's phase (``k * interval + offset`` since the epoch, the
    offset of :func:`phase_offset`) at or after ``after``."""
    offset = phase_offset(name, interval, round_key)
    k = math.ceil((after - offset) / interval)
    return k * interval + offset


def next_run(probe: Probe, after: float, round_key: str | None = None) -> float:
    """When the daemons next run ``probe`` (by its key) on its phase, at or after ``after``;
    ``round_key`` its round (:func:`rounds`), if it has one."""
    return phase_after(probe.key, probe.interval, after, round_key)


class _FirstRuns:
    """The first runs of the probes one start or reload added: ``names`` in the order of
    ``first_run(name, interval, start)``, ``next`` the first not started yet."""

    __slots__ = ("names", "next", "start", "window")

    def __init__(self, start: float, window: float) -> None:
        self.start = start
        self.window = window
        self.names: list[str] = []
        self.next = 0

    def due(self) -> float:
        # Only probes with intervals of at least the window are here (first_window): for
        # each, min(window, interval) is the window.
        return self.start + stable_fraction(self.names[self.next]) * self.window


# Jobs name their function by this reference to ``ProbeScheduler.run_job`` (``_run_job``,
# below the class), called with the scheduler as its first argument, rather than by a bound
# method: APScheduler would keep a new bound method and a new reference string of it per
# job (~150 bytes, 1.5 MB at 10,000 probes); the string and the function it resolves to are
# shared by all jobs. The function itself, not a coroutine awaiting it: one frame less a run.
_JOB = f"{__name__}:_run_job"


class ProbeScheduler:
    def __init__(self, run: RunFn, *, on_lag: Callable[[float], None],
                 on_skip: Callable[[str, str], None]) -> None:
        self._run = run
        self._on_lag = on_lag
        self._on_skip = on_skip
        self._probes: dict[str, Probe] = {}
        self._anchor: dict[str, float] = {}
        self._triggers: dict[float, StepTrigger] = {}  # by interval: see update()
        # First runs not yet started: one batch per start or reload that added probes, and
        # one event-loop timer for the earliest. A batch keeps only the names, in the order
        # of their first runs (``first_run`` recomputes each time from the batch's start):
        # a second APScheduler job per probe, or a timer each, cost ~900 and ~500 bytes a
        # probe (issue 5's memory budget).
        self._batches: list[_FirstRuns] = []
        self._first_timer: asyncio.TimerHandle | None = None
        self._first_tasks: set[asyncio.Task[None]] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        # APScheduler with a cheaper per-run path: engine.py.
        self._scheduler = LoopScheduler(timezone=UTC,
                                        executors={"default": CoroutineExecutor()},
                                        jobstores={"default": SortedJobStore()})
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._started = False
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def wakeups(self) -> int:
        """How many times APScheduler's timer has woken it (bench.cost: per run)."""
        return self._scheduler.wakeups

    def running(self) -> set[str]:
        return set(self._running)

    def start(self, probes: tuple[Probe, ...], in_round: dict[str, str] | None = None
              ) -> None:
        self._scheduler.start()
        self._started = True
        self._stopping = False
        self.update(probes, in_round)

    def update(self, probes: tuple[Probe, ...], in_round: dict[str, str] | None = None
               ) -> None:
        """Make the scheduled set equal ``probes``: add, replace, remove jobs. ``in_round``:
        the rounds of the whole file when ``probes`` are a shard of it (:func:`rounds` of
        ``probes`` otherwise)."""
        # Held while the jobs change (unless stop() holds it already): APScheduler wakes for
        # every job added while it runs, each wake-up a callback queued through
        # call_soon_threadsafe and a pass over the job store: 10,000 of them for 10,000 new
        # probes, where the one at resume does (nothing can run in between: no await here).
        hold = self._scheduler.state == STATE_RUNNING
        if hold:
            self._scheduler.pause()
        try:
            self._update(probes, in_round)
        finally:
            if hold:
                self._scheduler.resume()

    def _update(self, probes: tuple[Probe, ...], in_round: dict[str, str] | None) -> None:
        wanted = {p.key: p for p in probes}
        for name in list(self._probes):
            if name not in wanted:
                self._scheduler.remove_job(name)
                del self._probes[name]
                self._anchor.pop(name, None)
        now = time.time()
        new = [p.interval for name, p in wanted.items()
               if name not in self._probes and p.interval > FIRST_RUN_WINDOW]
        batch = _FirstRuns(now, first_window(len(new), min(new, default=FIRST_RUN_WINDOW)))
        in_round = rounds(probes) if in_round is None else in_round
        for name, probe in wanted.items():
            old = self._probes.get(name)
            self._probes[name] = probe  # a running job picks up the new spec next time
            if old is not None and old.interval == probe.interval:
                continue
            if old is None:
                if probe.interval <= FIRST_RUN_WINDOW:
                    # The phase itself comes within the window: the first run is on it.
                    anchor = next_run(probe, now, in_round.get(name))
                else:
                    first = first_run(name, probe.interval, now, batch.window)
                    anchor = next_run(probe, first + probe.budget, in_round.get(name))
                    batch.names.append(name)
            else:
                anchor = now + phase_offset(name, probe.interval, in_round.get(name))
            previous = self._anchor.get(name)
            if old is not None and previous is not None:
                # A new interval for a scheduled probe: keep its rhythm. The next run comes
                # one new interval after the last planned one (or now, if that is past), so
                # that a reload never makes a probe run sooner than its interval allows.
                if previous <= now:
                    last = previous + (now - previous) // old.interval * old.interval
                    anchor = max(last + probe.interval, now)
                else:
                    anchor = previous  # not run yet: its first run stays where it was
            self._anchor[name] = anchor
            # The first run is the probe's own trigger's answer, as APScheduler would ask it
            # at add_job; the job keeps a trigger shared by every probe of its interval,
            # which only steps from a run to the next (StepTrigger): its start date is never
            # read. One trigger a probe was ~250 bytes, 2.4 MiB of 10,000 probes (issue 24).
            own = StepTrigger(seconds=probe.interval,
                              start_date=datetime.fromtimestamp(anchor, UTC), timezone=UTC)
            first_at = own.get_next_fire_time(None, datetime.now(UTC))
            self._scheduler.add_job(
                _JOB, self._trigger(probe.interval), args=(self, name), id=name, name=name,
                replace_existing=True, max_instances=1, coalesce=True,
                misfire_grace_time=max(1, int(probe.interval / 2)), next_run_time=first_at,
            )
        self._triggers = {p.interval: self._triggers[p.interval] for p in probes
                          if p.interval in self._triggers}
        if batch.names:
            batch.names.sort(key=stable_fraction)
            self._batches.append(batch)
            self._arm_first_timer()

    def _trigger(self, interval: float) -> StepTrigger:
        """The trigger the jobs of probes of this interval share."""
        trigger = self._triggers.get(interval)
        if trigger is None:
            trigger = self._triggers[interval] = StepTrigger(seconds=interval, timezone=UTC)
        return trigger

    def _arm_first_timer(self) -> None:
        if self._first_timer is not None:
            self._first_timer.cancel()
            self._first_timer = None
        due = [b.due() for b in self._batches]
        if due and not self._stopping:
            loop = asyncio.get_running_loop()
            delay = max(0.0, min(due) - time.time())
            self._first_timer = loop.call_at(loop.time() + delay, self._start_firsts)

    def _start_firsts(self) -> None:
        """Start every first run that is due, then wait for the next one."""
        self._first_timer = None
        if self._scheduler.state == STATE_PAUSED:
            # Held still like the interval jobs (stop() pauses first): look again shortly.
            loop = asyncio.get_running_loop()
            self._first_timer = loop.call_later(0.1, self._start_firsts)
            return
        now = time.time()
        for batch in self._batches:
            while batch.next < len(batch.names) and batch.due() <= now + 0.001:
                name, planned = batch.names[batch.next], batch.due()
                batch.next += 1
                if name not in self._probes:
                    continue  # removed by a reload since
                task = asyncio.ensure_future(self.run_job(name, first=planned))
                self._first_tasks.add(task)  # keep a reference until it is done
                task.add_done_callback(self._first_tasks.discard)
        self._batches = [b for b in self._batches if b.next < len(b.names)]
        self._arm_first_timer()

    async def run_job(self, name: str, first: float | None = None) -> None:
        """One scheduled run of probe ``name`` (what each APScheduler job calls; its key: a
        negative probe's variants are scheduled one by one, each spread over the interval on
        its own; ``first``: the planned time of a probe's first run)."""
        probe = self._probes.get(name)
        if probe is None or self._stopping:
            # Stopping: a run the executor or the first-run timer started just before stop()
            # was called has not reached this line, so stop() did not wait for it, and the
            # probes' context may be closed by the time it would run ("Session is closed",
            # a protocol_error that is the daemon's and not the target's). It never starts.
            return
        if name in self._running:
            self._on_skip(name, "overlap")
            return
        now = time.time()
        anchor = self._anchor.get(name, now)
        if first is not None:
            self._on_lag(max(0.0, now - first))
        elif now >= anchor:
            self._on_lag((now - anchor) % probe.interval)
        task = asyncio.current_task()
        assert task is not None
        self._running[name] = task
        try:
            await self._run(probe)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by stop() after the grace: an orderly end, not a job error for
            # APScheduler to log with a traceback.
        finally:
            if self._running.get(name) is task:
                del self._running[name]

    def _on_event(self, event: JobExecutionEvent) -> None:
        reason = "overlap" if event.code == EVENT_JOB_MAX_INSTANCES else "misfire"
        self._on_skip(str(event.job_id), reason)

    async def stop(self, grace: float) -> None:
        """Stop scheduling, let in-flight runs finish for ``grace`` seconds, cancel the rest."""
        if not self._started:
            return
        self._stopping = True
        # Pause first: APScheduler's shutdown cancels in-flight coroutine jobs at once,
        # and they deserve the grace to finish and report.
        self._scheduler.pause()
        if self._first_timer is not None:
            self._first_timer.cancel()
        self._batches.clear()
        tasks = list({*self._running.values(), *self._first_tasks})
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self._scheduler.shutdown(wait=False)
        self._started = False


_run_job = ProbeScheduler.run_job
