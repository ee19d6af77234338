"""Not every 401 is the backend's regression: a probe that cannot obtain its credentials
ends in ``credentials_unavailable`` with a hint, never in an outcome that judges the target
(``auth_rejected``, which pages as a WebSocket regression, or ``timeout``).

Every way of not getting a token, from a real token endpoint on loopback: a refusal of the
probe's own credentials (401, 403, 400), a failure (500), no answer in time, nothing
listening, an answer that is not JSON or has no token; a key file that cannot be read at
run time. An environment variable that is not set stays ``config_error`` (the contract's
"a secret missing at run time"). Through the HTTP, the WebSocket and the stream probe alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from monitor.config import load_text
from monitor.outcomes import Outcome
from monitor.probes.context import ProbeContext
from monitor.probes.run import run_probe
from monitor.web.summary import MEANING, handshake, seen
from tests.support.servers import free_port, serving

Handler = Callable[[web.Request], web.StreamResponse]

ENDPOINTS: dict[str, tuple[int | None, str, str]] = {
    # what the token endpoint does: (status, body) -> the detail, a hint fragment
    "refused": (401, '{"error": "invalid_grant"}', "refused the probe's own credentials"),
    "forbidden": (403, '{"error": "denied"}', "refused the probe's own credentials"),
    "bad_request": (400, '{"error": "invalid_request"}', "refused the probe's own credentials"),
    "failing": (500, '{"error": "boom"}', "failed to issue a token"),
    "not_json": (200, "<html>login</html>", "without a token where"),
    "no_token": (200, '{"token_type": "bearer"}', "without a token where"),
    "slow": (None, "", "did not answer"),
}


async def _token_app(base_delay: float = 3.0) -> web.Application:
    app = web.Application()

    async def token(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        status, body, _ = ENDPOINTS[kind]
        if status is None:
            await asyncio.sleep(base_delay)
            status, body = 200, '{"access_token": "late-token-abcdef"}'
        return web.Response(status=status, text=body, content_type="application/json")

    async def target(request: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    app.router.add_post("/token/{kind}", token)
    app.router.add_get("/api/health", target)
    return app


def _config(base: str, kind: str, probe_kind: str, token_url: str | None = None) -> str:
    url = token_url or f"{base}/token/{kind}"
    target = {"http": f'http: {{url: "{base}/api/health", auth: login}}',
              "sse": f'sse: {{url: "{base}/stream", auth: login}}',
              "websocket": f'websocket: {{url: "{base.replace("http", "ws", 1)}/ws", '
                           'auth: login}'}[probe_kind]
    return (f"defaults: {{interval: 10s, timeout: 1s, retries: 0}}\n"
            f"auth:\n  login: {{type: token_endpoint, url: \"{url}\", "
            f"fields: {{username: e2e, password: wrong}}}}\n"
            f"probes:\n  - name: p\n    {target}\n")


@pytest.mark.parametrize("probe_kind", ["http", "websocket", "sse"])
@pytest.mark.parametrize("kind", [*ENDPOINTS, "unreachable"])
async def test_no_token_is_credentials_unavailable_with_a_hint(
        ctx: ProbeContext, kind: str, probe_kind: str) -> None:
    async with serving(await _token_app()) as base:
        token_url = f"http://127.0.0.1:{free_port()}/token" if kind == "unreachable" else None
        probe = load_text(_config(base, kind, probe_kind, token_url), env={}).probes[0]
        ctx.tokens.forget()
        result = await run_probe(probe, ctx)
    assert result.outcome is Outcome.CREDENTIALS_UNAVAILABLE, result.evidence
    assert not result.success
    hint = result.evidence.hint or ""
    fragment = ENDPOINTS[kind][2] if kind in ENDPOINTS else "did not answer"
    assert fragment in hint, hint
    assert "did not reach its target" in hint
    # Nothing was said about the target: no status of its own, no handshake.
    assert result.status_code is None and result.close_code is None and not result.upgraded
    assert seen(result).startswith("not run: ")
    if probe_kind == "websocket":
        assert handshake(result) == "not run: no credentials to send"
    assert MEANING[result.outcome].endswith("the target was not asked")


async def test_a_key_file_gone_at_run_time_is_credentials_unavailable(
        ctx: ProbeContext, tmp_path: Path) -> None:
    key = tmp_path / "jwt-secret"
    key.write_text("a-secret-that-is-long-enough-0123456789")
    async with serving(await _token_app()) as base:
        config = load_text(
            "auth:\n  staging: {type: jwt, secret_file: " + str(key) + "}\n"
            f"probes:\n  - name: p\n    http: {{url: \"{base}/api/health\", auth: staging}}\n",
            env={})
        assert (await run_probe(config.probes[0], ctx)).outcome is Outcome.SUCCESS
        key.unlink()  # the mounted Secret went away
        ctx.tokens.forget()
        result = await run_probe(config.probes[0], ctx)
    assert result.outcome is Outcome.CREDENTIALS_UNAVAILABLE
    assert str(key) in result.evidence.detail
    assert "cannot read" in (result.evidence.hint or "")


async def test_a_secret_variable_not_set_stays_config_error(ctx: ProbeContext) -> None:
    async with serving(await _token_app()) as base:
        config = load_text(
            "auth:\n  staging: {type: jwt, secret_env: I21_NEVER_SET_SECRET}\n"
            f"probes:\n  - name: p\n    http: {{url: \"{base}/api/health\", auth: staging}}\n",
            env={})
        result = await run_probe(config.probes[0], ctx)
    assert result.outcome is Outcome.CONFIG_ERROR
