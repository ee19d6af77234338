"""Mutual TLS: ``tls.cert_file`` / ``tls.key_file``, one block for every kind. A server on
loopback that requires a client certificate lets the probe in with the configured one and
refuses it without; an unreadable certificate is config_error, not a network outcome."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from tests.support.hostile import Cert, make_cert
from tests.support.servers import serving


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Cert, Cert]:
    return (make_cert(tmp_path / "server", ["127.0.0.1"]),
            make_cert(tmp_path / "client", ["synthmon-probe"], stem="client"))


async def _ok(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws
    return web.json_response({"status": "healthy"})


@pytest.fixture
async def mtls_url(certs: tuple[Cert, Cert]) -> AsyncIterator[str]:
    server, client = certs
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(server.cert_file, server.key_file)
    tls.verify_mode = ssl.CERT_REQUIRED
    tls.load_verify_locations(cafile=str(client.cert_file))
    app = web.Application()
    app.router.add_get("/", _ok)
    async with serving(app, tls) as url:
        yield url.replace("http://", "https://")


def _probe(kind: str, url: str, tls: str) -> str:
    if kind == "websocket":
        url = url.replace("https://", "wss://")
    return f"""
defaults: {{interval: 30s, timeout: 5s, retries: 0}}
probes:
  - name: p
    {kind}:
      url: {url}/
      tls: {{{tls}}}
"""


@pytest.mark.both_loops
@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_client_certificate_gets_in_and_none_is_refused(
        kind: str, mtls_url: str, certs: tuple[Cert, Cert], ctx: ProbeContext) -> None:
    server, client = certs
    ca = f"ca_file: {server.cert_file}"
    with_cert = load_text(_probe(kind, mtls_url, f"{ca}, cert_file: {client.cert_file}, "
                                                 f"key_file: {client.key_file}")).probes[0]
    result = await run_probe(with_cert, ctx)
    assert result.outcome is Outcome.SUCCESS, result.evidence.detail

    without = load_text(_probe(kind, mtls_url, ca)).probes[0]
    refused = await run_probe(without, ctx)
    # TLS 1.3 sends the refusal of a missing certificate after the handshake: the alert
    # or the hang-up it causes, depending on when the client reads.
    assert refused.outcome in (Outcome.TLS_ERROR, Outcome.CONNECTION_RESET,
                               Outcome.CLOSED_BY_SERVER), refused.evidence.detail


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_an_unreadable_client_certificate_is_config_error(
        kind: str, tmp_path: Path, certs: tuple[Cert, Cert], ctx: ProbeContext) -> None:
    server, client = certs
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("not a certificate\n")
    probe = load_text(_probe(kind, "https://127.0.0.1:9", f"ca_file: {server.cert_file}, "
                             f"cert_file: {bad}")).probes[0]
    result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert "tls.cert_file" in result.evidence.detail
    missing = load_text(_probe(kind, "https://127.0.0.1:9", f"cert_file: {client.cert_file},"
                               f" key_file: {tmp_path / 'gone.pem'}")).probes[0]
    result = await run_probe(missing, ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
    assert "tls.key_file" in result.evidence.detail


def test_key_file_needs_cert_file() -> None:
    from monitor.config import ConfigError
    with pytest.raises(ConfigError, match="key_file needs cert_file"):
        load_text(_probe("http", "https://127.0.0.1:9", "key_file: /x.pem"))
