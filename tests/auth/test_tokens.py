"""Auth providers: JWTs minted with PyJWT, tokens fetched from an endpoint, redaction."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from monitor.auth import AuthError, TokenSource, mint_jwt
from monitor.config import JwtAuth, TokenEndpointAuth, load_text
from monitor.keep import Keeper
from monitor.outcomes import Outcome
from monitor.redact import REDACTED, Redactor
from tests.support.servers import serving

SECRET = "hs-secret-" + "0123456789abcdef" * 4


def jwt_spec(**kw: Any) -> JwtAuth:
    body = {"type": "jwt", "secret_env": "JWT_TEST_SECRET",
            "claims": {"sub": "e2e-user", "permissions": ["read", "write"]}, "ttl": "10m", **kw}
    return JwtAuth.model_validate(body)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_jwt_claims_iat_exp(monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    monkeypatch.setenv("JWT_TEST_SECRET", SECRET)
    token, exp, secrets = mint_jwt(jwt_spec(algorithm=algorithm), now=1_000_000.0)
    claims = jwt.decode(token, SECRET, algorithms=[algorithm],
                        options={"verify_exp": False})
    assert claims["sub"] == "e2e-user" and claims["permissions"] == ["read", "write"]
    assert claims["iat"] == 1_000_000 and claims["exp"] == 1_000_600 and exp == 1_000_600
    assert secrets == [SECRET]


def _write_key(tmp_path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def test_rs256_and_es256_from_private_key_file(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    spec = JwtAuth.model_validate({"type": "jwt", "algorithm": "RS256",
                                   "private_key_file": str(_write_key(tmp_path, rsa_key)),
                                   "claims": {"sub": "rsa"}})
    token, _, _ = mint_jwt(spec)
    assert jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"])["sub"] == "rsa"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    spec = JwtAuth.model_validate({"type": "jwt", "algorithm": "ES256",
                                   "private_key_file": str(_write_key(tmp_path, ec_key)),
                                   "claims": {"sub": "ec"}})
    token, _, _ = mint_jwt(spec)
    assert jwt.decode(token, ec_key.public_key(), algorithms=["ES256"])["sub"] == "ec"


def test_bad_key_file_never_quotes_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not-a-pem-but-a-secret-value")
    spec = JwtAuth.model_validate({"type": "jwt", "algorithm": "RS256",
                                   "private_key_file": str(bad)})
    with pytest.raises(AuthError) as info:
        mint_jwt(spec)
    assert "not-a-pem" not in str(info.value)
    assert info.value.outcome is Outcome.CONFIG_ERROR


def test_missing_secret_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_TEST_SECRET", raising=False)
    with pytest.raises(AuthError, match="JWT_TEST_SECRET is not set"):
        mint_jwt(jwt_spec())
    spec = JwtAuth.model_validate({"type": "jwt", "secret_file": str(tmp_path / "missing")})
    with pytest.raises(AuthError, match="cannot read"):
        mint_jwt(spec)
    (tmp_path / "s").write_text(SECRET + "\n")
    spec = JwtAuth.model_validate({"type": "jwt", "secret_file": str(tmp_path / "s")})
    token, _, _ = mint_jwt(spec)
    jwt.decode(token, SECRET, algorithms=["HS256"])


async def test_token_source_caches_and_reminted_before_expiry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_TEST_SECRET", SECRET)
    redactor = Redactor()
    source = TokenSource(redactor)
    spec = jwt_spec(ttl="1s")
    first = await source.token("a", spec)
    assert await source.token("a", spec) == first
    await asyncio.sleep(0.85)  # 80% of the lifetime gone: re-minted
    second = await source.token("a", spec)
    assert second != first
    assert redactor.redact(f"x {first} y {second}") == f"x {REDACTED} y {REDACTED}"
    assert redactor.redact(SECRET) == REDACTED


async def test_the_cached_credential_is_what_credential_returns_without_waiting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run takes its credential without a wait when credential() would not wait: no
    auth, or the provider's token fresh in the cache; anything else is credential()'s."""
    monkeypatch.setenv("JWT_TEST_SECRET", SECRET)
    probes = {p.spec.name if p.variant is None else f"{p.spec.name}:{p.variant}": p
              for p in load_text("""
auth:
  jwt: {type: jwt, secret_env: JWT_TEST_SECRET, claims: {sub: u}, ttl: 1s}
probes:
  - name: open
    http: {url: "http://127.0.0.1:9/", expect: {status: 200}}
  - name: signed
    http: {url: "http://127.0.0.1:9/", auth: jwt, expect: {status: 200}}
  - name: neg
    http: {url: "http://127.0.0.1:9/", auth: jwt, expect_rejected: true,
           variants: [no_token, expired]}
""").probes}
    source = TokenSource(Redactor())
    assert source.cached_credential(probes["open"]) == await source.credential(probes["open"])
    assert source.cached_credential(probes["signed"]) is None  # nothing minted yet
    minted = await source.credential(probes["signed"])
    assert source.cached_credential(probes["signed"]) == minted
    assert source.cached_credential(probes["neg:no_token"]) is None
    assert source.cached_credential(probes["neg:expired"]) is None
    await asyncio.sleep(0.85)  # 80% of the lifetime gone: credential() would mint again
    assert source.cached_credential(probes["signed"]) is None
    assert await source.credential(probes["signed"]) != minted


class TokenServer:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        self.expires_in: int | None = 3600

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(body)
        if self.status != 200:
            return web.json_response({"error": "denied"}, status=self.status)
        answer: dict[str, Any] = {"access_token": f"tok-{len(self.calls)}-abcdef"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return web.json_response(answer)


@pytest.fixture
async def token_server() -> Any:
    server = TokenServer()
    app = web.Application()
    app.router.add_post("/auth/token", server.handle)
    async with serving(app) as base:
        yield server, f"{base}/auth/token"


async def test_token_endpoint_posts_credentials_and_caches(
        token_server: tuple[TokenServer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = token_server
    monkeypatch.setenv("E2E_PASSWORD", "pw-very-secret-1234")
    spec = TokenEndpointAuth.model_validate({
        "type": "token_endpoint", "url": url, "fields": {"username": "e2e"},
        "secret_fields_env": {"password": "E2E_PASSWORD"}})
    redactor = Redactor()
    source = TokenSource(redactor)
    async with aiohttp.ClientSession() as session:
        assert await source.token("login", spec, session) == "tok-1-abcdef"
        assert await source.token("login", spec, session) == "tok-1-abcdef"
        assert server.calls == [{"username": "e2e", "password": "pw-very-secret-1234"}]
        assert redactor.redact("pw-very-secret-1234 tok-1-abcdef") == f"{REDACTED} {REDACTED}"
        source.forget()
        server.status = 401
        with pytest.raises(AuthError) as info:
            await source.token("login", spec, session)
        assert info.value.outcome is Outcome.CREDENTIALS_UNAVAILABLE


async def test_token_endpoint_without_expiry_uses_default_ttl(
        token_server: tuple[TokenServer, str]) -> None:
    server, url = token_server
    server.expires_in = None
    spec = TokenEndpointAuth.model_validate({"type": "token_endpoint", "url": url,
                                             "default_ttl": "0.5s"})
    source = TokenSource(Redactor())
    async with aiohttp.ClientSession() as session:
        assert await source.token("t", spec, session) == "tok-1-abcdef"
        await asyncio.sleep(0.45)
        assert await source.token("t", spec, session) == "tok-2-abcdef"


def test_token_endpoint_config_from_yaml() -> None:
    config = load_text(
        "auth:\n  login:\n    type: token_endpoint\n    url: http://127.0.0.1:1/auth/token\n"
        "    secret_fields_env: {password: PW}\nprobes:\n  - name: p\n"
        "    http: {url: 'http://127.0.0.1:1/', auth: login}\n", env={})
    assert isinstance(config.probes[0].auth, TokenEndpointAuth)
    assert [m.text for m in config.missing_secrets] == [
        "probes.yaml:5: auth.login.secret_fields_env.password: secret environment variable PW "
        "is not set"]


def test_redactor_forms_and_headers() -> None:
    r = Redactor(["s3cr3t-value"])
    b64 = base64.b64encode(b"s3cr3t-value").decode()
    assert r.redact(f"a s3cr3t-value b {b64} c") == f"a {REDACTED} b {REDACTED} c"
    assert r.header("Authorization", "Bearer abc.def") == f"Bearer {REDACTED}"
    assert r.header("Sec-WebSocket-Protocol", "jwt.abcdef, jwt-auth") == \
        f"jwt.{REDACTED}, jwt-auth"
    assert r.header("Content-Type", "application/json") == "application/json"
    headers, omitted = Keeper(r).headers([("Cookie", "a=b")])
    assert json.dumps(headers) == json.dumps([["Cookie", REDACTED]]) and omitted == 0
    # A cookie's first word is the cookie itself: never kept as if it were a scheme.
    assert r.header("Set-Cookie", "sid=abc123; Path=/; HttpOnly") == REDACTED
    assert r.header("Cookie", "sid=abc123; theme=dark") == REDACTED
    assert r.header("X-Api-Key", "key abc123") == REDACTED
    # A header whose name says credential, whatever it is called (a login handing its
    # token over in a header of its own): hidden whole, though no secret is known yet.
    for name in ("X-Access-Token", "x-session-id", "X-Refresh-Token", "Api-Key",
                 "X-Client-Secret", "X-Credential"):
        assert r.header(name, "eyJ.abc.def") == REDACTED, name
    assert r.header("WWW-Authenticate", 'Bearer error="invalid_token"') == \
        'Bearer error="invalid_token"'  # a challenge, not a credential: kept as evidence


def test_redactor_keeps_only_recent_tokens_per_provider() -> None:
    r = Redactor(["long-lived-secret"])
    tokens = [f"token-number-{i:04d}" for i in range(10)]
    for t in tokens:
        r.add_token("jwt", t)
    assert r.redact(tokens[-1]) == REDACTED
    assert r.redact(tokens[-Redactor.TOKENS_KEPT]) == REDACTED
    assert r.redact(tokens[0]) == tokens[0]  # long expired: forgotten
    assert r.redact("long-lived-secret") == REDACTED


def test_redacted_excerpt_replaces_a_secret_straddling_the_cut() -> None:
    secret = "straddling-secret-" + "z" * 40
    r = Redactor([secret])
    body = "a" * 1000 + secret + "b" * 5000
    keep = Keeper(r)
    shown = keep.excerpt(body.encode())
    assert shown is not None and secret[:10] not in shown
    assert shown.startswith("a" * 1000 + REDACTED) and shown.endswith("…")
    assert keep.excerpt(b"") is None and keep.excerpt(None) is None
