"""The pages themselves: ``/`` (the banner, the incidents' cards, every probe in config
order), ``/probe/NAME`` and the list of a negative probe's variants."""

from __future__ import annotations

import time
from urllib.parse import quote

from monitor import runname
from monitor.daemon import ReloadFailure
from monitor.durations import latency as _ms
from monitor.durations import span as _span
from monitor.links import NO_LINKS, Links
from monitor.outcomes import MEANING
from monitor.result import Result
from monitor.sinks.history import History
from monitor.web.incidents import Incident, Verdict, incidents
from monitor.web.statuspage.evidence import run_evidence, trace_link
from monitor.web.statuspage.markup import (
    REFRESH_SECONDS,
    ago,
    clock,
    escape,
    iso,
    page,
    pill,
    run_class,
)
from monitor.web.statuspage.sparkline import SPARK_RUNS, sparkline
from monitor.web.summary import seen

_CHANGED = '<div class="small muted">outcome changed</div>'
# A negative probe "refused" on a path that refuses valid credentials too (see the card).
_UNVERIFIED = ('<span class="pill wait" title="refused, but the path refuses valid '
               'credentials too: this says nothing about auth now">unverified</span>')

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
               f"; still running the config loaded at {clock(failure.running_since, now)}")
    errors = "\n".join(failure.errors) or "(no detail)"
    return (f'<section class="reload" role="alert" data-reload-failed="{failure.at:.0f}">'
            f"<b>Reload failed</b> {escape(failure.path)} at {clock(failure.at, now)} "
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
    when = "" if since is None else f"failing since {clock(since, now)} ({_span(now - since)})"
    count = len(incident.probes)
    title = (f"{count} probes on {incident.host}" if count > 1 else
             f"on {incident.host}")
    members = "".join(
        f'<li><a href="probe/{quote(n, safe="")}" data-probe="{escape(n)}">{escape(n)}</a>'
        f"</li>" for n in incident.probes)
    evidence = "".join(f"<li>{escape(e)}</li>" for e in incident.evidence)
    return (
        f'<section class="card {run_class(first)}" data-incident="{escape(incident.key)}" '
        f'data-verdict="{escape(incident.verdict.value)}" data-probes="{count}">'
        f"<h3>{pill(first)}<span>{escape(title)}</span>"
        f'<span class="muted small">{escape(when)}</span></h3>'
        f'<div class="muted small">{escape(MEANING.get(first.outcome, ""))}'
        f"{' · ' + escape(incident.cause) if incident.cause != first.outcome.value else ''}"
        f'</div><ul class="members">{members}</ul>'
        f'<div class="verdict {_VERDICT_CLASS[incident.verdict]}"><b>cross-check: '
        f"{escape(incident.verdict.value)}</b>{escape(incident.why)}"
        f'<ul class="evidence">{evidence}</ul></div>'
        + (f'<div class="muted small">what {escape(first.key)} saw</div>' if count > 1 else "")
        + f"{run_evidence(first, compact=True, links=links)}</section>")


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
        f"<td>{_UNVERIFIED if unverified else pill(last)}</td>"
        f'<td class="when">{"—" if since is None else escape(clock(since, now))}'
        f'<div class="muted small">{"" if since is None else _span(now - since)}</div></td>'
        f'<td class="when">{ago(last.started_at if last else None, now)}</td>'
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
        f'<div class="asof">as of {clock(now, now)}<br>refreshes every {REFRESH_SECONDS}s'
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
    return page(title, body, colour if reload_failure is None else "#d93025")


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
        f'<div class="asof">as of {clock(now, now)}<br>refreshes every {REFRESH_SECONDS}s'
        f"</div></header>{reload_banner(reload_failure, now)}"
        f"<h2>Its variants, each run on its own (a negative probe: success means refused)"
        f"</h2>{_probe_table(rows)}"
        '<footer><a href="../api/v1/results">results as JSON</a></footer>')
    return page(f"{'✖' if failing else '✔'} {name} · synthmon", body, colour)


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
        evidence = run_evidence(last, lasts, credentials=history.credentials(), links=links,
                             since=history.since)
        when = "" if since is None else f"{streak} since {iso(since)} ({_span(now - since)})"
        summary = (
            f'<section class="card {run_class(last)}" data-probe="{escape(name)}">'
            f'<h3>{pill(last)}<span>{escape(when)}</span></h3>'
            f'<div class="muted small">{escape(MEANING.get(last.outcome, ""))} · last run '
            f"{ago(last.started_at, now)} · {ok_runs} of {len(runs)} kept runs succeeded</div>"
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
            f'<td class="when">{iso(r.started_at)}'
            f"{_CHANGED if changed else ''}</td>"
            f"<td>{pill(r)}{_attempt(r)}</td>"
            f'<td class="num">{_ms(r.duration_seconds)}</td>'
            f'<td class="num">{"" if r.status_code is None else r.status_code}</td>'
            f'<td class="num">{"" if r.close_code is None else r.close_code}</td>'
            f"<td>{escape(r.evidence.step_name or '') if r.evidence.step is not None else ''}</td>"
            f'<td class="seen"><details><summary>{escape(seen(r)) or "evidence"}</summary>'
            f"{run_evidence(r, links=links)}</details></td>"
            f"<td>{trace_link(r.trace_id, links)}</td></tr>")

    type_ = last.type if last else ""
    probe, variant = runname.split(name)
    parent = ("" if variant is None else
              f' <a class="small" href="{quote(probe, safe="")}">all variants of '
              f"{escape(probe)}</a>")
    body = (
        f'<header><a href="../">← all probes</a><h1>{escape(name)}</h1>'
        f'<span class="muted">{escape(type_)}</span>{parent}'
        f'<div class="asof" style="flex:1">as of {clock(now, now)}<br>refreshes every '
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
    colour = {"ok": "#34a853", "slow": "#f29900", "bad": "#d93025"}.get(run_class(last), "#888")
    return page(f"{'✖' if last and not last.success else '✔' if last else '…'} {name} · synthmon",
                 body, colour)
