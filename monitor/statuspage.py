"""The status page and the results API: what an on-call engineer reads at 3 a.m.

Server-rendered HTML, no scripts or external assets; every value is escaped. Both the page
and ``/api/v1/results`` are built from the run history, whose evidence is already redacted.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from monitor.history import History
from monitor.result import Result

REFRESH_SECONDS = 10
SPARK_RUNS = 30

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
.ok{color:#0a7d32;font-weight:600} .bad{color:#b3261e;font-weight:600}
.pill{display:inline-block;padding:0 .5em;border-radius:.8em;font-size:.9em}
.pill.ok{background:#e3f5e8} .pill.bad{background:#fbe4e2}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.4em;margin:.2em 0;
max-width:70em;font-size:12px}
.hint{background:#fff6d6;border-left:4px solid #e0b000;padding:.3em .6em;margin:.3em 0}
.muted{color:#777} a{color:#0b57d0}
"""


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    delta = max(0.0, now - ts)
    if delta < 90:
        return f"{delta:.0f}s ago"
    if delta < 5400:
        return f"{delta / 60:.0f}m ago"
    if delta < 129600:
        return f"{delta / 3600:.1f}h ago"
    return f"{delta / 86400:.1f}d ago"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def sparkline(runs: list[Result], width: int = 150, height: int = 28) -> str:
    """An inline SVG of recent latencies, oldest left; failed runs are red dots."""
    runs = list(reversed(runs[:SPARK_RUNS]))
    if not runs:
        return '<span class="muted">no runs yet</span>'
    top = max(r.duration_seconds for r in runs) or 1.0
    step = width / max(len(runs) - 1, 1)
    points, dots = [], []
    for i, r in enumerate(runs):
        x = i * step
        y = height - 2 - (r.duration_seconds / top) * (height - 4)
        points.append(f"{x:.1f},{y:.1f}")
        if not r.success:
            dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#b3261e"/>')
    title = f"last {len(runs)} runs, max {top * 1000:.0f} ms"
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="{title}">'
            f"<title>{title}</title>"
            f'<polyline fill="none" stroke="#0b57d0" stroke-width="1.5" '
            f'points="{" ".join(points)}"/>{"".join(dots)}</svg>')


def _seen(r: Result) -> str:
    """One line of what the server answered."""
    ev = r.evidence
    parts = []
    if r.status_code is not None:
        parts.append(f"HTTP {r.status_code}")
    if ev.content_type:
        parts.append(ev.content_type)
    if r.close_code is not None:
        parts.append(f"close {r.close_code}" + (f" {ev.close_reason}" if ev.close_reason else ""))
    if ev.detail:
        parts.append(ev.detail)
    return " · ".join(parts)


def _page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}"
            f"</body></html>")


def _pill(r: Result | None) -> str:
    if r is None:
        return '<span class="pill muted">pending</span>'
    cls = "ok" if r.success else "bad"
    return f'<span class="pill {cls}">{escape(r.outcome.value)}</span>'


def render_index(history: History) -> str:
    now = time.time()
    rows = []
    failing = 0
    names = history.probes()
    for name in names:
        runs = history.runs(name)
        last = runs[0] if runs else None
        if last is not None and not last.success:
            failing += 1
        rows.append(
            "<tr>"
            f'<td><a href="probe/{quote(name, safe="")}">{escape(name)}</a></td>'
            f"<td>{escape(last.type if last else '')}</td>"
            f"<td>{_pill(last)}</td>"
            f"<td>{_ago(history.since(name), now)}</td>"
            f"<td>{'' if last is None else f'{last.duration_seconds * 1000:.0f} ms'}</td>"
            f"<td>{sparkline(runs)}</td>"
            f"<td>{escape(_seen(last)) if last else ''}</td>"
            "</tr>"
        )
    headline = (f'<p class="bad">{failing} of {len(names)} probes failing</p>' if failing
                else f'<p class="ok">all {len(names)} probes passing</p>')
    body = (f"<h1>synthmon</h1>{headline}"
            "<table><tr><th>probe</th><th>type</th><th>last outcome</th><th>since</th>"
            "<th>latency</th><th>recent runs</th><th>what was seen</th></tr>"
            f"{''.join(rows)}</table>"
            f'<p class="muted">refreshes every {REFRESH_SECONDS}s · '
            '<a href="api/v1/results">JSON</a> · <a href="metrics">metrics</a></p>')
    return _page("synthmon status", body)


def _evidence_html(r: Result) -> str:
    ev = r.evidence
    out = []
    if ev.detail:
        out.append(f"<div>{escape(ev.detail)}</div>")
    if ev.step is not None:
        out.append(f"<div>step reached: {escape(ev.step_name or str(ev.step))}</div>")
    if ev.subprotocol:
        out.append(f"<div>subprotocol: {escape(ev.subprotocol)}</div>")
    if ev.events_seen:
        out.append(f"<div>events seen: {escape(', '.join(ev.events_seen))}</div>")
    if ev.headers:
        hdrs = "\n".join(f"{k}: {v}" for k, v in ev.headers)
        out.append(f"<details><summary>headers</summary><pre>{escape(hdrs)}</pre></details>")
    if ev.body_excerpt:
        out.append(f"<div>body:</div><pre>{escape(ev.body_excerpt)}</pre>")
    if ev.last_message:
        out.append(f"<div>last message:</div><pre>{escape(ev.last_message)}</pre>")
    if ev.diagnosis is not None:
        d = ev.diagnosis
        seen = " ".join(x for x in (f"HTTP {d.status_code}" if d.status_code else "",
                                    d.content_type or "", d.error or "") if x)
        out.append(f'<div class="hint"><b>diagnosis</b> (plain GET of the same URL: '
                   f"{escape(seen)}): {escape(d.hint)}</div>")
        if d.body_excerpt:
            out.append(f"<pre>{escape(d.body_excerpt)}</pre>")
    return "".join(out)


def render_probe(history: History, name: str) -> str:
    runs = history.runs(name)
    now = time.time()
    last = runs[0] if runs else None
    rows = []
    for r in runs:
        steps = ", ".join(f"{s.name} {s.duration_seconds * 1000:.0f}ms" for s in r.steps)
        rows.append(
            "<tr>"
            f"<td>{_iso(r.started_at)}</td><td>{_pill(r)}</td>"
            f"<td>{r.duration_seconds * 1000:.0f} ms</td>"
            f"<td>{'' if r.status_code is None else r.status_code}</td>"
            f"<td>{'' if r.close_code is None else r.close_code}</td>"
            f"<td>{escape(steps)}</td><td>{_evidence_html(r)}</td></tr>"
        )
    head = (f"<h1>{escape(name)}</h1>"
            f"<p>{_pill(last)} since {_ago(history.since(name), now)} · "
            f"{escape(last.target if last else '')}</p><p>{sparkline(runs, 400, 50)}</p>")
    body = (f'<p><a href="../">← all probes</a></p>{head}'
            f"<h2>last {len(runs)} runs</h2>"
            "<table><tr><th>started</th><th>outcome</th><th>latency</th><th>status</th>"
            "<th>close</th><th>steps</th><th>evidence</th></tr>"
            f"{''.join(rows)}</table>")
    return _page(f"{name} · synthmon", body)


def results_payload(history: History) -> dict[str, Any]:
    probes = []
    for name in history.probes():
        runs = history.runs(name)
        probes.append({
            "probe": name,
            "last": runs[0].to_dict() if runs else None,
            "since": history.since(name),
            "runs": [r.to_dict() for r in runs],
        })
    return {"probes": probes, "generated_at": time.time()}
