"""The keys a negative probe adds, HTTP or WebSocket: expect_rejected, its variants (the
ways a backend fails open), bypass_headers and what counts as refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from monitor.config.schema.base import check_headers


@dataclass(frozen=True, slots=True)
class VariantInfo:
    """One way a backend fails open: its name (the ``variant`` label value), what a run of
    it sends in words, and what it needs of the probe's valid provider to be built."""

    name: str
    words: str
    needs_jwt: bool = True  # re-signs or re-shapes a JWT: needs a jwt provider's key
    needs_claim: str | None = None  # a claim the provider's tokens must carry


# The one list of variants, in the order they run and are documented (see
# monitor/auth/variants.py for how each is built from the probe's valid provider).
VARIANT_TABLE: tuple[VariantInfo, ...] = (
    VariantInfo("no_token", "a request without any token", needs_jwt=False),
    VariantInfo("expired", "an expired token (exp an hour ago)"),
    VariantInfo("not_yet_valid", "a token not valid yet (nbf an hour ahead)"),
    VariantInfo("bad_signature", "a token signed with a random key"),
    VariantInfo("alg_none", "an unsigned token (alg: none)"),
    VariantInfo("wrong_issuer", "a token with a wrong issuer (iss)", needs_claim="iss"),
    VariantInfo("wrong_audience", "a token with a wrong audience (aud)", needs_claim="aud"),
    VariantInfo("token_in_query_only", "a valid token in the query string only (?token=)",
                needs_jwt=False),
    VariantInfo("bypass_headers", "a token signed with a random key plus the bypass headers"),
)
VARIANTS: tuple[str, ...] = tuple(v.name for v in VARIANT_TABLE)
VARIANT_INFO: dict[str, VariantInfo] = {v.name: v for v in VARIANT_TABLE}
if TYPE_CHECKING:
    Variant = str
else:
    # Literal[("a", "b")] is Literal["a", "b"]: the type pydantic checks is the list above.
    Variant = Literal[VARIANTS]
# What a negative probe counts as refused: HTTP statuses, or a close code after accept.
DEFAULT_REFUSED_WITH: tuple[int, ...] = (401, 403, 1008)


def check_refused_with(v: tuple[int, ...]) -> tuple[int, ...]:
    """What counts as refused: HTTP statuses and close codes, at least one."""
    for code in v:
        if not (100 <= code <= 599 or 1000 <= code <= 4999):
            raise ValueError(f"{code} is neither an HTTP status (100-599) nor a close code "
                             "(1000-4999)")
    if not v:
        raise ValueError("must list at least one status or close code")
    return v


class Negative(BaseModel):
    """The keys a negative probe shares, HTTP or WebSocket."""

    expect_rejected: bool = Field(
        False, description="negative probe: success means the server refused the request")
    variants: tuple[Variant, ...] = Field(
        (), description="negative probe only: each a way a backend fails open, built from the "
        "probe's valid auth provider and run as its own run with a variant label: "
        + ", ".join(VARIANTS))
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
        return check_refused_with(v)

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
        return None if v is None else check_headers(v)
