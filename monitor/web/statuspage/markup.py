"""The page's markup: escaping what HTML cannot carry, the wording of times, a run's
CSS class and pill, and the frame every page shares (its style, icon and refresh)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import quote

from monitor.durations import span as _span
from monitor.outcomes import MEANING, Outcome
from monitor.result import Result

REFRESH_SECONDS = 10

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


def ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    return f"{_span(now - ts)} ago"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(ts: float, now: float) -> str:
    """``10:04:11 UTC`` today, with the date when it is older than a day."""
    fmt = "%H:%M:%S UTC" if now - ts < 86400 else "%Y-%m-%d %H:%M UTC"
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def run_class(r: Result | None) -> str:
    """The CSS class of a run: ok, slow, bad or wait (no run yet)."""
    if r is None:
        return "wait"
    if r.success:
        return "ok"
    return "slow" if r.outcome is Outcome.SLOW else "bad"


def pill(r: Result | None) -> str:
    if r is None:
        return '<span class="pill wait">pending</span>'
    return (f'<span class="pill {run_class(r)}" title="{escape(MEANING.get(r.outcome, ""))}">'
            f"{escape(r.outcome.value)}</span>")


def excerpt(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- pieces


def _icon(colour: str) -> str:
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
           f"<circle cx='8' cy='8' r='7' fill='{colour}'/></svg>")
    return f'<link rel="icon" href="data:image/svg+xml,{quote(svg)}">'


def page(title: str, body: str, icon: str = "#888") -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<meta name="color-scheme" content="light dark">{_icon(icon)}'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>{body}"
            f"</body></html>")
