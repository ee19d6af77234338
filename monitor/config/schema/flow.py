"""A ``flow:`` probe: named steps run in order, each one of the other kinds (``http:``,
``websocket:``, ... with the keys of that kind), values carried from one step's answer to
the next step's request (``extract:`` and ``${steps.STEP.NAME}``), as an end-to-end test
does.

The step kinds are the registered kinds that can be a step (:attr:`KindSpec.IN_FLOW`): the
step model is built from them when the kinds are bound (:meth:`FlowSpec.bind_kinds`, called
where kinds are registered), so that a kind added later is a step kind too, and nothing
here names one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from pydantic import (
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from monitor.config.fields import Duration
from monitor.config.references import (
    STEP_NAME,
    Places,
    StepRefs,
    reference_problems,
    strings,
)
from monitor.config.schema.base import Model
from monitor.config.schema.extract import Extract, check_value_names
from monitor.config.schema.kind import KindSpec, Relative
from monitor.config.schema.negative import DEFAULT_REFUSED_WITH, Negative, check_refused_with

MAX_STEPS: Final = 20
# An always step's own time when it sets no timeout: a cleanup is one short request.
ALWAYS_TIMEOUT: Final = 5.0
# A negative probe's keys are not a step's: a step checks a refusal with the step's own
# expect_rejected and refused_with, and a flow cannot run variants.
_NEGATIVE_KEYS: Final = tuple(Negative.model_fields)
VARIANTS_REFUSED: Final = (
    "a flow cannot run variants: each variant is its own run of one request or connection "
    "with a credential derived from the probe's auth provider, while a flow carries the "
    "credentials its steps extract from one step to the next; check a refusal inside the "
    "flow with expect_rejected on a step, or run the variants as a probe of their own")


class FlowStepBase(Model):
    """What every step has besides its kind's section."""

    name: str = Field(pattern=STEP_NAME, description="unique in the flow; ${steps.NAME.VALUE}, "
                      "the step label of its metrics and span")
    always: bool = Field(
        False, description="runs after a failure too (cleanup): its failure is evidence, "
        "never the run's outcome; skipped when a value it uses was never extracted")
    timeout: Duration | None = Field(
        None, description="the step's own bound; a step that is not always is also bounded "
        f"by what is left of the probe's timeout; an always step gets {ALWAYS_TIMEOUT:g}s "
        "after it unless it sets one")
    extract: dict[str, Extract] = Field(
        default_factory=dict, description="values taken from the answer for later steps "
        "(${steps.STEP.NAME}), before its expectations are judged")
    expect_rejected: bool = Field(
        False, description="a negative check: the step passes when the target refuses it "
        "(an HTTP status or a close code in refused_with), and fails with "
        "auth_not_enforced when it gets through")
    refused_with: tuple[int, ...] = Field(
        DEFAULT_REFUSED_WITH, description="with expect_rejected: what counts as refused, HTTP "
        "statuses and close codes")

    @field_validator("extract")
    @classmethod
    def _names(cls, v: dict[str, Extract]) -> dict[str, Extract]:
        return check_value_names(v)

    @field_validator("refused_with")
    @classmethod
    def _codes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return check_refused_with(v)

    # Set on the step model FlowSpec.bind_kinds builds: the step kinds, by key.
    KINDS: ClassVar[Mapping[str, type[KindSpec]]] = {}

    @model_validator(mode="after")
    def _one_kind(self) -> FlowStepBase:
        problem = step_kind_problem(self.KINDS, {k for k in self.KINDS
                                                 if getattr(self, k, None) is not None})
        if problem:
            raise ValueError(problem)
        return self

    @property
    def kind(self) -> str:
        """The key of the step's kind."""
        for key in self.KINDS:
            if getattr(self, key, None) is not None:
                return key
        raise AssertionError("a validated step has exactly one kind")

    @property
    def section(self) -> KindSpec:
        section = getattr(self, self.kind)
        assert isinstance(section, KindSpec)
        return section

    @property
    def own_timeout(self) -> float | None:
        """The step's bound of its own (an always step's default included)."""
        return self.timeout if self.timeout is not None or not self.always else ALWAYS_TIMEOUT


def step_kind_problem(kinds: Mapping[str, Any], present: set[str]) -> str | None:
    if len(present) == 1:
        return None
    *most, last = kinds or ("a kind",)
    return (f"each step needs exactly one of {', '.join(most)} or {last}" if most
            else f"each step needs {last}")


if TYPE_CHECKING:
    FlowStep = FlowStepBase  # at run time, the model FlowSpec.bind_kinds builds


class FlowSpec(KindSpec):
    """A flow: its steps, in order."""

    IN_FLOW: ClassVar[bool] = False
    CHECKED_KEYS: ClassVar[tuple[str, ...]] = ("steps",)
    STEP_KINDS: ClassVar[Mapping[str, type[KindSpec]]] = {}

    # The length is checked once the steps validated: pydantic's own length check would
    # add "at least 1 item" to a list whose one step has an error.
    steps: tuple[FlowStep, ...] = Field(json_schema_extra={"minItems": 1,
                                                           "maxItems": MAX_STEPS})

    @model_validator(mode="after")
    def _length(self) -> FlowSpec:
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise ValueError(f"must list 1 to {MAX_STEPS} steps")
        return self

    @model_validator(mode="before")
    @classmethod
    def _a_list(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"steps": data}
        if isinstance(data, dict):
            raise ValueError("must be a list of steps (- name: ..., http: ...)")
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # Written as a list: the schema of its steps, not of the model that holds them.
        schema = handler.resolve_ref_schema(handler(core_schema))
        steps = dict(schema["properties"]["steps"])
        steps["description"] = ("steps run in order, each one of the kinds with that kind's "
                                "keys; values carried with extract and ${steps.STEP.NAME}")
        return steps

    @classmethod
    def section_data(cls, raw: Any) -> dict[str, Any] | None:
        return {"steps": raw} if isinstance(raw, list) else None

    @classmethod
    def probe_key_problem(cls, key: str) -> str | None:
        return VARIANTS_REFUSED if key == "variants" else None

    @classmethod
    def bind_kinds(cls, kinds: Mapping[str, type[KindSpec]]) -> None:
        steppable = {k: m for k, m in kinds.items() if m.IN_FLOW}
        fields: dict[str, Any] = {k: (m | None, None) for k, m in steppable.items()}
        step = create_model("FlowStep", __base__=FlowStepBase, **fields)
        step.KINDS = steppable
        cls.STEP_KINDS = steppable
        cls.model_rebuild(force=True, _types_namespace={"FlowStep": step})

    # -- what the rest of the config asks of a kind ------------------------------------

    @property
    def target_url(self) -> str:
        return self.steps[0].section.target_url

    @property
    def request_method(self) -> str:
        return self.steps[0].section.request_method

    @property
    def asked_urls(self) -> tuple[str, ...]:
        return tuple(s.section.target_url for s in self.steps)

    @property
    def step_kinds(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.steps)

    @property
    def auth_ref(self) -> Any:
        """The one auth provider the steps name (the checks refuse two)."""
        return next((s.section.auth_ref for s in self.steps
                     if s.section.auth_ref is not None), None)

    @property
    def auth_path(self) -> tuple[str | int, ...]:
        for j, s in enumerate(self.steps):
            if s.section.auth_ref is not None:
                return (j, s.kind, "auth")
        return ("auth",)

    def overrun(self, timeout: float) -> float:
        """The always steps run after the probe's timeout, each within its own."""
        return sum(s.own_timeout or 0.0 for s in self.steps if s.always)

    def event_keys(self) -> set[tuple[str, str]]:
        return {(f"{s.name}/{step}", event) for s in self.steps
                for step, event in s.section.event_keys()}

    @classmethod
    def key_problems(cls, get: Callable[[str], Any], *, has_auth: bool | None
                     ) -> list[Relative]:
        steps = get("steps")
        if not isinstance(steps, tuple):
            return []  # its own errors are reported; shape_problems checks the plain data
        return _problems([_view(j, s) for j, s in enumerate(steps)])

    @classmethod
    def shape_problems(cls, data: dict[str, Any]) -> list[Relative]:
        steps = data.get("steps")
        views = [_plain_view(j, s, cls.STEP_KINDS)
                 for j, s in enumerate(steps if isinstance(steps, list) else ())]
        return _problems([v for v in views if v is not None])


class _View:
    """One step as the flow's whole-flow checks read it, valid or not."""

    __slots__ = ("auth", "index", "kind", "negative", "refs")

    def __init__(self, index: int, kind: str | None, refs: StepRefs,
                 negative: list[str], auth: Any) -> None:
        self.index, self.kind, self.refs = index, kind, refs
        self.negative, self.auth = negative, auth


def _places(kind: str | None, model: type[KindSpec] | None) -> Places:
    if kind is None or model is None:
        return ()
    return tuple(f"{kind}.{p}" for p in model.REFERENCE_PLACES)


def _model_strings(obj: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...],
                                                                            str]]:
    """Every string of a validated section, at the path it was written at (aliases)."""
    if isinstance(obj, BaseModel):
        for name, info in type(obj).model_fields.items():
            yield from _model_strings(getattr(obj, name), (*path, info.alias or name))
    else:
        yield from strings(obj, path)


def _view(j: int, step: FlowStepBase) -> _View:
    kind = step.kind
    section = step.section
    refs = StepRefs(j, step.name, tuple(step.extract), tuple(_model_strings(section, (kind,))),
                    _places(kind, type(section)))
    negative = [k for k in _NEGATIVE_KEYS if k in section.model_fields_set]
    return _View(j, kind, refs, negative, section.auth_ref)


def _plain_view(j: int, step: Any, kinds: Mapping[str, type[KindSpec]]) -> _View | None:
    if not isinstance(step, dict):
        return None
    present = [k for k in kinds if isinstance(step.get(k), dict)]
    kind = present[0] if len(present) == 1 else None
    section = step[kind] if kind is not None else {}
    name = step.get("name") if isinstance(step.get("name"), str) else None
    extract = step.get("extract")
    values = tuple(k for k in extract if isinstance(k, str)) if isinstance(extract, dict) else ()
    refs = StepRefs(j, name, values, tuple(strings(section, (kind,))) if kind else (),
                    _places(kind, kinds.get(kind) if kind else None))
    negative = [k for k in _NEGATIVE_KEYS if k in section]
    auth = section.get("auth")
    return _View(j, kind, refs, negative, auth if isinstance(auth, str | dict) else None)


def _problems(views: list[_View]) -> list[Relative]:
    out: list[Relative] = list(reference_problems([v.refs for v in views]))
    first_auth: tuple[int, Any] | None = None
    for v in views:
        for key in v.negative:
            at = (v.index, v.kind or "", key)
            out.append((at, VARIANTS_REFUSED if key == "variants" else
                        f"{key} is a negative probe's key: in a flow, write expect_rejected "
                        "(and refused_with) beside the step's kind, not in it"))
        if v.auth is None:
            continue
        if first_auth is None:
            first_auth = (v.index, v.auth)
        elif v.auth != first_auth[1]:
            out.append(((v.index, v.kind or "", "auth"),
                        f"the steps of a flow use one auth provider, and flow[{first_auth[0]}] "
                        "uses another: carry other credentials with extract and "
                        "${steps.STEP.NAME} in headers"))
    return out


__all__ = ["ALWAYS_TIMEOUT", "MAX_STEPS", "VARIANTS_REFUSED", "FlowSpec", "FlowStepBase",
           "step_kind_problem"]
