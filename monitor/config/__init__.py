"""probes.yaml → validated, immutable specs. Where each part lives:

- :mod:`~monitor.config.fields`: value types (durations, status codes);
- :mod:`~monitor.config.schema`: the sections of the file, each a pydantic model that
  validates itself, and the JSON Schema made from them;
- :mod:`~monitor.config.model`: the resolved ``Config`` and ``Probe`` the daemon runs;
- :mod:`~monitor.config.source`: YAML text → plain data with the line of every key;
- :mod:`~monitor.config.files`: several files (``-c DIR``, ``-c A -c B``) read as one;
- :mod:`~monitor.config.env`: ``${VAR}`` substitution;
- :mod:`~monitor.config.secrets`: which values are secrets, which secrets are missing;
- :mod:`~monitor.config.facts`: what those checks read of a probe, valid or not;
- :mod:`~monitor.config.checks`: what the file must satisfy as a whole;
- :mod:`~monitor.config.errors`: ``file:line: key: message``, for every config file;
- :mod:`~monitor.config.loader`: the passes in order.

A new config key is declared in ``schema``; if it needs the whole file to check, its check
goes in ``checks``.
"""

from pathlib import Path

from monitor.config.errors import ConfigError
from monitor.config.fields import Duration, StatusSet, status_matches
from monitor.config.files import ConfigPaths, config_name
from monitor.config.loader import load_file, load_files, load_text, substituted_data
from monitor.config.model import Config, MissingSecret, Probe, Timing
from monitor.config.schema import (
    DEFAULT_REFUSED_WITH,
    PROBE_KINDS,
    RESERVED_LABELS,
    VARIANT_INFO,
    VARIANTS,
    AuthSpec,
    Defaults,
    ExpectEvents,
    ExpectEventsStep,
    ExpectStep,
    FlowSpec,
    FlowStepBase,
    HttpExpect,
    HttpSpec,
    JwtAuth,
    KindSpec,
    Negative,
    ProbesFile,
    ProbeSpec,
    RequestSpec,
    SendStep,
    Step,
    TlsSpec,
    TokenEndpointAuth,
    TokenPlacement,
    WebSocketSpec,
    json_schema,
)
from monitor.config.secrets import secret_looking
from monitor.durations import MAX_DURATION, format_duration, parse_duration

# The probes.yaml shipped in the package: the demo runs it, and it documents every feature.
SHIPPED_CONFIG = Path(__file__).parent.parent / "probes.yaml"

__all__ = [
    "DEFAULT_REFUSED_WITH",
    "MAX_DURATION",
    "PROBE_KINDS",
    "RESERVED_LABELS",
    "SHIPPED_CONFIG",
    "VARIANTS",
    "VARIANT_INFO",
    "AuthSpec",
    "Config",
    "ConfigError",
    "ConfigPaths",
    "Defaults",
    "Duration",
    "ExpectEvents",
    "ExpectEventsStep",
    "ExpectStep",
    "FlowSpec",
    "FlowStepBase",
    "HttpExpect",
    "HttpSpec",
    "JwtAuth",
    "KindSpec",
    "MissingSecret",
    "Negative",
    "Probe",
    "ProbeSpec",
    "ProbesFile",
    "RequestSpec",
    "SendStep",
    "StatusSet",
    "Step",
    "Timing",
    "TlsSpec",
    "TokenEndpointAuth",
    "TokenPlacement",
    "WebSocketSpec",
    "config_name",
    "format_duration",
    "json_schema",
    "load_file",
    "load_files",
    "load_text",
    "parse_duration",
    "secret_looking",
    "status_matches",
    "substituted_data",
]
