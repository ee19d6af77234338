"""Each variant's credential, built from a valid provider, differs from a valid token in
exactly the one way it tests: decoded with the real key and PyJWT's checks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from monitor.auth.variants import (
    OUT_OF_LEEWAY,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    build,
)
from monitor.config import JwtAuth, TokenEndpointAuth

KEY = "the-real-secret-of-staging-0123456789"
SPEC = JwtAuth(type="jwt", secret_env="X", claims={"sub": "u1", "iss": "auth-svc",
                                                    "aud": "backend"})
NOW = 1_800_000_000.0


def header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def verify(token: str, **options: bool) -> dict[str, Any]:
    return dict(jwt.decode(token, KEY, algorithms=["HS256"], audience="backend",
                           issuer="auth-svc", options=options or None,
                           leeway=0))


def made(variant: str, **kw: Any) -> Any:
    return build(variant, kw.pop("spec", SPEC), key=KEY, valid_token=kw.pop("valid", "VALID"),
                 now=kw.pop("now", time.time()), bypass_headers=kw.pop("bypass", {}))


@pytest.mark.parametrize(("variant", "error", "options"), [
    ("expired", jwt.ExpiredSignatureError, {"verify_exp": False}),
    ("not_yet_valid", jwt.ImmatureSignatureError, {"verify_nbf": False}),
    ("wrong_issuer", jwt.InvalidIssuerError, {"verify_iss": False}),
    ("wrong_audience", jwt.InvalidAudienceError, {"verify_aud": False}),
    ("bad_signature", jwt.InvalidSignatureError, {"verify_signature": False}),
])
def test_each_signed_variant_fails_exactly_one_check(variant: str, error: type[Exception],
                                                     options: dict[str, bool]) -> None:
    token = made(variant).credential.token
    with pytest.raises(error):
        verify(token)
    # ... and passes every check once that one is switched off: nothing else is wrong.
    claims = verify(token, **options)
    assert claims["sub"] == "u1"


def test_expired_and_not_yet_valid_are_outside_any_leeway() -> None:
    exp = jwt.decode(made("expired", now=NOW).credential.token, options={
        "verify_signature": False})
    assert exp["exp"] == NOW - OUT_OF_LEEWAY
    nbf = jwt.decode(made("not_yet_valid", now=NOW).credential.token, options={
        "verify_signature": False})
    assert nbf["nbf"] == NOW + OUT_OF_LEEWAY and nbf["exp"] > nbf["nbf"]


def test_wrong_claims_carry_the_wrong_values() -> None:
    opts = {"verify_signature": False}
    assert jwt.decode(made("wrong_issuer").credential.token, options=opts)["iss"] == WRONG_ISSUER
    assert jwt.decode(made("wrong_audience").credential.token, options=opts,
                      audience=WRONG_AUDIENCE)["aud"] == WRONG_AUDIENCE


def test_alg_none_is_unsigned_with_valid_claims() -> None:
    token = made("alg_none").credential.token
    assert header(token)["alg"] == "none" and token.endswith(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "u1" and claims["exp"] > time.time()


def test_bad_signature_keeps_the_throwaway_key_for_redaction() -> None:
    built = made("bad_signature")
    (key,) = built.throwaway_keys
    assert jwt.decode(built.credential.token, key, algorithms=["HS256"], audience="backend")


def test_bypass_headers_sends_a_bad_token_and_the_headers() -> None:
    built = made("bypass_headers", bypass={"X-E2E-Test": "true"})
    assert built.credential.headers == (("X-E2E-Test", "true"),)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(built.credential.token)


@pytest.mark.parametrize(("variant", "token", "placements"), [
    ("no_token", None, ()),
    ("token_in_query_only", "VALID", ("query",)),
])
def test_placement_variants(variant: str, token: str | None,
                            placements: tuple[str, ...]) -> None:
    cred = made(variant).credential
    assert (cred.token, cred.placements, cred.headers) == (token, placements, ())


def test_rs256_bad_signature_uses_a_random_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = real.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    spec = JwtAuth(type="jwt", algorithm="RS256", private_key_file="/nonexistent",
                   claims={"sub": "u"})
    built = build("bad_signature", spec, key=pem, valid_token=None, now=time.time(),
                  bypass_headers={})
    assert built.throwaway_keys == ()  # a PEM key never appears in a request
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(built.credential.token, real.public_key(), algorithms=["RS256"])


@pytest.mark.parametrize("variant", ["expired", "alg_none", "bypass_headers"])
def test_jwt_variants_refuse_a_token_endpoint(variant: str) -> None:
    spec = TokenEndpointAuth(type="token_endpoint", url="http://127.0.0.1:1/t")
    with pytest.raises(ValueError, match="needs a jwt provider"):
        build(variant, spec, key=None, valid_token="t", now=NOW, bypass_headers={})
