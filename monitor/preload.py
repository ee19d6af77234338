"""Import what only some probes need (PyJWT, cryptography: ~8 MB, imported lazily) before
the first run of a config that has such probes: inside a first run the import would block
the event loop for 100-300 ms while other runs are being timed (``once`` then reported fast
probes as ``slow``)."""

from __future__ import annotations

from monitor.config import Config, JwtAuth


def preload(config: Config) -> None:
    if any(isinstance(p.auth, JwtAuth) for p in config.probes):
        import jwt  # noqa: F401
    if any(p.spec.url.startswith(("https:", "wss:")) for p in config.probes):
        from cryptography import x509  # noqa: F401
