"""``extract:`` on a flow step: the values a step takes from its answer for the steps after
it (``${steps.STEP.NAME}``), each by a JSON path, a header's name, or a regular expression
with one group (on the body, or on a header's value with ``header:`` beside it)."""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import Field, field_validator, model_validator

from monitor.config.schema.base import Model, check_regex

# A value's name: what ${steps.STEP.NAME} says after the step.
VALUE_NAME: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_VALUE_NAME = re.compile(VALUE_NAME)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
# Names that say a value is a credential: a login's token is secret unless said otherwise.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "credential", "cookie", "session",
                 "jwt", "bearer", "apikey", "api_key", "api-key", "private", "authorization")


class Extract(Model):
    """One value taken from a step's answer."""

    json_: str | None = Field(
        None, alias="json", min_length=1,
        description="dotted path in the answer's JSON (access_token, data.items.0.id); from "
                    "a WebSocket step, in the message its expect matched; from an SSE step, "
                    "in the matched event's data")
    header: str | None = Field(
        None, description="a response header's name (case-insensitive); with regex: the "
                          "header's value is what the regex reads")
    regex: str | None = Field(
        None, description="a regular expression with exactly one group, searched in the "
                          "body (the message, the event's data), or in the header's value "
                          "with header:; the group is the value")
    secret: bool | None = Field(
        None, description="redact the value in every output from the moment it is "
                          "extracted; by default true when the value's name, its path or its "
                          "header says credential (token, password, session, cookie, ...)")

    @field_validator("header")
    @classmethod
    def _header_name(cls, v: str | None) -> str | None:
        if v is not None and not _HEADER_NAME.match(v):
            raise ValueError("must be a header name (letters, digits and - _ . ! # ...)")
        return v

    @field_validator("regex")
    @classmethod
    def _one_group(cls, v: str | None) -> str | None:
        if v is not None:
            check_regex(v)
            groups = re.compile(v).groups
            if groups != 1:
                raise ValueError(f"must have exactly one group (the value), it has {groups}; "
                                 "write other groups as (?:...)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Extract:
        problem = source_problem({k for k in ("json", "header", "regex")
                                  if getattr(self, k + ("_" if k == "json" else "")) is not None})
        if problem:
            raise ValueError(problem)
        return self


def source_problem(present: set[str]) -> str | None:
    """What is wrong with the keys an extract was given, or None."""
    if not present:
        return "needs json: PATH, header: NAME or regex: RE (one group)"
    if present in ({"json"}, {"header"}, {"regex"}, {"header", "regex"}):
        return None
    if "json" in present:
        return "json cannot be combined with header or regex: take one source"
    return None


def looks_secret(name: str, spec: Extract) -> bool:
    """The default of ``secret``: the value's name, its JSON path or its header names a
    credential (a login's access_token, a Set-Cookie, an X-Session-Id)."""
    words = " ".join(w for w in (name, spec.json_ or "", spec.header or "")).lower()
    return any(w in words for w in _SECRET_WORDS)


def secret_value(name: str, spec: Extract) -> bool:
    """Whether the value ``name`` is redacted once extracted."""
    return spec.secret if spec.secret is not None else looks_secret(name, spec)


def check_value_names(values: dict[str, Any]) -> dict[str, Any]:
    for name in values:
        if not _VALUE_NAME.match(name):
            raise ValueError(f"{name!r}: a value's name must be a letter or _ then letters, "
                             "digits or _ (at most 64): it is written ${steps.STEP.NAME}")
    return values


__all__ = ["VALUE_NAME", "Extract", "check_value_names", "looks_secret", "secret_value",
           "source_problem"]
