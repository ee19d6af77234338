"""Credentials for probes: JWTs minted locally and tokens fetched from an endpoint.

Secrets are read at run time (so a rotated secret is picked up without a reload) and every
secret and token is registered with the :class:`~monitor.redact.Redactor` before use.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from monitor.auth.variants import Credential, base_claims, build, sign
from monitor.config import JwtAuth, Negative, Probe, TokenEndpointAuth
from monitor.jsonpath import MISSING, lookup
from monitor.outcomes import Outcome
from monitor.redact import Redactor
from monitor.trace import TraceContext

# Re-mint or re-fetch when less than this share of the lifetime is left.
REFRESH_FRACTION = 0.2
# A variant's credential is rebuilt at least this often (its not_yet_valid nbf is an hour
# ahead, so it stays in the future while reused).
VARIANT_REUSE = 1200.0


class AuthError(Exception):
    """A token could not be produced. ``outcome`` is what the probe run reports: a
    configuration that cannot work (``config_error``, e.g. a secret variable not set) or
    credentials that could not be obtained this time (``credentials_unavailable``); ``hint``
    says in plain words what it means for the run."""

    def __init__(self, message: str, outcome: Outcome = Outcome.CONFIG_ERROR,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.hint = hint


def _unavailable(message: str, hint: str) -> AuthError:
    return AuthError(message, Outcome.CREDENTIALS_UNAVAILABLE,
                     f"{hint} The probe did not reach its target, so this says nothing "
                     "about the target itself.")


# What each way of not getting a token from an endpoint means, for the hint.
_ENDPOINT_REFUSED = ("The token endpoint refused the probe's own credentials (a wrong or "
                     "rotated password or client secret in the provider's secret fields).")
_ENDPOINT_FAILED = "The token endpoint failed to issue a token."
_ENDPOINT_UNREACHABLE = "The token endpoint did not answer (down, or not reachable from here)."
_ENDPOINT_ANSWER = ("The token endpoint answered without a token where the provider's "
                    "token_field looks (a changed answer, or token_field set wrong).")


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
            # A file that `check` found is gone or unreadable now (a Secret no longer
            # mounted, its permissions changed): the credentials cannot be had this time.
            raise _unavailable(f"{what}: cannot read {file}: {exc.strerror or exc}",
                               f"synthmon cannot read {file} now.") from None
    raise AuthError(f"{what}: no secret configured")


def jwt_key(spec: JwtAuth, env: Mapping[str, str] | None = None) -> str:
    """The signing key of ``spec``, read now (a rotated secret is picked up)."""
    if spec.private_key_file:
        return read_secret(None, spec.private_key_file, "private key")
    if spec.secret is not None:
        return spec.secret
    return read_secret(spec.secret_env, spec.secret_file, "JWT secret", env)


def mint_jwt(spec: JwtAuth, now: float | None = None,
             env: Mapping[str, str] | None = None) -> tuple[str, float, list[str]]:
    """Return (token, expiry, secrets used) for ``spec``."""
    # Imported here: PyJWT loads cryptography's OpenSSL bindings, ~8 MB of a daemon that
    # may have no JWT probe at all.
    import jwt

    now = time.time() if now is None else now
    key = jwt_key(spec, env)
    claims = base_claims(spec, now, uuid.uuid4().hex)
    try:
        # A short HMAC key is the user's choice (and the point of a negative probe);
        # sign() keeps PyJWT's warning about it out of the daemon's log.
        token = sign(claims, key, spec.algorithm, spec.headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # The message of a key-parsing error may quote the key: never pass it on.
        raise AuthError(f"cannot sign a {spec.algorithm} JWT with the configured key "
                        f"({type(exc).__name__})") from None
    return token, now + spec.ttl, [key]


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
        self._variants: dict[str, tuple[Credential, float]] = {}  # key → (credential, until)
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self) -> None:
        """Drop cached tokens (after a reload the specs behind the names may differ)."""
        self._cache.clear()
        self._variants.clear()

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

    def cached_credential(self, probe: Probe) -> Credential | None:
        """What :meth:`credential` returns for ``probe`` when it would return at once,
        without waiting (no auth, or its provider's token still fresh in the cache); None
        when only :meth:`credential` can tell. A run spares itself a coroutine and a
        deadline's timer for what is nearly always a cached token."""
        if probe.auth is None or probe.auth_name is None:
            return Credential(None)
        if probe.variant is not None:
            return None
        cached = self._cache.get(probe.auth_name)
        if cached is not None and cached.fresh(time.time()):
            return Credential(cached.token)
        return None

    async def credential(self, probe: Probe, session: aiohttp.ClientSession | None = None,
                         trace: TraceContext | None = None) -> Credential:
        """What ``probe``'s run sends: its provider's token, or its variant's credential
        (every token and throw-away key registered with the redactor first)."""
        if probe.auth is None or probe.auth_name is None:
            return Credential(None)
        if probe.variant is None:
            return Credential(await self.token(probe.auth_name, probe.auth, session, trace))
        import jwt

        spec = probe.spec.kind_spec
        bypass: dict[str, str] = (spec.bypass_headers if isinstance(spec, Negative) else None) or {}
        valid: str | None = None
        if probe.variant == "token_in_query_only":
            valid = await self.token(probe.auth_name, probe.auth, session, trace)
        assert probe.variant is not None
        if probe.variant == "token_in_query_only" or probe.variant == "no_token":
            built = build(probe.variant, probe.auth, key=None, valid_token=valid,
                          now=time.time(), bypass_headers={})
            self.redactor.add_token(probe.key, built.credential.token)
            return built.credential
        now = time.time()
        cached = self._variants.get(probe.key)
        if cached is not None and now < cached[1]:
            return cached[0]
        key = jwt_key(probe.auth, self.env) if isinstance(probe.auth, JwtAuth) else None
        self.redactor.add(key)
        try:
            built = build(probe.variant, probe.auth, key=key, valid_token=valid, now=now,
                          bypass_headers=bypass)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthError(f"cannot build the {probe.variant} variant "
                            f"({type(exc).__name__})") from None
        # Bounded slots of their own: a variant's tokens and throw-away keys must not push
        # the valid ones out, nor pile up in the redactor run after run.
        for throwaway in built.throwaway_keys:
            self.redactor.add_token(f"{probe.key}#key", throwaway)
        self.redactor.add_token(probe.key, built.credential.token)
        # Reused like a valid token: minting (and registering) one per run would recompile
        # the redactor's pattern on every run of every variant.
        ttl = probe.auth.ttl if isinstance(probe.auth, JwtAuth) else 300.0
        self._variants[probe.key] = (built.credential,
                                     now + min(ttl * (1 - REFRESH_FRACTION), VARIANT_REUSE))
        return built.credential


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
                    raise _unavailable(
                        f"token endpoint answered HTTP {resp.status}",
                        _ENDPOINT_REFUSED if resp.status in (400, 401, 403)
                        else _ENDPOINT_FAILED)
                try:
                    import json

                    data = json.loads(body)
                except ValueError:
                    raise _unavailable("token endpoint answered something that is not JSON",
                                       _ENDPOINT_ANSWER) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _unavailable(f"token endpoint unreachable: {type(exc).__name__}",
                               _ENDPOINT_UNREACHABLE) from None
        finally:
            if own:
                await client.close()
        token = _json_path(data, spec.token_field)
        if not isinstance(token, str) or not token:
            raise _unavailable(f"token endpoint answer has no string at '{spec.token_field}'",
                               _ENDPOINT_ANSWER)
        expires_in = _json_path(data, spec.expires_in_field)
        ttl = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 \
            else spec.default_ttl
        return token, issued + ttl, secrets, issued
