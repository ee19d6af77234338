"""The credentials of a negative probe's variants: each a way a backend fails open, built
from the probe's own *valid* provider so that the only thing wrong is the one thing tested.

Pure: the key, the valid token and the clock come in as arguments; :func:`build` returns a
:class:`Credential` and the throw-away keys it made (for the redactor). Reading the key and
fetching the valid token is :class:`monitor.auth.TokenSource`'s job.
"""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from monitor.config import JwtAuth, TokenEndpointAuth, TokenPlacement
from monitor.frozen import fast_init

# A token that expired this long ago (or becomes valid this far ahead) is outside any clock
# skew leeway a server may allow (they are seconds to minutes).
OUT_OF_LEEWAY = 3600
WRONG_ISSUER = "synthmon-wrong-issuer"
WRONG_AUDIENCE = "synthmon-wrong-audience"


@fast_init
@dataclass(frozen=True, slots=True)
class Credential:
    """What one run sends: the token (None: nothing), where it goes (None: the probe's own
    ``send_token_as``), and extra request headers."""

    token: str | None
    placements: tuple[TokenPlacement, ...] | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Built:
    credential: Credential
    throwaway_keys: tuple[str, ...] = ()  # random keys made for it: redacted like secrets


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def base_claims(spec: JwtAuth, now: float, jti: str) -> dict[str, Any]:
    """The claims a valid token of ``spec`` minted at ``now`` carries."""
    claims: dict[str, Any] = {"iat": int(now), "exp": int(now + spec.ttl), "jti": jti}
    claims.update(spec.claims)
    return claims


def sign(claims: Mapping[str, Any], key: str, algorithm: str,
         headers: Mapping[str, str] | None = None) -> str:
    import jwt
    from jwt.warnings import InsecureKeyLengthWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(dict(claims), key, algorithm=algorithm, headers=dict(headers or {})
                          or None)


def unsigned(claims: Mapping[str, Any]) -> str:
    """An ``alg: none`` JWT: header and claims, and an empty signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    return f"{header}.{body}."


@cache
def _random_private_key(algorithm: str) -> str:
    """One random PEM key per algorithm family and process: generating RSA keys is slow,
    and a key nobody else has is all a bad signature needs."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key: Any
    if algorithm.startswith("ES"):
        curve = ec.SECP384R1() if algorithm == "ES384" else ec.SECP256R1()
        key = ec.generate_private_key(curve)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem: bytes = key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return pem.decode("ascii")


def random_key(algorithm: str) -> tuple[str, bool]:
    """A key the server cannot know, for ``algorithm``; and whether it is a throw-away
    secret to redact (HMAC keys; PEM keys never appear in a request)."""
    if algorithm.startswith("HS"):
        return secrets.token_urlsafe(32), True
    return _random_private_key(algorithm), False


def build(variant: str, spec: JwtAuth | TokenEndpointAuth, *, key: str | None,
          valid_token: str | None, now: float, bypass_headers: Mapping[str, str],
          jti: str | None = None) -> Built:
    """The credential of ``variant``. ``key`` is the valid provider's signing key (jwt
    providers); ``valid_token`` is a valid token (for the variants that send one). Raises
    ValueError for a variant the provider cannot make (the config check refuses those at
    load, so this is a bug guard)."""
    jti = jti or secrets.token_hex(16)
    if variant == "no_token":
        return Built(Credential(None, placements=()))
    if variant == "token_in_query_only":
        if valid_token is None:
            raise ValueError("token_in_query_only needs a valid token")
        return Built(Credential(valid_token, placements=("query",)))
    if not isinstance(spec, JwtAuth) or key is None:
        raise ValueError(f"variant {variant} needs a jwt provider and its key")
    claims = base_claims(spec, now, jti)
    if variant == "expired":
        claims["iat"] = int(now - 2 * OUT_OF_LEEWAY)
        claims["exp"] = int(now - OUT_OF_LEEWAY)
        return Built(Credential(sign(claims, key, spec.algorithm, spec.headers)))
    if variant == "not_yet_valid":
        claims["nbf"] = int(now + OUT_OF_LEEWAY)
        claims["exp"] = int(now + OUT_OF_LEEWAY + spec.ttl)
        return Built(Credential(sign(claims, key, spec.algorithm, spec.headers)))
    if variant == "wrong_issuer":
        if "iss" not in claims:
            raise ValueError("wrong_issuer needs an iss claim")
        claims["iss"] = WRONG_ISSUER
        return Built(Credential(sign(claims, key, spec.algorithm, spec.headers)))
    if variant == "wrong_audience":
        if "aud" not in claims:
            raise ValueError("wrong_audience needs an aud claim")
        claims["aud"] = WRONG_AUDIENCE
        return Built(Credential(sign(claims, key, spec.algorithm, spec.headers)))
    if variant == "alg_none":
        return Built(Credential(unsigned(claims)))
    if variant in ("bad_signature", "bypass_headers"):
        other, redact = random_key(spec.algorithm)
        token = sign(claims, other, spec.algorithm, spec.headers)
        headers = tuple(bypass_headers.items()) if variant == "bypass_headers" else ()
        return Built(Credential(token, headers=headers), (other,) if redact else ())
    raise ValueError(f"unknown variant {variant!r}")


__all__ = ["Built", "Credential", "base_claims", "build", "random_key", "sign", "unsigned"]
