"""A probe (exactly one kind: http, websocket, ...), the defaults, and the whole file, from
which the JSON Schema that editors use is generated."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitor.config.fields import MAX_RETRIES, RETRY_BUDGET_WORDS, Duration, Retries
from monitor.config.schema.auth import AuthSpec
from monitor.config.schema.base import LABELS, Model, check_tracestate, one_of
from monitor.config.schema.flow import FlowSpec
from monitor.config.schema.http import HttpSpec
from monitor.config.schema.kind import KindSpec
from monitor.config.schema.sse import SseSpec
from monitor.config.schema.websocket import WebSocketSpec


def _kinds_one_of(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    schema.update(one_of(*kinds_of(cls)))


class ProbeSpec(Model):
    """One probe: exactly one kind (http, websocket, ...)."""

    model_config = ConfigDict(json_schema_extra=_kinds_one_of)

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                      description="unique; the probe label of every series",
                      json_schema_extra={"not": {"enum": [".", ".."]}})
    interval: Duration | None = Field(None, description="overrides defaults.interval")
    timeout: Duration | None = Field(None, description="overrides defaults.timeout")
    retries: Retries | None = Field(None, description="overrides defaults.retries")
    retry_delay: Duration | None = Field(None, description="overrides defaults.retry_delay")
    labels: dict[str, str] = Field(
        default_factory=dict, description="static labels on this probe's series, on top of "
        "defaults.labels", json_schema_extra=LABELS)
    trace: bool | None = Field(
        None, description="send W3C trace context (traceparent) on every request of a run; "
        "overrides defaults.trace")
    tracestate: str | None = Field(
        None, description="the tracestate header sent beside traceparent; overrides "
        "defaults.tracestate")
    # The probe kinds: a key each and its spec model (monitor/config/schema/<key>.py).
    # This is where a kind is registered; its package, monitor/probes/<key>/, is found by
    # the key (monitor.probes.kinds).
    http: HttpSpec | None = None
    websocket: WebSocketSpec | None = None
    sse: SseSpec | None = None
    flow: FlowSpec | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # The name is a path segment of the status page (/probe/NAME): "." and ".." would
        # be read as the page's own folder and its parent, and no spelling escapes that.
        if v in (".", ".."):
            raise ValueError(f"{v!r} is not a usable probe name (a URL path segment)")
        return v

    @field_validator("tracestate")
    @classmethod
    def _tracestate(cls, v: str | None) -> str | None:
        return check_tracestate(v)

    @model_validator(mode="after")
    def _one_kind(self) -> ProbeSpec:
        problem = one_kind_problem({k for k in PROBE_KINDS if getattr(self, k) is not None})
        if problem:
            raise ValueError(problem)
        return self

    @property
    def kind_spec(self) -> KindSpec:
        """The section of the probe's kind (the one that is set)."""
        for key in PROBE_KINDS:
            spec = getattr(self, key)
            if spec is not None:
                assert isinstance(spec, KindSpec)
                return spec
        raise AssertionError("a validated probe has exactly one kind")

    @property
    def type(self) -> str:
        """The probe's kind: the ``type`` label, and the key of its section."""
        for key in PROBE_KINDS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("a validated probe has exactly one kind")

    @property
    def url(self) -> str:
        return self.kind_spec.target_url


def kinds_of(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys of ``model``'s fields whose type is a kind's spec model, in order."""
    out = []
    for key, info in model.model_fields.items():
        if any(isinstance(t, type) and issubclass(t, KindSpec)
               for t in get_args(info.annotation)):
            out.append(key)
    return tuple(out)


# The probe kinds, in the order they are declared above.
PROBE_KINDS: tuple[str, ...] = kinds_of(ProbeSpec)
KIND_MODELS: dict[str, type[KindSpec]] = {
    key: next(t for t in get_args(ProbeSpec.model_fields[key].annotation)
              if isinstance(t, type) and issubclass(t, KindSpec))
    for key in PROBE_KINDS}


def one_kind_problem(present: set[str]) -> str | None:
    kinds = [k for k in PROBE_KINDS if k in present]
    if len(kinds) == 1:
        return None
    *most, last = PROBE_KINDS
    return f"each probe needs exactly one of {', '.join(most)} or {last}"


class Defaults(Model):
    """Applied to every probe that does not set its own."""

    interval: Duration = Field(60.0, description="how often each probe runs; the starts are "
                               "spread over the interval")
    timeout: Duration = Field(10.0, description="the longest one run may take; shorter than "
                              "the interval")
    retries: Retries = Field(
        1, description="a failed run is tried again up to this many times, retry_delay apart, "
        f"before its failure is exported (0 to {MAX_RETRIES}); {RETRY_BUDGET_WORDS} must be "
        "shorter than the interval")
    retry_delay: Duration = Field(5.0, description="the pause before each retry of a failed run")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="static labels on every probe series",
                                   json_schema_extra=LABELS)
    trace: bool = Field(
        True, description="send W3C trace context on every request (traceparent with the "
        "run's trace id, sampled); the trace id is in the run's result, log event and "
        "exemplars")
    tracestate: str | None = Field(
        None, description="a tracestate header (vendor=value,...) sent beside traceparent")

    @field_validator("tracestate")
    @classmethod
    def _tracestate(cls, v: str | None) -> str | None:
        return check_tracestate(v)


class ProbesFile(Model):
    """The whole probes.yaml."""

    # A file without probes is refused by `check` and `once` (a truncated file must not
    # pass a deploy gate); the daemon only warns, so that a reload may add them.
    model_config = ConfigDict(json_schema_extra={"required": ["probes"]})

    defaults: Defaults = Field(default_factory=Defaults)
    auth: dict[str, AuthSpec] = Field(
        default_factory=dict, description="auth providers by name, for probes' auth: NAME",
        # Inline secrets are for negative probes only, never in a shared provider.
        json_schema_extra={"allOf": [{"additionalProperties": {"not": {"required": ["secret"]}}}]})
    probes: tuple[ProbeSpec, ...] = Field((), json_schema_extra={"minItems": 1})


# Every kind told of the others (a flow's steps are the other kinds), then the models that
# hold them completed.
for _model in KIND_MODELS.values():
    _model.bind_kinds(KIND_MODELS)
ProbeSpec.model_rebuild(force=True)
ProbesFile.model_rebuild(force=True)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of probes.yaml, generated from the models above."""
    schema = ProbesFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "synthmon probes.yaml"
    return schema
