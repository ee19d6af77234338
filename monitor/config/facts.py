"""What the whole-file checks read of one probe (:class:`ProbeFacts`), from a probe that
validated or, piece by piece, from one that did not.

A probe with one bad field (an ``http://`` URL on a websocket probe, a URL emptied by an
unset ``${VAR}``) is not a :class:`~monitor.config.schema.ProbeSpec`, yet its other keys
can still be wrong on their own: an unknown ``auth:`` provider, a missing secret, a timeout
longer than its interval. Each key the checks need is validated alone here, so that
``check`` reports all of them in the same run as the schema error. A key that does not
validate alone is ``UNKNOWN``: its own error is reported by the schema pass, and the checks
that need it are skipped rather than guessed.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, TypeAdapter, ValidationError

from monitor.config.schema import (
    KIND_MODELS,
    PROBE_KINDS,
    JwtAuth,
    KindSpec,
    ProbeSpec,
    TokenEndpointAuth,
)


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN: Final = _Unknown.UNKNOWN  # a key that did not validate on its own

AuthRef = str | JwtAuth | TokenEndpointAuth | None
TIMING_KEYS = ("interval", "timeout", "retries", "retry_delay")


@dataclass(frozen=True)
class ProbeFacts:
    """One probe as the whole-file checks see it."""

    index: int
    spec: ProbeSpec | None  # None: the probe did not validate (its errors are reported)
    kind: str | None  # the probe's kind; None when not exactly one of them
    labels: dict[str, str] | _Unknown
    # The probe's own timing keys (None: not set, the defaults apply).
    timing: dict[str, float | int | _Unknown | None]
    auth: AuthRef | _Unknown
    expect_rejected: bool | _Unknown
    variants: tuple[str, ...] | _Unknown
    # The keys of the kind's section its own whole-file checks read
    # (KindSpec.CHECKED_KEYS), each validated alone: a kind's model judges them
    # (KindSpec.key_problems) without the checks knowing which kind it is.
    section: dict[str, Any]
    auth_path: tuple[str | int, ...] = ("auth",)  # where auth is written in the section

    def section_value(self, key: str) -> Any:
        """The kind's ``key``, or None when it did not validate on its own."""
        value = self.section.get(key)
        return None if value is UNKNOWN else value


def from_spec(index: int, spec: ProbeSpec) -> ProbeFacts:
    kind = spec.kind_spec
    return ProbeFacts(
        index=index, spec=spec, kind=spec.type, labels=dict(spec.labels),
        timing={k: getattr(spec, k) for k in TIMING_KEYS}, auth=kind.auth_ref,
        expect_rejected=getattr(kind, "expect_rejected", False),
        variants=getattr(kind, "variants", ()),
        section={key: getattr(kind, key) for key in kind.CHECKED_KEYS},
        auth_path=kind.auth_path)


def from_data(index: int, item: Any, context: dict[str, Any]) -> ProbeFacts:
    """The facts of a probe that did not validate, each key validated alone."""
    raw = item if isinstance(item, dict) else {}
    present = [k for k in PROBE_KINDS if raw.get(k) is not None]
    body: dict[str, Any] | None = None
    if len(present) == 1:  # a section its model can read (a mapping, or a flow's list)
        body = KIND_MODELS[present[0]].section_data(raw[present[0]])
    kind = present[0] if body is not None else None
    body = body or {}
    timing = {key: _field(ProbeSpec, key, raw, context) for key in TIMING_KEYS}
    model: type[KindSpec] | None = KIND_MODELS[kind] if kind is not None else None

    def of_kind(key: str, absent: Any = UNKNOWN) -> Any:
        if model is None:
            return UNKNOWN
        if key not in model.model_fields:
            return absent  # a key this kind does not have (a negative probe's, say)
        return _field(model, key, body, context)

    return ProbeFacts(
        index=index, spec=None, kind=kind, labels=_field(ProbeSpec, "labels", raw, context),
        timing=timing, auth=of_kind("auth", None), expect_rejected=of_kind("expect_rejected",
                                                                          False),
        variants=of_kind("variants", ()),
        section={} if model is None else {key: of_kind(key) for key in model.CHECKED_KEYS})


def _field(model: type[BaseModel], key: str, data: dict[str, Any],
           context: dict[str, Any]) -> Any:
    """``data[key]`` validated as ``model``'s field (its default when absent), or UNKNOWN.
    The model's own field validators do not run: what they refuse is reported by the
    schema pass already, and the checks here do not depend on it."""
    if key not in data:
        return model.model_fields[key].get_default(call_default_factory=True)
    try:
        return _adapter(model, key).validate_python(data[key], context=context)
    except ValidationError:
        return UNKNOWN


@functools.cache
def _adapter(model: type[BaseModel], key: str) -> TypeAdapter[Any]:
    info = model.model_fields[key]
    annotation: Any = info.annotation
    if info.metadata:  # constraints such as gt=0 live beside the annotation
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


__all__ = ["TIMING_KEYS", "UNKNOWN", "AuthRef", "ProbeFacts", "from_data", "from_spec"]
