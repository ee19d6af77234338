"""The redirect verdict's decisions, without sockets: where a chain loops, what its detail
and hint say, and how a Location is kept as evidence."""

from __future__ import annotations

import pytest

from monitor.probes.redirects import Hop, evidence, loop_of, shown_location, too_many
from monitor.redact import REDACTED, Redactor
from monitor.result import LOCATION_CHARS, Redirect

BASE = "http://127.0.0.1:8000"


def chain(*paths: str, status: int = 302) -> list[Hop]:
    """Hops answered at ``paths`` in turn, each pointing at the next (the last at the
    first)."""
    return [Hop(url=f"{BASE}{p}", status=status, location=paths[(i + 1) % len(paths)])
            for i, p in enumerate(paths)]


@pytest.mark.parametrize(("paths", "loop"), [
    (["/a", "/a"], (0, 1)),
    (["/a", "/b", "/a"], (0, 2)),
    (["/x", "/a", "/b", "/c", "/a"], (1, 3)),
    (["/1", "/2", "/3"], None),
    ([], None),
    (["/a?x=1", "/a?x=2"], None),  # the query makes it another URL
])
def test_loop_of(paths: list[str], loop: tuple[int, int] | None) -> None:
    assert loop_of(chain(*paths) if paths else []) == loop


def test_too_many_names_a_loop_by_its_url_without_query() -> None:
    hops = [Hop(f"{BASE}/login?next=%2F", 302, "/sso"), Hop(f"{BASE}/sso", 302, "/login?next=%2F"),
            Hop(f"{BASE}/login?next=%2F", 302, "/sso")]
    detail, hint = too_many(hops, 2)
    assert detail == ("HTTP 302 after 2 redirects followed (max_redirects: 2): the chain did "
                      "not end")
    assert hint.startswith(f"A redirect loop: {BASE}/login comes back to itself after 2 "
                           "redirects.")
    assert "next=" not in hint  # a query may carry anything; the evidence has the Locations


def test_too_many_on_a_self_redirect() -> None:
    _, hint = too_many(chain("/a", "/a", "/a"), 2)
    assert hint.startswith(f"A redirect loop: {BASE}/a redirects to itself.")


def test_too_many_without_a_loop_says_how_to_allow_a_longer_chain() -> None:
    detail, hint = too_many(chain(*(f"/{i}" for i in range(4)), status=301), 3)
    assert detail.startswith("HTTP 301 after 3 redirects followed")
    assert hint.startswith("No URL answered twice: each of the 4 redirects went somewhere new")
    assert "raise max_redirects (at most 20)" in hint


def test_too_many_hides_credentials_in_the_url() -> None:
    hops = [Hop("http://u:pw@h.test/a", 302, "/a"), Hop("http://u:pw@h.test/a", 302, "/a")]
    _, hint = too_many(hops, 1)
    assert "pw" not in hint and "http://h.test/a" in hint


@pytest.mark.parametrize(("location", "shown"), [
    ("/next", "/next"),
    (None, "(no Location)"),
    ("https://sso.test/cb?code=tok-123456", f"https://sso.test/cb?code={REDACTED}"),
    ("http://user:pw@h.test/x", f"http://user:{REDACTED}@h.test/x"),
    ("http://user@h.test/x", "http://user@h.test/x"),  # no password to hide
    ("/a?n=1&e=\x1b[31m\x00", "/a?n=1&e=␛[31m␀"),
    ("/" + "x" * 1000, "/" + "x" * (LOCATION_CHARS - 2) + "…"),
    ("/" + "x" * (LOCATION_CHARS - 1), "/" + "x" * (LOCATION_CHARS - 1)),
])
def test_shown_location(location: str | None, shown: str) -> None:
    assert shown_location(location, Redactor(["tok-123456"])) == shown
    assert len(shown) <= LOCATION_CHARS


def test_evidence_keeps_every_hop_in_order() -> None:
    hops = chain("/a", "/b", "/c")
    assert evidence(hops, Redactor()) == (Redirect(302, "/b"), Redirect(302, "/c"),
                                          Redirect(302, "/a"))
