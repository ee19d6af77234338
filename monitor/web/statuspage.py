"""The status page: what an on-call engineer reads at 3 a.m.

Server-rendered HTML with no scripts and no external assets (the icon is a data: URI);
every value that comes from a probe, a server or the config is escaped. The page is built
from the run history, whose evidence is already redacted.

``/`` answers "what broke, since when, and what did the server say": failing probes come
first as cards with the diagnosis, then every probe in config order. ``/probe/NAME`` keeps
the last runs of one probe (100 by default) with all of their evidence.
"""

from __future__ import annotations

import html
import math
import re
import time
from datetime import UTC, datetime
from urllib.parse import quote

from monitor import runname
from monitor.daemon import ReloadFailure
from monitor.durations import latency as _ms
from monitor.durations import span as _span
from monitor.limits import HISTORY_EVIDENCE_BYTES
from monitor.links import NO_LINKS, Links
from monitor.outcomes import MEANING, Outcome
from monitor.result import Result
from monitor.sinks.history import History
from monitor.web.incidents import Incident, Since, Verdict, incidents
from monitor.web.summary import answer_label, cross_check, handshake, redirect_chain, seen

REFRESH_SECONDS = 10
SPARK_RUNS = 40
CARD_EXCERPT_CHARS = 300
CARD_REDIRECTS = 4  # hops of a redirect chain on a card; the probe page shows them all
_CHANGED = '<div class="small muted">outcome changed</div>'
# A negative probe "refused" on a path that refuses valid credentials too (see the card).
_UNVERIFIED = ('<span class="pill wait" title="refused, but the path refuses valid '
               'credentials too: this says nothing about auth now">unverified</span>')

_CSS = """
:root{--bg:#f6f7f9;--fg:#1d1f23;--card:#fff;--line:#e1e4e8;--muted:#6a717b;--head:#eef0f3;
--ok:#137333;--ok-bg:#e6f4ea;--bad:#b3261e;--bad-bg:#fce8e6;--slow:#a15c00;--slow-bg:#fef3e0;
--link:#0b57d0;--hint-bg:#fff8db;--hint-line:#e0a800;--pre:#f1f3f5;--bar-ok:#34a853;
--bar-bad:#d93025;--bar-slow:#f29900;--info-bg:#e8f0fe}
@media (prefers-color-scheme:dark){:root{--bg:#15171a;--fg:#e6e8eb;--card:#1e2125;
--line:#33373d;--muted:#9aa1ab;--head:#262a2f;--ok:#81c995;--ok-bg:#1d3526;--bad:#f28b82;
--bad-bg:#4a1f1c;--slow:#fdd663;--slow-bg:#473a12;--link:#8ab4f8;--hint-bg:#3a3214;
--hint-line:#e0a800;--pre:#262a2f;--info-bg:#1c2b45}}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1.2em 1.6em;
color:var(--fg);background:var(--bg)}
a{color:var(--link)} h1{font-size:1.35em;margin:0} h2{font-size:1.05em;margin:1.4em 0 .5em}
header{display:flex;align-items:center;gap:1em;flex-wrap:wrap;margin-bottom:1em}
.banner{flex:1;padding:.55em 1em;border-radius:6px;font-size:1.15em;font-weight:650}
.banner.ok{background:var(--ok-bg);color:var(--ok)} .banner.bad{background:#b3261e;color:#fff}
.banner.wait{background:var(--head);color:var(--muted)}
.asof{color:var(--muted);font-size:.9em;text-align:right}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:.4em .6em;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--head);font-weight:600;font-size:.9em;white-space:nowrap}
tr.fail td:first-child{box-shadow:inset 4px 0 var(--bad)}
tr.fail{background:color-mix(in srgb,var(--bad-bg) 45%,var(--card))}
td.num,td.when{white-space:nowrap} td.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:.05em .55em;border-radius:1em;font-size:.88em;
font-weight:600;white-space:nowrap}
.pill.ok{background:var(--ok-bg);color:var(--ok)}
.pill.bad{background:var(--bad-bg);color:var(--bad)}
.pill.slow{background:var(--slow-bg);color:var(--slow)}
.pill.wait{background:var(--head);color:var(--muted)}
.muted{color:var(--muted)} .small{font-size:.88em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:.8em}
.card{background:var(--card);border:1px solid var(--line);border-left:5px solid var(--bad);
border-radius:6px;padding:.7em 1em}
.card.ok{border-left-color:var(--ok)} .card.wait{border-left-color:var(--line)}
.card h3{margin:0 0 .25em;font-size:1.08em;display:flex;gap:.6em;align-items:baseline;
flex-wrap:wrap}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:.15em .9em;margin:.4em 0}
.kv dt{color:var(--muted)} .kv dd{margin:0;overflow-wrap:anywhere}
.handshake{font-weight:650}
.hint{background:var(--hint-bg);border-left:4px solid var(--hint-line);padding:.45em .7em;
margin:.5em 0;border-radius:0 4px 4px 0}
.hint.info{background:var(--info-bg);border-left-color:var(--link)}
.card pre{max-height:7.5em}
td:first-child{white-space:nowrap}
.hint b{display:block;font-size:.85em;text-transform:uppercase;letter-spacing:.04em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--pre);padding:.45em .6em;
margin:.25em 0;border-radius:4px;font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;
max-height:16em;overflow:auto}
details>summary{cursor:pointer} .seen{overflow-wrap:anywhere;max-width:52em}
svg.spark{display:block;max-width:100%;height:auto}
svg.spark.wide{width:100%;height:84px}
.scroll{overflow-x:auto}
.reload{background:var(--bad-bg);border:1px solid var(--bad);border-left:6px solid var(--bad);
border-radius:6px;padding:.6em 1em;margin:0 0 1em}
.reload b{color:var(--bad)} .reload pre{max-height:10em}
.card .members{margin:.3em 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:.3em 1em}
.verdict{border-left:4px solid var(--link);background:var(--info-bg);padding:.45em .7em;
margin:.5em 0;border-radius:0 4px 4px 0}
.verdict b{display:block;font-size:.85em;text-transform:uppercase;letter-spacing:.04em}
.verdict ul{margin:.3em 0 0;padding-left:1.2em} .verdict li{overflow-wrap:anywhere}
@media (max-width:700px){body{padding:.8em .6em}.cards{grid-template-columns:1fr}
.banner{font-size:1em;order:3;flex-basis:100%}
table.probes,table.probes tbody{display:block;border:0;background:none}
table.probes tr:first-child{display:none}
table.probes tr{display:flex;flex-wrap:wrap;align-items:baseline;gap:.15em .7em;
background:var(--card);border:1px solid var(--line);border-radius:6px;margin:0 0 .4em;
padding:.4em .6em}
table.probes td{border:0;padding:0}
table.probes td:nth-child(2),table.probes td:nth-child(5),table.probes td:nth-child(8){display:none}
table.probes td.spark{flex-basis:100%} table.probes td.spark svg{width:100%;height:auto}
table.probes tr.fail{border-left:5px solid var(--bad)}
table.probes tr.fail td:first-child{box-shadow:none}}
footer{margin-top:1.2em;color:var(--muted);font-size:.88em}
code.tid{font:12px ui-monospace,"DejaVu Sans Mono",monospace;user-select:all;cursor:copy;
white-space:nowrap}
"""


# --------------------------------------------------------------------------- formatting

# What HTML may not carry even escaped (the parser's "control character" and "noncharacter"
# errors): C0 but tab, newline, form feed and return; DEL; C1; noncharacters; lone
# surrogates. A target's body, headers or frames may hold any of them (ESC[2J, a NUL).
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_NOT_HTML = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
                       + _NONCHARACTERS + "]")


def _visible(m: re.Match[str]) -> str:
    """A C0 control as its Unicode control picture (ESC shows as U+241B, so the reader sees
    that the target sent one), DEL as U+2421, anything else as the replacement character."""
    cp = ord(m.group())
    if cp < 0x20:
        return chr(0x2400 + cp)
    return "\u2421" if cp == 0x7F else "\ufffd"


def escape(text: str) -> str:
    """``text`` for the page: HTML-escaped (quotes too, for attributes), and every character
    HTML cannot carry made visible instead (see _NOT_HTML)."""
    return html.escape(_NOT_HTML.sub(_visible, text))


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    return f"{_span(now - ts)} ago"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(ts: float, now: float) -> str:
    """``10:04:11 UTC`` today, with the date when it is older than a day."""
    fmt = "%H:%M:%S UTC" if now - ts < 86400 else "%Y-%m-%d %H:%M UTC"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def _kind(r: Result | None) -> str:
    """The CSS class of a run: ok, slow, bad or wait (no run yet)."""
    if r is None:
        return "wait"
    if r.success:
        return "ok"
    return "slow" if r.outcome is Outcome.SLOW else "bad"


def _pill(r: Result | None) -> str:
    if r is None:
        return '<span class="pill wait">pending</span>'
    return (f'<span class="pill {_kind(r)}" title="{escape(MEANING.get(r.outcome, ""))}">'
            f"{escape(r.outcome.value)}</span>")


def _excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- pieces


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
        kind = _kind(r)
        colour = _BAR_COLOUR[kind]
        x = left + i * slot
        h = max(1.5, latency_height(r.duration_seconds, top) * (chart - 1))
        tip = escape(f"{_iso(r.started_at)} · {r.outcome.value} · {_ms(r.duration_seconds)}")
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


def _evidence(r: Result, lasts: dict[str, Result | None] | None = None,
              compact: bool = False, credentials: dict[str, str | None] | None = None,
              links: Links = NO_LINKS, since: Since | None = None) -> str:
    """What a run kept, as a definition list, the diagnosis first.

    ``compact`` (the cards of the overview) leaves out the phases and the headers and cuts
    the excerpts shorter; the probe page shows everything.
    """
    ev = r.evidence

    def cut(text: str) -> str:
        return escape(_excerpt(text, CARD_EXCERPT_CHARS) if compact else text)

    out: list[str] = []
    rows: list[tuple[str, str]] = []
    hs = handshake(r)
    if hs is not None:
        rows.append((answer_label(r), f'<span class="handshake">{escape(hs)}</span>'))
    elif r.status_code is not None:
        ctype = f" {ev.content_type}" if ev.content_type else ""
        rows.append(("answer", escape(f"HTTP {r.status_code}{ctype}")))
    if r.variant is not None:
        rows.append(("variant", escape(r.variant)))
    if ev.detail:
        rows.append(("detail", escape(ev.detail)))
    chain = redirect_chain(r, CARD_REDIRECTS if compact else None)
    if chain is not None:
        rows.append((f"redirects ({len(ev.redirects)})", escape(chain)))
    if ev.reflected_in is not None:
        rows.append(("reflected in", escape(f"the {ev.reflected_in} header (value not shown)")))
    if ev.retry_after is not None:
        rows.append(("Retry-After", escape(ev.retry_after)))
    if r.close_code is not None or ev.close_code is not None:
        code = r.close_code if r.close_code is not None else ev.close_code
        reason = f" “{ev.close_reason}”" if ev.close_reason else ""
        rows.append(("close", escape(f"{code}{reason}")))
    if r.step is not None:  # a flow: the step whose failure is the outcome
        rows.append(("failing step", f"<b>{escape(r.step)}</b>"))
    elif ev.step is not None:
        rows.append(("step reached", escape(f"{ev.step_name or ''} (#{ev.step})".strip())))
    if r.steps:
        rows.append(("steps done", escape(", ".join(
            f"{s.name} {_ms(s.duration_seconds)}" for s in r.steps))))
    if ev.events_seen:
        more = f" … and {ev.events_seen_omitted:,} more" if ev.events_seen_omitted else ""
        rows.append(("events seen", escape(", ".join(ev.events_seen) + more)))
    if ev.event_matches:
        rows.append(("matched", escape(", ".join(
            f"{m.event} at {m.path}" + (f" as {m.spelling}" if m.spelling != m.event else "")
            for m in ev.event_matches))))
    if ev.duplicates:
        rows.append(("duplicates", escape(", ".join(f"{e} ×{n}" for e, n in ev.duplicates))))
    if r.events and not compact:
        rows.append(("event times", escape(", ".join(
            f"{e.event} {_ms(e.seconds)}" for e in r.events))))
    if r.phases and not compact:
        rows.append(("phases", escape(", ".join(f"{k} {_ms(v)}" for k, v in r.phases))))
    rows.append(("target", escape(r.target)))
    if r.trace_id:
        rows.append(("trace id", _trace(r.trace_id, links)))
    d = ev.diagnosis
    if d is not None:
        got = " ".join(x for x in (f"HTTP {d.status_code}" if d.status_code else "",
                                   d.content_type or "", d.error or "") if x)
        out.append(f'<div class="hint"><b>diagnosis</b>{escape(d.hint)}'
                   f'<div class="small muted">a plain GET of the same URL answered: '
                   f"{escape(got or 'nothing')}</div></div>")
    if ev.hint and not (compact and d is not None):  # on a card the diagnosis says it
        out.append(f'<div class="hint"><b>hint</b>{escape(ev.hint)}</div>')
    if lasts is not None:
        check = cross_check(r, lasts, credentials, since)
        if check:
            out.append(f'<div class="hint info"><b>cross-check</b>{escape(check)}</div>')
    out.append('<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
               + "</dl>")
    if ev.body_excerpt:
        out.append('<div class="muted small">body (first 1 KiB)</div>'
                   f"<pre>{cut(ev.body_excerpt)}</pre>")
    if ev.last_message:
        out.append('<div class="muted small">last message</div>'
                   f"<pre>{cut(ev.last_message)}</pre>")
    if d is not None and d.body_excerpt:
        out.append('<div class="muted small">diagnostic GET body</div>'
                   f"<pre>{cut(d.body_excerpt)}</pre>")
    if ev.frames_seen and not compact:
        lines = "\n".join(
            f"+{f.offset_ms:.0f}ms " + ", ".join(f"{path}={'-' if v is None else v}"
                                                  for path, v in f.types)
            for f in ev.frames_seen)
        total = len(ev.frames_seen) + ev.frames_seen_omitted
        count = (f"the first {len(ev.frames_seen)} of {total:,}" if ev.frames_seen_omitted
                 else str(total))
        out.append(f'<details><summary class="small">frames that arrived '
                   f"({count}), their types under every candidate path"
                   f"</summary><pre>{escape(lines)}</pre></details>")
    if r.step_results and not compact:
        out.append(_step_results(r))
    if (r.transcript or r.transcript_omitted) and not compact and not r.success:
        out.append(_transcript(r))
    if ev.headers and not compact:
        hdrs = "\n".join(f"{k}: {v}" for k, v in ev.headers)
        more = f", {ev.headers_omitted} more not kept" if ev.headers_omitted else ""
        out.append(f"<details><summary class=\"small\">response headers ({len(ev.headers)}"
                   f"{more})</summary><pre>{escape(hdrs)}</pre></details>")
    if ev.trimmed and not compact:
        out.append('<div class="small muted">headers, bodies and frames of this older run '
                   f"were not kept: the history keeps {HISTORY_EVIDENCE_BYTES >> 20} MiB of "
                   "them per probe</div>")
    return "".join(out)


def _trace(trace_id: str | None, links: Links = NO_LINKS) -> str:
    """The run's trace id, selected whole by one click (no script: ``user-select: all``),
    to paste into the backend's log or trace search; with ``--trace-url``, also the link to
    the trace itself."""
    if not trace_id:
        return ""
    code = (f'<code class="tid" title="W3C trace id of this run: click to select, then '
            f'search the backend&#39;s logs and traces for it">{escape(trace_id)}</code>')
    url = links.trace(trace_id)
    if url is None:
        return code
    return (f'{code} <a class="trace" href="{escape(url)}" rel="noopener noreferrer" '
            f'target="_blank">open trace</a>')


def _step_results(r: Result) -> str:
    """Every step of a flow's run: what it did, its answer, its detail (redacted)."""
    rows = []
    for st in r.step_results:
        if st.outcome is None:
            outcome, cls = ("not run" if st.evidence.detail.startswith("not run")
                            else "skipped"), "wait"
        else:
            outcome = st.outcome.value
            cls = "ok" if st.passed else "slow" if st.outcome is Outcome.SLOW else "bad"
        answer = " ".join(p for p in (
            f"HTTP {st.status_code}" if st.status_code is not None else "",
            f"close {st.close_code}" if st.close_code is not None else "") if p)
        name = st.name + (" (always)" if st.always else "")
        failing = ' class="fail"' if st.name == r.step else ""
        rows.append(f"<tr{failing}><td>{escape(name)}</td><td>{escape(st.type)}</td>"
                    f'<td><span class="pill {cls}">{escape(outcome)}</span></td>'
                    f'<td class="num">{_ms(st.duration_seconds) if st.ran else ""}</td>'
                    f"<td>{escape(answer)}</td><td>{escape(st.evidence.detail)}</td></tr>")
    return ('<details open class="flow-steps"><summary class="small">steps '
            f"({len(r.step_results)})</summary><table class=\"steps\"><thead><tr><th>step</th>"
            "<th>kind</th><th>outcome</th><th>took</th><th>answer</th><th>detail</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></details>")


def _transcript(r: Result) -> str:
    """The conversation of a failing WebSocket run, frame by frame (already redacted)."""
    rows = "".join(
        f'<tr><td class="num">+{f.offset_ms:.0f}ms</td>'
        f"<td>{'→' if f.direction == 'sent' else '←'} {escape(f.direction)}</td>"
        f"<td>{escape(f.kind)}</td><td class=\"num\">{f.size}</td>"
        f"<td><code>{escape(f.data)}</code></td></tr>" for f in r.transcript)
    more = (f'<div class="small muted">{r.transcript_omitted} more frames not kept</div>'
            if r.transcript_omitted else "")
    return (f'<details open class="transcript"><summary class="small">transcript '
            f"({len(r.transcript)} frames)</summary><table><tr><th>at</th><th>direction</th>"
            f"<th>kind</th><th>bytes</th><th>first 256 bytes</th></tr>{rows}</table>{more}"
            "</details>")


def _icon(colour: str) -> str:
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
           f"<circle cx='8' cy='8' r='7' fill='{colour}'/></svg>")
    return f'<link rel="icon" href="data:image/svg+xml,{quote(svg)}">'


def _page(title: str, body: str, icon: str = "#888") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="color-scheme" content="light dark">{_icon(icon)}'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}"
            f"</body></html>")




def _banner(failing: int, total: int, pending: int) -> tuple[str, str, str]:
    """(css class, text, icon colour)."""
    if not total:
        return "wait", "no probes configured (or none in this shard)", "#888"
    if failing:
        return "bad", f"{failing} of {total} probes failing", "#d93025"
    if total and pending == total:
        return "wait", f"waiting for the first runs of {total} probes", "#888"
    if pending:
        return "ok", f"{total - pending} probes passing, {pending} not run yet", "#34a853"
    return "ok", f"all {total} probes passing", "#34a853"


# --------------------------------------------------------------------------- pages


def reload_banner(failure: ReloadFailure | None, now: float) -> str:
    """The failed reload, in red above everything, until a reload succeeds."""
    if failure is None:
        return ""
    running = ("" if failure.running_since is None else
               f"; still running the config loaded at {_clock(failure.running_since, now)}")
    errors = "\n".join(failure.errors) or "(no detail)"
    return (f'<section class="reload" role="alert" data-reload-failed="{failure.at:.0f}">'
            f"<b>Reload failed</b> {escape(failure.path)} at {_clock(failure.at, now)} "
            f"({_span(now - failure.at)} ago){escape(running)}. This stays until a reload "
            f"succeeds.<pre>{escape(errors)}</pre></section>")


_VERDICT_CLASS = {Verdict.ROUTE: "route", Verdict.CREDENTIALS: "credentials",
                  Verdict.WEBSOCKET_DOWN: "websocket", Verdict.HOST_DOWN: "host",
                  Verdict.AUTH_NOT_ENFORCED: "security", Verdict.CANNOT_TELL: "unknown"}


def incident_card(incident: Incident, history: History, now: float,
                  links: Links = NO_LINKS) -> str:
    """One card for probes failing with one cause on one host: the verdict, its evidence,
    then what the first of them kept."""
    first = incident.first
    starts = [t for n in incident.probes if (t := history.since(n)) is not None]
    since = min(starts) if starts else None
    when = "" if since is None else f"failing since {_clock(since, now)} ({_span(now - since)})"
    count = len(incident.probes)
    title = (f"{count} probes on {incident.host}" if count > 1 else
             f"on {incident.host}")
    members = "".join(
        f'<li><a href="probe/{quote(n, safe="")}" data-probe="{escape(n)}">{escape(n)}</a>'
        f"</li>" for n in incident.probes)
    evidence = "".join(f"<li>{escape(e)}</li>" for e in incident.evidence)
    return (
        f'<section class="card {_kind(first)}" data-incident="{escape(incident.key)}" '
        f'data-verdict="{escape(incident.verdict.value)}" data-probes="{count}">'
        f"<h3>{_pill(first)}<span>{escape(title)}</span>"
        f'<span class="muted small">{escape(when)}</span></h3>'
        f'<div class="muted small">{escape(MEANING.get(first.outcome, ""))}'
        f"{' · ' + escape(incident.cause) if incident.cause != first.outcome.value else ''}"
        f'</div><ul class="members">{members}</ul>'
        f'<div class="verdict {_VERDICT_CLASS[incident.verdict]}"><b>cross-check: '
        f"{escape(incident.verdict.value)}</b>{escape(incident.why)}"
        f'<ul class="evidence">{evidence}</ul></div>'
        + (f'<div class="muted small">what {escape(first.key)} saw</div>' if count > 1 else "")
        + f"{_evidence(first, compact=True, links=links)}</section>")


def _probe_row(name: str, last: Result | None, history: History, now: float,
               base: str, unverified: bool = False) -> str:
    """A row of the probe table; ``base`` is the way from the page to ``/probe/``;
    ``unverified``: a negative probe whose refusal an incident puts in doubt."""
    since = history.since(name)
    row_cls = "fail" if last is not None and not last.success else ""
    return (
        f'<tr class="{row_cls}" data-probe="{escape(name)}" '
        f'data-outcome="{escape(last.outcome.value if last else "pending")}">'
        f'<td><a href="{base}{quote(name, safe="")}">{escape(name)}</a></td>'
        f"<td>{escape(last.type if last else '')}</td>"
        f"<td>{_UNVERIFIED if unverified else _pill(last)}</td>"
        f'<td class="when">{"—" if since is None else escape(_clock(since, now))}'
        f'<div class="muted small">{"" if since is None else _span(now - since)}</div></td>'
        f'<td class="when">{_ago(last.started_at if last else None, now)}</td>'
        f'<td class="num">{"" if last is None else _ms(last.duration_seconds)}</td>'
        f'<td class="spark">{sparkline([r for r in history.runs(name, SPARK_RUNS) if r.final])}'
        "</td>"
        f'<td class="seen">{escape(seen(last)) if last else ""}</td>'
        "</tr>")


def _probe_table(rows: list[str]) -> str:
    return ('<table class="probes"><tr><th>probe</th><th>type</th><th>last outcome</th>'
            "<th>since</th><th>last run</th><th>latency</th>"
            "<th>recent runs (outcome, latency log scale; newest right)</th>"
            f"<th>what was seen</th></tr>{''.join(rows)}</table>")


def render_index(history: History, reload_failure: ReloadFailure | None = None,
                 links: Links = NO_LINKS) -> str:
    now = time.time()
    lasts = history.latest()
    names = list(lasts)
    failing = [n for n in names if (r := lasts[n]) is not None and not r.success]
    pending = sum(lasts[n] is None for n in names)
    cls, headline, colour = _banner(len(failing), len(names), pending)
    found = incidents(lasts, history.credentials(), since=history.since,
                      negative=history.negative())
    moot = {key for i in found for key in i.moot}
    if found and len(found) < len(failing):
        headline += f" · {len(found)} incident{'s' if len(found) > 1 else ''}"
    cards = [incident_card(i, history, now, links) for i in found]

    rows = [_probe_row(name, lasts[name], history, now, "probe/",
                       unverified=name in moot) for name in names]

    body = (
        f'<header><h1>synthmon</h1><div class="banner {cls}">{escape(headline)}</div>'
        f'<div class="asof">as of {_clock(now, now)}<br>refreshes every {REFRESH_SECONDS}s'
        f"</div></header>"
        + reload_banner(reload_failure, now)
        + (f'<h2>Failing now</h2><div class="cards">{"".join(cards)}</div>' if cards else "")
        + "<h2>All probes</h2>"
        '<table class="probes"><tr><th>probe</th><th>type</th><th>last outcome</th>'
        "<th>since</th><th>last run</th><th>latency</th>"
        "<th>recent runs (outcome, latency log scale; newest right)</th>"
        "<th>what was seen</th></tr>"
        f"{''.join(rows)}</table>"
        '<footer><a href="api/v1/results">results as JSON</a> · <a href="metrics">metrics</a>'
        " · “since” is the start of the current streak of the last outcome</footer>")
    title = (f"✖ {len(failing)} failing · synthmon" if failing else
             "✖ reload failed · synthmon" if reload_failure else "✔ synthmon")
    return _page(title, body, colour if reload_failure is None else "#d93025")


def variants_of(history: History, name: str) -> list[str]:
    """The run names of ``name``'s variants (``NAME@VARIANT``), in config order; empty when
    ``name`` is not a negative probe with variants."""
    return [n for n in history.probes()
            if (parts := runname.split(n))[0] == name and parts[1] is not None]


def render_variants(history: History, name: str,
                    reload_failure: ReloadFailure | None = None,
                    links: Links = NO_LINKS) -> str:
    """``/probe/NAME`` of a negative probe with variants: a row per variant, each a link to
    its own page (``/probe/NAME@VARIANT``), as on the overview."""
    now = time.time()
    lasts = history.latest()
    keys = variants_of(history, name)
    failing = sum(1 for k in keys if (r := lasts.get(k)) is not None and not r.success)
    pending = sum(lasts.get(k) is None for k in keys)
    cls, _, colour = _banner(failing, len(keys), pending)
    headline = (f"{failing} of {len(keys)} variants failing" if failing else
                f"{len(keys) - pending} of {len(keys)} variants passing"
                + (f", {pending} not run yet" if pending else ""))
    rows = [_probe_row(k, lasts.get(k), history, now, "") for k in keys]
    body = (
        f'<header><a href="../">← all probes</a><h1>{escape(name)}</h1>'
        f'<div class="banner {cls}">{escape(headline)}</div>'
        f'<div class="asof">as of {_clock(now, now)}<br>refreshes every {REFRESH_SECONDS}s'
        f"</div></header>{reload_banner(reload_failure, now)}"
        f"<h2>Its variants, each run on its own (a negative probe: success means refused)"
        f"</h2>{_probe_table(rows)}"
        '<footer><a href="../api/v1/results">results as JSON</a></footer>')
    return _page(f"{'✖' if failing else '✔'} {name} · synthmon", body, colour)


def _attempt(r: Result) -> str:
    """Which attempt of its run a row is: nothing for a run that needed one."""
    if r.final and r.attempt == 1:
        return ""
    text = f"attempt {r.attempt}" + ("" if r.final else " · retried")
    return f'<div class="muted small">{escape(text)}</div>'


def render_probe(history: History, name: str,
                 reload_failure: ReloadFailure | None = None, links: Links = NO_LINKS) -> str:
    now = time.time()
    lasts = history.latest()
    names = list(lasts)
    # Every attempt is kept; a run is its final attempt, shown with the retried ones before it.
    attempts = history.runs(name)
    runs = [r for r in attempts if r.final]
    last = lasts.get(name)
    since = history.since(name)
    ok_runs = sum(r.success for r in runs)

    if last is None:
        summary = '<p class="muted">no runs yet</p>'
        latest = ""
    else:
        streak = "passing" if last.success else "failing"
        evidence = _evidence(last, lasts, credentials=history.credentials(), links=links,
                             since=history.since)
        when = "" if since is None else f"{streak} since {_iso(since)} ({_span(now - since)})"
        summary = (
            f'<section class="card {_kind(last)}" data-probe="{escape(name)}">'
            f'<h3>{_pill(last)}<span>{escape(when)}</span></h3>'
            f'<div class="muted small">{escape(MEANING.get(last.outcome, ""))} · last run '
            f"{_ago(last.started_at, now)} · {ok_runs} of {len(runs)} kept runs succeeded</div>"
            f"{evidence}</section>")
        latest = (f'<h2>The kept runs <span class="muted small">(outcome on top, latency '
                  f"below on a log scale; newest right, hover a bar for its run)</span></h2>"
                  f"{sparkline(runs, 1000, 84, limit=max(history.depth, len(runs)), wide=True)}")

    rows = []
    finals = [i for i, r in enumerate(attempts) if r.final]
    for i, r in enumerate(attempts):
        later = [j for j in finals if j > i]  # the final attempt of the run before this one
        changed = r.final and bool(later) and attempts[later[0]].outcome is not r.outcome
        rows.append(
            f'<tr class="{"" if r.success else "fail"}{"" if r.final else " retried"}" '
            f'data-outcome="{escape(r.outcome.value)}" data-attempt="{r.attempt}" '
            f'data-final="{str(r.final).lower()}">'
            f'<td class="when">{_iso(r.started_at)}'
            f"{_CHANGED if changed else ''}</td>"
            f"<td>{_pill(r)}{_attempt(r)}</td>"
            f'<td class="num">{_ms(r.duration_seconds)}</td>'
            f'<td class="num">{"" if r.status_code is None else r.status_code}</td>'
            f'<td class="num">{"" if r.close_code is None else r.close_code}</td>'
            f"<td>{escape(r.evidence.step_name or '') if r.evidence.step is not None else ''}</td>"
            f'<td class="seen"><details><summary>{escape(seen(r)) or "evidence"}</summary>'
            f"{_evidence(r, links=links)}</details></td>"
            f"<td>{_trace(r.trace_id, links)}</td></tr>")

    type_ = last.type if last else ""
    probe, variant = runname.split(name)
    parent = ("" if variant is None else
              f' <a class="small" href="{quote(probe, safe="")}">all variants of '
              f"{escape(probe)}</a>")
    body = (
        f'<header><a href="../">← all probes</a><h1>{escape(name)}</h1>'
        f'<span class="muted">{escape(type_)}</span>{parent}'
        f'<div class="asof" style="flex:1">as of {_clock(now, now)}<br>refreshes every '
        f"{REFRESH_SECONDS}s</div></header>"
        f"{reload_banner(reload_failure, now)}{summary}{latest}"
        f"<h2>Last {len(runs)} runs (newest first; a retried attempt is listed below "
        f"its run)</h2>"
        '<div class="scroll"><table><tr><th>started</th><th>outcome</th><th>latency</th>'
        "<th>status</th><th>close</th><th>step reached</th>"
        "<th>what was seen (click for evidence)</th><th>trace id</th></tr>"
        f"{''.join(rows)}</table></div>"
        f'<footer><a href="../api/v1/results">results as JSON</a> · '
        f"{len(names)} probes configured</footer>")
    colour = {"ok": "#34a853", "slow": "#f29900", "bad": "#d93025"}.get(_kind(last), "#888")
    return _page(f"{'✖' if last and not last.success else '✔' if last else '…'} {name} · synthmon",
                 body, colour)
