"""One run of a flow: its steps in order, each through its own kind's runner (found in the
registry by the step's key: nothing here knows a kind), values carried from one to the
next.

For each step:

1. its values are filled into its section (:mod:`.fill`); an ``always`` step that uses a
   value no earlier step extracted is skipped, and says so;
2. it runs as a probe of its kind, bounded by its own ``timeout`` and, unless it is an
   ``always`` step, by what is left of the probe's timeout; an always step gets its own
   bounded time after it (``FlowSpec.overrun``);
3. its runner hands each answer over as it arrives (``ProbeContext.on_answer``): values
   are extracted then, before the answer is judged, and a secret one is registered with
   the redactor at once, so that the step's own evidence is redacted too;
4. what it did is judged for the flow (:mod:`.judge`): a value that cannot be extracted,
   a refusal it expected.

After the first failing step only the ``always`` steps run. The run's Result is the
failing step's (its evidence, with ``step NAME`` in the detail and the step's name in
``Result.step``), every step's record beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from monitor.config import FlowSpec, FlowStepBase, Probe, ProbeSpec, Timing
from monitor.config.references import refs, strings
from monitor.keep import EMPTY, Keeper, ours
from monitor.limits import TRANSCRIPT_BYTES
from monitor.outcomes import Outcome
from monitor.probes import kinds as registry  # the registry imports this kind: read late
from monitor.probes.answer import Answer
from monitor.probes.context import ProbeContext
from monitor.probes.flow.extract import Extraction, Value
from monitor.probes.flow.fill import FillError, fill
from monitor.probes.flow.judge import GOES_ON, flow_verdict, step_verdict
from monitor.result import (
    EventTiming,
    Evidence,
    Result,
    StepResult,
    StepTiming,
)
from monitor.targets import target_of

# A step's runner keeps its own deadline; this only catches one that does not.
STEP_GRACE = 0.5


def _spec(probe: Probe) -> FlowSpec:
    spec = probe.spec.kind_spec
    assert isinstance(spec, FlowSpec), "run_flow needs a flow probe"
    return spec


def _uses(step: FlowStepBase) -> list[tuple[str, str]]:
    """The (step, value) pairs a step's section refers to, in order."""
    out: list[tuple[str, str]] = []
    for _, text in _model_strings(step.section):
        out += [(r.step, r.name) for r in refs(text) if r.step and r.name]
    return list(dict.fromkeys(out))


def _model_strings(obj: Any) -> Iterable[tuple[Any, str]]:
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _model_strings(getattr(obj, name))
    else:
        yield from strings(obj)


class _Steps:
    """What the run has gathered so far."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Value] = {}
        self.records: list[StepResult] = []
        self.timings: list[StepTiming] = []
        self.events: list[EventTiming] = []
        self.results: dict[int, Result] = {}  # by step index: the steps that ran


async def run_flow(probe: Probe, ctx: ProbeContext) -> Result:
    """Run a flow. Never raises (cancellation aside); returns within the probe's timeout
    plus the always steps' own time."""
    spec = _spec(probe)
    started_at = time.time()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    deadline = t0 + probe.timeout
    seen = _Steps()
    failed: str | None = None  # the first failing step's name
    for index, step in enumerate(spec.steps):
        if failed is not None and not step.always:
            seen.records.append(StepResult(index, step.name, step.kind, None,
                                           evidence=Evidence(ours(f"not run: step {failed} "
                                                                  "failed"))))
            continue
        missing = [(s, n) for s, n in _uses(step) if (s, n) not in seen.values]
        if missing:  # only an always step after a failure gets here (check sees to it)
            s, n = missing[0]
            seen.records.append(StepResult(
                index, step.name, step.kind, None, always=step.always,
                evidence=Evidence(ours(f"skipped: it uses ${{steps.{s}.{n}}}, which step "
                                       f"{s} never extracted"))))
            continue
        if step.always:
            bound = step.own_timeout or 0.0
        else:
            bound = deadline - loop.time()
            if step.timeout is not None:
                bound = min(bound, step.timeout)
        record = await _run_step(probe, ctx, index, step, bound, seen)
        seen.records.append(record)
        if not step.always and record.outcome not in GOES_ON:
            failed = step.name
    return _result(probe, ctx, spec, seen, started_at, loop.time() - t0)


async def _run_step(probe: Probe, ctx: ProbeContext, index: int, step: FlowStepBase,
                    bound: float, seen: _Steps) -> StepResult:
    kind = registry.KINDS[step.kind]
    start = time.perf_counter()
    extraction = Extraction(step.extract)
    redactor = ctx.redactor

    def on_answer(answer: Answer) -> None:
        for name, value in extraction.feed(answer).items():
            if value.secret:
                # Redacted from now on, in this step's own evidence too; the last few of
                # each value are kept (a new one every run).
                redactor.add_token(f"{probe.key}/{step.name}.{name}", value.text)

    if bound <= 0:
        result = None
        outcome, detail = Outcome.TIMEOUT, "no time left of the probe timeout " \
                                           f"({probe.timeout:g}s)"
    else:
        try:
            section = fill(step.section, type(step.section).REFERENCE_PLACES, seen.values)
        except FillError as exc:
            result = None
            outcome, detail = Outcome.ASSERTION_FAILED, str(exc)
        else:
            step_probe = _step_probe(probe, step, section, bound)
            try:
                async with asyncio.timeout(bound + STEP_GRACE):
                    result = await kind.runner(step_probe, replace(ctx, on_answer=on_answer))
            except TimeoutError:
                result = None
                outcome, detail = Outcome.TIMEOUT, f"no result within {bound:g}s"
            else:
                outcome, detail = result.outcome, result.evidence.detail
    took = time.perf_counter() - start
    for name, value in extraction.values.items():
        seen.values[(step.name, name)] = value
    status = result.status_code if result is not None else None
    close = result.close_code if result is not None else None
    verdict = step_verdict(outcome, detail, status=status, close=close,
                           missing=extraction.missing(), expect_rejected=step.expect_rejected,
                           refused_with=step.refused_with)
    base = result.evidence if result is not None else Evidence()
    keep = Keeper(redactor)
    hint = "; ".join(h for h in (verdict.hint, base.hint) if h) or None
    evidence = replace(base, detail=keep.words(verdict.detail),
                       hint=keep.optional_words(hint))
    seen.timings.append(StepTiming(index, step.name, took))
    if result is not None:
        seen.results[index] = result
        seen.events += [replace(e, step=f"{step.name}/{e.step}") for e in result.events]
    return StepResult(index, step.name, step.kind, verdict.outcome, took, step.always,
                      status, close, evidence, tuple(extraction.values))


def _step_probe(probe: Probe, step: FlowStepBase, section: Any, bound: float) -> Probe:
    """The probe a step runs as: the flow's name, the step's kind and section, its bound
    as the timeout, the flow's auth only when the step uses it."""
    spec = ProbeSpec.model_construct(name=probe.name, labels=probe.spec.labels,
                                     **{step.kind: section})
    uses_auth = section.auth_ref is not None
    return replace(probe, spec=spec,
                   timing=Timing(probe.interval, bound),
                   auth=probe.auth if uses_auth else None,
                   auth_name=probe.auth_name if uses_auth else None, variant=None)


def _result(probe: Probe, ctx: ProbeContext, spec: FlowSpec, seen: _Steps,
            started_at: float, duration: float) -> Result:
    keep = Keeper(ctx.redactor)
    records = [_kept_again(r, keep) for r in seen.records]
    verdict = flow_verdict(records)
    step_result = seen.results.get(verdict.step) if verdict.step is not None else None
    decisive = records[verdict.step] if verdict.step is not None else None
    expiries = [r.cert_expiry for r in seen.results.values() if r.cert_expiry is not None]
    if decisive is not None:
        evidence = replace(decisive.evidence, detail=keep.words(verdict.detail),
                           step=decisive.index, step_name=decisive.name)
    else:
        evidence = Evidence(detail=keep.words(verdict.detail))
    transcript = step_result.transcript if step_result is not None else ()
    # What failed is what the incidents group and the span names: the failing step's URL.
    target = step_result.target if step_result is not None else target_of(spec.target_url)
    return Result(
        probe=probe.name, type=probe.type, target=target,
        outcome=verdict.outcome, started_at=started_at, duration_seconds=duration,
        status_code=decisive.status_code if decisive is not None else None,
        close_code=decisive.close_code if decisive is not None else None,
        phases=(("steps", duration),), steps=tuple(seen.timings),
        cert_expiry=min(expiries) if expiries else None,
        evidence=evidence, trace_id=ctx.trace_id, span_id=ctx.span_id,
        events=tuple(seen.events),
        transcript=tuple(replace(f, data=keep.excerpt(f.data, TRANSCRIPT_BYTES) or EMPTY)
                         for f in transcript),
        transcript_omitted=step_result.transcript_omitted if step_result is not None else 0,
        step=decisive.name if decisive is not None else None,
        step_results=tuple(records))


def _kept_again(record: StepResult, keep: Keeper) -> StepResult:
    """A step's record kept again with every secret the run learned, later steps' included
    (a value may show in an answer before the step that extracts it). What was kept once is
    within its bounds already: keeping it again only redacts."""
    ev = record.evidence
    headers, _ = keep.headers(ev.headers)
    return replace(record, evidence=replace(
        ev, detail=keep.words(ev.detail), body_excerpt=keep.excerpt(ev.body_excerpt),
        last_message=keep.excerpt(ev.last_message), close_reason=keep.text(ev.close_reason),
        headers=headers, hint=keep.optional_words(ev.hint)))


__all__ = ["run_flow"]
