"""An ``sse:`` probe: one HTTP request whose answer is a Server-Sent Events stream, judged
as it arrives: how soon the first event comes, the longest silence between two, which
events come (the ``expect_events`` vocabulary) and what ends the stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from monitor.config.fields import Duration, StatusSet
from monitor.config.schema.base import Shared
from monitor.config.schema.events import ExpectEvents, events_problems
from monitor.config.schema.kind import Relative
from monitor.config.schema.request import REQUEST_SCHEMA, RequestSpec

_ONE_OR_MANY: dict[str, Any] = {"anyOf": [{"type": "string"},
                                          {"type": "array", "items": {"type": "string"}}]}
# The label of the stream in synthmon_probe_event_seconds{step} and the step histogram.
STREAM_STEP = "stream"


class SseExpect(Shared):
    """What the answer's head must be; its body is judged as a stream."""

    status: StatusSet = Field(default=((200, 200),))


class StreamEvents(ExpectEvents):
    """The events the stream must carry: the ``expect_events`` vocabulary, where ``event``
    is the SSE ``event:`` field and ``data.PATH`` a path into the event's JSON data."""

    paths: Annotated[tuple[str, ...], WithJsonSchema(_ONE_OR_MANY)] = Field(
        ("event", "data.type"), alias="field",
        description="where an event's type is: event (its event: line, absent when it has "
        "none), data.PATH (a path into its JSON data), or a list of these, the first "
        "present winning (e.g. [event, data.type, data.object])")
    timeout: Duration | None = Field(
        None, description="how long, from the request's start, the expected events may take "
        "(default: the stream's timeout); then message_timeout")


_DEFAULT_EXPECT = SseExpect()


class SseSpec(RequestSpec):
    """A request answered with ``text/event-stream``, read and judged as it arrives."""

    model_config = ConfigDict(json_schema_extra=REQUEST_SCHEMA)

    expect: SseExpect = Field(default_factory=lambda: _DEFAULT_EXPECT,
                              description="the answer's status (default: 200)")
    first_event_within: Duration | None = Field(
        None, description="from the request's start to the first event (time to first "
        "token); later is stream_stalled, or stream_buffered when every event then comes at "
        "once")
    max_gap: Duration | None = Field(
        None, description="the longest silence allowed between two events (comments, the "
        "heartbeats, do not count as events); longer is stream_stalled")
    events: StreamEvents | None = Field(
        None, description="the events that must come (the expect_events vocabulary, plus "
        "count)")
    done: str | None = Field(
        None, description="the data (or event type) that ends the stream, e.g. \"[DONE]\"; "
        "an end before it is stream_incomplete. Without it, the run ends when the expected "
        "events have come, when the server ends the stream, or at timeout")
    timeout: Duration | None = Field(
        None, description="bounds the whole run (default and at most: the probe's timeout)")
    max_latency: Duration | None = Field(
        None, description="budget of the whole stream, from the request to its end; slower "
        "ends in outcome slow")
    max_event_bytes: int = Field(1024 * 1024, gt=0,
                                 description="a longer event (or line) fails the run")

    @model_validator(mode="after")
    def _budgets_fit(self) -> SseSpec:
        bound = self.timeout
        for key in ("first_event_within", "max_gap"):
            value = getattr(self, key)
            if bound is not None and value is not None and value >= bound:
                raise ValueError(f"{key} ({value:g}s) must be shorter than timeout "
                                 f"({bound:g}s)")
        return self

    @field_validator("done")
    @classmethod
    def _done(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must not be empty")
        return v

    @property
    def run_timeout(self) -> float | None:
        return self.timeout

    CHECKED_KEYS = ("url", "events")

    @classmethod
    def key_problems(cls, get: Callable[[str], Any], *, has_auth: bool | None
                     ) -> list[Relative]:
        out = super().key_problems(get, has_auth=has_auth)
        events = get("events")
        if isinstance(events, StreamEvents):
            out += [(("events", *at), msg) for at, msg in events.problems()]
        return out

    @classmethod
    def shape_problems(cls, data: dict[str, Any]) -> list[Relative]:
        events = data.get("events")
        if not isinstance(events, dict):
            return []
        return [(("events", *at), msg) for at, msg in events_problems(
            events.get("types"), events.get("aliases"), events.get("count"))]

    def event_keys(self) -> set[tuple[str, str]]:
        if self.events is None:
            return set()
        return {(STREAM_STEP, kind) for kind in self.events.types}


__all__ = ["STREAM_STEP", "SseExpect", "SseSpec", "StreamEvents"]
