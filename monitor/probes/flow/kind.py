"""The ``flow`` kind as the rest of synthmon sees it: its runner, its one phase (the steps,
each with a span and a duration series of its own), its span attributes and how a run's
steps are put in words."""

from __future__ import annotations

from monitor.probes.flow.run import run_flow
from monitor.probes.kind import LabelledGauge, ProbeKind, SpanValue, Wording
from monitor.result import Result

PHASES = ("steps",)


def steps_words(r: Result) -> str | None:
    """Each step in one phrase: ``login 200 · thread 201 · chat 101 close 1008 · cleanup
    skipped``."""
    if not r.step_results:
        return None
    parts = []
    for s in r.step_results:
        if s.outcome is None:
            said = "not run" if s.evidence.detail.startswith("not run") else "skipped"
        else:
            answer = " ".join(p for p in (
                str(s.status_code) if s.status_code is not None else "",
                f"close {s.close_code}" if s.close_code is not None else "") if p)
            said = s.outcome.value if not answer else (
                answer if s.passed else f"{answer} {s.outcome.value}")
        parts.append(f"{s.name} {said}")
    return " · ".join(parts)


def step_success(r: Result) -> list[tuple[str, float]]:
    return [(s.name, 1.0 if s.passed else 0.0) for s in r.step_results]


def failed_step(r: Result) -> list[tuple[str, float]]:
    return [(s.name, 1.0 if s.name == r.step else 0.0) for s in r.step_results]


STEP_SUCCESS = LabelledGauge(
    "probe_flow_step_success", "1 if the step passed in the last run of a flow, 0 if it "
    "failed or did not run", "step", step_success)
FAILED_STEP = LabelledGauge(
    "probe_flow_failed_step", "1 for the step whose failure is the outcome of the last run "
    "of a flow, 0 for its other steps", "step", failed_step)


def span_attributes(r: Result) -> dict[str, SpanValue]:
    attrs: dict[str, SpanValue] = {"synthmon.flow.steps": len(r.step_results)}
    if r.step is not None:
        attrs["synthmon.flow.failed_step"] = r.step
    return attrs


KIND = ProbeKind(
    name="flow",
    runner=run_flow,
    phases=PHASES,
    gauges=(STEP_SUCCESS, FAILED_STEP),
    span_attributes=span_attributes,
    words=Wording("flow", "steps", steps_words),
)

__all__ = ["FAILED_STEP", "KIND", "PHASES", "STEP_SUCCESS", "span_attributes", "steps_words"]
