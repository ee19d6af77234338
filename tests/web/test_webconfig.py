"""The daemon's own endpoints behind TLS and basic auth (``--web-config``, Prometheus'
web config format), over real TLS on loopback; and what they show holds no secret."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from aiohttp import web

from monitor.web.basicauth import BasicAuth, Verdict
from monitor.web.webconfig import WebConfigError, load_web_config
from tests.support.hostile import ROOT, Cert, ThreadedServers, make_cert
from tests.support.procs import stop_process
from tests.support.servers import free_port

USER, PASSWORD = "prometheus", "scrape-Password-7d1e9c2b"
COST = 10


@pytest.fixture(scope="module")
def hashed() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=COST)).decode()


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("web-tls"), ["127.0.0.1", "localhost"])


# --------------------------------------------------------------------------- the file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_a_good_file_loads(tmp_path: Path, server_cert: Cert, hashed: str) -> None:
    web_config = load_web_config(write(tmp_path, f"""\
tls_server_config:
  cert_file: {server_cert.cert_file}
  key_file: {server_cert.key_file}
  min_version: TLS13
basic_auth_users:
  {USER}: {hashed}
"""))
    assert web_config.scheme == "https" and web_config.tls is not None
    assert web_config.tls.minimum_version == ssl.TLSVersion.TLSv1_3
    assert set(web_config.users) == {USER}
    assert hashed not in repr(web_config)
    assert load_web_config(write(tmp_path, "")).tls is None  # an empty file: plain HTTP


@pytest.mark.parametrize(("text", "expected"), [
    ("tls_server_config: {cert_fil: a, key_file: b}\n",
     "tls_server_config.cert_fil: unknown key; did you mean 'cert_file'?"),
    ("basic_auth_user: {}\n", "basic_auth_user: unknown key; did you mean 'basic_auth_users'?"),
    ("tls_server_config: {cert_file: a}\n", "tls_server_config.key_file: is required"),
    ("tls_server_config: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}\n",
     "tls_server_config: cannot load cert_file /nonexistent.pem"),
    ("basic_auth_users: {alice: hunter2-the-password}\n",
     "basic_auth_users.alice: must be a bcrypt hash"),
    ("basic_auth_users: {'a:b': x}\n", "cannot contain ':'"),
    ("tls_server_config: {cert_file: a, key_file: b, client_auth_type: Sometimes}\n",
     "tls_server_config.client_auth_type: must be 'NoClientCert'"),
    ("[not, a, mapping]\n", "the top level must be a mapping"),
    ("a: [\n", "invalid YAML"),
])
def test_bad_files_are_refused_plainly(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WebConfigError) as info:
        load_web_config(path)
    problems = info.value.problems
    assert any(re.match(rf"{re.escape(str(path))}:\d+: ", p) and expected in p
               for p in problems), problems
    assert "hunter2" not in str(info.value)  # a password written by mistake is not echoed


def test_client_auth_needs_a_ca_file(tmp_path: Path, server_cert: Cert) -> None:
    path = write(tmp_path, f"tls_server_config: {{cert_file: {server_cert.cert_file}, "
                           f"key_file: {server_cert.key_file}, "
                           "client_auth_type: RequireAndVerifyClientCert}\n")
    with pytest.raises(WebConfigError, match="needs client_ca_file"):
        load_web_config(path)


# --------------------------------------------------------------------------- the check


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_basic_auth_verifies_with_bcrypt_and_caches_verdicts(hashed: str) -> None:
    auth = BasicAuth({USER: hashed.encode()})
    ok, denied = Verdict.OK, Verdict.DENIED
    assert await auth.check(basic(USER, PASSWORD)) is ok
    assert auth.verifications == 1
    for _ in range(20):  # remembered: no bcrypt again
        assert await auth.check(basic(USER, PASSWORD)) is ok
    assert auth.verifications == 1
    for i in range(3):  # each new wrong password costs a verification
        assert await auth.check(basic(USER, f"{PASSWORD}x{i}")) is denied
    assert auth.verifications == 4
    for _ in range(5):  # the same wrong password again costs nothing
        assert await auth.check(basic(USER, f"{PASSWORD}x0")) is denied
    assert auth.verifications == 4
    assert await auth.check(basic("mallory", PASSWORD)) is denied  # unknown users cost one
    assert auth.verifications == 5
    for header in (None, "", "Bearer x", "Basic", "Basic !!!", "Basic " +
                   base64.b64encode(b"no-colon").decode(), basic(USER, "x" * 100)):
        assert await auth.check(header) is denied, header
    assert auth.verifications == 6  # only the over-long password reached bcrypt
    assert await auth.check("basic " + basic(USER, PASSWORD).split(" ", 1)[1]) is ok


async def test_an_unknown_user_takes_as_long_as_a_wrong_password(hashed: str) -> None:
    auth = BasicAuth({USER: hashed.encode()})
    await auth.check(basic(USER, "warm-up"))
    tries = iter(range(100))

    async def timed(user: str) -> float:
        t0 = time.perf_counter()
        # a new password each time: a repeated one is answered from the cache
        assert await auth.check(basic(user, f"wrong-{next(tries)}")) is Verdict.DENIED
        return time.perf_counter() - t0

    wrong = sorted([await timed(USER) for _ in range(5)])[2]
    unknown = sorted([await timed("nobody") for _ in range(5)])[2]
    assert 0.5 < unknown / wrong < 2.0, (unknown, wrong)


# --------------------------------------------------------------------------- the daemon


@dataclass
class TlsDaemon:
    proc: subprocess.Popen[str]
    url: str
    log: Path
    client: ssl.SSLContext

    def get(self, path: str, auth: str | None = None, method: str = "GET",
            context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(self.url + path, method=method,
                                         data=b"" if method == "POST" else None)
        if auth is not None:
            request.add_header("Authorization", auth)
        try:
            with urllib.request.urlopen(request, timeout=10,
                                        context=context or self.client) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()


SECRET_KEY = "web-Api-Key-5c3b1a9d8e7f"
SECRET_BEARER = "web-Bearer-Token-2f4e6a8c"


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(
        {"status": "degraded", "you_sent": dict(request.headers)}, status=503,
        headers={"Set-Cookie": f"session={request.headers.get('X-Api-Key', '')}",
                 "X-Echo-Key": request.headers.get("X-Api-Key", ""),
                 "WWW-Authenticate": f"Bearer error={request.headers.get('Authorization')}"})


@pytest.fixture
def tls_daemon(tmp_path: Path, server_cert: Cert, hashed: str) -> Iterator[TlsDaemon]:
    servers = ThreadedServers()
    app = web.Application()
    app.router.add_get("/echo", _echo)
    target = servers.app(app)
    config = tmp_path / "probes.yaml"
    config.write_text(f"""\
defaults: {{retries: 0, interval: 1s, timeout: 0.8s}}
probes:
  - name: echo
    http:
      url: http://127.0.0.1:{target}/echo
      headers: {{X-Api-Key: '${{SYNTHMON_WEB_KEY}}', Authorization: 'Bearer ${{BEARER}}'}}
""")
    web_yml = write(tmp_path, f"""\
tls_server_config:
  cert_file: {server_cert.cert_file}
  key_file: {server_cert.key_file}
basic_auth_users:
  {USER}: {hashed}
  other: {hashed}
""")
    port = free_port()
    log = tmp_path / "daemon.log"
    env = {**os.environ, "SYNTHMON_WEB_KEY": SECRET_KEY, "BEARER": SECRET_BEARER}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
         f"127.0.0.1:{port}", "--web-config", str(web_yml)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, text=True, cwd=ROOT)
    client = ssl.create_default_context(cafile=str(server_cert.cert_file))
    d = TlsDaemon(proc, f"https://127.0.0.1:{port}", log, client)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                if d.get("/-/ready", basic(USER, PASSWORD))[0] == 200:
                    break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield d
    finally:
        stop_process(proc)
        servers.close()


ENDPOINTS = [("GET", "/metrics"), ("GET", "/-/healthy"), ("GET", "/-/ready"),
             ("GET", "/api/v1/results"), ("GET", "/"), ("GET", "/probe/echo"),
             ("POST", "/-/reload")]


def test_every_endpoint_needs_credentials_over_tls(tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    for method, path in ENDPOINTS:
        for auth in (None, basic(USER, "wrong"), basic("nobody", PASSWORD), "Bearer x",
                     basic(USER, PASSWORD)[:-2]):
            status, headers, body = d.get(path, auth, method)
            assert status == 401, (method, path, auth, status)
            assert headers["WWW-Authenticate"] == 'Basic realm="synthmon", charset="UTF-8"'
            assert PASSWORD not in body
        status, _, body = d.get(path, basic(USER, PASSWORD), method)
        assert status == 200, (method, path, status, body[:200])
        assert d.get(path, basic("other", PASSWORD), method)[0] == 200
    assert "probe_success" in d.get("/metrics", basic(USER, PASSWORD))[2]


def test_plain_http_and_untrusted_clients_get_nothing(tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    # Plain HTTP to the TLS port: the connection is accepted (the daemon listens; a refusal
    # would mean it died), and what comes back is no HTTP answer, let alone the metrics.
    host, port = d.url.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as plain:
        plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: " + basic(USER, PASSWORD).encode() + b"\r\n\r\n")
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := plain.recv(65536):
                answer += chunk
    assert not answer.startswith(b"HTTP/"), answer[:300]
    assert b"probe_success" not in answer
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        d.get("/metrics", basic(USER, PASSWORD), context=ssl.create_default_context())
    assert d.proc.poll() is None
    assert d.get("/-/healthy", basic(USER, PASSWORD))[0] == 200  # and it still serves TLS


def test_verified_credentials_are_cached(tls_daemon: TlsDaemon) -> None:
    """After the first request, scrapes cost no bcrypt: many in a row take less time than
    a handful of verifications would."""
    d = tls_daemon
    t0 = time.perf_counter()
    bcrypt.checkpw(b"x", bcrypt.hashpw(b"y", bcrypt.gensalt(rounds=COST)))
    one_bcrypt = time.perf_counter() - t0
    assert d.get("/-/healthy", basic(USER, PASSWORD))[0] == 200
    t0 = time.perf_counter()
    for _ in range(20):
        assert d.get("/-/healthy", basic(USER, PASSWORD))[0] == 200
    cached = (time.perf_counter() - t0) / 20
    assert cached < one_bcrypt, (cached, one_bcrypt)


def test_status_and_results_show_no_secret_headers(tls_daemon: TlsDaemon) -> None:
    d = tls_daemon
    auth = basic(USER, PASSWORD)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        results = json.loads(d.get("/api/v1/results", auth)[2])["probes"]
        if results[0]["last"] is not None:
            break
        time.sleep(0.2)
    last = results[0]["last"]
    assert last["outcome"] == "unexpected_status", last
    headers = last["evidence"]["headers"]
    assert headers["Set-Cookie"] == "<redacted>"
    assert headers["X-Echo-Key"] == "<redacted>"
    assert "<redacted>" in headers["WWW-Authenticate"]
    pages = [d.get(p, auth)[2] for p in ("/api/v1/results", "/", "/probe/echo", "/metrics")]
    for text in [*pages, d.log.read_text()]:
        for secret in (SECRET_KEY, SECRET_BEARER, PASSWORD):
            for form in (secret, base64.b64encode(secret.encode()).decode().rstrip("=")):
                assert form not in text


def test_a_bad_web_config_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    web_yml = write(tmp_path, "basic_auth_users: {alice: not-a-hash}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
         f"127.0.0.1:{free_port()}", "--web-config", str(web_yml)],
        capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 1
    assert "basic_auth_users.alice: must be a bcrypt hash" in proc.stderr
    assert "not-a-hash" not in proc.stderr + proc.stdout


def test_client_certificates_when_required(tmp_path: Path, server_cert: Cert) -> None:
    """mTLS: RequireAndVerifyClientCert refuses a client without a certificate."""
    client_cert = make_cert(tmp_path / "client", ["synthmon-scraper"], stem="client")
    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    web_yml = write(tmp_path, f"""\
tls_server_config:
  cert_file: {server_cert.cert_file}
  key_file: {server_cert.key_file}
  client_ca_file: {client_cert.cert_file}
  client_auth_type: RequireAndVerifyClientCert
""")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
         f"127.0.0.1:{port}", "--web-config", str(web_yml)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        with_cert = ssl.create_default_context(cafile=str(server_cert.cert_file))
        with_cert.load_cert_chain(client_cert.cert_file, client_cert.key_file)
        without = ssl.create_default_context(cafile=str(server_cert.cert_file))
        url = f"https://127.0.0.1:{port}/-/healthy"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5, context=with_cert) as resp:
                    assert resp.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        # Refused in the TLS layer: the handshake (TLS 1.2) or the first read (TLS 1.3,
        # where the server's "certificate required" alert follows the handshake). A refused
        # connection, the sign of a dead daemon, does not count.
        with pytest.raises(Exception) as refused:  # which one: checked below
            urllib.request.urlopen(url, timeout=5, context=without).read()
        reason = getattr(refused.value, "reason", refused.value)
        assert isinstance(reason, ssl.SSLError | ConnectionResetError), repr(refused.value)
        assert not isinstance(reason, ConnectionRefusedError)
        assert proc.poll() is None
        with urllib.request.urlopen(url, timeout=5, context=with_cert) as resp:
            assert resp.status == 200  # the daemon lives on, and serves who has a cert
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_open_health_endpoints_leave_only_health_open(tmp_path: Path, server_cert: Cert,
                                                      hashed: str) -> None:
    """`open_health_endpoints: true`: GET/HEAD of /-/healthy and /-/ready answer without
    credentials (the kubelet's probes, Docker's HEALTHCHECK), over TLS still; everything
    else, other methods and paths that merely look like them included, needs credentials."""
    import http.client

    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    web_yml = write(tmp_path, f"""\
tls_server_config:
  cert_file: {server_cert.cert_file}
  key_file: {server_cert.key_file}
basic_auth_users:
  {USER}: {hashed}
open_health_endpoints: true
""")
    assert load_web_config(web_yml).open_health_endpoints
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
         f"127.0.0.1:{port}", "--web-config", str(web_yml)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    client = ssl.create_default_context(cafile=str(server_cert.cert_file))

    def raw(method: str, path: str, auth: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=client)
        try:
            conn.request(method, path, headers={"Authorization": auth} if auth else {})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                if raw("GET", "/-/healthy")[0] == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        for path in ("/-/healthy", "/-/ready", "/-/ready?verbose=1"):
            assert raw("GET", path)[0] == 200, path
            assert raw("HEAD", path)[0] == 200, path
        for method, path in ENDPOINTS:
            if path not in ("/-/healthy", "/-/ready"):
                assert raw(method, path)[0] == 401, (method, path)
                # (no probes here: /probe/echo is a 404, past the credentials)
                assert raw(method, path, basic(USER, PASSWORD))[0] in (200, 404), path
        for method, path in [("POST", "/-/healthy"), ("DELETE", "/-/ready"),
                             ("GET", "/-/ready/../metrics"), ("GET", "/-/healthy/../"),
                             ("GET", "/-/healthy%2F..%2Fmetrics"), ("GET", "//-/healthy"),
                             ("GET", "/-/HEALTHY"), ("GET", "/-/healthy/"),
                             ("GET", "/-/ready/%2e%2e/metrics")]:
            status, body = raw(method, path)
            assert status == 401, (method, path, status)
            assert "probe_" not in body and "synthmon_" not in body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
