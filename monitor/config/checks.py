"""What a file must satisfy as a whole, beyond each section's own schema: unique names,
known auth providers, a timeout within its interval, label names, secrets in their place.
Builds the resolved :class:`~monitor.config.model.Probe` of each probe on the way."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from monitor.config.errors import Problem
from monitor.config.model import Probe
from monitor.config.schema import (
    RESERVED_LABELS,
    SECRET_DOC,
    JwtAuth,
    ProbesFile,
    TokenEndpointAuth,
)
from monitor.config.secrets import missing_secrets
from monitor.durations import format_duration

# Variants that re-sign or re-shape a JWT need a jwt provider whose key synthmon holds.
_NEEDS_JWT = ("expired", "not_yet_valid", "bad_signature", "alg_none", "wrong_issuer",
              "wrong_audience", "bypass_headers")


def unbuildable_variants(variants: tuple[str, ...], auth: JwtAuth | TokenEndpointAuth | None,
                         auth_name: str | None) -> list[tuple[str, str]]:
    """(variant, why) for every variant that cannot be built from the probe's provider."""
    out: list[tuple[str, str]] = []
    for v in variants:
        if auth is None:
            if auth_name is None:
                out.append((v, "the probe has no auth provider to derive it from"))
            continue  # an unknown provider name is reported on its own
        if v in _NEEDS_JWT and not isinstance(auth, JwtAuth):
            out.append((v, f"it needs a jwt auth provider, and '{auth_name}' is "
                           f"{auth.type}"))
        elif v == "wrong_issuer" and isinstance(auth, JwtAuth) and "iss" not in auth.claims:
            out.append((v, f"the claims of '{auth_name}' carry no iss"))
        elif v == "wrong_audience" and isinstance(auth, JwtAuth) and "aud" not in auth.claims:
            out.append((v, f"the claims of '{auth_name}' carry no aud"))
    return out

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

def shape_problems(data: Any) -> list[Problem]:
    """Rules across keys of one section, checked on the plain data so that they are reported
    together with the schema's own errors (pydantic skips a model's cross-field checks when
    one of its fields is already invalid)."""
    out: list[Problem] = []
    probes = data.get("probes") if isinstance(data, dict) else None
    if not isinstance(probes, list):
        return out
    for i, probe in enumerate(probes):
        if not isinstance(probe, dict):
            continue
        for kind in ("http", "websocket"):
            spec = probe.get(kind)
            if not isinstance(spec, dict):
                continue
            variants = spec.get("variants")
            listed = variants if isinstance(variants, list) else []
            if listed and spec.get("expect_rejected") is not True:
                out.append((("probes", i, kind, "variants"),
                            "variants need expect_rejected: true (each is a negative probe)"))
            if spec.get("bypass_headers") and "bypass_headers" not in listed:
                out.append((("probes", i, kind, "bypass_headers"),
                            "is set, but the bypass_headers variant is not in variants"))
            steps = spec.get("steps")
            for j, step in enumerate(steps if isinstance(steps, list) else []):
                events = step.get("expect_events") if isinstance(step, dict) else None
                if not isinstance(events, dict) or not isinstance(events.get("aliases"), dict):
                    continue
                types = events.get("types")
                known = [t for t in types if isinstance(t, str)] if isinstance(types, list) \
                    else []
                for name in events["aliases"]:
                    if name not in known:
                        out.append((("probes", i, kind, "steps", j, "expect_events", "aliases",
                                     name),
                                    f"{name!r} is not in types ({', '.join(known) or 'none'}): "
                                    "aliases name other spellings of an expected type"))
    return out


def validate_semantics(model: ProbesFile, problems: list[Problem],
                        env: Mapping[str, str]) -> tuple[list[Probe], list[str], list[str]]:
    seen: dict[str, int] = {}
    probes: list[Probe] = []
    warnings: list[str] = []
    label_names: set[str] = set()
    for key in model.defaults.labels:
        if not _LABEL_NAME.match(key) or key in RESERVED_LABELS:
            problems.append((("defaults", "labels", key),
                             "label name must match [a-zA-Z_][a-zA-Z0-9_]* and not be one of "
                             + ", ".join(sorted(RESERVED_LABELS))))
    for name, provider in model.auth.items():
        if isinstance(provider, JwtAuth) and provider.secret is not None:
            problems.append((("auth", name, "secret"),
                             f"inline secrets are refused in shared auth providers; {SECRET_DOC}"))
    for i, spec in enumerate(model.probes):
        if spec.name in seen:
            problems.append((("probes", i, "name"),
                             f"duplicate probe name '{spec.name}' "
                             f"(first used by probes[{seen[spec.name]}])"))
        seen.setdefault(spec.name, i)
        interval = spec.interval or model.defaults.interval
        timeout = spec.timeout or model.defaults.timeout
        if timeout >= interval:
            problems.append((("probes", i, "timeout" if spec.timeout else "interval"),
                             f"timeout ({format_duration(timeout)}) must be shorter than the "
                             f"interval ({format_duration(interval)})"))
        labels = {**model.defaults.labels, **spec.labels}
        for key in spec.labels:
            if not _LABEL_NAME.match(key) or key in RESERVED_LABELS:
                problems.append((("probes", i, "labels", key),
                                 "label name must match [a-zA-Z_][a-zA-Z0-9_]* and not be one "
                                 "of " + ", ".join(sorted(RESERVED_LABELS))))
        label_names.update(labels)
        kind = spec.http or spec.websocket
        assert kind is not None
        ref = kind.auth
        auth_name: str | None = None
        auth: JwtAuth | TokenEndpointAuth | None = None
        if isinstance(ref, str):
            auth_name = ref
            if ref not in model.auth:
                known = ", ".join(model.auth) or "none defined"
                guess = difflib.get_close_matches(ref, list(model.auth), n=1)
                problems.append((("probes", i, spec.type, "auth"),
                                 f"unknown auth provider '{ref}'"
                                 + (f"; did you mean '{guess[0]}'?" if guess else
                                    f" (defined: {known})")))
            else:
                auth = model.auth[ref]
        elif ref is not None:
            auth = ref
            auth_name = f"{spec.name}/inline"
            rejected = kind.expect_rejected
            if isinstance(ref, JwtAuth) and ref.secret is not None and not rejected:
                problems.append((("probes", i, spec.type, "auth", "secret"),
                                 "inline secrets are allowed only on negative probes "
                                 f"(expect_rejected: true); {SECRET_DOC}"))
        if spec.http is not None and ref is not None and "@" in urlsplit(spec.http.url).netloc:
            # aiohttp refuses to send both; the probe could only ever report config_error.
            problems.append((("probes", i, "http", "auth"),
                             "cannot be combined with credentials in the URL (both would be "
                             "sent as the Authorization header)"))
        if spec.websocket is not None and "subprotocol" in spec.websocket.send_token_as \
                and auth is None and ref is None:
            problems.append((("probes", i, "websocket", "send_token_as"),
                             "sending the token needs an auth provider (websocket.auth)"))
        for v, why in unbuildable_variants(kind.variants, auth, auth_name):
            problems.append((("probes", i, spec.type, "variants", kind.variants.index(v)),
                             f"variant {v} cannot be built: {why}"))
        if spec.websocket is not None and spec.websocket.expect_rejected \
                and spec.websocket.steps:
            warnings.append(f"probes[{i}] ({spec.name}): steps are ignored on a negative probe")
        for missing in missing_secrets(auth, env):
            warnings.append(f"probes[{i}] ({spec.name}): {missing}")
        variants: tuple[str | None, ...] = kind.variants or (None,)
        for variant in variants:
            probes.append(Probe(spec=spec, interval=interval, timeout=timeout,
                                labels=tuple(sorted(labels.items())),
                                auth_name=auth_name, auth=auth, variant=variant))
    return probes, warnings, sorted(label_names)
