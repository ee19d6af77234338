"""TLS helpers shared by the probes: client contexts from a :class:`TlsSpec` and the
expiry of the peer certificate. The contexts are :class:`~monitor.probes.net.tls.TimedContext`,
which notes when a handshake starts (a hook into :mod:`ssl`, kept in :mod:`monitor.probes.net`).
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache

from monitor.config import TlsSpec
from monitor.probes.net.tls import TimedContext


class TlsConfigError(Exception):
    """The TLS settings of a probe cannot be used (e.g. an unreadable ca_file)."""


def _stamp(key: str, path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise TlsConfigError(f"tls.{key} {path}: {exc.strerror or exc}") from None
    return st.st_mtime_ns, st.st_size


def client_context(spec: TlsSpec) -> ssl.SSLContext:
    """A client context for ``spec``. Raises :class:`TlsConfigError`.

    Contexts are cached: loading the system CA store costs tens of milliseconds, too much to
    repeat on every run. The cache key includes the mtime and size of every file the
    context reads (ca_file, cert_file, key_file), so that a rotated CA bundle or client
    certificate is picked up without a reload.
    """
    ca: tuple[int, int] | None = None
    if spec.ca_file and not spec.insecure_skip_verify:
        ca = _stamp("ca_file", spec.ca_file)
    client: tuple[tuple[int, int], tuple[int, int] | None] | None = None
    if spec.cert_file:
        client = (_stamp("cert_file", spec.cert_file),
                  _stamp("key_file", spec.key_file) if spec.key_file else None)
    return _cached_context(spec.insecure_skip_verify, spec.ca_file, ca,
                           spec.cert_file, spec.key_file, client)


@lru_cache(maxsize=64)
def _cached_context(insecure: bool, ca_file: str | None, ca_stamp: tuple[int, int] | None,
                    cert_file: str | None, key_file: str | None,
                    client_stamp: object) -> ssl.SSLContext:
    ctx = TimedContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            # The message names what is wrong (no key, a key that does not match), never
            # the key's bytes.
            what = "cert_file/key_file" if key_file else "cert_file"
            raise TlsConfigError(f"tls.{what} {cert_file}: cannot load the client "
                                 f"certificate: {getattr(exc, 'reason', None) or exc}"
                                 ) from None
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        if ca_file:
            ctx.load_verify_locations(cafile=ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"tls.ca_file {ca_file}: cannot load: {exc}") from None
    return ctx


def cert_expiry(der: bytes | None) -> float | None:
    """notAfter of a DER certificate as unix seconds, or None if it cannot be parsed.

    Parsed from the binary form so that it works with ``insecure_skip_verify`` too: the
    dict form of ``getpeercert()`` is empty when the certificate was not verified.
    """
    if not der:
        return None
    # Imported on the first certificate: cryptography's bindings are ~8 MB of a daemon
    # that may probe no https:// or wss:// target.
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    except ValueError:
        return None


def peer_certificate(obj: ssl.SSLObject) -> bytes | None:
    """The peer's leaf certificate in DER form, once the handshake is done.

    Only the leaf: Python 3.11 exposes no chain. It is the certificate that expires first
    in nearly every deployment (intermediates outlive the leaves they sign).
    """
    try:
        return obj.getpeercert(binary_form=True)
    except (ValueError, ssl.SSLError):
        return None


__all__ = ["TlsConfigError", "cert_expiry", "client_context",
           "peer_certificate"]
