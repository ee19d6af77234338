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

    # synthmon's own key (Prometheus refuses a file that has it): GET /-/healthy and
    # /-/ready answer without credentials, for the kubelet's probes and Docker's HEALTHCHECK
    open_health_endpoints: true

``synthmon run --web-config web.yml`` applies it to every endpoint (``/metrics``, the
status page, the API, ``/-/reload``...). A request without valid credentials gets 401 with
``WWW-Authenticate`` (:mod:`monitor.web.basicauth` says how the check stays cheap and tells
nothing by its timing). A hash below cost 10 is refused: it answers a guess in a few
milliseconds, and its quick answers would tell that user apart from the others.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.config.errors import ConfigError, Problem, pydantic_problems, render
from monitor.config.source import parse

_BCRYPT = re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$")
# bcrypt's own default and the lowest OWASP accepts; `htpasswd -B` defaults to 5.
MIN_BCRYPT_COST = 10
# Each check would hold a core for seconds (cost 12 takes about 0.2 s; each step doubles).
MAX_BCRYPT_COST = 16


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
    open_health_endpoints: bool = False


@dataclass(frozen=True)
class WebConfig:
    path: str
    tls: ssl.SSLContext | None
    users: dict[str, bytes] = field(repr=False)  # name → bcrypt hash
    open_health_endpoints: bool = False  # GET /-/healthy and /-/ready without credentials

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
        source = parse(text, name, top_keys="tls_server_config, basic_auth_users and "
                                            "open_health_endpoints")
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
        elif int(hashed[4:6]) < MIN_BCRYPT_COST:
            problems.append((where, f"bcrypt cost {int(hashed[4:6])} is too low: at least "
                                    f"{MIN_BCRYPT_COST}, or a guess is answered in "
                                    f"milliseconds (`htpasswd -nBC 12 {user}`)"))
        elif int(hashed[4:6]) > MAX_BCRYPT_COST:
            problems.append((where, f"bcrypt cost {int(hashed[4:6])} is too high: at most "
                                    f"{MAX_BCRYPT_COST}, or each check holds a core for "
                                    f"seconds (`htpasswd -nBC 12 {user}`)"))
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
    return WebConfig(path=name, tls=tls, users=users,
                     open_health_endpoints=spec.open_health_endpoints)


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


__all__ = ["MAX_BCRYPT_COST", "MIN_BCRYPT_COST", "WebConfig", "WebConfigError", "load_web_config"]
