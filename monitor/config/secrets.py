"""Which values of a config are secrets, and which secrets are missing.

Secrets come from the environment or from files, and the redactor must know every one of
them. Those read by auth providers are registered when they are read; a value substituted
into the file with ``${VAR}`` is registered (``Config.secrets``) when it comes from the
environment and

- the variable's name looks secret (it contains SECRET, TOKEN, PASSWORD, PASSWD,
  CREDENTIAL, PRIVATE, APIKEY or COOKIE, or has a part KEY, PASS, PWD or PAT between
  underscores), wherever the value goes; or
- it lands in a header value (headers carry credentials: Authorization, X-Api-Key, ...); or
- it lands in the userinfo or the query of a URL.

The password in a URL's userinfo is registered too (alone and as user:password, the form a
Basic header encodes), substituted or not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from monitor.config.env import Sub
from monitor.config.errors import Path_
from monitor.config.schema import PROBE_KINDS, JwtAuth, TokenEndpointAuth

_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "APIKEY",
                 "COOKIE")
_SECRET_PARTS = {"KEY", "PASS", "PWD", "PAT"}


def secret_looking(var: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    upper = var.upper()
    return any(w in upper for w in _SECRET_WORDS) or bool(
        _SECRET_PARTS.intersection(upper.split("_")))


def _kind_at(path: Path_, depth: int) -> bool:
    """``path[-depth]`` is a probe kind's section (probes[i].KIND, wherever it is nested)."""
    return len(path) > depth and path[0] == "probes" and path[-depth] in PROBE_KINDS


def _is_url(path: Path_) -> bool:
    # probes[i].KIND.url, probes[i].KIND.auth.url, auth.NAME.url
    return bool(path) and path[-1] == "url" and (
        _kind_at(path, 2)
        or (len(path) == 3 and path[0] == "auth")
        or (path[-2] == "auth" and _kind_at(path, 3)))


def _is_header(path: Path_) -> bool:
    # probes[i].KIND.headers.NAME
    return len(path) > 3 and path[-2] == "headers" and _kind_at(path, 3)


def _credential_spans(url: str) -> list[tuple[int, int]]:
    """Where the userinfo and the query are in ``url`` (character spans)."""
    spans: list[tuple[int, int]] = []
    scheme_end = url.find("://")
    if scheme_end >= 0:
        start = scheme_end + 3
        end = len(url)
        for c in "/?#":
            i = url.find(c, start)
            if i >= 0:
                end = min(end, i)
        at = url.rfind("@", start, end)
        if at >= 0:
            spans.append((start, at))
    query = url.find("?")
    if query >= 0:
        fragment = url.find("#", query)
        spans.append((query + 1, fragment if fragment >= 0 else len(url)))
    return spans


def _lookup(data: Any, path: Path_) -> Any:
    for elem in path:
        try:
            data = data[elem]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def find_secrets(data: Any, subs: list[Sub]) -> tuple[str, ...]:
    """The secret values of a loaded file, by the rules in the module docstring."""
    found: list[str] = []
    urls: set[Path_] = set()
    for sub in subs:
        if secret_looking(sub.var) or _is_header(sub.path):
            found.append(sub.value)
        elif _is_url(sub.path):
            url = _lookup(data, sub.path)
            if isinstance(url, str) and any(sub.start < hi and lo < sub.end
                                            for lo, hi in _credential_spans(url)):
                found.append(sub.value)
        if _is_url(sub.path):
            urls.add(sub.path)
    probes = data.get("probes") if isinstance(data, dict) else None
    auth = data.get("auth") if isinstance(data, dict) else None
    for i, probe in enumerate(probes if isinstance(probes, list) else ()):
        for kind in PROBE_KINDS if isinstance(probe, dict) else ():
            if kind in probe:  # one kind a probe: the others' paths hold nothing
                urls.update({("probes", i, kind, "url"), ("probes", i, kind, "auth", "url")})
    for name in auth if isinstance(auth, dict) else ():
        urls.add(("auth", name, "url"))
    for path in urls:
        url = _lookup(data, path)
        # Only a URL with userinfo has a password to find (and urlsplit is the dear part).
        if isinstance(url, str) and "@" in url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                # The password, and user:password as it travels (base64 in a Basic header).
                user = urlsplit(url).username or ""
                found += [unquote(password), password, f"{unquote(user)}:{unquote(password)}"]
    return tuple(dict.fromkeys(s for s in found if s))


def missing_secrets(auth: JwtAuth | TokenEndpointAuth | None,
                    env: Mapping[str, str]) -> list[tuple[Path_, str]]:
    """The secrets ``auth`` reads that are not there, each at its key within the provider
    (``("secret_env",)``, ``("secret_fields_env", "password")``)."""
    out: list[tuple[Path_, str]] = []
    if isinstance(auth, JwtAuth):
        if auth.secret_env and not env.get(auth.secret_env):
            out.append((("secret_env",),
                        f"secret environment variable {auth.secret_env} is not set"))
        for key, f in (("secret_file", auth.secret_file),
                       ("private_key_file", auth.private_key_file)):
            if f and not os.path.isfile(f):
                out.append(((key,), f"secret file {f} does not exist"))
    elif isinstance(auth, TokenEndpointAuth):
        for name, var in auth.secret_fields_env.items():
            if not env.get(var):
                out.append((("secret_fields_env", name),
                            f"secret environment variable {var} is not set"))
        for name, f in auth.secret_fields_file.items():
            if not os.path.isfile(f):
                out.append((("secret_fields_file", name), f"secret file {f} does not exist"))
    return out
