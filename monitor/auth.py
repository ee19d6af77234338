"""Credentials for probes: JWTs minted locally and tokens fetched from an endpoint.

Secrets are read at run time (so a rotated secret is picked up without a reload) and every
secret and token is registered with the :class:`~monitor.redact.Redactor` before use.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from monitor.config import JwtAuth, TokenEndpointAuth
from monitor.jsonpath import MISSING, lookup
from monitor.outcomes import Outcome
from monitor.redact import Redactor
from monitor.trace import TraceContext

# Re-mint or re-fetch when less than this share of the lifetime is left.
REFRESH_FRACTION = 0.2


class AuthError(Exception):
    """A token could not be produced. ``outcome`` is what the probe run reports."""

    def __init__(self, message: str, outcome: Outcome = Outcome.CONFIG_ERROR) -> None:
        super().__init__(message)
        self.outcome = outcome


def read_secret(env_var: str | None, file: str | None, what: str,
                env: Mapping[str, str] | None = None) -> str:
    if env_var:
        value = (os.environ if env is None else env).get(env_var)
        if not value:
            raise AuthError(f"{what}: environment variable {env_var} is not set")
        return value
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuthError(f"{what}: cannot read {file}: {exc.strerror or exc}") from None
    raise AuthError(f"{what}: no secret configured")


def mint_jwt(spec: JwtAuth, now: float | None = None,
             env: Mapping[str, str] | None = None) -> tuple[str, float, list[str]]:
    """Return (token, expiry, secrets used) for ``spec``."""
    # Imported here: PyJWT loads cryptography's OpenSSL bindings, ~8 MB of a daemon that
    # may have no JWT probe at all.
    import jwt
    from jwt.warnings import InsecureKeyLengthWarning

    now = time.time() if now is None else now
    if spec.private_key_file:
        key = read_secret(None, spec.private_key_file, "private key")
    elif spec.secret is not None:
        key = spec.secret
    else:
        key = read_secret(spec.secret_env, spec.secret_file, "JWT secret", env)
    exp = now + spec.ttl
    claims: dict[str, Any] = {"iat": int(now), "exp": int(exp), "jti": uuid.uuid4().hex}
    claims.update(spec.claims)
    try:
        with warnings.catch_warnings():
            # A short HMAC key is the user's choice (and the point of a negative probe);
            # PyJWT's warning would only add noise to the daemon's log on every mint.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            token = jwt.encode(claims, key, algorithm=spec.algorithm,
                               headers=spec.headers or None)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # The message of a key-parsing error may quote the key: never pass it on.
        raise AuthError(f"cannot sign a {spec.algorithm} JWT with the configured key "
                        f"({type(exc).__name__})") from None
    return token, exp, [key]


@dataclass
class _Cached:
    token: str
    expires_at: float
    issued_at: float

    def fresh(self, now: float) -> bool:
        lifetime = self.expires_at - self.issued_at
        return now < self.expires_at - lifetime * REFRESH_FRACTION


def _json_path(data: Any, path: str) -> Any:
    value = lookup(data, path)
    return None if value is MISSING else value


class TokenSource:
    """Produces tokens per auth provider name, cached until shortly before expiry."""

    def __init__(self, redactor: Redactor, env: Mapping[str, str] | None = None) -> None:
        self.redactor = redactor
        self.env = os.environ if env is None else env  # where *_env secrets are read
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self) -> None:
        """Drop cached tokens (after a reload the specs behind the names may differ)."""
        self._cache.clear()

    async def token(self, name: str, spec: JwtAuth | TokenEndpointAuth,
                    session: aiohttp.ClientSession | None = None,
                    trace: TraceContext | None = None) -> str:
        """A fresh enough token for provider ``name``; fetching one from a token endpoint
        sends the run's ``trace`` context with the request, so that a slow or failing token
        endpoint can be followed into its own logs too."""
        now = time.time()
        cached = self._cache.get(name)
        if cached is not None and cached.fresh(now):
            return cached.token
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            cached = self._cache.get(name)
            if cached is not None and cached.fresh(time.time()):
                return cached.token
            if isinstance(spec, JwtAuth):
                token, exp, secrets = mint_jwt(spec, env=self.env)
                issued = time.time()
            else:
                token, exp, secrets, issued = await self._fetch(spec, session, trace)
            for s in secrets:
                self.redactor.add(s)
            self.redactor.add_token(name, token)
            self._cache[name] = _Cached(token, exp, issued)
            return token

    async def _fetch(self, spec: TokenEndpointAuth, session: aiohttp.ClientSession | None,
                     trace: TraceContext | None = None) -> tuple[str, float, list[str], float]:
        fields: dict[str, str] = dict(spec.fields)
        secrets: list[str] = []
        for key, var in spec.secret_fields_env.items():
            fields[key] = read_secret(var, None, f"token endpoint field {key}", self.env)
            secrets.append(fields[key])
        for key, file in spec.secret_fields_file.items():
            fields[key] = read_secret(None, file, f"token endpoint field {key}")
            secrets.append(fields[key])
        for s in secrets:
            self.redactor.add(s)
        own = session is None
        client = session or aiohttp.ClientSession()
        issued = time.time()
        try:
            kwargs: dict[str, Any] = {"json": fields} if spec.format == "json" else {"data": fields}
            if spec.method == "GET":
                kwargs = {"params": fields}
            async with client.request(
                spec.method, spec.url, timeout=aiohttp.ClientTimeout(total=spec.timeout),
                allow_redirects=False, headers=None if trace is None else trace.headers(),
                **kwargs,
            ) as resp:
                body = await resp.content.read(64 * 1024)
                if resp.status >= 400:
                    raise AuthError(f"token endpoint answered HTTP {resp.status}",
                                    Outcome.AUTH_REJECTED if resp.status in (401, 403)
                                    else Outcome.UNEXPECTED_STATUS)
                try:
                    import json

                    data = json.loads(body)
                except ValueError:
                    raise AuthError("token endpoint answered something that is not JSON",
                                    Outcome.PROTOCOL_ERROR) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AuthError(f"token endpoint unreachable: {type(exc).__name__}",
                            Outcome.CONNECT_REFUSED if isinstance(
                                exc, aiohttp.ClientConnectorError) else Outcome.TIMEOUT
                            ) from None
        finally:
            if own:
                await client.close()
        token = _json_path(data, spec.token_field)
        if not isinstance(token, str) or not token:
            raise AuthError(f"token endpoint answer has no string at '{spec.token_field}'",
                            Outcome.ASSERTION_FAILED)
        expires_in = _json_path(data, spec.expires_in_field)
        ttl = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 \
            else spec.default_ttl
        return token, issued + ttl, secrets, issued
