"""The cyclic garbage collector, set for a daemon whose runs make no cycles of their own.

A full collection walks every object the interpreter tracks, and while it walks, the event
loop, and so every run waiting to start, waits. With the collector's defaults a shard of
1,250 HTTP probes (75,000 runs a minute on two shards, issue 24) ran one every 1.3-1.7 s,
each 72-185 ms of CPU: the 0.5 s of start lag at the 99th percentile that shard showed. Two
things made them that frequent and that long:

- the heap they walked is mostly what lives as long as the daemon: the imports, the config
  (~5 KB a probe), the scheduler's jobs, the metrics' series. ``settle`` moves all of that out
  of the collector's sight once the config is adopted (``gc.freeze``); a full collection
  then walks what came after (the history's runs, runs in flight): 3.6-4.5 ms instead of
  ~50 at 600 probes, the same runs;
- a young collection every 700 new objects caught the runs in flight (an HTTP run's
  request, response, connection and task are alive for its millisecond), promoted them to
  the older generations, and every quarter of the heap promoted set off a full collection.
  ``YOUNG_THRESHOLD`` new objects between young collections lets most runs end first.

A successful HTTP run leaves no cyclic garbage (everything it makes is freed by reference
counting: ``tests/test_gcpolicy.py`` checks it); a failed one leaves its exception's
traceback cycle (~90 objects), collected as before. Objects frozen are still freed by
reference counting; only cycles among them wait: ``settle`` unfreezes and collects before
it freezes again, so what a reload froze in flight (at most its runs' failures) is
collected at the next reload.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # the interpreter's default: 700


def tune() -> None:
    """The collector's thresholds for the daemon (the older generations' as they were)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle() -> None:
    """After a config is adopted: collect what is garbage now, then keep everything alive
    out of every later collection's walk (until the next ``settle``)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


__all__ = ["YOUNG_THRESHOLD", "settle", "tune"]
