"""TLS and basic auth for the daemon's own endpoints, from a web config file.

The file follows Prometheus' web configuration (exporter-toolkit's ``--web.config.file``),
so that one file can serve both::

    tls_server_config:
      cert_file: /etc/synthmon/tls.crt
      key_file: /etc/synthmon/tls.key
      # client_ca_file: /etc/synthmon/clients.pem     # with client_auth_type below
      # client_auth_type: RequireAndVerifyClientCert  # or NoClientCert (default),
      #                                               #    VerifyClientCertIfGiven
      # min_version: TLS12                            # or TLS13
    basic_auth_users:
      prometheus: $2b$12$...                          # bcrypt hashes, never passwords

``synthmon run --web-config web.yml`` applies it to every endpoint (``/metrics``, the
status page, the API, ``/-/reload``...). A request without valid credentials gets 401 with
``WWW-Authenticate``. bcrypt is slow by design: verifications run in a thread, a few at a
time, and a successful one is remembered under an HMAC of the credentials (keyed with a
random per-process key, so the cache holds nothing that could be checked offline). An
unknown user costs a bcrypt verification too, against a dummy hash, so that timing does
not tell which users exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import secrets
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.config.errors import ConfigError, Problem, pydantic_problems, render
from monitor.config.source import parse

_BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
REALM = "synthmon"
CACHE_SIZE = 1024  # successful verifications remembered
BCRYPT_CONCURRENCY = 2  # verifications at once (each takes a core for tens of ms)


class WebConfigError(ConfigError):
    """Every problem in a web config file, one per line, worded as in probes.yaml."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Model):
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: Literal["NoClientCert", "RequireAndVerifyClientCert",
                              "VerifyClientCertIfGiven"] = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfigFile(_Model):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class WebConfig:
    path: str
    tls: ssl.SSLContext | None
    users: dict[str, bytes] = field(repr=False)  # name → bcrypt hash

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"


def load_web_config(path: str | Path) -> WebConfig:
    """Read and check ``path``; the certificate and key are loaded now, so that a bad
    file stops the daemon at start rather than at the first request. Problems are worded
    as those of probes.yaml, ``file:line: key: message``."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError([f"{name}: cannot read: {exc}"]) from None
    try:
        source = parse(text, name, top_keys="tls_server_config and basic_auth_users")
    except ConfigError as exc:
        raise WebConfigError(exc.problems) from None
    try:
        spec = WebConfigFile.model_validate(source.data)
    except ValidationError as exc:
        raise WebConfigError(render(name, source.line_of, pydantic_problems(
            exc, source.data, WebConfigFile))) from None
    problems: list[Problem] = []
    users: dict[str, bytes] = {}
    for user, hashed in spec.basic_auth_users.items():
        where = ("basic_auth_users", user)
        if ":" in user or not user:
            problems.append((where, "a user name must be non-empty and cannot contain ':'"))
        elif not _BCRYPT.match(hashed):
            # Never echo the value: it may be a plain password written by mistake.
            problems.append((where, "must be a bcrypt hash ($2b$..., e.g. from "
                                    "`htpasswd -nBC 12 user`), not a password"))
        else:
            users[user] = hashed.encode("ascii")
    tls: ssl.SSLContext | None = None
    if spec.tls_server_config is not None:
        try:
            tls = _server_context(spec.tls_server_config)
        except (OSError, ssl.SSLError, ValueError) as exc:
            problems.append((("tls_server_config",), str(exc)))
    if problems:
        raise WebConfigError(render(name, source.line_of, problems))
    return WebConfig(path=name, tls=tls, users=users)


def _server_context(spec: TlsServerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (ssl.TLSVersion.TLSv1_3 if spec.min_version == "TLS13"
                           else ssl.TLSVersion.TLSv1_2)
    try:
        ctx.load_cert_chain(spec.cert_file, spec.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load cert_file {spec.cert_file} / key_file "
                         f"{spec.key_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if spec.client_auth_type != "NoClientCert":
        if not spec.client_ca_file:
            raise ValueError(f"client_auth_type {spec.client_auth_type} needs client_ca_file")
        ctx.load_verify_locations(cafile=spec.client_ca_file)
        ctx.verify_mode = (ssl.CERT_REQUIRED if spec.client_auth_type ==
                           "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL)
    elif spec.client_ca_file:
        raise ValueError("client_ca_file needs client_auth_type RequireAndVerifyClientCert "
                         "or VerifyClientCertIfGiven")
    return ctx


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes; see the module docstring."""

    def __init__(self, users: dict[str, bytes]) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        # Same cost as the first configured hash, so an unknown user takes as long.
        cost = int(next(iter(users.values()))[4:6]) if users else 10
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16).hex().encode(),
                                    bcrypt.gensalt(rounds=max(4, min(cost, 16))))
        self.verifications = 0  # bcrypt computations done (for tests and curiosity)

    def _cache_key(self, user: bytes, password: bytes, hashed: bytes) -> bytes:
        message = b"\0".join((base64.b64encode(user), base64.b64encode(password), hashed))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def check(self, header: str | None) -> bool:
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        known = self.users.get(user.decode("utf-8", "replace"))
        hashed = known if known is not None else self._dummy
        key = self._cache_key(user, password, hashed)
        if known is not None and key in self._ok:
            self._ok.move_to_end(key)
            return True
        async with self._slots:
            self.verifications += 1
            ok = await asyncio.to_thread(_checkpw, password, hashed)
        if not (ok and known is not None):
            return False
        self._ok[key] = None
        while len(self._ok) > CACHE_SIZE:
            self._ok.popitem(last=False)
        return True

    def middleware(self) -> Middleware:
        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if await self.check(request.headers.get("Authorization")):
                return await handler(request)
            return web.Response(
                status=401, text="401 Unauthorized: synthmon needs credentials\n",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})
        return basic_auth


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a password over bcrypt's 72 bytes, a malformed hash
        return False


def _parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user, password


__all__ = ["BasicAuth", "WebConfig", "WebConfigError", "load_web_config"]
