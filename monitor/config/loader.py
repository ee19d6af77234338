"""Loading probes.yaml, in passes, so that every error names ``file:line: key``:

1. :mod:`~monitor.config.source`: the YAML text → plain data and the line of every path
   (of every file, when ``-c`` names several or a directory: :mod:`~monitor.config.files`
   combines them into one document that remembers where each path came from);
2. :mod:`~monitor.config.env`: ``${VAR}`` substituted in every string value;
3. :mod:`~monitor.config.schema`: pydantic validates each section;
4. :mod:`~monitor.config.checks`: the file as a whole, on whatever validated in pass 3.

Every problem found by passes 2 to 4 is reported together in one :class:`ConfigError`, in
file order: one run of ``check`` shows them all.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from monitor.config.checks import (
    Parts,
    explain_probe_keys,
    shape_problems,
    validate_semantics,
)
from monitor.config.env import Sub, substitute_all
from monitor.config.errors import ConfigError, Path_, Problem, display, pydantic_problems
from monitor.config.facts import ProbeFacts, from_data, from_spec
from monitor.config.files import (
    ConfigPaths,
    Located,
    combine,
    config_name,
    expand,
    read,
    render,
)
from monitor.config.model import Config, MissingSecret
from monitor.config.schema import (
    AuthSpec,
    Defaults,
    JwtAuth,
    ProbesFile,
    ProbeSpec,
    TokenEndpointAuth,
)
from monitor.config.secrets import find_secrets, secret_looking
from monitor.config.source import Source, parse
from monitor.redact import Redactor

_AUTH: TypeAdapter[JwtAuth | TokenEndpointAuth] = TypeAdapter(AuthSpec)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A load makes ~100 objects a probe, nearly all freed by reference counting when it
    ends (the YAML tree, the walked data); meanwhile their allocations set off the cyclic
    collector again and again over a growing heap. 10,000 probes load in 0.8 s without it
    and 1.7 s with it (bench.cost, 2026-12-07). The daemon's loop runs on while a reload
    loads; the collector resumes when the load ends, whether it failed or not."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parts(data: dict[str, Any], context: dict[str, Any]) -> Parts:
    """Each section validated on its own, keeping what is valid (the whole file is not)."""
    defaults: Defaults | None
    try:
        defaults = Defaults.model_validate(data.get("defaults") or {}, context=context)
    except ValidationError:
        defaults = None
    raw_auth = data.get("auth")
    auth: dict[str, JwtAuth | TokenEndpointAuth] = {}
    for name, provider in raw_auth.items() if isinstance(raw_auth, dict) else ():
        with contextlib.suppress(ValidationError):
            auth[name] = _AUTH.validate_python(provider, context=context)
    raw_probes = data.get("probes")
    probes: list[ProbeFacts] = []
    names: dict[int, str] = {}
    for i, item in enumerate(raw_probes if isinstance(raw_probes, list) else ()):
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            names[i] = item["name"]
        try:
            probes.append(from_spec(i, ProbeSpec.model_validate(item, context=context)))
        except ValidationError:
            # Its errors are reported by the schema pass; its other keys are still checked.
            probes.append(from_data(i, item, context))
    return Parts(defaults=defaults, auth=auth,
                 auth_names=list(raw_auth) if isinstance(raw_auth, dict) else [],
                 probes=probes, names=names)


def load_text(text: str, name: str = "probes.yaml",
              env: Mapping[str, str] | None = None, require_secrets: bool = False) -> Config:
    """Parse and validate config text. Raises :class:`ConfigError` listing every problem.

    A missing secret is not a load error (the daemon starts; the probes that need it report
    config_error) but is kept in ``Config.missing_secrets``; with ``require_secrets`` (for
    ``check``) it is an error among the others.
    """
    with _collector_paused():
        return load_sources([parse(text, name)], name, env, require_secrets)


def load_sources(sources: list[Source], name: str, env: Mapping[str, str] | None = None,
                 require_secrets: bool = False) -> Config:
    """:func:`load_text` of several parsed files combined into one (see
    :mod:`~monitor.config.files`); ``name`` is what the config is called as a whole."""
    env = os.environ if env is None else env
    data, origin, located = combine(sources)
    problems: list[Problem] = []
    subs: list[Sub] = []
    unset: list[tuple[Path_, str, str]] = []
    data = substitute_all(data, env, problems, subs, unset=unset)
    secrets = find_secrets(data, subs)
    # An error may quote a value (a URL, say) with a secret substituted into it.
    redactor = Redactor(secrets)

    def lines(found: list[Problem], also: list[Located] | None = None) -> list[str]:
        return render(origin, found, also or (), lambda text: redactor.redact(text) or "")

    context: dict[str, Any] = {"shared": {}}
    try:
        model = ProbesFile.model_validate(data, context=context)
        parts = Parts(defaults=model.defaults, auth=dict(model.auth),
                      auth_names=list(model.auth),
                      probes=[from_spec(i, p) for i, p in enumerate(model.probes)],
                      names={i: p.name for i, p in enumerate(model.probes)})
    except ValidationError as exc:
        # A value emptied by an unset ${VAR} is already reported as such.
        skip = [p for p, _ in problems]
        problems += explain_probe_keys(pydantic_problems(exc, data, ProbesFile, skip=skip),
                                       data)
        problems += [p for p in shape_problems(data)
                     if not any(p[0][:len(s)] == s for s in skip)]
        parts = _parts(data, context)
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    parts.where = origin.where
    checked = validate_semantics(parts, env, problems)
    # A secret-looking variable left to an empty default (a flow's login password): a
    # missing secret, as an auth provider's is (check fails, the daemon warns).
    checked.missing += [(at, f"secret environment variable {var} is not set")
                        for at, var, default in unset if default == "" and secret_looking(var)]
    if require_secrets:
        problems += checked.missing
    if problems or located:
        raise ConfigError(lines(problems, located))
    missing = tuple(MissingSecret(key=display(origin.locate(path)[1]),
                                  line=origin.line(path)[1], message=msg,
                                  text=lines([(path, msg)])[0])
                    for path, msg in dict.fromkeys(checked.missing))
    return Config(path=name, probes=tuple(checked.probes),
                  label_names=tuple(checked.label_names),
                  warnings=tuple(lines(checked.warnings)),
                  missing_secrets=tuple(sorted(missing, key=lambda m: m.line or 0)),
                  secrets=secrets, files=tuple(s.name for s in sources))


def load_file(path: ConfigPaths, env: Mapping[str, str] | None = None,
              require_secrets: bool = False) -> Config:
    """A probes file, a directory of them, or several of either (see :func:`load_files`)."""
    return load_files(path, env=env, require_secrets=require_secrets)


def load_files(paths: ConfigPaths, env: Mapping[str, str] | None = None,
               require_secrets: bool = False) -> Config:
    """The probes files ``-c`` names (files, directories of ``*.yaml``), read as one config;
    every file is read again at every call (a reload sees files added and removed)."""
    with _collector_paused():
        sources = read(expand(paths))
        return load_sources(sources, config_name(paths), env, require_secrets)


def substituted_data(text: str, env: Mapping[str, str]) -> Any:
    """The document as plain data with ``${VAR}`` substituted exactly as :func:`load_text`
    does it, before any validation: what the JSON Schema (``synthmon schema``) is checked
    against. Raises :class:`ConfigError` for YAML that does not parse; an unset variable
    without a default becomes an empty string (load_text reports it)."""
    return substitute_all(parse(text, "probes.yaml").data, env, [], [])
