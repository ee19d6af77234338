"""The schema of probes.yaml: one pydantic model per section, each validating itself.

A model checks what can be checked from its own keys (a URL's scheme, one body at most,
exactly one step kind); what needs the whole file (names unique, auth references known,
timeouts within intervals) is in :mod:`monitor.config.checks`. The JSON Schema that
editors use is generated from these models.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self, Union
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from monitor.config.fields import Duration, Retries, StatusSet
from monitor.trace import tracestate_problem


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# What the JSON Schema says beyond the types, so that an editor flags what `check` refuses
# wherever JSON Schema can say it (tests/config/test_schema_agrees.py feeds both the same
# files). A string may be a ${VAR} form, substituted at load, which an editor cannot check.
JsonDict = dict[str, Any]  # what Field(json_schema_extra=) takes
VAR_FORM = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_HTTP_URL: JsonDict = {"pattern": rf"^(https?://[^/\s]+|{VAR_FORM})"}
_WS_URL: JsonDict = {"pattern": rf"^(wss?://[^/\s]+|{VAR_FORM})"}
RESERVED_LABELS = {"probe", "type", "target", "outcome", "location", "phase", "step", "le",
                   "reason", "version", "job", "instance", "variant", "event"}
_LABELS: JsonDict = {"propertyNames": {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$",
                                       "not": {"enum": sorted(RESERVED_LABELS)}}}
# Also after ${VAR} substitution: a header split in two would smuggle a second one.
_HEADERS: JsonDict = {"additionalProperties": {"type": "string", "pattern": r"^[^\r\n\x00]*$"}}


def _one_of(*keys: str) -> JsonDict:
    return {"oneOf": [{"required": [k]} for k in keys]}


SECRET_DOC = "secrets come only from the environment (*_env) or a file (*_file)"

# The "exactly one of" rules, as functions of the keys present: the models apply them, and
# :func:`monitor.config.checks.shape_problems` applies them to plain data as well, where a
# model's own validator does not run (one of its fields is invalid).
_KEY_SOURCES = ("secret_env", "secret_file", "private_key_file", "secret")
PROBE_KINDS = ("http", "websocket")
STEP_KINDS = ("expect", "send", "expect_events")


def jwt_key_problem(present: set[str]) -> str | None:
    sources = [s for s in _KEY_SOURCES if s in present]
    if len(sources) == 1:
        return None
    return ("needs exactly one of secret_env, secret_file, private_key_file"
            + (f" (got {', '.join(sources)})" if sources else ""))


def one_kind_problem(present: set[str]) -> str | None:
    kinds = [k for k in PROBE_KINDS if k in present]
    return None if len(kinds) == 1 else "each probe needs exactly one of http or websocket"


def one_step_problem(present: set[str]) -> str | None:
    kinds = [k for k in STEP_KINDS if k in present]
    return None if len(kinds) == 1 else \
        "each step needs exactly one of expect, send, expect_events"


class JwtAuth(Model):
    """A JWT minted locally with PyJWT and re-minted before it expires."""

    model_config = ConfigDict(json_schema_extra={
        **_one_of("secret_env", "secret_file", "private_key_file", "secret"),
        "if": {"required": ["algorithm"],
               "properties": {"algorithm": {"pattern": "^(RS|ES)"}}},
        "then": {"required": ["private_key_file"]},
        "else": {"not": {"required": ["private_key_file"]}},
    })

    type: Literal["jwt"] = Field(description="jwt: a token minted locally")
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"] = (
        Field("HS256", description="HS* with secret_env or secret_file; RS*/ES* with "
                                   "private_key_file")
    )
    secret_env: str | None = Field(None, description="environment variable holding the HMAC secret")
    secret_file: str | None = Field(None, description="file holding the HMAC secret")
    private_key_file: str | None = Field(None, description="PEM private key for RS*/ES*")
    secret: str | None = Field(
        None,
        description="an inline secret, allowed only on probes with expect_rejected: true "
        "(a deliberately wrong secret for a negative probe)",
    )
    claims: dict[str, Any] = Field(
        default_factory=dict, description="the token's claims (sub, email, permissions, ...); "
        "iat and exp are set from ttl")
    ttl: Duration = Field(1800.0, description="lifetime: iat is now, exp is now + ttl")
    headers: dict[str, str] = Field(default_factory=dict, description="extra JWT header fields")

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtAuth:
        problem = jwt_key_problem({s for s in _KEY_SOURCES if getattr(self, s)})
        if problem:
            raise ValueError(problem)
        asymmetric = self.algorithm[:2] in ("RS", "ES")
        if asymmetric and not self.private_key_file:
            raise ValueError(f"algorithm {self.algorithm} needs private_key_file")
        if not asymmetric and self.private_key_file:
            raise ValueError(f"algorithm {self.algorithm} takes secret_env or secret_file")
        return self


class TokenEndpointAuth(Model):
    """A token fetched from an HTTP endpoint and cached until shortly before it expires."""

    type: Literal["token_endpoint"] = Field(description="token_endpoint: a token fetched "
                                                        "from url")
    url: str = Field(description="the token endpoint")
    method: Literal["POST", "GET"] = Field("POST", description="method of the token request")
    format: Literal["json", "form"] = Field(
        "json", description="request body: a JSON object, or form-encoded fields")
    fields: dict[str, str] = Field(
        default_factory=dict, description="non-secret request fields, e.g. username, client_id"
    )
    secret_fields_env: dict[str, str] = Field(
        default_factory=dict,
        description="request fields whose values come from environment variables",
    )
    secret_fields_file: dict[str, str] = Field(
        default_factory=dict, description="request fields whose values come from files"
    )
    token_field: str = Field("access_token", description="JSON path of the token in the answer")
    expires_in_field: str = Field(
        "expires_in", description="JSON path of the token's lifetime in seconds in the answer")
    default_ttl: Duration = Field(300.0, description="cache time when the answer has no expiry")
    timeout: Duration = Field(10.0, description="timeout of the token request")


AuthSpec = Annotated[Union[JwtAuth, TokenEndpointAuth], Field(discriminator="type")]

TokenPlacement = Literal["authorization_header", "subprotocol", "query"]

# The ways a backend fails open, each a run of its own on a negative probe (see
# monitor/auth/variants.py for how each is built from the probe's valid provider).
Variant = Literal["no_token", "expired", "not_yet_valid", "bad_signature", "alg_none",
                  "wrong_issuer", "wrong_audience", "token_in_query_only", "bypass_headers"]
VARIANTS: tuple[str, ...] = ("no_token", "expired", "not_yet_valid", "bad_signature",
                             "alg_none", "wrong_issuer", "wrong_audience",
                             "token_in_query_only", "bypass_headers")
# What a negative probe counts as refused: HTTP statuses, or a close code after accept.
DEFAULT_REFUSED_WITH: tuple[int, ...] = (401, 403, 1008)


class _Negative(BaseModel):
    """The keys a negative probe shares, HTTP or WebSocket."""

    expect_rejected: bool = Field(
        False, description="negative probe: success means the server refused the request")
    variants: tuple[Variant, ...] = Field(
        (), description="negative probe only: each a way a backend fails open, built from the "
        "probe's valid auth provider and run as its own run with a variant label: no_token, "
        "expired, not_yet_valid, bad_signature, alg_none, wrong_issuer, wrong_audience, "
        "token_in_query_only, bypass_headers")
    # None rather than an empty dict: one dict per probe spec costs ~64 bytes a probe.
    bypass_headers: dict[str, str] | None = Field(
        None, description="headers the bypass_headers variant sends with a bad "
        "token, e.g. {X-E2E-Test: \"true\"}")
    refused_with: tuple[int, ...] = Field(
        DEFAULT_REFUSED_WITH, description="what counts as an auth refusal: HTTP statuses "
        "(100-599) and WebSocket close codes after accept (1000-4999); a 404, 405, 5xx or 2xx "
        "is never a refusal unless listed")

    @field_validator("refused_with")
    @classmethod
    def _codes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        for code in v:
            if not (100 <= code <= 599 or 1000 <= code <= 4999):
                raise ValueError(f"{code} is neither an HTTP status (100-599) nor a close code "
                                 "(1000-4999)")
        if not v:
            raise ValueError("must list at least one status or close code")
        return v

    @field_validator("variants")
    @classmethod
    def _unique(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({x for x in v if v.count(x) > 1})
        if dupes:
            raise ValueError(f"lists {', '.join(dupes)} more than once")
        return v

    @field_validator("bypass_headers")
    @classmethod
    def _bypass(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return None if v is None else _check_headers(v)


class _Shared(Model):
    """A part of a probe that many probes spell alike (``expect: {status: [200]}``, no
    ``tls``): equal parts are one instance. Each copy cost about 600 bytes, 11 MB of
    10,000 probes, and the models are frozen, so sharing them is safe.

    Parts written the same way in one file are shared when the file is validated with a
    ``{"shared": {}}`` context; the default of an omitted part is one module-level instance.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _one_of_equals(cls, data: Any, handler: ModelWrapValidatorHandler[Self],
                       info: ValidationInfo) -> Self:
        table = info.context.get("shared") if isinstance(info.context, dict) else None
        if table is None or not isinstance(data, dict):
            return handler(data)
        # The input as written decides: equal reprs of plain YAML data are equal inputs.
        key = (cls, repr(data))
        found = table.get(key)
        if found is None:
            found = table[key] = handler(data)
        assert isinstance(found, cls)
        return found


class TlsSpec(_Shared):
    """TLS settings of an https:// or wss:// target."""

    insecure_skip_verify: bool = Field(
        False, description="do not verify the certificate chain or host name (the expiry is "
        "still exported)")
    ca_file: str | None = Field(
        None, description="PEM file of the CAs to verify the server with, instead of the "
        "system's")
    server_name: str | None = Field(
        None, description="the name sent in SNI and verified, instead of the URL's host")


class HttpExpect(_Shared):
    """What the answer must look like; anything else fails the run."""

    status: StatusSet = Field(default=((200, 299),))
    json_: dict[str, Any] | None = Field(
        None,
        alias="json",
        description="dotted JSON paths to expected values; a value may be "
        "{eq|ne|lt|le|gt|ge|contains|regex|exists: ...}",
    )
    body_regex: str | None = Field(
        None, description="a regex that must match somewhere in the body (re.search)")
    headers: dict[str, str] = Field(
        default_factory=dict, description="header name to a regex its value must match"
    )
    max_latency: Duration | None = Field(
        None, description="budget of the whole request; slower ends in outcome slow")

    @field_validator("body_regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            _check_regex(v)
        return v

    @field_validator("headers")
    @classmethod
    def _header_regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern in v.values():
            _check_regex(pattern)
        return v


_DEFAULT_TLS = TlsSpec()
_DEFAULT_EXPECT = HttpExpect()


def _shown(url: str) -> str:
    """A URL as it may appear in an error: without userinfo, which can hold credentials."""
    return repr(re.sub(r"(?<=//)[^/@\s]*@", "***@", url)[:200])


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("is not a valid URL: it has no host")
    return url


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        # Also after ${VAR} substitution: a header split in two would smuggle a second one.
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"{name}: line breaks are not allowed in a header")
    return headers


def _check_tracestate(value: str | None) -> str | None:
    if value is not None and (problem := tracestate_problem(value)) is not None:
        raise ValueError(f"is not a valid W3C tracestate: it {problem}")
    return value


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


class HttpSpec(_Negative, Model):
    """An HTTP request and what its answer must look like."""

    model_config = ConfigDict(json_schema_extra={
        "not": {"required": ["body", "json_body"]},
        # aiohttp refuses auth together with credentials in the URL.
        "if": {"required": ["auth"], "properties": {"auth": {"not": {"type": "null"}}}},
        "then": {"properties": {"url": {"not": {"pattern": "^[a-zA-Z]+://[^/@]*@"}},
                                "auth": {"not": {"type": "object", "required": ["secret"]}}}},
    })

    url: str = Field(description="http:// or https:// URL", json_schema_extra=_HTTP_URL)
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="request headers",
                                    json_schema_extra=_HEADERS)
    body: str | None = Field(None, description="a text request body")
    json_body: Any = Field(None, description="a JSON request body")
    auth: str | AuthSpec | None = Field(
        None, description="the name of an auth provider, or one inline; sent as Bearer"
    )
    expect: HttpExpect = Field(default_factory=lambda: _DEFAULT_EXPECT,
                               description="what the answer must look like (default: any 2xx)")
    follow_redirects: bool = Field(
        False, description="follow 3xx answers; off, so that a redirect can be expected")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="bodies are read up to this cap")
    tls: TlsSpec = Field(default_factory=lambda: _DEFAULT_TLS)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL; got {_shown(v)}")
        return _check_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_headers(v)

    @model_validator(mode="after")
    def _one_body(self) -> HttpSpec:
        if self.body is not None and self.json_body is not None:
            raise ValueError("body and json_body cannot both be set")
        return self


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
            _check_regex(self.regex)
        return self


class SendStep(Model):
    """Send one message (exactly one of json or text)."""

    model_config = ConfigDict(json_schema_extra=_one_of("json", "text"))

    json_: Any = Field(None, alias="json", description="a JSON message; its strings may use "
                       "${trace_id}, ${span_id} and ${traceparent}, the run's trace context")
    text: str | None = Field(None, description="a text message; may use ${trace_id}, "
                             "${span_id} and ${traceparent}")

    @model_validator(mode="after")
    def _one_payload(self) -> SendStep:
        if (self.json_ is None) == (self.text is None):
            raise ValueError("needs exactly one of json or text")
        return self


_ONE_OR_MANY: dict[str, Any] = {"anyOf": [{"type": "string"},
                                          {"type": "array", "items": {"type": "string"}}]}


class ExpectEventsStep(Model):
    """Read messages until every listed event type has arrived."""

    types: tuple[str, ...] = Field(min_length=1, description="the event types that must arrive")
    in_order: bool = Field(
        True, description="they must arrive in this order; repeats and other types may come "
        "between")
    paths: Annotated[tuple[str, ...], WithJsonSchema(_ONE_OR_MANY)] = Field(
        ("type",), alias="field",
        description="the dotted JSON path naming the event type, or a list of paths: the "
        "first present in a message wins (e.g. [event, type] for events wrapped "
        "as {type: system_message, event: agent_started})")
    aliases: dict[str, Annotated[tuple[str, ...], WithJsonSchema(_ONE_OR_MANY)]] = Field(
        default_factory=dict, description="other spellings accepted for an expected type, "
        "e.g. {agent_started: [agent_start]}")
    fail_on_duplicates: bool = Field(
        False, description="an expected event arriving again (e.g. from two emitters) ends "
        "the step with unexpected_message; otherwise duplicates are only counted")
    timeout: Duration | None = Field(
        None, description="how long to wait for all of them (default: what is left of the "
        "probe timeout); then message_timeout")
    fail_on: tuple[str, ...] = Field(
        (), description="event types that end the step at once with unexpected_message")
    max_latency: Duration | None = Field(
        None, description="budget of this step; slower ends in outcome slow")

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


class Step(Model):
    """One step after the handshake: exactly one of expect, send, expect_events."""

    model_config = ConfigDict(json_schema_extra=_one_of("expect", "send", "expect_events"))

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


class WebSocketSpec(_Negative, Model):
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

    url: str = Field(description="ws:// or wss:// URL", json_schema_extra=_WS_URL)
    auth: str | AuthSpec | None = Field(
        None, description="the name of an auth provider, or one inline")
    send_token_as: tuple[TokenPlacement, ...] = Field(
        ("authorization_header",),
        description="where the token goes: authorization_header (Bearer), subprotocol "
        "(jwt.<base64url(token)>, no padding), query (?token=)")
    subprotocols: tuple[str, ...] = Field((), description="offered besides the token subprotocol")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra handshake headers",
                                    json_schema_extra=_HEADERS)
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
    tls: TlsSpec = Field(default_factory=lambda: _DEFAULT_TLS)

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        if not re.match(r"^wss?://[^/\s]+", v):
            raise ValueError(f"must be a ws:// or wss:// URL; got {_shown(v)}")
        return _check_url(v)

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_headers(v)


class ProbeSpec(Model):
    """One probe: exactly one of http or websocket."""

    model_config = ConfigDict(json_schema_extra=_one_of("http", "websocket"))

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                      description="unique; the probe label of every series")
    interval: Duration | None = Field(None, description="overrides defaults.interval")
    timeout: Duration | None = Field(None, description="overrides defaults.timeout")
    retries: Retries | None = Field(None, description="overrides defaults.retries")
    retry_delay: Duration | None = Field(None, description="overrides defaults.retry_delay")
    labels: dict[str, str] = Field(
        default_factory=dict, description="static labels on this probe's series, on top of "
        "defaults.labels", json_schema_extra=_LABELS)
    trace: bool | None = Field(
        None, description="send W3C trace context (traceparent) on every request of a run; "
        "overrides defaults.trace")
    tracestate: str | None = Field(
        None, description="the tracestate header sent beside traceparent; overrides "
        "defaults.tracestate")
    http: HttpSpec | None = None
    websocket: WebSocketSpec | None = None

    @field_validator("tracestate")
    @classmethod
    def _tracestate(cls, v: str | None) -> str | None:
        return _check_tracestate(v)

    @model_validator(mode="after")
    def _one_kind(self) -> ProbeSpec:
        problem = one_kind_problem({k for k in PROBE_KINDS if getattr(self, k) is not None})
        if problem:
            raise ValueError(problem)
        return self

    @property
    def type(self) -> str:
        return "http" if self.http is not None else "websocket"

    @property
    def url(self) -> str:
        spec = self.http or self.websocket
        assert spec is not None
        return spec.url


class Defaults(Model):
    """Applied to every probe that does not set its own."""

    interval: Duration = Field(60.0, description="how often each probe runs; the starts are "
                               "spread over the interval")
    timeout: Duration = Field(10.0, description="the longest one run may take; shorter than "
                              "the interval")
    retries: Retries = Field(
        1, description="a failed run is tried again up to this many times, retry_delay apart, "
        "before its failure is exported (0 to 5); timeout x (retries + 1) + retry_delay x "
        "retries must be shorter than the interval")
    retry_delay: Duration = Field(5.0, description="the pause before each retry of a failed run")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="static labels on every probe series",
                                   json_schema_extra=_LABELS)
    trace: bool = Field(
        True, description="send W3C trace context on every request (traceparent with the "
        "run's trace id, sampled); the trace id is in the run's result, log event and "
        "exemplars")
    tracestate: str | None = Field(
        None, description="a tracestate header (vendor=value,...) sent beside traceparent")

    @field_validator("tracestate")
    @classmethod
    def _tracestate(cls, v: str | None) -> str | None:
        return _check_tracestate(v)




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


def json_schema() -> dict[str, Any]:
    """The JSON Schema of probes.yaml, generated from the models above."""
    schema = ProbesFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "synthmon probes.yaml"
    return schema
