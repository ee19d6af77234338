"""The Prometheus surfacer: results in, ``/metrics`` out.

:mod:`.series` keeps a probe's series between scrapes, :mod:`.surfacer` takes results in and
hands each scrape a snapshot, :mod:`.exposition` writes a snapshot out as text.

Probe series are kept as plain numbers per probe and written out only at scrape time. A
result update is a handful of additions, and a reload can change the set of static label
names, or drop a removed probe's series, without resetting every counter.

The exposition text is written here rather than through prometheus-client's
``generate_latest``: the benchmark (bench/, "fidelity") measured 272-316 µs per probe per
scrape that way, all of it blocking the event loop and so delaying probe starts and skewing
their timings; a label string built once per probe and f-strings cost about 20 µs. The
tests parse the output with prometheus-client's own parser.

A scrape takes the probes' series and formats them on the event loop, in steps of about a
millisecond each with the loop free to run in between (``snapshot_in_steps``,
``iter_exposition``; the ``/metrics`` handler takes the turns): the copy of 10,000 probes
in one piece held the loop for tens of milliseconds. A snapshot holds the series as they
are, not copies: a series held by a scrape is copied only when a run or a reload changes it
meanwhile (the copy becomes the live series, the scrape keeps the one it took), and the
scrape lets go of them when it is written out (``Surfacer.release``). A copy of every
series each scrape was ~700 bytes a probe, 7 MiB at 10,000 probes made and freed every
scrape, and the pools it left part-used grew the heap by 6-7 MiB over ten scrapes (issue
24). The formatting used to run in a worker
thread; measured at 1,250 probes (35 ms of formatting), the loop's longest gaps were alike
either way: what stalled runs during scrapes was the full garbage collections the copies
set off (see :mod:`monitor.gcpolicy`). On the loop, every step's hold is bounded and no
thread hands the GIL back and forth.
"""

from monitor.sinks.metrics.exposition import (
    CHUNK_LINES,
    CONTENT_TYPE,
    OPENMETRICS_CONTENT_TYPE,
    _histogram,
    _le,
    format_snapshot,
    iter_exposition,
    wants_openmetrics,
)
from monitor.sinks.metrics.series import (
    DURATION_BUCKETS,
    EVENT_BUCKETS,
    LAG_BUCKETS,
    SKIP_REASONS,
    Buckets,
    Counts,
    Snapshot,
    _counted,
    _items,
    exemplar,
)
from monitor.sinks.metrics.surfacer import SNAPSHOT_STEP, Surfacer

__all__ = ["CHUNK_LINES", "CONTENT_TYPE", "DURATION_BUCKETS", "EVENT_BUCKETS", "LAG_BUCKETS",
           "OPENMETRICS_CONTENT_TYPE", "SKIP_REASONS", "SNAPSHOT_STEP", "Buckets", "Counts",
           "Snapshot", "Surfacer", "_counted", "_histogram", "_items", "_le", "exemplar",
           "format_snapshot", "iter_exposition", "wants_openmetrics"]
