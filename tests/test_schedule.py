"""The order `make test` hands files to its workers (tests/support/schedule.py): longest
first, each file whole and in its own order, and the table naming only files that exist."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.support.schedule import SECONDS, file_of, longest_first
from tests.support.servers import ROOT


@dataclass(frozen=True)
class Node:
    nodeid: str


def test_every_long_file_named_exists() -> None:
    """A renamed or split file would otherwise lose its place and start last."""
    missing = [name for name in SECONDS if not (ROOT / name).is_file()]
    assert missing == []


def test_longest_first_then_most_tests_each_file_in_its_order() -> None:
    short = "tests/test_short.py"
    many = "tests/test_many.py"
    long_, longer = sorted(SECONDS, key=SECONDS.__getitem__)[-2:]
    items = [Node(f"{short}::a"), Node(f"{long_}::x[1]"), Node(f"{many}::m1"),
             Node(f"{longer}::only"), Node(f"{long_}::x[2]"), Node(f"{many}::m2"),
             Node(f"{short}::b"), Node(f"{many}::m3")]
    assert [n.nodeid for n in longest_first(items)] == [
        f"{longer}::only", f"{long_}::x[1]", f"{long_}::x[2]",
        f"{many}::m1", f"{many}::m2", f"{many}::m3", f"{short}::a", f"{short}::b"]
    assert longest_first([]) == []


def test_this_session_runs_in_that_order(request: pytest.FixtureRequest) -> None:
    """The hook of tests/conftest.py ordered this very session (no later hook undid it)."""
    items = request.session.items
    assert [i.nodeid for i in items] == [i.nodeid for i in longest_first(items)]
    files = [file_of(i.nodeid) for i in items]
    runs = [f for i, f in enumerate(files) if i == 0 or files[i - 1] != f]
    assert len(runs) == len(set(files)), "a file's tests are not together"


def test_make_test_keeps_the_collected_order() -> None:
    """Without --no-loadscope-reorder xdist hands files out most tests first, whatever the
    collected order."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    args = re.search(r"^PYTEST_ARGS = (.*)$", makefile, re.M)
    assert args and "--dist loadfile --no-loadscope-reorder" in args.group(1)
