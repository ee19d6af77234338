"""An ``http:`` probe: the request (the keys of :mod:`.request`), what its answer must look
like, and how redirects are followed."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from monitor.config.fields import Duration, StatusSet
from monitor.config.schema.base import JsonDict, Shared, check_regex
from monitor.config.schema.negative import Negative
from monitor.config.schema.request import REQUEST_SCHEMA, RequestSpec

# What aiohttp can receive: it speaks HTTP/1.1 (HTTP/2 and 3 are never negotiated).
HttpVersion = Literal["HTTP/1.0", "HTTP/1.1"]
_VERSION_SCHEMA: JsonDict = {"enum": list(get_args(HttpVersion))}
HttpVersions = Annotated[
    tuple[HttpVersion, ...],
    BeforeValidator(lambda v: [v] if isinstance(v, str) else v),  # one, or a list
    WithJsonSchema({"anyOf": [_VERSION_SCHEMA, {"type": "array", "items": _VERSION_SCHEMA}],
                    "description": "HTTP/1.0 or HTTP/1.1, or a list of these"}),
]
MAX_REDIRECTS = 20  # as browsers; blackbox_exporter and Go's client stop after 10


class HttpExpect(Shared):
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
        default_factory=dict, description="header name to a regex that one of its values "
        "must match (a header sent several times passes when any value matches)"
    )
    headers_not: dict[str, str] = Field(
        default_factory=dict, description="header name to a regex that none of its values "
        "may match: every value is checked (blackbox_exporter's fail_if_header_matches); a "
        "missing header passes, and \"\" forbids the header")
    tls: bool = Field(
        False, description="the final answer must have come over TLS: an https:// target "
        "redirected to http:// fails (blackbox_exporter's fail_if_not_ssl)")
    http_version: HttpVersions = Field(
        (), description="the answer's HTTP version must be one of these (none: any); the "
        "probe speaks HTTP/1.1, so an answer is HTTP/1.1 or HTTP/1.0")
    max_latency: Duration | None = Field(
        None, description="budget of the whole request; slower ends in outcome slow")

    @field_validator("body_regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            check_regex(v)
        return v

    @field_validator("headers", "headers_not")
    @classmethod
    def _header_regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern in v.values():
            check_regex(pattern)
        return v


_DEFAULT_EXPECT = HttpExpect()


class HttpSpec(Negative, RequestSpec):
    """An HTTP request and what its answer must look like."""

    model_config = ConfigDict(json_schema_extra={
        **REQUEST_SCHEMA,
        "allOf": [
            {"if": {"required": ["max_redirects"]},
             "then": {"required": ["follow_redirects"],
                      "properties": {"follow_redirects": {"const": True}}}},
            # expect.tls on an http:// URL whose redirects are not followed never passes
            {"if": {"required": ["url", "expect"],
                    "properties": {"url": {"pattern": "^[hH][tT][tT][pP]://"},
                                   "expect": {"required": ["tls"],
                                              "properties": {"tls": {"const": True}}},
                                   "follow_redirects": {"const": False}}},
             "then": False},
        ],
    })
    # A read-back can compare with a value an earlier step extracted.
    REFERENCE_PLACES: ClassVar[tuple[str, ...]] = (*RequestSpec.REFERENCE_PLACES,
                                                   "expect.json.**")

    expect: HttpExpect = Field(default_factory=lambda: _DEFAULT_EXPECT,
                               description="what the answer must look like (default: any 2xx)")
    follow_redirects: bool = Field(
        False, description="follow 3xx answers (with a fresh cookie jar per run, as a "
        "browser keeps cookies across redirects); off, so that a redirect can be expected")
    max_redirects: int = Field(
        10, ge=1, le=MAX_REDIRECTS, description="with follow_redirects: the most redirects "
        "a run follows; one more ends in too_many_redirects")
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="bodies are read up to this cap")

    @model_validator(mode="after")
    def _redirects(self) -> HttpSpec:
        if "max_redirects" in self.model_fields_set and not self.follow_redirects:
            raise ValueError("max_redirects needs follow_redirects: true (without it no "
                             "redirect is followed)")
        if self.expect.tls and not self.follow_redirects and self.url.startswith("http:"):
            raise ValueError("expect.tls can never pass: the URL is http:// and "
                             "follow_redirects is off")
        return self
