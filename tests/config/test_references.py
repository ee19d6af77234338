"""``${steps.STEP.NAME}`` (issue 23): the grammar, and the reference check of ``check``
table-tested on plain steps: an unknown step or value, a value used before (or by) the step
that extracts it, a step name used twice, a malformed reference, one where it would be sent
as written."""

from __future__ import annotations

import pytest

from monitor.config.errors import Path_
from monitor.config.references import (
    StepRefs,
    matches,
    reference_problems,
    refs,
    step_name_problem,
    strings,
    substitute,
    whole_ref,
)

PLACES = ("url", "headers.*", "json_body.**", "body")


def step(index: int, name: str | None, values: tuple[str, ...] = (),
         **section: object) -> StepRefs:
    return StepRefs(index, name, values, tuple(strings(section, ("http",))),
                    tuple(f"http.{p}" for p in PLACES))


def test_references_are_read_and_filled_in() -> None:
    text = "Bearer ${steps.login.token} for ${steps.t-1.id_2} ${steps.bad} ${STAGING_URL}"
    found = refs(text)
    assert [(r.step, r.name) for r in found] == [("login", "token"), ("t-1", "id_2"),
                                                 (None, None)]
    assert substitute(text, lambda s, n: f"<{s}:{n}>") == \
        "Bearer <login:token> for <t-1:id_2> ${steps.bad} ${STAGING_URL}"
    assert whole_ref("${steps.a.b}") is not None
    assert whole_ref(" ${steps.a.b}") is None and whole_ref("${steps.a}") is None
    assert step_name_problem("login") is None and step_name_problem("read-back_2") is None
    assert step_name_problem("log.in") is not None and step_name_problem("") is not None


@pytest.mark.parametrize(("path", "pattern", "expected"), [
    (("url",), "url", True), (("url", 0), "url", False), (("headers", "A"), "headers.*", True),
    (("headers",), "headers.*", False), (("json_body", "a", 0, "b"), "json_body.**", True),
    (("steps", 2, "send", "json", "x"), "steps.*.send.**", True),
    (("steps", 2, "expect", "regex"), "steps.*.send.**", False),
])
def test_places_are_patterns_of_paths(path: Path_, pattern: str, expected: bool) -> None:
    assert matches(path, pattern) is expected


GOOD = [step(0, "login", ("token",), url="http://h/auth/login"),
        step(1, "thread", ("thread_id",), url="http://h/api/threads",
             headers={"Authorization": "Bearer ${steps.login.token}"}),
        step(2, "read", (), url="http://h/api/threads/${steps.thread.thread_id}",
             json_body={"a": ["${steps.thread.thread_id}", "${steps.login.token}"]}),
        step(3, "cleanup", (), url="http://h/api/threads/${steps.thread.thread_id}",
             body="${steps.login.token}")]


def test_a_good_flow_has_no_problems() -> None:
    assert reference_problems(GOOD) == []


@pytest.mark.parametrize(("steps", "problems"), [
    ([*GOOD[:3], step(3, "login", (), url="http://h/")],
     [((3, "name"), "step name 'login' is used twice (first by flow[0])")]),
    ([GOOD[0], step(1, "t", (), url="http://h/${steps.logn.token}")],
     [((1, "http", "url"), "${steps.logn.token} names no step 'logn'; did you mean 'login'?")]),
    ([GOOD[0], step(1, "t", (), url="http://h/${steps.zzz.token}")],
     [((1, "http", "url"), "${steps.zzz.token} names no step 'zzz' (steps: login, t)")]),
    ([GOOD[0], step(1, "t", (), headers={"A": "${steps.login.tokn}"})],
     [((1, "http", "headers", "A"),
       "${steps.login.tokn}: step 'login' extracts no 'tokn'; did you mean 'token'?")]),
    ([GOOD[0], step(1, "t", (), headers={"A": "${steps.login.id}"})],
     [((1, "http", "headers", "A"),
       "${steps.login.id}: step 'login' extracts no 'id' (it extracts: token)")]),
    ([step(0, "t", (), url="http://h/${steps.login.token}"),
      step(1, "login", ("token",), url="http://h/")],
     [((0, "http", "url"), "${steps.login.token} is used before step 'login' (flow[1]) "
                           "runs: a value can be used only by the steps after the one that "
                           "extracts it")]),
    ([step(0, "login", ("token",), body="${steps.login.token}")],
     [((0, "http", "body"), "${steps.login.token} is used by the step itself: a value can be "
                            "used only by the steps after the one that extracts it")]),
    ([GOOD[0], step(1, "t", (), url="http://h/${steps.login}")],
     [((1, "http", "url"), "${steps.login} must be ${steps.STEP.NAME} (a step's name, a dot, "
                           "a value's name)")]),
    ([GOOD[0], step(1, "t", (), expect={"body_regex": "${steps.login.token}"})],
     [((1, "http", "expect", "body_regex"),
       "${steps.STEP.NAME} is filled in only in http.url, http.headers, http.json_body, "
       "http.body; here it would be sent as written")]),
])
def test_each_problem_at_its_path(steps: list[StepRefs], problems: list[object]) -> None:
    assert reference_problems(steps) == problems


def test_every_problem_of_a_flow_in_one_run() -> None:
    steps = [step(0, "a", ("v",), url="http://h/${steps.b.v}"),
             step(1, "b", ("v",), url="http://h/${steps.a.w}/${steps.c.v}"),
             step(2, "a", (), url="http://h/"), step(3, None, (), url="http://h/${steps.a.v}")]
    paths = [p for p, _ in reference_problems(steps)]
    assert paths == [(2, "name"), (0, "http", "url"), (1, "http", "url"), (1, "http", "url")]
