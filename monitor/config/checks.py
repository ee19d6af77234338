"""What a file must satisfy as a whole, beyond each section's own schema: unique names,
known auth providers, a timeout within its interval, label names, secrets in their place.
Builds the resolved :class:`~monitor.config.model.Probe` of each probe on the way."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
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

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _budget_problem(timeout: float, retries: int, retry_delay: float, interval: float) -> str:
    budget = timeout * (retries + 1) + retry_delay * retries
    return (f"a run with its retries may take {format_duration(budget)} (timeout "
            f"{format_duration(timeout)} x {retries + 1} attempts + retry_delay "
            f"{format_duration(retry_delay)} x {retries}), which must be shorter than the "
            f"interval ({format_duration(interval)}) so that retries never overlap the next "
            "run; lower retries (0 turns them off), retry_delay or timeout, or raise the interval")


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
    budget_reported = False
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
        retries = model.defaults.retries if spec.retries is None else spec.retries
        retry_delay = spec.retry_delay or model.defaults.retry_delay
        budget = timeout * (retries + 1) + retry_delay * retries
        if timeout < interval and budget >= interval:
            own = [k for k in ("retries", "retry_delay", "timeout", "interval")
                   if getattr(spec, k) is not None]
            if own or not budget_reported:
                # Inherited from defaults alone: one error for the whole file, not per probe.
                budget_reported = budget_reported or not own
                where = ("probes", i, own[0]) if own else ("defaults", "retries")
                problems.append((where, _budget_problem(timeout, retries, retry_delay, interval)))
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
            rejected = spec.websocket is not None and spec.websocket.expect_rejected
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
        if spec.websocket is not None and spec.websocket.expect_rejected \
                and spec.websocket.steps:
            warnings.append(f"probes[{i}] ({spec.name}): steps are ignored on a negative probe")
        for missing in missing_secrets(auth, env):
            warnings.append(f"probes[{i}] ({spec.name}): {missing}")
        probes.append(Probe(spec=spec, interval=interval, timeout=timeout,
                            labels=tuple(sorted(labels.items())),
                            auth_name=auth_name, auth=auth, retries=retries,
                            retry_delay=retry_delay))
    return probes, warnings, sorted(label_names)
