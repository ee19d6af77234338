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

from html.parser import HTMLParser
from xml.etree.ElementTree import Element

import html5lib

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class HTMLProblem(AssertionError):
    pass


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, tuple[int, int]]] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = [k for k, _ in attrs]
        if len(names) != len(set(names)):
            self.problems.append(f"<{tag}> at {self.getpos()} repeats an attribute: {names}")
        if tag not in VOID:
            self.open.append((tag, self.getpos()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <rect .../> in SVG: opened and closed at once

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.problems.append(f"</{tag}> at {self.getpos()}: a void element has no end tag")
        elif not self.open or self.open[-1][0] != tag:
            top = self.open[-1] if self.open else None
            self.problems.append(f"</{tag}> at {self.getpos()} closes nothing open: the "
                                 f"innermost open element is {top}")
            # Recover to report once, not once per following tag.
            for i in range(len(self.open) - 1, -1, -1):
                if self.open[i][0] == tag:
                    del self.open[i:]
                    break
        else:
            self.open.pop()


def parse_strict(text: str, where: str = "page") -> Element:
    """The page's DOM (html5lib's ElementTree, no namespaces), or HTMLProblem with the first
    problem found and where; both checks above must pass."""
    try:
        tree: Element = html5lib.HTMLParser(
            tree=html5lib.getTreeBuilder("etree"), strict=True,
            namespaceHTMLElements=False).parse(text)
    except html5lib.html5parser.ParseError as exc:
        raise HTMLProblem(f"{where}: HTML parse error: {exc}") from None
    balance = _Balance()
    balance.feed(text)
    balance.close()
    problems = balance.problems + [f"<{tag}> opened at {pos} is never closed"
                                   for tag, pos in balance.open]
    if problems:
        raise HTMLProblem(f"{where}: " + "; ".join(problems[:5]))
    return tree


def texts(tree: Element) -> str:
    """Every text of the page, as a reader sees it (for asserting what it says)."""
    return " ".join(" ".join(t.split()) for t in tree.itertext() if t.strip())
