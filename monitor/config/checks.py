"""What a file must satisfy as a whole, beyond each section's own schema: unique names,
known auth providers, a timeout within its interval, label names, secrets in their place.
Builds the resolved :class:`~monitor.config.model.Probe` of each probe on the way.

The checks run on whatever validated (:class:`Parts`): one probe with a bad field must not
hide the duplicate names, unknown providers or timeouts of the others, so that ``check``
reports every problem of a file in one run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from monitor.config.errors import Path_, Problem, display
from monitor.config.facts import TIMING_KEYS, UNKNOWN, ProbeFacts, _Unknown
from monitor.config.fields import retry_budget
from monitor.config.model import Probe, Timing
from monitor.config.schema import (
    KIND_MODELS,
    PROBE_KINDS,
    RESERVED_LABELS,
    SECRET_DOC,
    VARIANT_INFO,
    Defaults,
    JwtAuth,
    Negative,
    TokenEndpointAuth,
    jwt_key_problem,
    one_kind_problem,
)
from monitor.config.secrets import missing_secrets
from monitor.durations import format_duration

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_LABEL_RULE = ("label name must match [a-zA-Z_][a-zA-Z0-9_]* and not be one of "
               + ", ".join(sorted(RESERVED_LABELS)))


@dataclass
class Parts:
    """The sections of a file that validated on their own."""

    defaults: Defaults | None  # None: the defaults did not validate
    auth: dict[str, JwtAuth | TokenEndpointAuth]  # providers that validated
    auth_names: list[str]  # every provider named in the file, valid or not
    probes: list[ProbeFacts]  # every probe, valid or not, as the checks see it
    names: dict[int, str] = field(default_factory=dict)  # every probe's name as written
    # How a message names another place of the config: ``probes[2]``, or with its file
    # when the config is several files (monitor.config.files.Origin.where).
    where: Callable[[Path_], str] = display


@dataclass
class Checked:
    probes: list[Probe]
    label_names: list[str]
    warnings: list[Problem]
    missing: list[Problem]  # secrets that are not there (an error for `check` only)


def shape_problems(data: Any) -> list[Problem]:
    """The "exactly one of" rules of the schema, and those across a negative probe's keys,
    checked on the plain data.

    pydantic runs a model's own validator only once all its fields are valid, so a probe
    with both http and websocket *and* a bad URL would be reported in two rounds. Checked
    here too, in the schema's words (equal problems are said once).
    """
    out: list[Problem] = []
    if not isinstance(data, dict):
        return out
    auth = data.get("auth")
    for name, provider in auth.items() if isinstance(auth, dict) else ():
        if isinstance(provider, dict) and provider.get("type") == "jwt":
            msg = jwt_key_problem({k for k, v in provider.items() if v})
            if msg:
                out.append((("auth", name), msg))
    probes = data.get("probes")
    for i, probe in enumerate(probes if isinstance(probes, list) else ()):
        if not isinstance(probe, dict):
            continue
        msg = one_kind_problem({k for k in PROBE_KINDS if probe.get(k) is not None})
        if msg:
            out.append((("probes", i), msg))
        for kind, model in KIND_MODELS.items():
            section = model.section_data(probe.get(kind))
            if section is None:
                continue
            if issubclass(model, Negative):
                out += _negative_problems(i, kind, section)
            out += [(("probes", i, kind, *at), msg) for at, msg in model.shape_problems(section)]
    return out


def explain_probe_keys(problems: list[Problem], data: Any) -> list[Problem]:
    """An unknown key of a probe that its kind has a reason to refuse (``variants`` beside a
    flow) said with that reason (KindSpec.probe_key_problem) instead of "unknown key"."""
    probes = data.get("probes") if isinstance(data, dict) else None
    out: list[Problem] = []
    for path, msg in problems:
        if (len(path) == 3 and path[0] == "probes" and isinstance(path[1], int)
                and isinstance(probes, list) and path[1] < len(probes)
                and isinstance(probes[path[1]], dict) and msg.startswith("unknown key")):
            probe = probes[path[1]]
            why = next((w for k, m in KIND_MODELS.items() if probe.get(k) is not None
                        and (w := m.probe_key_problem(str(path[2]))) is not None), None)
            if why is not None:
                msg = f"unknown key: {why}"
        out.append((path, msg))
    return out


def unbuildable_variants(variants: tuple[str, ...], auth: JwtAuth | TokenEndpointAuth | None,
                         auth_name: str | None) -> list[tuple[str, str]]:
    """(variant, why) for every variant that cannot be built from the probe's provider."""
    out: list[tuple[str, str]] = []
    for v in variants:
        if auth is None:
            if auth_name is None:
                out.append((v, "the probe has no auth provider to derive it from"))
            continue  # an unknown provider name is reported on its own
        info = VARIANT_INFO[v]
        if info.needs_jwt and not isinstance(auth, JwtAuth):
            out.append((v, f"it needs a jwt auth provider, and '{auth_name}' is "
                           f"{auth.type}"))
        elif info.needs_claim is not None and isinstance(auth, JwtAuth) \
                and info.needs_claim not in auth.claims:
            out.append((v, f"the claims of '{auth_name}' carry no {info.needs_claim}"))
    return out


def _negative_problems(i: int, kind: str, spec: dict[str, Any]) -> list[Problem]:
    """The rules across a negative probe's keys (issue 12), on plain data."""
    out: list[Problem] = []
    variants = spec.get("variants")
    listed = variants if isinstance(variants, list) else []
    if listed and spec.get("expect_rejected") is not True:
        out.append((("probes", i, kind, "variants"),
                    "variants need expect_rejected: true (each is a negative probe)"))
    if spec.get("bypass_headers") and "bypass_headers" not in listed:
        out.append((("probes", i, kind, "bypass_headers"),
                    "is set, but the bypass_headers variant is not in variants"))
    return out


def _bad_labels(labels: Mapping[str, str], at: Path_) -> list[Problem]:
    return [((*at, key), _LABEL_RULE) for key in labels
            if not _LABEL_NAME.match(key) or key in RESERVED_LABELS]


def _budget_problem(timeout: float, retries: int, retry_delay: float, interval: float,
                    overrun: float = 0.0) -> str:
    budget = retry_budget(timeout, retries, retry_delay)
    after = f", the always steps' {format_duration(overrun)} included" if overrun else ""
    return (f"a run with its retries may take {format_duration(budget)} (timeout "
            f"{format_duration(timeout)}{after} x {retries + 1} attempts + retry_delay "
            f"{format_duration(retry_delay)} x {retries}), which must be shorter than the "
            f"interval ({format_duration(interval)}) so that retries never overlap the next "
            "run; lower retries (0 turns them off), retry_delay or timeout, or raise the interval")


def validate_semantics(parts: Parts, env: Mapping[str, str],
                       problems: list[Problem]) -> Checked:
    """The whole-file checks; their problems are appended to ``problems``. Every probe is
    checked, valid or not (see :mod:`~monitor.config.facts`); only valid ones are built."""
    probes: list[Probe] = []
    warnings: list[Problem] = []
    missing: list[Problem] = []
    label_names: set[str] = set()
    defaults = parts.defaults
    if defaults is not None:
        problems += _bad_labels(defaults.labels, ("defaults", "labels"))
    for name, provider in parts.auth.items():
        if isinstance(provider, JwtAuth) and provider.secret is not None:
            problems.append((("auth", name, "secret"),
                             f"inline secrets are refused in shared auth providers; {SECRET_DOC}"))
    first: dict[str, int] = {}
    for i, name in sorted(parts.names.items()):
        if name in first:
            problems.append((("probes", i, "name"), f"duplicate probe name '{name}' "
                             f"(first used by {parts.where(('probes', first[name]))})"))
        first.setdefault(name, i)
    used: list[str] = []  # shared providers in use, each checked for its secrets once
    budget_reported = False
    timings: dict[Timing, Timing] = {}  # one instance for the probes that time alike
    compared: list[tuple[int, Probe]] = []  # valid WebSocket probes, for the route check
    for facts in sorted(parts.probes, key=lambda f: f.index):
        i = facts.index
        at: Path_ = ("probes", i)
        if not isinstance(facts.labels, _Unknown):
            problems += _bad_labels(facts.labels, (*at, "labels"))
        timing = _timing(facts, defaults)
        interval, timeout = timing.get("interval"), timing.get("timeout")
        retries, retry_delay = timing.get("retries"), timing.get("retry_delay")
        own = [k for k in ("retries", "retry_delay", "timeout", "interval")
               if isinstance(facts.timing.get(k), (int, float))]
        # With invalid values (here or in the defaults) the timing is unknown; that error
        # is reported already.
        # A kind that goes on after the timeout (a flow's cleanup steps) is bounded by both.
        overrun = facts.spec.kind_spec.overrun(timeout) \
            if facts.spec is not None and timeout is not None else 0.0
        if interval is not None and timeout is not None and timeout + overrun >= interval:
            after = f" and the always steps' {format_duration(overrun)} after it" \
                if overrun else ""
            problems.append(((*at, "timeout" if "timeout" in own else "interval"),
                             f"timeout ({format_duration(timeout)}){after} must be shorter "
                             f"than the interval ({format_duration(interval)})"))
        if (interval is not None and timeout is not None and retries is not None
                and retry_delay is not None and timeout + overrun < interval
                and retry_budget(timeout + overrun, int(retries), retry_delay) >= interval
                and (own or not budget_reported)):
            # Inherited from defaults alone: one error for the whole file, not per probe.
            budget_reported = budget_reported or not (own or overrun)
            where: Path_ = (*at, own[0]) if own else (*at, "retries") if overrun \
                else ("defaults", "retries")
            problems.append((where, _budget_problem(timeout + overrun, int(retries),
                                                    retry_delay, interval, overrun)))
        auth_name, auth = _auth_problems(facts, parts, env, problems, missing, used)
        kind = facts.kind
        if kind is None:
            continue  # "exactly one of http, websocket, ..." is reported already
        has_auth = None if facts.auth is UNKNOWN else facts.auth is not None
        problems += [((*at, kind, *sub), msg) for sub, msg in KIND_MODELS[kind].key_problems(
            facts.section_value, has_auth=has_auth)]
        if not isinstance(facts.variants, _Unknown) and facts.auth is not UNKNOWN:
            for v, why in unbuildable_variants(facts.variants, auth, auth_name):
                problems.append(((*at, kind, "variants", facts.variants.index(v)),
                                 f"variant {v} cannot be built: {why}"))
        spec = facts.spec
        if spec is None:
            continue
        # A valid probe: the same rules as shape_problems (equal problems are said once
        # when both see them), then the probe is built.
        spec_kind = spec.kind_spec
        own_bound = spec_kind.run_timeout
        if own_bound is not None and timeout is not None and own_bound > timeout:
            problems.append(((*at, kind, "timeout"),
                             f"({format_duration(own_bound)}) is longer than the probe's "
                             f"timeout ({format_duration(timeout)}), which bounds every run: "
                             f"set timeout: {format_duration(own_bound)} on the probe (or "
                             "in defaults) too"))
        negative = spec_kind if isinstance(spec_kind, Negative) else None
        variants = negative.variants if negative is not None else ()
        if negative is not None and (negative.variants or negative.bypass_headers):
            problems += _negative_problems(i, spec.type, {
                "variants": list(negative.variants),
                "expect_rejected": negative.expect_rejected,
                "bypass_headers": negative.bypass_headers})
        warnings += [((*at, kind, *sub), msg) for sub, msg in spec_kind.warnings()]
        labels = {**(defaults.labels if defaults else {}), **spec.labels}
        label_names.update(labels)
        shared = Timing(interval or 0.0, timeout or 0.0, int(retries or 0), retry_delay or 0.0,
                        overrun)
        # A negative probe's variants: each its own run (Probe.key is name@variant).
        for variant in variants or (None,):
            probes.append(Probe(spec=spec, timing=timings.setdefault(shared, shared),
                                labels=tuple(sorted(labels.items())),
                                auth_name=auth_name, auth=auth, variant=variant,
                                trace=(defaults.trace if defaults is not None else True)
                                if spec.trace is None else spec.trace,
                                tracestate=spec.tracestate
                                or (defaults.tracestate if defaults is not None else None)))
            if variant is None:
                compared.append((i, probes[-1]))
    for name in used:
        missing += [(("auth", name, *key), msg)
                    for key, msg in missing_secrets(parts.auth[name], env)]
    warnings += _route_comparison_warnings(compared)
    return Checked(probes=probes, label_names=sorted(label_names), warnings=warnings,
                   missing=missing)


def _route_comparison_warnings(probes: list[tuple[int, Probe]]) -> list[Problem]:
    """A probe that diagnoses a refused answer (``diagnose: true``, a WebSocket probe's
    default) with credentials, and no probe to compare it with: a probe of its kind, not a
    negative one, on another path of the same host with the same credentials. Without one,
    a 403 there cannot be told from refused credentials (the status page's cross-check and
    the alert SynthmonWebSocketRouteLikelyMissing compare with such a probe)."""
    def creds(p: Probe) -> str | None:
        return p.auth_name or (f"inline:{p.spec.name}" if p.auth is not None else None)

    def negative(p: Probe) -> bool:
        section = p.spec.kind_spec
        return isinstance(section, Negative) and section.expect_rejected

    positive = [(i, p, urlsplit(p.spec.url)) for i, p in probes
                if not negative(p) and creds(p) is not None]
    # The paths asked of each host, by kind and credentials: one look a probe, not a scan
    # of every other probe (10,000 WebSocket probes with credentials made 10^8 comparisons).
    paths: dict[tuple[str, str | None, str], set[str]] = {}
    for _, p, here in positive:
        paths.setdefault((p.spec.type, creds(p), here.netloc), set()).add(here.path)
    out: list[Problem] = []
    for i, p, here in positive:
        if not getattr(p.spec.kind_spec, "diagnose", False):
            continue
        if paths[(p.spec.type, creds(p), here.netloc)] - {here.path}:
            continue
        out.append((("probes", i, p.spec.type, "url"),
                    f"no {p.spec.type} probe on another path of {here.netloc} with the same "
                    f"credentials ({p.auth_name or 'inline'}): a 403 here cannot be told from "
                    "refused credentials; add one (like the shipped ws-alternate-path on /ws) "
                    "for the status page's cross-check and the alert "
                    "SynthmonWebSocketRouteLikelyMissing to compare with"))
    return out


def _timing(facts: ProbeFacts, defaults: Defaults | None) -> dict[str, float]:
    """The probe's interval, timeout, retries and retry_delay, its own or the defaults';
    a key whose value is unknown (a bad value, here or in the defaults) is left out."""
    out: dict[str, float] = {}
    for key in TIMING_KEYS:
        value = facts.timing.get(key)
        if value is None and defaults is not None:
            value = getattr(defaults, key)
        if isinstance(value, (int, float)):
            out[key] = value
    return out


def _auth_problems(facts: ProbeFacts, parts: Parts, env: Mapping[str, str],
                   problems: list[Problem], missing: list[Problem], used: list[str]
                   ) -> tuple[str | None, JwtAuth | TokenEndpointAuth | None]:
    """The probe's auth reference checked: an unknown provider, an inline secret where it
    is not allowed, the secrets it reads. Returns the provider's name and the provider."""
    ref = facts.auth
    at: Path_ = ("probes", facts.index, facts.kind or "", *facts.auth_path)
    if isinstance(ref, str):
        if ref not in parts.auth_names:
            known = ", ".join(parts.auth_names) or "none defined"
            guess = difflib.get_close_matches(ref, parts.auth_names, n=1)
            problems.append((at, f"unknown auth provider '{ref}'"
                             + (f"; did you mean '{guess[0]}'?" if guess else
                                f" (defined: {known})")))
            return ref, None
        if ref in parts.auth and ref not in used:
            used.append(ref)
        return ref, parts.auth.get(ref)
    if ref is None or isinstance(ref, _Unknown):
        return None, None
    spec_name = facts.spec.name if facts.spec is not None else parts.names.get(facts.index)
    if isinstance(ref, JwtAuth) and ref.secret is not None and facts.expect_rejected is False:
        problems.append(((*at, "secret"), "inline secrets are allowed only on negative probes "
                         f"(expect_rejected: true); {SECRET_DOC}"))
    missing += [((*at, *key), msg) for key, msg in missing_secrets(ref, env)]
    return f"{spec_name}/inline", ref
