"""The schema of probes.yaml: one pydantic model per section, each validating itself, one
module a section on what they all build on (``base``):

- ``probe``: a probe, the defaults and the whole file; a probe has exactly one *kind*, and
  the kinds are the fields of :class:`ProbeSpec` whose model is a :class:`KindSpec`
  (``kind``): ``http``, ``websocket``, ``flow`` (steps of the other kinds), one module each;
- what several kinds share, a module each: ``request`` (an HTTP request: URL, method,
  headers, body, auth), ``tls``, ``events`` (the ``expect_events`` vocabulary),
  ``negative`` (the keys of a negative probe and its variants), ``auth``.

A model checks what can be checked from its own keys (a URL's scheme, one body at most,
exactly one step kind); what needs the whole file (names unique, auth references known,
timeouts within intervals) is in :mod:`monitor.config.checks`, which asks a kind's model
what it needs (:meth:`KindSpec.problems`) without knowing the kind. The JSON Schema that
editors use is generated from these models (:func:`json_schema`).
"""

from monitor.config.schema.auth import AuthSpec, JwtAuth, TokenEndpointAuth, jwt_key_problem
from monitor.config.schema.base import RESERVED_LABELS, SECRET_DOC, VAR_FORM, Model
from monitor.config.schema.events import Count, ExpectEvents, events_problems
from monitor.config.schema.flow import FlowSpec, FlowStepBase
from monitor.config.schema.http import HttpExpect, HttpSpec
from monitor.config.schema.kind import KindSpec, Relative
from monitor.config.schema.negative import (
    DEFAULT_REFUSED_WITH,
    VARIANT_INFO,
    VARIANT_TABLE,
    VARIANTS,
    Negative,
    Variant,
    VariantInfo,
)
from monitor.config.schema.probe import (
    KIND_MODELS,
    PROBE_KINDS,
    Defaults,
    ProbesFile,
    ProbeSpec,
    json_schema,
    one_kind_problem,
)
from monitor.config.schema.request import RequestSpec
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
    "DEFAULT_REFUSED_WITH", "KIND_MODELS", "PROBE_KINDS", "RESERVED_LABELS", "SECRET_DOC",
    "STEP_KINDS", "VARIANTS", "VARIANT_INFO", "VARIANT_TABLE", "VAR_FORM", "AuthSpec", "Count",
    "Defaults", "ExpectEvents", "ExpectEventsStep", "ExpectStep", "FlowSpec", "FlowStepBase",
    "HttpExpect", "HttpSpec",
    "JwtAuth", "KindSpec", "Model", "Negative", "ProbeSpec", "ProbesFile", "Relative",
    "RequestSpec", "SendStep", "Step", "TlsSpec", "TokenEndpointAuth", "TokenPlacement",
    "Variant", "VariantInfo", "WebSocketSpec", "events_problems", "json_schema",
    "jwt_key_problem", "one_kind_problem", "one_step_problem",
]
