"""A ``websocket:`` probe: the handshake (where the token goes, which subprotocol must be
chosen) and the steps over the open connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitor.config.fields import Duration
from monitor.config.schema.auth import AuthSpec
from monitor.config.schema.base import (
    HEADERS,
    WS_URL,
    Model,
    check_headers,
    check_regex,
    one_of,
    scheme_url,
)
from monitor.config.schema.events import ExpectEvents, events_problems
from monitor.config.schema.kind import KindSpec, Relative
from monitor.config.schema.negative import Negative
from monitor.config.schema.tls import DEFAULT_TLS, TlsSpec

STEP_KINDS = ("expect", "send", "expect_events")
TokenPlacement = Literal["authorization_header", "subprotocol", "query"]


def one_step_problem(present: set[str]) -> str | None:
    kinds = [k for k in STEP_KINDS if k in present]
    return None if len(kinds) == 1 else \
        "each step needs exactly one of expect, send, expect_events"


class ExpectStep(Model):
    """Wait for the next message and check it (needs json or regex)."""

    model_config = ConfigDict(json_schema_extra={
        "anyOf": [{"required": ["json"]}, {"required": ["regex"]}]})

    json_: dict[str, Any] | None = Field(
        None, alias="json", description="the message must be JSON containing this subset"
    )
    regex: str | None = Field(None, description="the text message must match this regex")
    timeout: Duration | None = Field(
        None, description="how long to wait (default: what is left of the probe timeout); "
        "then message_timeout")
    max_latency: Duration | None = Field(
        None, description="budget of this step; slower ends in outcome slow")

    @model_validator(mode="after")
    def _has_matcher(self) -> ExpectStep:
        if self.json_ is None and self.regex is None:
            raise ValueError("needs json or regex")
        if self.regex is not None:
            check_regex(self.regex)
        return self


class SendStep(Model):
    """Send one message (exactly one of json or text)."""

    model_config = ConfigDict(json_schema_extra=one_of("json", "text"))

    json_: Any = Field(None, alias="json", description="a JSON message; its strings may use "
                       "${trace_id}, ${span_id} and ${traceparent}, the run's trace context")
    text: str | None = Field(None, description="a text message; may use ${trace_id}, "
                             "${span_id} and ${traceparent}")

    @model_validator(mode="after")
    def _one_payload(self) -> SendStep:
        if (self.json_ is None) == (self.text is None):
            raise ValueError("needs exactly one of json or text")
        return self


class ExpectEventsStep(ExpectEvents):
    """Read messages until every listed event type has arrived."""

    max_latency: Duration | None = Field(
        None, description="budget of this step; slower ends in outcome slow")


class Step(Model):
    """One step after the handshake: exactly one of expect, send, expect_events."""

    model_config = ConfigDict(json_schema_extra=one_of("expect", "send", "expect_events"))

    name: str | None = Field(
        None, description="the step label in metrics and evidence (default: INDEX-KIND, "
        "e.g. 0-expect)")
    expect: ExpectStep | None = None
    send: SendStep | None = None
    expect_events: ExpectEventsStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        problem = one_step_problem({a for a in STEP_KINDS if getattr(self, a) is not None})
        if problem:
            raise ValueError(problem)
        return self

    @property
    def kind(self) -> str:
        return "expect" if self.expect else "send" if self.send else "expect_events"

    def label(self, index: int) -> str:
        return self.name or f"{index}-{self.kind}"


class WebSocketSpec(Negative, KindSpec):
    """A WebSocket handshake, then steps over the open connection."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"required": ["send_token_as"],
                "properties": {"send_token_as": {"contains": {"const": "subprotocol"}}}},
         "then": {"required": ["auth"], "properties": {"auth": {"not": {"type": "null"}}}}},
        # An inline secret is a deliberately wrong one, for a negative probe only.
        {"if": {"required": ["auth"],
                "properties": {"auth": {"type": "object", "required": ["secret"]}}},
         "then": {"required": ["expect_rejected"],
                  "properties": {"expect_rejected": {"const": True}}}},
    ]})
    REFERENCE_PLACES: ClassVar[tuple[str, ...]] = (
        "url", "headers.*", "steps.*.send.**", "steps.*.expect.json.**")

    url: str = Field(description="ws:// or wss:// URL", json_schema_extra=WS_URL)
    auth: str | AuthSpec | None = Field(
        None, description="the name of an auth provider, or one inline")
    send_token_as: tuple[TokenPlacement, ...] = Field(
        ("authorization_header",),
        description="where the token goes: authorization_header (Bearer), subprotocol "
        "(jwt.<base64url(token)>, no padding), query (?token=)")
    subprotocols: tuple[str, ...] = Field((), description="offered besides the token subprotocol")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra handshake headers",
                                    json_schema_extra=HEADERS)
    expect_subprotocol: str | None = Field(
        None, description="the subprotocol the server must choose; another or none is "
        "subprotocol_mismatch")
    max_latency: Duration | None = Field(None, description="handshake budget")
    diagnose: bool = Field(
        True, description="after a non-101 answer, GET the same URL once and keep it as evidence"
    )
    steps: tuple[Step, ...] = Field((), description="run in order after the handshake")
    max_message_bytes: int = Field(1024 * 1024, gt=0,
                                   description="larger messages fail the run")
    tls: TlsSpec = Field(default_factory=lambda: DEFAULT_TLS)

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        return scheme_url(v, ("ws", "wss"))

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)

    def event_keys(self) -> set[tuple[str, str]]:
        return {(step.label(i), kind) for i, step in enumerate(self.steps)
                if step.expect_events is not None for kind in step.expect_events.types}

    CHECKED_KEYS: ClassVar[tuple[str, ...]] = ("send_token_as", "steps")

    @classmethod
    def key_problems(cls, get: Callable[[str], Any], *, has_auth: bool | None
                     ) -> list[Relative]:
        out: list[Relative] = []
        placements = get("send_token_as")
        if has_auth is False and placements is not None and "subprotocol" in placements:
            out.append((("send_token_as",),
                        "sending the token needs an auth provider (websocket.auth)"))
        steps: tuple[Step, ...] = get("steps") or ()
        for j, step in enumerate(steps):
            if step.expect_events is not None:
                out += [(("steps", j, "expect_events", *at), msg)
                        for at, msg in step.expect_events.problems()]
        return out

    def warnings(self) -> list[Relative]:
        if self.expect_rejected and self.steps:
            return [(("steps",), "steps are ignored on a negative probe")]
        return []

    @classmethod
    def shape_problems(cls, data: dict[str, Any]) -> list[Relative]:
        out: list[Relative] = []
        steps = data.get("steps")
        for j, step in enumerate(steps if isinstance(steps, list) else ()):
            if not isinstance(step, dict):
                continue
            msg = one_step_problem({k for k, v in step.items() if v is not None})
            if msg:
                out.append((("steps", j), msg))
            events = step.get("expect_events")
            if isinstance(events, dict):
                out += [(("steps", j, "expect_events", *at), m) for at, m in events_problems(
                    events.get("types"), events.get("aliases"), events.get("count"))]
        return out
