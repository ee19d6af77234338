"""``/api/v1/results``: the status page's content as JSON, from the run history."""

from __future__ import annotations

import time
from typing import Any

from monitor.links import NO_LINKS, Links
from monitor.result import Result
from monitor.sinks.history import History
from monitor.web.incidents import incidents
from monitor.web.summary import handshake, hint, seen


def _run(r: Result, links: Links) -> dict[str, Any]:
    return {**r.to_dict(), "trace_url": links.trace(r.trace_id)}


def results_payload(history: History, links: Links = NO_LINKS) -> dict[str, Any]:
    """``/api/v1/results``: {"probes": [{"probe", "last", "since", "runs", ...}],
    "incidents": [{"host", "cause", "probes", "verdict", "why", "evidence", ...}], ...}.

    ``runs`` is newest first, as on the page; ``seen``, ``hint`` and ``handshake`` are the
    one-line summaries the page shows.
    """
    lasts = history.latest()
    probes = []
    failing = 0
    for name in lasts:
        last = lasts[name]
        if last is not None and not last.success:
            failing += 1
        probes.append({
            "probe": name,
            "last": _run(last, links) if last else None,
            "since": history.since(name),
            "runs": [_run(r, links) for r in history.runs(name)],
            "url": links.probe(name),
            "type": last.type if last else None,
            "outcome": last.outcome.value if last else None,
            "success": last.success if last else None,
            "seen": seen(last) if last else None,
            "handshake": handshake(last) if last else None,
            "hint": hint(last),
        })
    found = [{"host": i.host, "cause": i.cause, "outcome": i.outcome.value,
              "probes": list(i.probes), "paths": list(i.paths), "verdict": i.verdict.value,
              "why": i.why, "evidence": list(i.evidence), "moot": list(i.moot)}
             for i in incidents(lasts, history.credentials(), since=history.since,
                                negative=history.negative())]
    return {"probes": probes, "failing": failing, "incidents": found,
            "generated_at": time.time()}
