"""A flow's decisions (issue 23), table-tested: a step's run judged for the flow (values it
could not extract, a refusal it expected) and the one outcome of the run (the first failing
step's; always steps are evidence; slow only when nothing failed otherwise)."""

from __future__ import annotations

import pytest

from monitor.outcomes import Outcome
from monitor.probes.flow.judge import flow_verdict, step_verdict
from monitor.result import Evidence, StepResult

Oc = Outcome
REFUSED = (401, 403, 1008)


@pytest.mark.parametrize(("outcome", "status", "close", "missing", "rejected", "expected"), [
    (Oc.SUCCESS, 200, None, (), False, (Oc.SUCCESS, "d")),
    (Oc.UNEXPECTED_STATUS, 500, None, (), False, (Oc.UNEXPECTED_STATUS, "d")),
    # A value that cannot be extracted fails a step that passed otherwise ...
    (Oc.SUCCESS, 200, None, [("token", "the JSON has no access_token")], False,
     (Oc.ASSERTION_FAILED, "could not extract token: the JSON has no access_token")),
    (Oc.SLOW, 200, None, [("a", "x"), ("b", "y")], False,
     (Oc.ASSERTION_FAILED, "could not extract a: x; b: y")),
    # ... and not one that failed for a reason of its own.
    (Oc.UNEXPECTED_STATUS, 401, None, [("token", "x")], False, (Oc.UNEXPECTED_STATUS, "d")),
    # A refusal expected: a status or close code in refused_with passes ...
    (Oc.UNEXPECTED_STATUS, 403, None, (), True, (Oc.SUCCESS, "refused as expected: HTTP 403")),
    (Oc.HANDSHAKE_REJECTED, 401, None, (), True, (Oc.SUCCESS, "refused as expected: HTTP 401")),
    (Oc.AUTH_REJECTED, 101, 1008, (), True, (Oc.SUCCESS, "refused as expected: close 1008")),
    (Oc.CLOSED_BY_SERVER, 101, 1008, [("v", "x")], True,
     (Oc.SUCCESS, "refused as expected: close 1008")),
    # ... getting through is auth_not_enforced ...
    (Oc.SUCCESS, 200, None, (), True,
     (Oc.AUTH_NOT_ENFORCED, "got through where a refusal (401, 403, 1008) was expected: d")),
    (Oc.SLOW, 101, None, (), True,
     (Oc.AUTH_NOT_ENFORCED, "got through where a refusal (401, 403, 1008) was expected: d")),
    # ... anything else keeps its own outcome (a 404 is not a refusal).
    (Oc.UNEXPECTED_STATUS, 404, None, (), True, (Oc.UNEXPECTED_STATUS, "d")),
    (Oc.CLOSED_BY_SERVER, 101, 1000, (), True, (Oc.CLOSED_BY_SERVER, "d")),
    (Oc.TOKEN_REFLECTED, 200, None, (), True, (Oc.TOKEN_REFLECTED, "d")),
])
def test_a_step_judged_for_the_flow(outcome: Outcome, status: int | None, close: int | None,
                                    missing: list[tuple[str, str]], rejected: bool,
                                    expected: tuple[Outcome, str]) -> None:
    got = step_verdict(outcome, "d", status=status, close=close, missing=missing,
                       expect_rejected=rejected, refused_with=REFUSED)
    assert (got.outcome, got.detail) == expected
    if rejected and status == 404:
        assert got.hint is not None and "nothing is routed" in got.hint


def step(i: int, name: str, outcome: Outcome | None, detail: str = "ok",
         always: bool = False) -> StepResult:
    return StepResult(i, name, "http", outcome, always=always, evidence=Evidence(detail))


@pytest.mark.parametrize(("steps", "expected"), [
    ([step(0, "a", Oc.SUCCESS), step(1, "b", Oc.SUCCESS)], (Oc.SUCCESS, "2 steps passed", None)),
    ([step(0, "a", Oc.SUCCESS), step(1, "b", Oc.UNEXPECTED_STATUS, "HTTP 500"),
      step(2, "c", None, "not run: step b failed")],
     (Oc.UNEXPECTED_STATUS, "step b: HTTP 500", 1)),
    # The first failing step's outcome, not a later one's (nothing later runs, but an
    # always step may fail too: evidence, in the detail).
    ([step(0, "a", Oc.MESSAGE_TIMEOUT, "late"),
      step(1, "clean", Oc.UNEXPECTED_STATUS, "HTTP 500", always=True)],
     (Oc.MESSAGE_TIMEOUT, "step a: late; always step clean failed (unexpected_status): "
                         "HTTP 500", 0)),
    ([step(0, "a", Oc.SUCCESS),
      step(1, "clean", None, "skipped: it uses ${steps.t.id}, which step t never extracted",
           always=True)],
     (Oc.SUCCESS, "1 step passed; always step clean skipped: it uses ${steps.t.id}, which "
                 "step t never extracted", None)),
    # A slow step does not hide a later failure, and is the outcome only when none came.
    ([step(0, "a", Oc.SLOW, "over budget"), step(1, "b", Oc.ASSERTION_FAILED, "no id")],
     (Oc.ASSERTION_FAILED, "step b: no id", 1)),
    ([step(0, "a", Oc.SLOW, "over budget"), step(1, "b", Oc.SUCCESS)],
     (Oc.SLOW, "step a: over budget", 0)),
    # An always step passing says nothing; one failing is never the outcome.
    ([step(0, "clean", Oc.CONNECT_REFUSED, "refused", always=True), step(1, "b", Oc.SUCCESS)],
     (Oc.SUCCESS, "1 step passed; always step clean failed (connect_refused): refused", None)),
])
def test_one_run_one_outcome(steps: list[StepResult],
                             expected: tuple[Outcome, str, int | None]) -> None:
    got = flow_verdict(steps)
    assert (got.outcome, got.detail, got.step) == expected
