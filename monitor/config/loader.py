"""Loading probes.yaml, in passes, so that every error names ``file:line: key``:

1. :mod:`~monitor.config.source`: the YAML text → plain data and the line of every path;
2. :mod:`~monitor.config.env`: ``${VAR}`` substituted in every string value;
3. :mod:`~monitor.config.schema`: pydantic validates each section;
4. :mod:`~monitor.config.checks`: the file as a whole.

Every problem found is reported together in one :class:`ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from monitor.config.checks import shape_problems, validate_semantics
from monitor.config.env import Sub, substitute_all
from monitor.config.errors import ConfigError, Problem, pydantic_problems, render
from monitor.config.model import Config
from monitor.config.schema import ProbesFile
from monitor.config.secrets import find_secrets
from monitor.config.source import parse
from monitor.redact import Redactor


def load_text(text: str, name: str = "probes.yaml",
              env: Mapping[str, str] | None = None) -> Config:
    """Parse and validate config text. Raises :class:`ConfigError` listing every problem."""
    env = os.environ if env is None else env
    source = parse(text, name)
    problems: list[Problem] = []
    subs: list[Sub] = []
    data = substitute_all(source.data, env, problems, subs)
    secrets = find_secrets(data, subs)
    # An error may quote a value (a URL, say) with a secret substituted into it.
    redactor = Redactor(secrets)

    def fail() -> ConfigError:
        return ConfigError(render(name, source.line_of, problems,
                                  lambda text: redactor.redact(text) or ""))

    shape = shape_problems(data)
    try:
        model = ProbesFile.model_validate(data, context={"shared": {}})
    except ValidationError as exc:
        # A value emptied by an unset ${VAR} is already reported as such.
        problems += pydantic_problems(exc, data, ProbesFile, skip=[p for p, _ in problems])
        problems += shape
        raise fail() from None
    except RecursionError:
        raise ConfigError([f"{name}:?: the document is nested too deeply"]) from None
    problems += shape
    if problems:  # unset ${VAR}s, rules across keys
        raise fail()
    probes, warnings, label_names = validate_semantics(model, problems, env)
    if problems:
        raise fail()
    return Config(path=name, probes=tuple(probes),
                  label_names=tuple(label_names), warnings=tuple(warnings), secrets=secrets)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{p}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{p}: cannot read: {exc}"]) from None
    return load_text(text, name=str(path), env=env)
