"""The ``expect_events`` vocabulary: which typed events must arrive, where their type is
found, under which other names, how often, and what ends the wait. A WebSocket
``expect_events`` step and a stream's ``events`` are both this model, and both are judged by
one matcher (:mod:`monitor.probes.events`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from monitor.config.fields import Duration
from monitor.config.schema.base import Model
from monitor.config.schema.kind import Relative

_ONE_OR_MANY: dict[str, Any] = {"anyOf": [{"type": "string"},
                                          {"type": "array", "items": {"type": "string"}}]}


class Count(Model):
    """How many times an expected event must (and may) arrive."""

    min: int = Field(1, ge=0, description="at least this many (default 1)")
    max: int | None = Field(None, ge=1, description="at most this many; one more ends the "
                            "wait with unexpected_message")

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, v: Any) -> Any:
        return {"min": v} if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _ordered(self) -> Count:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


# As written: a bare number (at least), or {min, max}.
_COUNT_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "integer", "minimum": 0},
    {"type": "object", "additionalProperties": False,
     "properties": {"min": {"type": "integer", "minimum": 0},
                    "max": {"type": "integer", "minimum": 1}}}]}


class ExpectEvents(Model):
    """Read events until every listed type has arrived (as often as ``count`` says)."""

    types: tuple[str, ...] = Field(min_length=1, description="the event types that must arrive")
    in_order: bool = Field(
        True, description="they must first arrive in this order; repeats and other types may "
        "come between")
    paths: Annotated[tuple[str, ...], WithJsonSchema(_ONE_OR_MANY)] = Field(
        ("type",), alias="field",
        description="the dotted JSON path naming the event type, or a list of paths: the "
        "first present in a message wins (e.g. [event, type] for events wrapped "
        "as {type: system_message, event: agent_started})")
    aliases: dict[str, Annotated[tuple[str, ...], WithJsonSchema(_ONE_OR_MANY)]] = Field(
        default_factory=dict, description="other spellings accepted for an expected type, "
        "e.g. {agent_started: [agent_start]}")
    count: dict[str, Annotated[Count, WithJsonSchema(_COUNT_SCHEMA)]] = Field(
        default_factory=dict, description="how many of an expected type must arrive: a "
        "number (at least) or {min, max}, e.g. {chat.completion.chunk: {min: 2}}; a type "
        "not listed must arrive once")
    fail_on_duplicates: bool = Field(
        False, description="an expected event arriving again (beyond its count) ends the "
        "wait with unexpected_message; otherwise duplicates are only counted")
    timeout: Duration | None = Field(
        None, description="how long to wait for all of them (default: what is left of the "
        "probe timeout); then message_timeout")
    fail_on: tuple[str, ...] = Field(
        (), description="event types that end the wait at once with unexpected_message")

    @field_validator("paths", mode="before")
    @classmethod
    def _one_or_list(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("must name at least one dotted path")
        for i, path in enumerate(v):
            if not path.strip() or any(not part for part in path.split(".")):
                raise ValueError(f"path {i} ({path!r}) is empty or has an empty part")
        return v

    @field_validator("aliases", mode="before")
    @classmethod
    def _alias_lists(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (a,) if isinstance(a, str) else a for k, a in v.items()}
        return v

    def event_of(self, spelling: str) -> str | None:
        """The expected type that ``spelling`` stands for (itself or an alias), or None."""
        if spelling in self.types:
            return spelling
        for kind, names in self.aliases.items():
            if spelling in names:
                return kind
        return None

    def needed(self, event: str) -> int:
        """How many arrivals of ``event`` the wait needs."""
        count = self.count.get(event)
        return 1 if count is None else count.min

    def allowed(self, event: str) -> int | None:
        """How many arrivals of ``event`` are allowed (None: any number)."""
        count = self.count.get(event)
        return None if count is None else count.max

    def problems(self) -> list[Relative]:
        return events_problems(self.types, self.aliases, self.count)


def events_problems(types: Any, aliases: Any, count: Any) -> list[Relative]:
    """``aliases`` and ``count`` name expected types only; on plain data or validated
    values alike (paths below the events block)."""
    known = [t for t in types if isinstance(t, str)] if isinstance(types, Iterable) else []
    out: list[Relative] = []
    for key, names in (("aliases", aliases), ("count", count)):
        for name in names if isinstance(names, Mapping) else ():
            if name not in known:
                what = ("aliases name other spellings of an expected type" if key == "aliases"
                        else "count says how often an expected type must arrive")
                out.append(((key, name), f"{name!r} is not in types "
                                          f"({', '.join(known) or 'none'}): {what}"))
    return out


__all__ = ["Count", "ExpectEvents", "events_problems"]
