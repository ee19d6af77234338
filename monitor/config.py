"""probes.yaml → validated, immutable specs.

Loading happens in three passes so that every error can name ``file:line: key``:

1. PyYAML (libyaml's parser when available) composes the file into nodes, which keep the
   line of every key and list item; scalars resolve by YAML 1.2's core schema (``yes`` and
   ``on`` are strings, ``017`` is 17, ``1e3`` is a float);
2. ``${VAR}`` / ``${VAR:-default}`` are substituted in every string scalar;
3. pydantic validates the plain data against the models below. Its error locations are
   mapped back to YAML lines, and unknown keys get a "did you mean".

All problems found are reported together in one :class:`ConfigError`.

Secrets come from the environment or from files, and the redactor must know every one of
them. Those read by auth providers are registered when they are read; a value substituted
into the file with ``${VAR}`` is registered (``Config.secrets``)
when it comes from the environment and

- the variable's name looks secret (it contains SECRET, TOKEN, PASSWORD, PASSWD,
  CREDENTIAL, PRIVATE, APIKEY or COOKIE, or has a part KEY, PASS, PWD or PAT between
  underscores), wherever the value goes; or
- it lands in a header value (headers carry credentials: Authorization, X-Api-Key, ...); or
- it lands in the userinfo or the query of a URL.

The password in a URL's userinfo is registered too (alone and as user:password, the form a
Basic header encodes), substituted or not.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.error import MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from monitor.redact import Redactor

# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any sensible interval, timeout or token lifetime, and far from the limits of
# the scheduler's timedelta arithmetic (a 1e308 s interval would only fail at run time).
MAX_DURATION = 365 * 24 * 3600.0


def parse_duration(value: object) -> float:
    """``"1m30s"`` → 90.0. Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 5s")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise ValueError("must be a duration of at most 8760h (a year)") from None
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError("must be a duration like 5s")
    else:
        raise ValueError("must be a duration like 5s")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("must be a duration greater than 0, like 5s")
    if seconds > MAX_DURATION:
        raise ValueError("must be a duration of at most 8760h (a year)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$"},
                # ${VAR} / ${VAR:-default}, substituted at load: editors must accept it
                {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration like 500ms, 5s, 1m30s (a bare number is seconds)",
        }
    ),
]


# --------------------------------------------------------------------------- status codes


def _parse_status(value: object) -> tuple[tuple[int, int], ...]:
    items = value if isinstance(value, list | tuple) else [value]
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            ranges.append((item, item))
            continue
        if isinstance(item, str):
            text = item.strip().lower()
            if re.fullmatch(r"[1-5]xx", text):
                base = int(text[0]) * 100
                ranges.append((base, base + 99))
                continue
            m = re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text)
            if m and 100 <= int(m.group(1)) <= int(m.group(2)) <= 599:
                ranges.append((int(m.group(1)), int(m.group(2))))
                continue
            if text.isdigit() and 100 <= int(text) <= 599:
                ranges.append((int(text), int(text)))
                continue
        raise ValueError(
            f"must be status codes like [200, 307], ranges like '200-299' or '2xx'; got {item!r}"
        )
    if not ranges:
        raise ValueError("must list at least one status code")
    return tuple(ranges)


StatusSet = Annotated[
    tuple[tuple[int, int], ...],
    BeforeValidator(_parse_status),
    WithJsonSchema(
        {
            "description": "status codes: 200, '200-299', '2xx', or a list of these",
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string"},
                {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]}},
            ],
        }
    ),
]


def status_matches(code: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


# --------------------------------------------------------------------------- models


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SECRET_DOC = "secrets come only from the environment (*_env) or a file (*_file)"


class JwtAuth(Model):
    """A JWT minted locally with PyJWT and re-minted before it expires."""

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
        sources = [s for s in ("secret_env", "secret_file", "private_key_file", "secret")
                   if getattr(self, s)]
        if len(sources) != 1:
            raise ValueError(
                "needs exactly one of secret_env, secret_file, private_key_file"
                + (f" (got {', '.join(sources)})" if sources else "")
            )
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


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


class HttpSpec(Model):
    """An HTTP request and what its answer must look like."""

    url: str = Field(description="http:// or https:// URL")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="request headers")
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

    json_: Any = Field(None, alias="json", description="a JSON message")
    text: str | None = Field(None, description="a text message")

    @model_validator(mode="after")
    def _one_payload(self) -> SendStep:
        if (self.json_ is None) == (self.text is None):
            raise ValueError("needs exactly one of json or text")
        return self


class ExpectEventsStep(Model):
    """Read messages until every listed event type has arrived."""

    types: tuple[str, ...] = Field(min_length=1, description="the event types that must arrive")
    in_order: bool = Field(
        True, description="they must arrive in this order; repeats and other types may come "
        "between")
    field: str = Field("type", description="the JSON field naming the event type")
    timeout: Duration | None = Field(
        None, description="how long to wait for all of them (default: what is left of the "
        "probe timeout); then message_timeout")
    fail_on: tuple[str, ...] = Field(
        (), description="event types that end the step at once with unexpected_message")
    max_latency: Duration | None = Field(
        None, description="budget of this step; slower ends in outcome slow")


class Step(Model):
    """One step after the handshake: exactly one of expect, send, expect_events."""

    name: str | None = Field(
        None, description="the step label in metrics and evidence (default: INDEX-KIND, "
        "e.g. 0-expect)")
    expect: ExpectStep | None = None
    send: SendStep | None = None
    expect_events: ExpectEventsStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [a for a in ("expect", "send", "expect_events") if getattr(self, a) is not None]
        if len(actions) != 1:
            raise ValueError("each step needs exactly one of expect, send, expect_events")
        return self

    @property
    def kind(self) -> str:
        return "expect" if self.expect else "send" if self.send else "expect_events"

    def label(self, index: int) -> str:
        return self.name or f"{index}-{self.kind}"


class WebSocketSpec(Model):
    """A WebSocket handshake, then steps over the open connection."""

    url: str = Field(description="ws:// or wss:// URL")
    auth: str | AuthSpec | None = Field(
        None, description="the name of an auth provider, or one inline")
    send_token_as: tuple[TokenPlacement, ...] = Field(
        ("authorization_header",),
        description="where the token goes: authorization_header (Bearer), subprotocol "
        "(jwt.<base64url(token)>, no padding), query (?token=)")
    subprotocols: tuple[str, ...] = Field((), description="offered besides the token subprotocol")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="extra handshake headers")
    expect_subprotocol: str | None = Field(
        None, description="the subprotocol the server must choose; another or none is "
        "subprotocol_mismatch")
    max_latency: Duration | None = Field(None, description="handshake budget")
    diagnose: bool = Field(
        True, description="after a non-101 answer, GET the same URL once and keep it as evidence"
    )
    steps: tuple[Step, ...] = Field((), description="run in order after the handshake")
    expect_rejected: bool = Field(
        False, description="negative probe: success means the server refused the connection"
    )
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

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                      description="unique; the probe label of every series")
    interval: Duration | None = Field(None, description="overrides defaults.interval")
    timeout: Duration | None = Field(None, description="overrides defaults.timeout")
    labels: dict[str, str] = Field(
        default_factory=dict, description="static labels on this probe's series, on top of "
        "defaults.labels")
    http: HttpSpec | None = None
    websocket: WebSocketSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ProbeSpec:
        if (self.http is None) == (self.websocket is None):
            raise ValueError("each probe needs exactly one of http or websocket")
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
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="static labels on every probe series")


_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = {"probe", "type", "target", "outcome", "location", "phase", "step", "le",
                   "reason", "version", "job", "instance"}


class ProbesFile(Model):
    """The whole probes.yaml."""

    defaults: Defaults = Field(default_factory=Defaults)
    auth: dict[str, AuthSpec] = Field(
        default_factory=dict, description="auth providers by name, for probes' auth: NAME")
    probes: tuple[ProbeSpec, ...] = ()


# --------------------------------------------------------------------------- resolved config


@dataclass(frozen=True, slots=True)
class Probe:
    """One probe with the defaults applied and its auth reference resolved."""

    spec: ProbeSpec
    interval: float
    timeout: float
    labels: tuple[tuple[str, str], ...]
    auth_name: str | None
    auth: JwtAuth | TokenEndpointAuth | None
    # Every secret value substituted into the config: probe runners register them with the
    # redactor, so that `once` and the daemon redact them alike.

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    probes: tuple[Probe, ...]
    label_names: tuple[str, ...]  # the union of static label names, for metric label sets
    warnings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)  # see module doc

    def probe(self, name: str) -> Probe:
        for p in self.probes:
            if p.name == name:
                return p
        raise KeyError(name)


class ConfigError(Exception):
    """Every problem found in a config file, each line ``file:line: key: message``."""

    def __init__(self, problems: list[str]):
        # One problem, one line: keys and values quoted from the file may hold line breaks
        # or other invisible characters; show those escaped.
        self.problems = [_one_line(p) for p in problems]
        super().__init__("\n".join(self.problems))


def _cut(text: str, limit: int = 300) -> str:
    """Parser messages may quote what they stumbled on; keep them short and on one line."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _one_line(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# --------------------------------------------------------------------------- loading

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")

Path_ = tuple[str | int, ...]


@dataclass
class _Source:
    name: str
    lines: dict[Path_, int]  # data path → 1-based line

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


# Aliases are expanded into plain data: a few hundred bytes of aliases of aliases can stand
# for billions of values. No real probes.yaml comes near this many.
MAX_VALUES = 100_000
# Nested flow collections ("[[[[...") are refused before parsing: no real file nests
# brackets this deep, and the parser's recursion would only fail much later.
MAX_FLOW_DEPTH = 200
_FLOW = re.compile(r"[\[\]{}\n]")
# libyaml's composer recurses in C, without Python's recursion limit: a deep enough block
# nesting ("- - - - ...") overflows the C stack. A block collection starts further right
# than its parent (or at its column, once, for a list under a key), so the nesting depth is
# bounded by the widest run of indentation and indicators at the start of a line. A file
# with such a run this long is composed by PyYAML's Python composer instead, whose recursion
# ends in RecursionError ("nested too deeply").
_DEEP_BLOCK = re.compile(r"^[ \t?:-]{400}", re.MULTILINE)


def _too_deep_at(text: str) -> int | None:
    """The line where flow brackets nest deeper than MAX_FLOW_DEPTH, or None. Brackets in
    quoted strings count too: only a file with hundreds of unbalanced ones is refused."""
    depth, line = 0, 1
    for m in _FLOW.finditer(text):
        c = m.group()
        if c == "\n":
            line += 1
        elif c in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return line
        else:
            depth = max(0, depth - 1)
    return None


class _TooBig(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Sub:
    """One ``${VAR}`` replaced by a value from the environment, where it landed."""

    path: Path_
    var: str
    value: str
    start: int  # the span of the value in the substituted string
    end: int


class _YamlProblem(Exception):
    """A problem of the YAML itself found while walking the nodes (line is 1-based)."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


_T = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = _T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"
_MERGE, _TIMESTAMP, _BINARY = _T + "merge", _T + "timestamp", _T + "binary"
_SET, _OMAP, _PAIRS = _T + "set", _T + "omap", _T + "pairs"


class _Resolver(BaseResolver):
    """The implicit tags of plain scalars by YAML 1.2's core schema, as ruamel.yaml (which
    loaded these files before) resolves them: ``yes``/``on`` stay strings, ``017`` is
    decimal, ``1e3`` is a float, ``1:30`` a string; ``<<`` is a merge key."""


for _tag, _regexp, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_FLOAT, r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    (_INT, r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    (_MERGE, r"^(?:<<)$", "<"),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_TIMESTAMP, r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
]:
    _Resolver.add_implicit_resolver(_tag, re.compile(_regexp, re.X), list(_first))

try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]
except ImportError:  # PyYAML without libyaml: its pure-Python parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _DeepLoader(Reader, Scanner, Parser, Composer, _Resolver):
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Resolver.__init__(self)

    _FastLoader: type = _DeepLoader
else:
    class _CLoader(CParser, _Resolver):
        """libyaml parses and composes; nodes are resolved by _Resolver."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

    class _PyComposerLoader(Composer, CParser, _Resolver):
        """libyaml parses; PyYAML's Python composer builds the nodes (bounded recursion)."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _Resolver.__init__(self)

    _FastLoader = _CLoader
    _DeepLoader = _PyComposerLoader  # type: ignore[misc,assignment]


def _compose(text: str) -> Node | None:
    loader = (_DeepLoader if _DEEP_BLOCK.search(text) else _FastLoader)(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
          "FALSE": False}


def _int(text: str) -> int:
    """A YAML 1.2 int: 0b, 0o and 0x prefixes; a leading 0 alone is still decimal."""
    digits = text.replace("_", "")
    sign = -1 if digits[:1] == "-" else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits)


def _float(text: str) -> float:
    digits = text.replace("_", "").lower()
    if digits.lstrip("+-") == ".inf":
        return -math.inf if digits[0] == "-" else math.inf
    if digits == ".nan":
        return math.nan
    return float(digits)


def _fresh(text: str) -> str:
    """``text`` in a new string object (``str()`` and ``[:]`` return the same object).

    The strings that outlive a load (names, URLs, ...) must not be the node tree's: those
    sit among the tree's ~80 small objects per probe, and a few survivors keep every pool
    of them from being freed. At 10,000 probes that pinned ~27 MB after the tree was gone;
    copies made while walking sit among the walk's far fewer objects."""
    return text[:1] + text[1:] if len(text) > 1 else text


class _Walker:
    """Nodes → plain data, recording lines and substituting ``${VAR}`` in string values."""

    def __init__(self, lines: dict[Path_, int], env: Mapping[str, str],
                 problems: list[tuple[Path_, str]], subs: list[_Sub]):
        self.lines = lines
        self.env = env
        self.problems = problems
        self.subs = subs
        self.merging: set[int] = set()  # mappings whose merge keys are being resolved
        self.own = 0
        self._constructor: SafeConstructor | None = None

    def constructed(self, node: Node) -> Any:
        """Any other standard tag (timestamp, binary, set, pairs), as PyYAML's SafeLoader
        builds it."""
        if self._constructor is None:
            self._constructor = SafeConstructor()
        return self._constructor.construct_object(node, deep=True)

    def scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        try:
            if tag == _STR:
                return _fresh(value)
            if tag == _INT:
                return _int(value)
            if tag == _FLOAT:
                return _float(value)
            if tag == _BOOL:
                return _BOOLS[value]
            if tag == _NULL:
                return None
            if tag in (_TIMESTAMP, _BINARY):
                return self.constructed(node)
        except (ValueError, KeyError, YAMLError):
            raise _YamlProblem(node.start_mark.line + 1,
                               f"not a valid {tag.removeprefix(_T)}") from None
        if tag == _MERGE:  # "<<" where a value was expected
            return value
        raise _YamlProblem(node.start_mark.line + 1, f"unknown tag {_cut(tag, 100)!r}")

    def key(self, node: Node) -> str:
        if isinstance(node, ScalarNode):
            return str(self.scalar(node))
        if isinstance(node, SequenceNode):
            return str(tuple(self.key(n) for n in node.value))
        assert isinstance(node, MappingNode)
        return "ordereddict(" + repr([(self.key(k), self.key(v)) for k, v in node.value]) + ")"

    def pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The mapping's own pairs, then those merged in with ``<<`` that it does not set
        (from the first of several merged mappings that has the key). Duplicate keys are
        refused. ``self.own`` is left at the number of the mapping's own pairs."""
        own: list[tuple[Node, Node]] = []
        merges: list[Node] = []
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and isinstance(key_node, ScalarNode):
                merges.append(value_node)
                continue
            if isinstance(key_node, ScalarNode):
                key = self.scalar(key_node)
                key = key if _hashable(key) else str(key)
            else:
                key = self.key(key_node)
            if key in seen:
                raise _YamlProblem(key_node.start_mark.line + 1,
                                   f"found duplicate key {_cut(str(key), 100)!r}")
            seen.add(key)
            own.append((key_node, value_node))
        self.own = len(own)
        if not merges:
            return own
        if id(node) in self.merging:
            raise _YamlProblem(node.start_mark.line + 1, "a mapping cannot merge itself")
        self.merging.add(id(node))
        try:
            merged: list[tuple[Node, Node]] = []
            for value_node in merges:
                sources = value_node.value if isinstance(value_node, SequenceNode) \
                    else [value_node]
                for source in sources:
                    if not isinstance(source, MappingNode):
                        expected = "a mapping" if source is not value_node else \
                            "a mapping or list of mappings"
                        raise _YamlProblem(
                            source.start_mark.line + 1,
                            f"expected {expected} for merging, but found "
                            f"{type(source).__name__.removesuffix('Node').lower()}")
                    merged += self.pairs(source)
        finally:
            self.merging.discard(id(node))
        count = len(own)
        keys = {self.key(k) for k, _ in own}
        for key_node, value_node in merged:
            key = self.key(key_node)
            if key not in keys:
                keys.add(key)
                own.append((key_node, value_node))
        self.own = count
        return own

    def walk(self, node: Node, path: Path_) -> Any:
        lines = self.lines
        if len(lines) > MAX_VALUES:
            raise _TooBig
        if isinstance(node, ScalarNode):
            value = self.scalar(node)
            if isinstance(value, str):
                return _substitute(value, path, self.env, self.problems, self.subs)
            return value
        if isinstance(node, SequenceNode):
            if node.tag == _OMAP:
                pairs = self.omap_pairs(node)
                return self.mapping(node, pairs, path, len(pairs))
            if node.tag == _PAIRS:
                return self.constructed(node)
            items = []
            for i, item in enumerate(node.value):
                child = (*path, i)
                lines[child] = item.start_mark.line + 1
                items.append(self.walk(item, child))
            return items
        assert isinstance(node, MappingNode)
        if node.tag == _SET:
            return self.constructed(node)
        pairs = self.pairs(node)
        return self.mapping(node, pairs, path, self.own)

    def mapping(self, node: Node, pairs: list[tuple[Node, Node]], path: Path_,
                own: int) -> Any:
        """Keys merged in with ``<<`` (the pairs after the first ``own``) are on the line
        of the mapping that merges them, as ruamel.yaml placed them."""
        out: dict[str, Any] = {}
        lines = self.lines
        for i, (key_node, value_node) in enumerate(pairs):
            key = self.key(key_node)
            child = (*path, key)
            lines[child] = (key_node if i < own else node).start_mark.line + 1
            out[key] = self.walk(value_node, child)
        return out

    def omap_pairs(self, node: SequenceNode) -> list[tuple[Node, Node]]:
        pairs = []
        for item in node.value:
            if not isinstance(item, MappingNode) or len(item.value) != 1:
                raise _YamlProblem(item.start_mark.line + 1,
                                   "an !!omap item must be a mapping of one key")
            pairs.append(item.value[0])
        return pairs


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _substitute(text: str, path: Path_, env: Mapping[str, str],
                problems: list[tuple[Path_, str]], subs: list[_Sub] | None = None) -> str:
    out: list[str] = []
    size = pos = 0
    for m in _VAR.finditer(text):
        out.append(text[pos:m.start()])
        size += m.start() - pos
        pos = m.end()
        if m.group(0) == "$$":
            piece = "$"
        else:
            name, default = m.group(1), m.group(2)
            value = env.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    problems.append(
                        (path, f"environment variable {name} is not set "
                               f"(set it, or give a default: ${{{name}:-value}})"))
                piece = default or ""
            else:
                piece = value
                if subs is not None:
                    subs.append(_Sub(path, name, value, size, size + len(value)))
        out.append(piece)
        size += len(piece)
    out.append(text[pos:])
    return "".join(out)


_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "APIKEY",
                 "COOKIE")
_SECRET_PARTS = {"KEY", "PASS", "PWD", "PAT"}


def secret_looking(var: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    upper = var.upper()
    return any(w in upper for w in _SECRET_WORDS) or bool(
        _SECRET_PARTS.intersection(upper.split("_")))


def _is_url(path: Path_) -> bool:
    # probes[i].http.url, probes[i].websocket.url, auth.NAME.url, probes[i].KIND.auth.url
    return bool(path) and path[-1] == "url" and (
        (len(path) == 4 and path[0] == "probes" and path[2] in ("http", "websocket"))
        or (len(path) == 3 and path[0] == "auth")
        or (len(path) == 5 and path[0] == "probes" and path[3] == "auth"))


def _is_header(path: Path_) -> bool:
    return (len(path) == 5 and path[0] == "probes" and path[2] in ("http", "websocket")
            and path[3] == "headers")


def _credential_spans(url: str) -> list[tuple[int, int]]:
    """Where the userinfo and the query are in ``url`` (character spans)."""
    spans: list[tuple[int, int]] = []
    scheme_end = url.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        end = len(url)
        for c in "/?#":
            i = url.find(c, start)
            if i >= 0:
                end = min(end, i)
        at = url.rfind("@", start, end)
        if at >= 0:
            spans.append((start, at))
    query = url.find("?")
    if query >= 0:
        fragment = url.find("#", query)
        spans.append((query + 1, fragment if fragment >= 0 else len(url)))
    return spans


def _lookup(data: Any, path: Path_) -> Any:
    for elem in path:
        try:
            data = data[elem]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _secrets(data: Any, subs: list[_Sub]) -> tuple[str, ...]:
    """The secret values of a loaded file, by the rules in the module docstring."""
    found: list[str] = []
    urls: set[Path_] = set()
    for sub in subs:
        if secret_looking(sub.var) or _is_header(sub.path):
            found.append(sub.value)
        elif _is_url(sub.path):
            url = _lookup(data, sub.path)
            if isinstance(url, str) and any(sub.start < hi and lo < sub.end
                                            for lo, hi in _credential_spans(url)):
                found.append(sub.value)
        if _is_url(sub.path):
            urls.add(sub.path)
    probes = data.get("probes") if isinstance(data, dict) else None
    auth = data.get("auth") if isinstance(data, dict) else None
    for i in range(len(probes) if isinstance(probes, list) else 0):
        for kind in ("http", "websocket"):
            urls.update({("probes", i, kind, "url"), ("probes", i, kind, "auth", "url")})
    for name in auth if isinstance(auth, dict) else ():
        urls.add(("auth", name, "url"))
    for path in urls:
        url = _lookup(data, path)
        if isinstance(url, str):
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                # The password, and user:password as it travels (base64 in a Basic header).
                user = urlsplit(url).username or ""
                found += [unquote(password), password, f"{unquote(user)}:{unquote(password)}"]
    return tuple(dict.fromkeys(s for s in found if s))


def _loc_to_path(loc: tuple[Any, ...], data: Any, missing: bool) -> Path_:
    """Map a pydantic error location to a path in the data.

    Tagged unions insert the tag (``jwt``) and function validators insert names that are
    not keys of the data; walk the data and keep only the elements that exist in it.
    """
    path: list[str | int] = []
    node = data
    for elem in loc:
        key = elem
        if isinstance(elem, str) and elem.endswith("_"):  # field `json_` is key `json`
            key = elem[:-1]
        in_map = isinstance(node, dict) and isinstance(key, str) and key in node
        in_seq = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_map or in_seq:
            path.append(key)
            node = node[key]
        elif missing and isinstance(node, dict) and isinstance(elem, str) and elem == loc[-1]:
            path.append(elem)  # a missing required key: name it
    return tuple(path)


def _display(path: Path_) -> str:
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif not elem or not elem.isprintable() or any(c in elem for c in " .[]'\""):
            out += f"[{elem!r}]"  # a key that would not read as one: '', 'a b', 'a.b'
        else:
            out += f".{elem}" if out else elem
    return out or "(top level)"


def _fields_at(model: type[BaseModel], path: Path_) -> list[str]:
    """The field names accepted at ``path`` (a mapping inside ``model``), for 'did you mean'."""
    candidates: list[Any] = [model]
    for elem in path:
        nxt: list[Any] = []
        for cand in candidates:
            for tp in _expand(cand):
                if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(elem, str):
                    for fname, f in tp.model_fields.items():
                        if elem in (fname, f.alias):
                            nxt.append(f.annotation)
                elif isinstance(elem, int) and typing.get_origin(tp) in (list, tuple):
                    nxt.extend(a for a in typing.get_args(tp) if a is not Ellipsis)
                elif isinstance(elem, str) and typing.get_origin(tp) is dict:
                    nxt.append(typing.get_args(tp)[1])
        candidates = nxt
    names: list[str] = []
    for cand in candidates:
        for tp in _expand(cand):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                names.extend(f.alias or n for n, f in tp.model_fields.items())
    return names


def _expand(tp: Any) -> list[Any]:
    """Unwrap Annotated / Optional / Union into their member types."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _expand(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [x for a in typing.get_args(tp) for x in _expand(a)]
    return [tp]


def _message(err: Any, data: Any, path: Path_) -> str:
    etype = err["type"]
    msg = str(err["msg"])
    if etype == "extra_forbidden":
        key = path[-1] if path else ""
        allowed = _fields_at(ProbesFile, path[:-1])
        guess = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else (
            f"; expected one of: {', '.join(sorted(set(allowed)))}" if allowed else "")
        return f"unknown key{hint}"
    if etype == "missing":
        return "is required"
    if etype == "union_tag_invalid":
        return "type must be one of: jwt, token_endpoint"
    if etype == "union_tag_not_found":
        return "needs a type (jwt or token_endpoint)"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if etype == "literal_error":
        return msg.replace("Input should be", "must be")
    if etype in ("string_type", "int_type", "bool_type", "dict_type", "list_type",
                 "tuple_type", "float_type", "model_type", "int_parsing", "bool_parsing",
                 "float_parsing"):
        return msg.replace("Input should be", "must be")
    return msg


def _validate_semantics(model: ProbesFile, problems: list[tuple[Path_, str]],
                        env: Mapping[str, str]) -> tuple[list[Probe], list[str], list[str]]:
    seen: dict[str, int] = {}
    probes: list[Probe] = []
    warnings: list[str] = []
    label_names: set[str] = set()
    for key in model.defaults.labels:
        if not _LABEL_NAME.match(key) or key in RESERVED_LABELS:
            problems.append((("defaults", "labels", key),
                             "label name must match [a-zA-Z_][a-zA-Z0-9_]* and not be one of "
                             + ", ".join(sorted(RESERVED_LABELS))))
    for name, provider in model.auth.items():
        if isinstance(provider, JwtAuth) and provider.secret is not None:
            problems.append((("auth", name, "secret"),
                             f"inline secrets are refused in shared auth providers; {SECRET_DOC}"))
    for i, spec in enumerate(model.probes):
        if spec.name in seen:
            problems.append((("probes", i, "name"),
                             f"duplicate probe name '{spec.name}' "
                             f"(first used by probes[{seen[spec.name]}])"))
        seen.setdefault(spec.name, i)
        interval = spec.interval or model.defaults.interval
        timeout = spec.timeout or model.defaults.timeout
        if timeout >= interval:
            problems.append((("probes", i, "timeout" if spec.timeout else "interval"),
                             f"timeout ({format_duration(timeout)}) must be shorter than the "
                             f"interval ({format_duration(interval)})"))
        labels = {**model.defaults.labels, **spec.labels}
        for key in spec.labels:
            if not _LABEL_NAME.match(key) or key in RESERVED_LABELS:
                problems.append((("probes", i, "labels", key),
                                 "label name must match [a-zA-Z_][a-zA-Z0-9_]* and not be one "
                                 "of " + ", ".join(sorted(RESERVED_LABELS))))
        label_names.update(labels)
        kind = spec.http or spec.websocket
        assert kind is not None
        ref = kind.auth
        auth_name: str | None = None
        auth: JwtAuth | TokenEndpointAuth | None = None
        if isinstance(ref, str):
            auth_name = ref
            if ref not in model.auth:
                known = ", ".join(model.auth) or "none defined"
                guess = difflib.get_close_matches(ref, list(model.auth), n=1)
                problems.append((("probes", i, spec.type, "auth"),
                                 f"unknown auth provider '{ref}'"
                                 + (f"; did you mean '{guess[0]}'?" if guess else
                                    f" (defined: {known})")))
            else:
                auth = model.auth[ref]
        elif ref is not None:
            auth = ref
            auth_name = f"{spec.name}/inline"
            rejected = spec.websocket is not None and spec.websocket.expect_rejected
            if isinstance(ref, JwtAuth) and ref.secret is not None and not rejected:
                problems.append((("probes", i, spec.type, "auth", "secret"),
                                 "inline secrets are allowed only on negative probes "
                                 f"(expect_rejected: true); {SECRET_DOC}"))
        if spec.http is not None and ref is not None and "@" in urlsplit(spec.http.url).netloc:
            # aiohttp refuses to send both; the probe could only ever report config_error.
            problems.append((("probes", i, "http", "auth"),
                             "cannot be combined with credentials in the URL (both would be "
                             "sent as the Authorization header)"))
        if spec.websocket is not None and "subprotocol" in spec.websocket.send_token_as \
                and auth is None and ref is None:
            problems.append((("probes", i, "websocket", "send_token_as"),
                             "sending the token needs an auth provider (websocket.auth)"))
        if spec.websocket is not None and spec.websocket.expect_rejected \
                and spec.websocket.steps:
            warnings.append(f"probes[{i}] ({spec.name}): steps are ignored on a negative probe")
        for missing in _missing_secrets(auth, env):
            warnings.append(f"probes[{i}] ({spec.name}): {missing}")
        probes.append(Probe(spec=spec, interval=interval, timeout=timeout,
                            labels=tuple(sorted(labels.items())),
                            auth_name=auth_name, auth=auth))
    return probes, warnings, sorted(label_names)


def _missing_secrets(auth: JwtAuth | TokenEndpointAuth | None,
                     env: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    if isinstance(auth, JwtAuth):
        if auth.secret_env and not env.get(auth.secret_env):
            out.append(f"secret environment variable {auth.secret_env} is not set")
        for f in (auth.secret_file, auth.private_key_file):
            if f and not os.path.isfile(f):
                out.append(f"secret file {f} does not exist")
    elif isinstance(auth, TokenEndpointAuth):
        for var in auth.secret_fields_env.values():
            if not env.get(var):
                out.append(f"secret environment variable {var} is not set")
        for f in auth.secret_fields_file.values():
            if not os.path.isfile(f):
                out.append(f"secret file {f} does not exist")
    return out


def load_text(text: str, name: str = "probes.yaml",
              env: Mapping[str, str] | None = None) -> Config:
    """Parse and validate config text. Raises :class:`ConfigError` listing every problem."""
    env = os.environ if env is None else env
    deep = _too_deep_at(text)
    if deep is not None:
        raise ConfigError([f"{name}:{deep}: the document is nested too deeply "
                           f"(more than {MAX_FLOW_DEPTH} levels of brackets)"])
    try:
        root = _compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}" if mark is not None else "?"
        problem = exc.problem or exc.context or "invalid YAML"
        if problem == "second occurrence" and exc.context_mark is not None:
            # libyaml refuses an anchor defined again: "found duplicate anchor; first
            # occurrence" (context) ... "second occurrence" (problem).
            problem = f"an anchor is defined twice (first on line {exc.context_mark.line + 1})"
        raise ConfigError([f"{name}:{line}: invalid YAML: {_cut(problem)}"]) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise ConfigError([f"{name}:?: invalid YAML: {_cut(str(exc))}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    except Exception as exc:  # never a traceback for a bad file
        raise ConfigError([f"{name}:?: invalid YAML: the parser failed "
                           f"({type(exc).__name__}: {_cut(str(exc))})"]) from None
    if root is not None and (not isinstance(root, MappingNode) or root.tag == _SET):
        raise ConfigError([f"{name}:1: the top level must be a mapping with "
                           "defaults, auth and probes"])
    lines: dict[Path_, int] = {(): 1}
    problems: list[tuple[Path_, str]] = []
    subs: list[_Sub] = []
    try:
        data = {} if root is None else _Walker(lines, env, problems, subs).walk(root, ())
    except _YamlProblem as exc:
        where = "?" if exc.line is None else exc.line
        raise ConfigError([f"{name}:{where}: invalid YAML: {_cut(exc.message)}"]) from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    except _TooBig:
        raise ConfigError([f"{name}:?: the document expands to more than {MAX_VALUES} values "
                           "(aliases of aliases?)"]) from None
    del root  # the node tree: several times the size of the data, and not needed any more
    source = _Source(name, lines)
    secrets = _secrets(data, subs)
    # An error may quote a value (a URL, say) with a secret substituted into it.
    redactor = Redactor(secrets)

    def render(items: list[tuple[Path_, str]]) -> list[str]:
        out = []
        for path, msg in items:
            line = source.line_of(path)
            out.append(f"{name}:{line if line is not None else '?'}: {_display(path)}: "
                       f"{redactor.redact(msg)}")
        return out

    try:
        model = ProbesFile.model_validate(data, context={"shared": {}})
    except ValidationError as exc:
        substituted = [p for p, _ in problems]
        for err in exc.errors():
            path = _loc_to_path(tuple(err["loc"]), data, err["type"] == "missing")
            # A value emptied by an unset ${VAR} is already reported as such.
            if any(path[:len(s)] == s for s in substituted):
                continue
            problems.append((path, _message(err, data, path)))
        raise ConfigError(render(_dedupe(problems))) from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    if problems:  # unset ${VAR}s
        raise ConfigError(render(_dedupe(problems)))
    probes, warnings, label_names = _validate_semantics(model, problems, env)
    if problems:
        raise ConfigError(render(_dedupe(problems)))
    return Config(path=name, probes=tuple(probes),
                  label_names=tuple(label_names), warnings=tuple(warnings), secrets=secrets)


def _dedupe(items: list[tuple[Path_, str]]) -> list[tuple[Path_, str]]:
    seen: set[tuple[Path_, str]] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def substituted_data(text: str, env: Mapping[str, str]) -> Any:
    """The document as plain data with ``${VAR}`` substituted exactly as :func:`load_text`
    does it, before any validation: what the JSON Schema (``synthmon schema``) is checked
    against. YAML that does not parse raises PyYAML's error; unset variables without a
    default become empty strings (load_text reports them)."""
    root = _compose(text)
    return {} if root is None else _Walker({(): 1}, env, [], []).walk(root, ())


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: cannot read: {exc}"]) from None
    return load_text(text, name=str(path), env=env)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of probes.yaml, generated from the models above."""
    schema = ProbesFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "synthmon probes.yaml"
    return schema
