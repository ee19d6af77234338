"""Do before the first run what a first run would otherwise do inside its clock.

- Import what only some probes need (PyJWT, cryptography: ~8 MB, imported lazily): inside a
  first run the import would block the event loop for 100-300 ms while other runs are being
  timed (``once`` then reported fast probes as ``slow``).
- Build the TLS client contexts the probes will use: loading the system CA store takes
  tens of milliseconds (60 ms here), and the first https:// run counted it as its latency.
- Import the IDNA codec, which the first request of a process imports to encode its host
  (1-2 ms in the first run's clock).
- Import the runners that are imported at their first use (``ProbeKind.load``: the
  WebSocket kind's, with websockets) when a probe or a flow's step is of their kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from monitor.config import Config, JwtAuth, Probe
from monitor.config.schema.tls import TlsSpec
from monitor.probes.kinds import kind_of
from monitor.probes.tls import TlsConfigError, client_context


def preload(config: Config) -> None:
    import encodings.idna  # noqa: F401

    if any(isinstance(p.auth, JwtAuth) for p in config.probes):
        import jwt  # noqa: F401
    if any(p.spec.url.startswith(("https:", "wss:")) for p in config.probes):
        from cryptography import x509  # noqa: F401
    used = {p.type for p in config.probes}
    used.update(k for p in config.probes for k in p.spec.kind_spec.step_kinds)
    for name in sorted(used):
        kind = kind_of(name)
        if kind is not None and kind.load is not None:
            kind.load()
    seen: set[int] = set()
    for probe in config.probes:
        for spec in _tls_specs(probe):
            if id(spec) in seen:  # probes written alike share one (config/schema/base.py)
                continue
            seen.add(id(spec))
            with contextlib.suppress(TlsConfigError):  # the run says so, naming the file
                client_context(spec)


def _tls_specs(probe: Probe) -> Iterator[TlsSpec]:
    """The TLS settings a run of ``probe`` may make a context of: of probes with a TLS URL
    or that follow redirects (one may lead to https://), wherever the kind's spec has one."""
    spec = probe.spec.kind_spec
    if probe.spec.url.startswith(("https:", "wss:")) or getattr(spec, "follow_redirects", False):
        yield from _walk(spec)


def _walk(model: BaseModel) -> Iterator[TlsSpec]:
    for name in type(model).model_fields:
        value: Any = getattr(model, name)
        if isinstance(value, TlsSpec):
            yield value
        elif isinstance(value, BaseModel):
            yield from _walk(value)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from _walk(item)
