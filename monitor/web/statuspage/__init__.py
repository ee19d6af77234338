"""The status page: what an on-call engineer reads at 3 a.m.

Server-rendered HTML with no scripts and no external assets (the icon is a data: URI);
every value that comes from a probe, a server or the config is escaped. The page is built
from the run history, whose evidence is already redacted.

``/`` answers "what broke, since when, and what did the server say": failing probes come
first as cards with the diagnosis, then every probe in config order. ``/probe/NAME`` keeps
the last runs of one probe (100 by default) with all of their evidence.

Where each part lives: :mod:`.markup` (escaping, times, the frame every page shares),
:mod:`.sparkline`, :mod:`.evidence` (what a run kept, as shown), :mod:`.pages` (the pages).
"""

from monitor.web.statuspage.markup import REFRESH_SECONDS, escape
from monitor.web.statuspage.pages import (
    incident_card,
    reload_banner,
    render_index,
    render_probe,
    render_variants,
    variants_of,
)
from monitor.web.statuspage.sparkline import LATENCY_FLOOR, SPARK_RUNS, latency_height, sparkline

__all__ = ["LATENCY_FLOOR", "REFRESH_SECONDS", "SPARK_RUNS", "escape", "incident_card",
           "latency_height", "reload_banner", "render_index", "render_probe", "render_variants",
           "sparkline", "variants_of"]
