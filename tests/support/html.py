"""Strict HTML checks for the daemon's pages: a page that a browser would have to repair is
a failing test, not a page that happens to look right.

Two checks, both strict:
* html5lib in strict mode, the WHATWG parsing algorithm: any parse error (a stray end tag, a
  duplicate attribute, an unknown character reference, a missing doctype) raises;
* every element the page opens is closed explicitly, in order (void elements and SVG's
  self-closed ones aside), which the HTML spec does not demand but the pages promise, so
  that an unescaped ``<`` from a target or a lost end tag cannot hide in implied end tags.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import html5lib

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class HTMLProblem(AssertionError):
    pass


# A tag, once html5lib has found the page free of errors (so every attribute is quoted, and
# every `<` in text or attributes escaped): `<name ...>`, `<name .../>` or `</name>`.
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(?:\s[^>]*?)?(/?)>")


def _unbalanced(text: str) -> list[str]:
    """Where ``text`` opens an element it does not close, or closes one it did not open."""
    problems: list[str] = []
    open_: list[tuple[str, int]] = []
    for m in _TAG.finditer(text):
        closing, tag, self_closed = m.group(1), m.group(2).lower(), m.group(3)
        if closing:
            if tag in VOID:
                problems.append(f"</{tag}> at {m.start()}: a void element has no end tag")
            elif open_ and open_[-1][0] == tag:
                open_.pop()
            else:
                problems.append(f"</{tag}> at {m.start()} closes nothing open: the innermost "
                                f"open element is {open_[-1] if open_ else None}")
                while open_ and open_[-1][0] != tag:  # report once, not at every later tag
                    open_.pop()
                if open_:
                    open_.pop()
        elif tag not in VOID and not self_closed:  # <rect .../> in SVG closes itself
            open_.append((tag, m.start()))
    return problems + [f"<{tag}> opened at {at} is never closed" for tag, at in open_]


def _html5(text: str, where: str) -> Element:
    try:
        tree: Element = html5lib.HTMLParser(
            tree=html5lib.getTreeBuilder("etree"), strict=True,
            namespaceHTMLElements=False).parse(text)
    except html5lib.html5parser.ParseError as exc:
        raise HTMLProblem(f"{where}: HTML parse error: {exc}") from None
    return tree


def parse_strict(text: str, where: str = "page") -> Element:
    """The page's DOM (html5lib's ElementTree, no namespaces), or HTMLProblem with the first
    problems found and where; both checks above must pass."""
    tree = _html5(text, where)
    problems = _unbalanced(text)
    if problems:
        raise HTMLProblem(f"{where}: " + "; ".join(problems[:5]))
    return tree


# A row of a probe page's runs table: one run, the same string from one fetch to the next.
_RUN_ROW = re.compile(r'(?=<tr class="[^"]*" data-outcome=")')


class StrictPages:
    """:func:`parse_strict` for a series of pages that repeat most of their rows: a walk
    through every simulator mode fetches every probe page again in each, with a run or two
    more. A run's row that a page already passed with (the same string) is checked alone
    for balance and left out of the full parse, where an empty row stands in its place; all
    the rest of the page is parsed in full every time. A tenth of the bytes to parse."""

    def __init__(self) -> None:
        self._rows: set[str] = set()

    def parse(self, text: str, where: str = "page") -> Element:
        head, *rows = _RUN_ROW.split(text)
        # The last piece runs on to the end of the page: never taken for a row alone.
        new = [r for r in rows[:-1] if r not in self._rows]
        kept = "".join("<tr></tr>" if r in self._rows else r for r in rows[:-1])
        tree = parse_strict(head + kept + "".join(rows[-1:]), where)
        for row in new:
            problems = _unbalanced(row)
            if problems:
                raise HTMLProblem(f"{where}: a run's row: " + "; ".join(problems[:5]))
        self._rows.update(new)
        return tree


def texts(tree: Element) -> str:
    """Every text of the page, as a reader sees it (for asserting what it says)."""
    return " ".join(" ".join(t.split()) for t in tree.itertext() if t.strip())
