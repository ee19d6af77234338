"""The ``auth`` section: a JWT minted locally or a token fetched from an endpoint."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitor.config.fields import Duration
from monitor.config.schema.base import HTTP_URL, Model, one_of, scheme_url

# The "exactly one of" rules are functions of the keys present: the models apply them, and
# :func:`monitor.config.checks.shape_problems` applies them to plain data as well, where a
# model's own validator does not run (one of its fields is invalid).
KEY_SOURCES = ("secret_env", "secret_file", "private_key_file", "secret")


def jwt_key_problem(present: set[str]) -> str | None:
    sources = [s for s in KEY_SOURCES if s in present]
    if len(sources) == 1:
        return None
    return ("needs exactly one of secret_env, secret_file, private_key_file"
            + (f" (got {', '.join(sources)})" if sources else ""))


class JwtAuth(Model):
    """A JWT minted locally with PyJWT and re-minted before it expires."""

    model_config = ConfigDict(json_schema_extra={
        **one_of("secret_env", "secret_file", "private_key_file", "secret"),
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
        problem = jwt_key_problem({s for s in KEY_SOURCES if getattr(self, s)})
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
    url: str = Field(description="the token endpoint: an http:// or https:// URL",
                     json_schema_extra=HTTP_URL)
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

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return scheme_url(v, ("http", "https"))


AuthSpec = Annotated[Union[JwtAuth, TokenEndpointAuth], Field(discriminator="type")]
