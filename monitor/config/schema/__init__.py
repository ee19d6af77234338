"""The schema of probes.yaml: one pydantic model per section, each validating itself, one
module a section (``auth``, ``http``, ``websocket``, the keys of a negative probe, the probe
and the whole file) on what they all build on (``base``).

A model checks what can be checked from its own keys (a URL's scheme, one body at most,
exactly one step kind); what needs the whole file (names unique, auth references known,
timeouts within intervals) is in :mod:`monitor.config.checks`. The JSON Schema that
editors use is generated from these models (:func:`json_schema`).
"""

from monitor.config.schema.auth import AuthSpec, JwtAuth, TokenEndpointAuth, jwt_key_problem
from monitor.config.schema.base import RESERVED_LABELS, SECRET_DOC, VAR_FORM, Model
from monitor.config.schema.http import HttpExpect, HttpSpec
from monitor.config.schema.negative import (
    DEFAULT_REFUSED_WITH,
    VARIANT_INFO,
    VARIANT_TABLE,
    VARIANTS,
    Variant,
    VariantInfo,
)
from monitor.config.schema.probe import (
    PROBE_KINDS,
    Defaults,
    ProbesFile,
    ProbeSpec,
    json_schema,
    one_kind_problem,
)
from monitor.config.schema.tls import TlsSpec
from monitor.config.schema.websocket import (
    STEP_KINDS,
    ExpectEventsStep,
    ExpectStep,
    SendStep,
    Step,
    TokenPlacement,
    WebSocketSpec,
    one_step_problem,
)

__all__ = [
    "DEFAULT_REFUSED_WITH",
    "PROBE_KINDS",
    "RESERVED_LABELS",
    "SECRET_DOC",
    "STEP_KINDS",
    "VARIANTS",
    "VARIANT_INFO",
    "VARIANT_TABLE",
    "VAR_FORM",
    "AuthSpec",
    "Defaults",
    "ExpectEventsStep",
    "ExpectStep",
    "HttpExpect",
    "HttpSpec",
    "JwtAuth",
    "Model",
    "ProbeSpec",
    "ProbesFile",
    "SendStep",
    "Step",
    "TlsSpec",
    "TokenEndpointAuth",
    "TokenPlacement",
    "Variant",
    "VariantInfo",
    "WebSocketSpec",
    "json_schema",
    "jwt_key_problem",
    "one_kind_problem",
    "one_step_problem",
]
