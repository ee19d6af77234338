"""What every section of the schema builds on: the frozen model, the JSON Schema additions
that say what `check` says, the checks several sections share (URLs, headers, regexes), and
parts written alike that are one instance (:class:`Shared`)."""

from __future__ import annotations

import re
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationInfo,
    model_validator,
)

from monitor.trace import tracestate_problem


class FieldsSet(set[str]):
    """The names a model was given (pydantic's ``__pydantic_fields_set__``), one instance
    for every model of a load given the same names: a set each cost 216 bytes, two a probe,
    4 MB of 10,000 probes. Shared, so it refuses every change; pydantic's own copies
    (``model_copy``, ``copy``, ``deepcopy``) get a plain set of their own, as they would
    (tests/config/test_fields_set.py)."""

    __slots__ = ()

    def _refuse(self, *args: object) -> None:
        raise TypeError("a model's shared fields set is never changed (FieldsSet)")

    add = discard = remove = clear = update = _refuse
    difference_update = intersection_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse  # type: ignore[assignment]

    def pop(self) -> str:
        self._refuse()
        raise AssertionError  # not reached

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, memo: object) -> set[str]:
        return set(self)


# Per model class, a plain class whose instances' attribute dicts share one table of keys.
_HOLDERS: dict[type, type] = {}


def key_sharing(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as a dict that shares its keys with every other made for ``cls``, as an
    instance dict of a plain class does (PEP 412). pydantic gives each model a dict of its
    own: 464 bytes for a ProbeSpec or an HttpSpec, 168 and 192 sharing, ~5 MiB of 10,000
    probes, for ~40 ms more of their load. The same keys and values in the same order: a
    dict like any other to everything that reads it; a change only turns it back into one
    with its own keys (CPython does that). tests/config/test_fields_set.py fails if CPython
    stops sharing them."""
    holder = _HOLDERS.get(cls)
    if holder is None:
        holder = _HOLDERS[cls] = type(f"{cls.__name__}Fields", (), {"__module__": __name__})
    obj = holder()
    for name, value in values.items():
        setattr(obj, name, value)
    shared: dict[str, Any] = obj.__dict__
    return shared


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def model_post_init(self, context: Any) -> None:
        # Validated with a ``{"shared": {}}`` context (a load): equal sets of given names
        # are one FieldsSet, and the fields' dict shares its keys with the other models of
        # its class. The models are frozen: nothing sets a field after this.
        table = context.get("shared") if isinstance(context, dict) else None
        if table is None:
            return
        object.__setattr__(self, "__dict__", key_sharing(type(self), self.__dict__))
        names = self.__pydantic_fields_set__
        key = (FieldsSet, frozenset(names))
        found = table.get(key)
        if found is None:
            found = table[key] = FieldsSet(names)
        object.__setattr__(self, "__pydantic_fields_set__", found)


# What the JSON Schema says beyond the types, so that an editor flags what `check` refuses
# wherever JSON Schema can say it (tests/config/test_schema_agrees.py feeds both the same
# files). A string may be a ${VAR} form, substituted at load, which an editor cannot check.
JsonDict = dict[str, Any]  # what Field(json_schema_extra=) takes
VAR_FORM = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
# A scheme is case-insensitive (RFC 3986, 3.1): HTTP:// and HtTpS:// are http(s) URLs.
HTTP_URL: JsonDict = {"pattern": rf"^([hH][tT][tT][pP][sS]?://[^/\s]+|{VAR_FORM})"}
WS_URL: JsonDict = {"pattern": rf"^([wW][sS][sS]?://[^/\s]+|{VAR_FORM})"}
RESERVED_LABELS = {"probe", "type", "target", "outcome", "location", "phase", "step", "le",
                   "reason", "version", "job", "instance", "variant", "event"}
LABELS: JsonDict = {"propertyNames": {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$",
                                      "not": {"enum": sorted(RESERVED_LABELS)}}}
# Also after ${VAR} substitution: a header split in two would smuggle a second one.
HEADERS: JsonDict = {"additionalProperties": {"type": "string", "pattern": r"^[^\r\n\x00]*$"}}


def one_of(*keys: str) -> JsonDict:
    return {"oneOf": [{"required": [k]} for k in keys]}


SECRET_DOC = "secrets come only from the environment (*_env) or a file (*_file)"


def shown(url: str) -> str:
    """A URL as it may appear in an error: without userinfo, which can hold credentials."""
    return repr(re.sub(r"(?<=//)[^/@\s]*@", "***@", url)[:200])


def scheme_url(url: str, schemes: tuple[str, str]) -> str:
    """``url`` if its scheme is one of ``schemes`` (in any case: RFC 3986 makes schemes
    case-insensitive, as blackbox_exporter reads them), with the scheme lowercased, its
    canonical form: whatever reads the URL later (TLS or not, the target label, the
    WebSocket probe's diagnostic GET) compares lowercase schemes only."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://[^/\s]", url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in schemes:
        article = "an" if schemes[0][0] in "aeiouh" else "a"
        raise ValueError(f"must be {article} {schemes[0]}:// or {schemes[1]}:// URL; "
                         f"got {shown(url)}")
    if not url.startswith(scheme):
        # A new string only when it differs: one made while the YAML tree is alive outlives
        # it and pins its pools (config._fresh, tests/test_memory.py).
        url = scheme + url[len(scheme):]
    return check_url(url)


def check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("is not a valid URL: it has no host")
    return url


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        # Also after ${VAR} substitution: a header split in two would smuggle a second one.
        if any(c in name + value for c in "\r\n\0"):
            raise ValueError(f"{name}: line breaks are not allowed in a header")
    return headers


def check_tracestate(value: str | None) -> str | None:
    if value is not None and (problem := tracestate_problem(value)) is not None:
        raise ValueError(f"is not a valid W3C tracestate: it {problem}")
    return value


def check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from None


class Shared(Model):
    """A part of a probe that many probes spell alike (``expect: {status: [200]}``, no
    ``tls``): equal parts are one instance. Each copy cost about 600 bytes, 11 MB of
    10,000 probes, and the models are frozen, so sharing them is safe.

    Parts written the same way in one file are shared when the file is validated with a
    ``{"shared": {}}`` context; the default of an omitted part is one module-level instance.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _one_of_equals(cls, data: Any, handler: ModelWrapValidatorHandler[Self],
                       info: ValidationInfo) -> Self:
        table = info.context.get("shared") if isinstance(info.context, dict) else None
        if table is None or not isinstance(data, dict):
            return handler(data)
        # The input as written decides: equal reprs of plain YAML data are equal inputs.
        key = (cls, repr(data))
        found = table.get(key)
        if found is None:
            found = table[key] = handler(data)
        assert isinstance(found, cls)
        return found
