"""The sparkline of a probe's last runs: one bar a run, its height the latency on a log
scale, its colour the outcome."""

from __future__ import annotations

import math

from monitor.durations import latency as _ms
from monitor.result import Result
from monitor.web.statuspage.markup import escape, iso, run_class

SPARK_RUNS = 40

LATENCY_FLOOR = 0.001  # 1 ms: the bottom of the log scale


def latency_height(seconds: float, top: float) -> float:
    """0..1 on a log scale from 1 ms to ``top``: a 6 s outlier beside 10 ms runs leaves the
    10 ms bars at a quarter of the height instead of a pixel."""
    if top <= LATENCY_FLOOR:
        return 1.0 if seconds > 0 else 0.0
    value = math.log1p(max(seconds, 0.0) / LATENCY_FLOOR) / math.log1p(top / LATENCY_FLOOR)
    return min(1.0, max(0.0, value))


_BAR_COLOUR = {"ok": "var(--bar-ok)", "slow": "var(--bar-slow)", "bad": "var(--bar-bad)"}


def sparkline(runs: list[Result], width: int = 160, height: int = 30,
              limit: int = SPARK_RUNS, wide: bool = False) -> str:
    """Recent runs, newest right, outcome first: a strip of full-height marks coloured by
    outcome on top (a 3 ms 403 is as visible as a 6 s timeout), and below it the latency
    as bars on a log scale (one outlier cannot flatten the rest). Hover for a run.

    ``wide`` stretches the chart to the width of its container (the probe page)."""
    runs = list(reversed(runs[:limit]))
    if not runs:
        return '<span class="muted">no runs yet</span>'
    strip = max(6.0, round(height * 0.3))
    gap = 2.0
    chart = height - strip - gap
    top = max(r.duration_seconds for r in runs)
    slot = width / max(len(runs), limit // 2 or 1)
    bar = max(1.0, slot * (0.8 if wide else 0.72))
    left = width - slot * len(runs)  # the newest run is always at the right edge
    marks = []
    for i, r in enumerate(runs):
        kind = run_class(r)
        colour = _BAR_COLOUR[kind]
        x = left + i * slot
        h = max(1.5, latency_height(r.duration_seconds, top) * (chart - 1))
        tip = escape(f"{iso(r.started_at)} · {r.outcome.value} · {_ms(r.duration_seconds)}")
        marks.append(
            f'<g data-outcome="{escape(r.outcome.value)}"><title>{tip}</title>'
            f'<rect class="mark {kind}" x="{x:.1f}" y="0" width="{bar:.1f}" '
            f'height="{strip:.1f}" fill="{colour}"/>'
            f'<rect class="lat" x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" '
            f'height="{h:.1f}" fill="{colour}" fill-opacity="{1 if kind == "ok" else 0.55}"/>'
            "</g>")
    failed = sum(not r.success for r in runs)
    ordered = sorted(r.duration_seconds for r in runs)
    label = (f"last {len(runs)} runs, {failed} failed; latency (log scale) median "
             f"{_ms(ordered[len(ordered) // 2])}, slowest {_ms(top)}")
    base = (f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" '
            'stroke="var(--line)"/>')
    size = ('preserveAspectRatio="none" class="spark wide"' if wide else
            f'class="spark" width="{width}" height="{height}"')
    return (f'<svg {size} viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(label)}" data-failed="{failed}">'
            f'<title>{escape(label)}</title>{base}{"".join(marks)}</svg>')
