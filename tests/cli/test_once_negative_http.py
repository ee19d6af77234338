"""`synthmon once --format json` against the simulator: an HTTP negative probe's variants,
each its own object with a ``variant`` field, in every fail-open mode; answers that are no
auth refusal; a credential reflected in an HTTP answer's headers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.config import VARIANTS
from tests.support.servers import ROOT, SECRET, SimProc

PROBES = """\
defaults: {interval: 60s, timeout: 3s}
auth:
  jwt:
    type: jwt
    secret_env: JWT_SECRET_STAGING
    claims: {sub: once-user, iss: netra-auth-service, aud: netra-backend}
    ttl: 5m
probes:
  - name: threads-fail-closed
    http:
      url: ${STAGING_URL}/api/threads
      auth: jwt
      expect_rejected: true
      variants: [no_token, expired, not_yet_valid, bad_signature, alg_none, wrong_issuer,
                 wrong_audience, token_in_query_only, bypass_headers]
      bypass_headers: {X-E2E-Test: "true"}
  - name: threads
    http: {url: "${STAGING_URL}/api/threads", auth: jwt, expect: {status: 200}}
  - name: wrong-route-negative
    http:
      url: ${STAGING_URL}/api/no-such-route
      auth: jwt
      expect_rejected: true
      variants: [no_token]
"""

TOKENS = ("expired", "not_yet_valid", "bad_signature", "alg_none", "wrong_issuer",
          "wrong_audience", "bypass_headers")


def once(sim: SimProc, tmp_path: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    path = tmp_path / "probes.yaml"
    path.write_text(PROBES)
    proc = subprocess.run([sys.executable, "-m", "monitor", "once", "-c", str(path),
                           "--format", "json", "--retries", "0", *args],
                          capture_output=True, text=True, env=sim.env(), timeout=60, cwd=ROOT)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stdout + proc.stderr


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["probe"]: r for r in items}


def test_every_variant_is_its_own_object_and_healthy_refuses_them_all(
        sim_proc: SimProc, tmp_path: Path) -> None:
    code, items, out = once(sim_proc, tmp_path, "--probe", "threads-fail-closed")
    assert [r["variant"] for r in items] == list(VARIANTS)
    assert [r["probe"] for r in items] == [f"threads-fail-closed@{v}" for v in VARIANTS]
    for r in items:
        assert r["outcome"] == "success", (r["variant"], r["evidence"]["detail"])
        assert r["status_code"] == 403
        assert r["evidence"]["detail"] == "refused as expected: HTTP 403"
    assert code == 0
    assert SECRET not in out and "eyJ" not in out


# Which variants get in, in each fail-open mode of the simulator.
GETS_IN = {
    # A query token is no token to a server that does not read it: demo mode lets it in.
    "auth_demo_mode": {"no_token", "token_in_query_only"},
    "auth_emergency_bypass": set(TOKENS),
    "auth_test_headers": {"bypass_headers"},
    "auth_lax_validation": {"expired", "not_yet_valid", "alg_none", "wrong_issuer",
                            "wrong_audience"},
    "auth_query_token": {"token_in_query_only"},
}


@pytest.mark.parametrize("mode", sorted(GETS_IN))
def test_each_variant_that_gets_in_is_named(sim_proc: SimProc, tmp_path: Path,
                                            mode: str) -> None:
    sim_proc.set_mode(mode)
    code, items, out = once(sim_proc, tmp_path, "--probe", "threads-fail-closed")
    got_in = {r["variant"] for r in items if r["outcome"] == "auth_not_enforced"}
    assert got_in == GETS_IN[mode], out
    for r in items:
        if r["variant"] in got_in:
            assert r["evidence"]["detail"].startswith(f"variant {r['variant']} ("), r
            assert "got in: HTTP 200" in r["evidence"]["detail"]
        else:
            assert r["outcome"] == "success", r
    assert code == 1
    assert SECRET not in out and "eyJ" not in out


def test_no_refusal_teaches_nothing(sim_proc: SimProc, tmp_path: Path) -> None:
    _, items, out = once(sim_proc, tmp_path, "--probe", "wrong-route-negative")
    [r] = items
    assert r["outcome"] == "unexpected_status" and r["status_code"] == 404, out
    assert "learned nothing about auth" in r["evidence"]["hint"]
    sim_proc.set_mode("not_ready_503")
    _, items, out = once(sim_proc, tmp_path, "--probe", "threads-fail-closed")
    for r in items:
        assert r["outcome"] == "unexpected_status" and r["status_code"] == 503, out
        assert "failed before deciding" in r["evidence"]["hint"]
        assert r["evidence"]["retry_after"] == "5"


def test_a_token_reflected_in_a_header(sim_proc: SimProc, tmp_path: Path) -> None:
    sim_proc.set_mode("token_echo")
    code, items, out = once(sim_proc, tmp_path, "--probe", "threads")
    [r] = items
    assert r["outcome"] == "token_reflected" and r["success"] is False
    assert r["evidence"]["reflected_in"] == "X-Auth-Echo"
    assert "X-Auth-Echo" in r["evidence"]["detail"]
    assert code == 1
    assert SECRET not in out and "eyJ" not in out
    # Its value is redacted wherever the evidence keeps the header.
    assert dict(r["evidence"]["headers"])["X-Auth-Echo"] == "<redacted>"
