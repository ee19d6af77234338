"""A flow's decisions, pure and table-tested: what a step's run means for the flow (a value
it could not extract, a refusal it expected), and the one outcome of the whole run.

- A step whose values cannot all be extracted fails with ``assertion_failed``, unless it
  failed already for a reason of its own (which stays its outcome).
- A step with ``expect_rejected`` passes when the target refused it: an HTTP status or a
  close code in ``refused_with``. When it got through, the step ends in
  ``auth_not_enforced``; any other answer keeps the step's own outcome, with a hint that
  the check learned nothing.
- The run's outcome is the first failing step's, ``always`` steps aside (their failure is
  evidence, never the outcome). A ``slow`` step does not stop the flow: the run is ``slow``
  only when no step failed otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.outcomes import Outcome
from monitor.probes.refusal import nothing_learned
from monitor.result import StepResult

# Outcomes after which the flow goes on: everything worked, one budget was exceeded.
GOES_ON = frozenset({Outcome.SUCCESS, Outcome.SLOW})


@dataclass(frozen=True, slots=True)
class StepVerdict:
    outcome: Outcome
    detail: str
    hint: str | None = None


def step_verdict(outcome: Outcome, detail: str, *, status: int | None, close: int | None,
                 missing: Sequence[tuple[str, str]] = (), expect_rejected: bool = False,
                 refused_with: tuple[int, ...] = ()) -> StepVerdict:
    """What a step's run (its kind's ``outcome`` and ``detail``, the answer's ``status``
    and ``close`` code) means in the flow; ``missing`` lists (value, why) of the values it
    could not extract."""
    if expect_rejected:
        codes = ", ".join(str(c) for c in refused_with)
        if close is not None and close in refused_with:
            return StepVerdict(Outcome.SUCCESS, f"refused as expected: close {close}")
        if status is not None and status != 101 and status in refused_with:
            return StepVerdict(Outcome.SUCCESS, f"refused as expected: HTTP {status}")
        if outcome in GOES_ON:
            return StepVerdict(Outcome.AUTH_NOT_ENFORCED,
                               f"got through where a refusal ({codes}) was expected: {detail}")
        if outcome is not Outcome.TOKEN_REFLECTED and status is not None and status != 101:
            return StepVerdict(outcome, detail, nothing_learned(status, upgrade=False)
                               .replace("about auth", "from this negative check"))
        return StepVerdict(outcome, detail)
    if missing and outcome in GOES_ON:
        said = "; ".join(f"{name}: {why}" for name, why in missing)
        return StepVerdict(Outcome.ASSERTION_FAILED, f"could not extract {said}")
    return StepVerdict(outcome, detail)


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    outcome: Outcome
    detail: str
    step: int | None = None  # index of the step whose outcome it is


def flow_verdict(steps: Sequence[StepResult]) -> FlowVerdict:
    """The one outcome of a flow's run, from what each step did."""
    ran = [s for s in steps if not s.always and s.outcome is not None]
    failed = next((s for s in ran if s.outcome not in GOES_ON), None)
    slow = next((s for s in ran if s.outcome is Outcome.SLOW), None)
    decisive = failed or slow
    notes = _always_notes(steps)
    if decisive is not None:
        assert decisive.outcome is not None
        detail = f"step {decisive.name}: {decisive.evidence.detail}"
        return FlowVerdict(decisive.outcome, detail + notes, decisive.index)
    passed = sum(1 for s in steps if not s.always)
    return FlowVerdict(Outcome.SUCCESS, f"{passed} step{'s' * (passed != 1)} passed" + notes)


def _always_notes(steps: Sequence[StepResult]) -> str:
    """What the always steps did, when it is worth saying: failed, or skipped."""
    notes = []
    for s in steps:
        if not s.always or s.outcome is Outcome.SUCCESS:
            continue
        if s.outcome is None:
            notes.append(f"always step {s.name} {s.evidence.detail}")
        else:
            notes.append(f"always step {s.name} failed ({s.outcome.value}): "
                         f"{s.evidence.detail}")
    return "".join(f"; {n}" for n in notes)


__all__ = ["GOES_ON", "FlowVerdict", "StepVerdict", "flow_verdict", "step_verdict"]
