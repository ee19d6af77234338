"""The strict HTML check the page tests rely on (tests/support/html.py) fails on what it
must: each kind of broken page, and a broken page whose rows were seen before."""

from __future__ import annotations

import time

import pytest

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.result import Evidence, Result
from monitor.sinks.history import History
from monitor.web.statuspage import render_probe
from tests.support.html import HTMLProblem, StrictPages, parse_strict

HEAD = "<!doctype html><html><head><title>t</title></head><body>"
TAIL = "</body></html>"


@pytest.mark.parametrize("broken", [
    "<div>a",                              # never closed
    "<div><span>a</div></span>",           # misnested
    "</p>",                                # an end tag closing nothing
    '<a href="x" href="y">a</a>',          # a repeated attribute
    "a &nosuch; b",                        # an unknown character reference
    "a \x1b b",                            # a control character
    "a \ufffe b",                          # a noncharacter
    "<br></br>",                           # an end tag for a void element
    "<table><tr><td>a</td></table>",       # a row left open (HTML would imply its end)
    "<p>a<p>b</p>",                        # a paragraph closed by the next one
    '<td class="x">a</td>',                # a cell outside any table
])
def test_the_strict_parser_is_not_vacuous(broken: str) -> None:
    parse_strict(HEAD + "<div>fine</div>" + TAIL)
    with pytest.raises(HTMLProblem):
        parse_strict(HEAD + broken + TAIL)


def _page(runs: int, detail: str = "HTTP 500") -> str:
    history = History()
    history.configure(load_text('probes:\n  - name: p\n    http: {url: "http://127.0.0.1:9/"}\n',
                                env={}))
    now = time.time()
    for i in range(runs):
        history.observe(Result(probe="p", type="http", target="http://127.0.0.1:9/",
                               outcome=Outcome.UNEXPECTED_STATUS, started_at=now - 100 + i,
                               duration_seconds=0.01, status_code=500,
                               evidence=Evidence(detail=detail if i == runs - 1 else "HTTP 500")))
    return render_probe(history, "p")


def test_rows_seen_before_are_left_out_but_nothing_else() -> None:
    pages = StrictPages()
    pages.parse(_page(5))
    pages.parse(_page(6))  # five rows seen, one new
    # A broken new row (the newest run's) fails though every other row was seen.
    with pytest.raises(HTMLProblem):
        pages.parse(_page(7).replace("<td class=\"num\">500</td>", "<td class=\"num\">500", 1))
    # So does a broken part of the page around the rows.
    with pytest.raises(HTMLProblem):
        pages.parse(_page(6).replace("<h2>", "<h2><span>", 1))
    # A row that opens what the next one closes: each row must balance by itself.
    page = _page(8)
    first, second = (page.index('<tr class="fail" data-outcome='),
                     page.index('<tr class="fail" data-outcome=', page.index(
                         '<tr class="fail" data-outcome=') + 1))
    bad = page[:first + 3] + page[first + 3:second].replace("</td>", "</td><div>", 1) \
        + page[second:].replace("</td>", "</div></td>", 1)
    with pytest.raises(HTMLProblem):
        StrictPages().parse(bad)
