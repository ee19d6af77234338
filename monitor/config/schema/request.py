"""One HTTP request as a probe sends it: URL, method, headers, a body, auth as Bearer, TLS.
The kinds that make a plain request (``http:``, and a stream's) share these keys and their
checks; what each expects of the answer is its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from monitor.config.schema.auth import AuthSpec
from monitor.config.schema.base import HEADERS, HTTP_URL, JsonDict, check_headers, scheme_url
from monitor.config.schema.kind import KindSpec, Relative
from monitor.config.schema.tls import DEFAULT_TLS, TlsSpec

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# What the JSON Schema says of a request beyond its types (a kind adding rules of its own
# spreads these into its model's): one body at most; auth not with credentials in the URL,
# which aiohttp refuses, nor with an inline secret (negative probes only).
REQUEST_SCHEMA: JsonDict = {
    "not": {"required": ["body", "json_body"]},
    "if": {"required": ["auth"], "properties": {"auth": {"not": {"type": "null"}}}},
    "then": {"properties": {"url": {"not": {"pattern": "^[a-zA-Z]+://[^/@]*@"}},
                            "auth": {"not": {"type": "object", "required": ["secret"]}}}},
}


class RequestSpec(KindSpec):
    """An HTTP request: the keys every request-making kind shares."""

    model_config = ConfigDict(json_schema_extra=REQUEST_SCHEMA)
    REFERENCE_PLACES: ClassVar[tuple[str, ...]] = ("url", "headers.*", "json_body.**", "body")

    url: str = Field(description="http:// or https:// URL", json_schema_extra=HTTP_URL)
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="request headers",
                                    json_schema_extra=HEADERS)
    body: str | None = Field(None, description="a text request body")
    json_body: Any = Field(None, description="a JSON request body")
    auth: str | AuthSpec | None = Field(
        None, description="the name of an auth provider, or one inline; sent as Bearer"
    )
    tls: TlsSpec = Field(default_factory=lambda: DEFAULT_TLS)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return scheme_url(v, ("http", "https"))

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        return check_headers(v)

    @model_validator(mode="after")
    def _one_body(self) -> RequestSpec:
        if self.body is not None and self.json_body is not None:
            raise ValueError("body and json_body cannot both be set")
        return self

    CHECKED_KEYS: ClassVar[tuple[str, ...]] = ("url",)

    @classmethod
    def key_problems(cls, get: Callable[[str], Any], *, has_auth: bool | None
                     ) -> list[Relative]:
        url = get("url")
        if has_auth and isinstance(url, str) and "@" in _netloc(url):
            # aiohttp refuses to send both; the probe could only ever report config_error.
            return [(("auth",), "cannot be combined with credentials in the URL (both would "
                                "be sent as the Authorization header)")]
        return []


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc
    except ValueError:
        return ""


__all__ = ["REQUEST_SCHEMA", "Method", "RequestSpec"]
