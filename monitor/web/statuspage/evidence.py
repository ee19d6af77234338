"""What a run kept, as the page shows it: the diagnosis first, then the answer, the
phases, the steps of a flow, the transcript, the trace."""

from __future__ import annotations

from monitor.durations import latency as _ms
from monitor.limits import HISTORY_EVIDENCE_BYTES
from monitor.links import NO_LINKS, Links
from monitor.outcomes import Outcome
from monitor.result import Result
from monitor.web.incidents import Since
from monitor.web.statuspage.markup import escape, excerpt
from monitor.web.summary import answer_label, cross_check, handshake, redirect_chain

CARD_EXCERPT_CHARS = 300
CARD_REDIRECTS = 4  # hops of a redirect chain on a card; the probe page shows them all

def run_evidence(r: Result, lasts: dict[str, Result | None] | None = None,
              compact: bool = False, credentials: dict[str, str | None] | None = None,
              links: Links = NO_LINKS, since: Since | None = None) -> str:
    """What a run kept, as a definition list, the diagnosis first.

    ``compact`` (the cards of the overview) leaves out the phases and the headers and cuts
    the excerpts shorter; the probe page shows everything.
    """
    ev = r.evidence

    def cut(text: str) -> str:
        return escape(excerpt(text, CARD_EXCERPT_CHARS) if compact else text)

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
        rows.append(("trace id", trace_link(r.trace_id, links)))
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


def trace_link(trace_id: str | None, links: Links = NO_LINKS) -> str:
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
