"""The run-history sink: the last N results per probe, for the status page and the API.

Memory is bounded two ways, because a daemon with 10,000 probes would otherwise hold a
million full results (about 1.6 KB each, most of it response headers and phase timings):

* every probe keeps at most ``depth`` runs, and all probes together at most
  ``TOTAL_RUNS`` (so 100 each up to 1,000 probes, 10 each at 10,000);
* only the newest run and failed runs keep their full evidence; an older success keeps its
  outcome, timings, status and one-line detail, which is all the status page shows of it;
* the full evidence of one probe's failed runs (headers, bodies, frames, the transcript)
  stays within HISTORY_EVIDENCE_BYTES (monitor.limits): beyond it, the oldest of them keep
  only their outcome, detail, hint and codes (``trimmed``). Each run's evidence is bounded
  already (monitor.keep); this bounds what a hostile target makes its probe's history hold.

An older success is stored as two floats in an array (start, duration), its one-line
detail and a reference to a *shape*: a result without times, shared by the runs of the
probe that looked alike (same outcome, status, content type, subprotocol, target, ...).
That is about 30 bytes a run instead of the ~850 of a slimmed ``Result`` object, which at
100,000 kept runs was 80 MB. ``runs()`` rebuilds the ``Result`` objects when asked. A run's
trace and span ids (unique per run, so never in a shape) are kept as three 64-bit numbers
in another array: 24 bytes a run instead of two strings' ~140.
"""

from __future__ import annotations

import itertools
import threading
from array import array
from collections.abc import Iterator
from dataclasses import fields, replace
from operator import attrgetter
from typing import TypeAlias

from monitor.config import Config
from monitor.config.fields import MAX_RETRIES
from monitor.config.schema.negative import Negative
from monitor.keep import Kept, shared
from monitor.limits import HISTORY_EVIDENCE_BYTES
from monitor.outcomes import Outcome
from monitor.result import Diagnosis, Evidence, Frame, Result, StepTiming

DEFAULT_DEPTH = 100
_SUCCESS = Outcome.SUCCESS
TOTAL_RUNS = 100_000
MIN_DEPTH = 10

# What an older success keeps besides its shape and times: its detail, and with steps the
# duration of each (the shape has their names).
_Extra: TypeAlias = Kept | tuple[Kept, tuple[float, ...]]


def slim(result: Result) -> Result:
    """A successful run without the bulk of its evidence: what the history keeps of it."""
    ev = result.evidence
    return replace(result, phases=(), transcript=(), transcript_omitted=0,
                   evidence=Evidence(detail=ev.detail, status_code=ev.status_code,
                                     content_type=ev.content_type, close_code=ev.close_code,
                                     subprotocol=ev.subprotocol))


def _text(value: str | None) -> int:
    return 0 if value is None else len(value)


def _diagnosis_bytes(d: Diagnosis | None) -> int:
    if d is None:
        return 0
    return _text(d.content_type) + _text(d.body_excerpt) + _text(d.hint) + _text(d.error)


def evidence_bytes(result: Result) -> int:
    """What a run's evidence holds, in characters of kept text: the measure of
    HISTORY_EVIDENCE_BYTES (object overhead aside, which is proportional). A run made of
    steps (a flow) counts its steps' evidence too."""
    return _evidence_bytes(result.evidence, result.transcript) + sum(
        _evidence_bytes(step.evidence, ()) for step in result.step_results)


def _evidence_bytes(ev: Evidence, transcript: tuple[Frame, ...]) -> int:
    size = (_text(ev.detail) + _text(ev.hint) + _text(ev.body_excerpt)
            + _text(ev.last_message) + _text(ev.content_type) + _text(ev.close_reason)
            + _text(ev.subprotocol) + _diagnosis_bytes(ev.diagnosis))
    size += sum(len(k) + len(v) for k, v in ev.headers)
    size += sum(len(e) for e in ev.events_seen)
    size += sum(len(p) + _text(v) for f in ev.frames_seen for p, v in f.types)
    size += sum(len(f.data) + 16 for f in transcript)
    return size


def trim(result: Result) -> Result:
    """A failed run without the bulk of its evidence (headers, bodies, frames seen, the
    transcript): its outcome, detail, hint, codes and the diagnosis's words stay."""
    return replace(result, transcript=(), transcript_omitted=0,
                   evidence=_trimmed(result.evidence),
                   step_results=tuple(replace(step, evidence=_trimmed(step.evidence))
                                      for step in result.step_results))


def _trimmed(ev: Evidence) -> Evidence:
    diagnosis = ev.diagnosis
    if diagnosis is not None:
        diagnosis = replace(diagnosis, body_excerpt=None)
    return replace(
        ev, headers=(), headers_omitted=0, body_excerpt=None, last_message=None,
        events_seen=(), events_seen_omitted=0, frames_seen=(), frames_seen_omitted=0,
        diagnosis=diagnosis, trimmed=True)


def _shape(result: Result) -> Result:
    """``slim(result)`` without what differs from run to run: times and detail."""
    steps = tuple(StepTiming(s.index, s.name, 0.0) for s in result.steps)
    return replace(result, started_at=0.0, duration_seconds=0.0, phases=(), steps=steps,
                   events=(), transcript=(), transcript_omitted=0, trace_id=None, span_id=None,
                   evidence=_shape_evidence(result.evidence))


# The evidence of shapes, one object for every probe whose runs were answered alike: it is
# the same few values (status, content type, close code, subprotocol) across probes, and one
# of ~220 bytes in every probe's shape was 2.1 MiB of 10,000 probes (issue 24). Frozen, so
# sharing it changes nothing a reader sees. Bounded like the other caches of what targets
# send (a content type is the target's to choose): emptied when it grows past any config's.
_SHAPE_EVIDENCE: dict[tuple[int | None, Kept | None, int | None, Kept | None], Evidence] = {}
_SHAPE_EVIDENCE_MAX = 4096


def _shape_evidence(ev: Evidence) -> Evidence:
    key = _evidence_kept(ev)
    shared_ev = _SHAPE_EVIDENCE.get(key)
    if shared_ev is None:
        if len(_SHAPE_EVIDENCE) >= _SHAPE_EVIDENCE_MAX:
            _SHAPE_EVIDENCE.clear()
        shared_ev = _SHAPE_EVIDENCE[key] = Evidence(
            status_code=ev.status_code, content_type=ev.content_type,
            close_code=ev.close_code, subprotocol=ev.subprotocol)
    return shared_ev


# The fields of a Result that _shape keeps as they are, and of its Evidence.
_SHAPE_KEPT = tuple(f.name for f in fields(Result) if f.name not in (
    "started_at", "duration_seconds", "phases", "steps", "events", "transcript",
    "transcript_omitted", "trace_id", "span_id", "evidence"))
_EVIDENCE_KEPT = ("status_code", "content_type", "close_code", "subprotocol")
# Those fields' values, as a tuple made in one call: compared as a dataclass's __eq__
# compares them (element by element, each ``is`` first, then ``==``).
_kept = attrgetter(*_SHAPE_KEPT)
_evidence_kept = attrgetter(*_EVIDENCE_KEPT)


def _has_shape(result: Result, shape: Result | None) -> bool:
    """Whether ``_shape(result) == shape``, without making the shape: for the run after
    run of a probe that looks alike, making one to compare was ~110,000 instructions (a
    Result copied, an Evidence, two tuples of every field); comparing them field by field
    in Python, ~20,000."""
    if shape is None:
        return False
    if _kept(result) != _kept(shape) or (
            _evidence_kept(result.evidence) != _evidence_kept(shape.evidence)):
        return False
    mine, kept = result.steps, shape.steps
    if not mine:
        return not kept
    return len(mine) == len(kept) and all(
        s.index == k.index and s.name == k.name for s, k in zip(mine, kept, strict=True))


def _restore(shape: Result, started_at: float, duration: float, extra: _Extra,
             ids: tuple[int, int, int] = (0, 0, 0)) -> Result:
    if isinstance(extra, str):
        detail, steps = extra, shape.steps
    else:
        detail = extra[0]
        steps = tuple(StepTiming(s.index, s.name, d)
                      for s, d in zip(shape.steps, extra[1], strict=True))
    return replace(shape, started_at=started_at, duration_seconds=duration, steps=steps,
                   evidence=replace(shape.evidence, detail=detail),
                   trace_id=f"{ids[0]:016x}{ids[1]:016x}" if ids[0] or ids[1] else None,
                   span_id=f"{ids[2]:016x}" if ids[2] else None)


class _Ring:
    """One probe's last ``depth`` runs; slot ``i`` is ``times[2i:2i+2]`` (start, duration)
    and ``refs[2i:2i+2]``: a full ``Result`` and None, or a shape and its ``_Extra``.

    The slots are made as runs come, ``size`` of them so far (doubled when full, up to
    ``depth``): a probe that ran once holds one slot, not ``depth`` of them (~500 bytes a
    probe at a depth of 10, ~5 MiB of 10,000 probes until their histories fill, issue 24).
    The ring only wraps around once it has all ``depth``: until then slot ``i`` is the
    ``i``-th run, and growing appends slots without moving any."""

    __slots__ = ("count", "depth", "evidence", "head", "ids", "refs", "shape", "size", "times")

    def __init__(self, depth: int, size: int = 1) -> None:
        self.depth = depth
        self.size = size = max(1, min(size, depth))
        self.head = 0  # the slot the next run goes to (== size: full, grows at the next)
        self.count = 0
        self.times = array("d", bytes(16 * size))
        # Slot i: ids[3i:3i+3] (see push); made at the first traced run (trace: false
        # everywhere costs nothing).
        self.ids: array[int] | None = None
        self.refs: list[Result | _Extra | None] = [None] * (2 * size)
        self.shape: Result | None = None  # the newest shape, reused while runs look alike
        # Slot -> evidence_bytes of the failed runs kept whole (made at the first failure:
        # a probe that only succeeds pays nothing for it).
        self.evidence: dict[int, int] | None = None

    def slots(self) -> Iterator[int]:
        """Occupied slots, newest first."""
        for k in range(1, self.count + 1):
            yield (self.head - k) % self.size

    def newest(self) -> Result | None:
        if not self.count:
            return None
        ref = self.refs[2 * ((self.head - 1) % self.size)]
        assert isinstance(ref, Result)  # the newest run is never slimmed
        return ref

    def newest_final(self) -> Result | None:
        """The newest run's result: its final attempt (retried ones are failures, never
        slimmed; at most MAX_RETRIES of them come after it)."""
        for slot in itertools.islice(self.slots(), MAX_RETRIES + 1):
            if self.refs[2 * slot + 1] is not None:
                return self.result(slot)  # a slimmed success: always final
            ref = self.refs[2 * slot]
            assert isinstance(ref, Result)
            if ref.final:
                return ref
        return None

    def run_start(self, final: Result) -> float:
        """When the run ``final`` ends started: its first attempt, the newest retried ones
        being that run's earlier attempts."""
        started = final.started_at
        for slot in itertools.islice(self.slots(), final.attempt - 1):
            started = min(started, self.times[2 * slot])
        return started

    def _grow(self) -> None:
        """More slots after the ``size`` ones, all of them taken (``head == size``). Made by
        concatenation, which allocates exactly what is asked (``extend`` leaves room)."""
        more = min(self.depth, 2 * self.size) - self.size
        self.times = self.times + array("d", bytes(16 * more))
        self.refs = self.refs + [None] * (2 * more)
        if self.ids is not None:
            self.ids = self.ids + array("Q", bytes(24 * more))
        self.size += more

    def push(self, result: Result) -> None:
        i = self.head
        if i == self.size:
            self._grow()
        if self.evidence is not None:
            self.evidence.pop(i, None)  # of the run this one replaces
        j = 2 * i
        times = self.times
        times[j] = result.started_at
        times[j + 1] = result.duration_seconds
        ids = self.ids
        if ids is None and result.trace_id is not None:
            ids = self.ids = array("Q", bytes(24 * self.size))
        if ids is not None:
            k = 3 * i
            # The trace id's high and low 64 bits, the span id (0 for none: valid ids are
            # never zero), put in place: no array made a run to copy from.
            trace = int(result.trace_id, 16) if result.trace_id else 0
            ids[k] = trace >> 64
            ids[k + 1] = trace & 0xFFFF_FFFF_FFFF_FFFF
            ids[k + 2] = int(result.span_id or "0", 16)
        refs = self.refs
        refs[j] = result
        refs[j + 1] = None
        # Past the last slot: around to the first once there are ``depth``, else more
        # slots at the next run.
        self.head = i + 1 if i + 1 < self.depth else 0
        if self.count < self.depth:
            self.count += 1
        if result.outcome is not _SUCCESS:
            if self.evidence is None:
                self.evidence = {}
            self.evidence[i] = evidence_bytes(result)
            self._within_budget()

    def evidence_total(self) -> int:
        return 0 if self.evidence is None else sum(self.evidence.values())

    def _within_budget(self) -> None:
        """Trim the oldest failed runs until their evidence fits HISTORY_EVIDENCE_BYTES;
        the newest run keeps all of its evidence, whatever its size."""
        sizes = self.evidence
        assert sizes is not None
        total = sum(sizes.values())
        if total <= HISTORY_EVIDENCE_BYTES:
            return
        for slot in reversed(list(itertools.islice(self.slots(), 1, None))):  # oldest first
            size = sizes.get(slot)
            result = self.refs[2 * slot]
            if size is None or not isinstance(result, Result) or result.evidence.trimmed:
                continue
            trimmed = trim(result)
            self.refs[2 * slot] = trimmed
            sizes[slot] = evidence_bytes(trimmed)
            total += sizes[slot] - size
            if total <= HISTORY_EVIDENCE_BYTES:
                return

    def slim_newest(self, result: Result) -> None:
        """Keep of the newest run ``result`` (a success) only its shape, times and detail."""
        i = (self.head - 1) % self.size
        assert result is self.refs[2 * i]
        if not _has_shape(result, self.shape):
            self.shape = _shape(result)
        detail = shared(result.evidence.detail)  # "HTTP 200 in 3ms" comes back often
        extra: _Extra = (detail if not result.steps else
                         (detail, tuple(s.duration_seconds for s in result.steps)))
        self.refs[2 * i], self.refs[2 * i + 1] = self.shape, extra

    def result(self, slot: int) -> Result:
        ref, extra = self.refs[2 * slot], self.refs[2 * slot + 1]
        assert isinstance(ref, Result)
        if extra is None:
            return ref
        assert not isinstance(extra, Result)
        ids = (0, 0, 0)
        if self.ids is not None:
            ids = (self.ids[3 * slot], self.ids[3 * slot + 1], self.ids[3 * slot + 2])
        return _restore(ref, self.times[2 * slot], self.times[2 * slot + 1], extra, ids)

    def resized(self, depth: int) -> _Ring:
        """The newest ``depth`` runs in a ring of that depth."""
        kept = list(self.slots())[:depth]
        ring = _Ring(depth, len(kept))
        for j, slot in enumerate(reversed(kept)):
            ring.times[2 * j:2 * j + 2] = self.times[2 * slot:2 * slot + 2]
            if self.ids is not None:
                if ring.ids is None:
                    ring.ids = array("Q", bytes(24 * ring.size))
                ring.ids[3 * j:3 * j + 3] = self.ids[3 * slot:3 * slot + 3]
            ring.refs[2 * j:2 * j + 2] = self.refs[2 * slot:2 * slot + 2]
            if self.evidence is not None and slot in self.evidence:
                if ring.evidence is None:
                    ring.evidence = {}
                ring.evidence[j] = self.evidence[slot]
        ring.count, ring.head = len(kept), len(kept) % depth
        ring.shape = self.shape
        return ring


class History:
    def __init__(self) -> None:
        self.depth = DEFAULT_DEPTH
        self._lock = threading.Lock()
        self._rings: dict[str, _Ring] = {}
        self._since: dict[str, float] = {}  # start of the current streak of the last outcome
        self._order: list[str] = []
        self._credentials: dict[str, str | None] = {}
        self._negative: frozenset[str] = frozenset()

    def configure(self, config: Config) -> None:
        with self._lock:
            self._order = [p.key for p in config.probes]
            # What each probe authenticates with, for the status page's cross-check: a peer
            # proves credentials fine only when it uses the same ones. Inline auth is its own.
            self._credentials = {p.key: p.auth_name or (f"inline:{p.name}" if p.auth else None)
                                 for p in config.probes}
            # Negative probes (expect_rejected): their refusal is their success, which a
            # path that refuses everyone makes meaningless (the status page says so).
            self._negative = frozenset(
                p.key for p in config.probes
                if isinstance(kind := p.spec.kind_spec, Negative) and kind.expect_rejected)
            self.depth = max(MIN_DEPTH, min(DEFAULT_DEPTH, TOTAL_RUNS // max(len(self._order), 1)))
            old = self._rings
            self._rings = {}
            for name in self._order:
                ring = old.get(name)
                self._rings[name] = (_Ring(self.depth) if ring is None else
                                     ring if ring.depth == self.depth else
                                     ring.resized(self.depth))
            self._since = {n: t for n, t in self._since.items() if n in self._rings}

    def observe(self, result: Result) -> None:
        key = result.key
        with self._lock:
            ring = self._rings.get(key)
            if ring is None:
                return
            # Every attempt is kept, so the status page shows the attempts of a run; the
            # streak (and the run shown as the probe's state) follows final attempts only.
            last = ring.newest()
            if result.final:
                # The newest run's final attempt: the newest run's, when that is final.
                previous = last if last is not None and last.final else ring.newest_final()
                if previous is None or previous.outcome is not result.outcome:
                    self._since[key] = ring.run_start(result)
            if last is not None and last.outcome is _SUCCESS:
                ring.slim_newest(last)
            ring.push(result)

    def probes(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def credentials(self) -> dict[str, str | None]:
        """Probe -> auth provider name (``inline:NAME`` for inline auth, None without)."""
        with self._lock:
            return dict(self._credentials)

    def negative(self) -> frozenset[str]:
        """The keys of the negative probes (and of their variants)."""
        with self._lock:
            return self._negative

    def runs(self, probe: str, limit: int | None = None) -> list[Result]:
        """Newest first; the newest ``limit`` only, when given (older ones are not rebuilt)."""
        with self._lock:
            ring = self._rings.get(probe)
            if ring is None:
                return []
            return [ring.result(slot) for slot in itertools.islice(ring.slots(), limit)]

    def latest(self) -> dict[str, Result | None]:
        """The newest run of every probe (its final attempt; None before its first), in
        config order."""
        with self._lock:
            return {name: self._rings[name].newest_final() for name in self._order}

    def since(self, probe: str) -> float | None:
        with self._lock:
            return self._since.get(probe)
