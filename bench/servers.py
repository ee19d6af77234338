"""Launchers for what the benchmarks measure and probe: synthmon, blackbox, nginx, targets.

Each returns a :class:`~bench.util.Proc` (not yet started) plus what is needed to reach it;
:func:`bench.util.running` starts and always stops it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.util import HOST, PYTHON, BenchError, Proc, free_port, running, wait_port

BLACKBOX = "prometheus-blackbox-exporter"
NGINX = "nginx"
APT_PACKAGES = {BLACKBOX: "prometheus-blackbox-exporter", NGINX: "nginx"}
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
MODULE = "http_nofollow"


def which(binary: str) -> str | None:
    found = shutil.which(binary)
    if found is None and binary == NGINX and os.path.exists("/usr/sbin/nginx"):
        return "/usr/sbin/nginx"
    return found


def ensure_installed(binaries: Iterable[str]) -> list[str]:
    """apt-get install the Debian packages of missing ``binaries``; returns notes."""
    missing = [b for b in binaries if which(b) is None]
    if not missing:
        return []
    packages = sorted({APT_PACKAGES[b] for b in missing})
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return [f"cannot install {' '.join(packages)}: not root and no sudo"]
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    notes = [f"installing {' '.join(packages)} with apt-get"]
    cmd = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    for attempt in ("install", "update+install"):
        if attempt == "update+install":
            subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=300)
        done = subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=600)
        if done.returncode == 0:
            break
    still = [b for b in missing if which(b) is None]
    if still:
        notes.append(f"still missing after apt-get: {', '.join(still)}")
    return notes


# --------------------------------------------------------------------------- synthmon


def http_probe_lines(urls: Sequence[str], prefix: str = "p", interval: float | None = None,
                     timeout: float | None = None) -> list[str]:
    """probes.yaml list items: one HTTP probe per URL (expect 200, no redirects)."""
    lines: list[str] = []
    for i, url in enumerate(urls):
        lines.append(f"  - name: {prefix}{i:06d}")
        if interval is not None:
            lines.append(f"    interval: {interval:g}s")
        if timeout is not None:
            lines.append(f"    timeout: {timeout:g}s")
        lines.append(f"    http: {{url: '{url}', expect: {{status: [200]}}, "
                     "follow_redirects: false}")
    return lines


def http_probes_yaml(urls: Sequence[str], interval: float, timeout: float,
                     prefix: str = "p", more: Sequence[str] = ()) -> str:
    """A probes.yaml with one HTTP probe per URL, plus the list items ``more``."""
    lines = [f"defaults: {{retries: 0, interval: {interval:g}s, timeout: {timeout:g}s}}", "probes:",
             *http_probe_lines(urls, prefix), *more]
    return "\n".join(lines) + "\n"


def ws_probes_yaml(url: str, count: int, interval: float, timeout: float) -> str:
    """WebSocket probes: JWT in the Authorization header, expect the welcome message."""
    lines = [f"defaults: {{retries: 0, interval: {interval:g}s, timeout: {timeout:g}s}}",
             "auth:",
             "  bench_jwt: {type: jwt, algorithm: HS256, secret_env: JWT_SECRET_STAGING,",
             "              claims: {sub: bench-user}, ttl: 30m}",
             "probes:"]
    for i in range(count):
        lines.append(f"  - name: ws{i:06d}")
        lines.append(f"    websocket: {{url: '{url}', auth: bench_jwt, "
                     "send_token_as: [authorization_header], diagnose: false, "
                     "steps: [{expect: {json: {type: connect}, timeout: 2s}}]}")
    return "\n".join(lines) + "\n"


@dataclass
class Synthmon:
    proc: Proc
    port: int

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


def synthmon(config: Path, cpus: Iterable[int] | None, name: str = "synthmon",
             loop: str = "uvloop", env: Mapping[str, str] | None = None,
             extra: Sequence[str] = ()) -> Synthmon:
    port = free_port()
    argv = [PYTHON, "-m", "monitor", "run", "-c", str(config), "--listen", f"{HOST}:{port}",
            "--log-format", "json", "--event-loop", loop, *extra]
    # OTLP export only where a benchmark asks for it (``env``), never inherited by accident.
    full = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    full.update(JWT_SECRET_STAGING=JWT_SECRET, PYTHONUNBUFFERED="0", **(env or {}))
    return Synthmon(Proc(name, argv, env=full, cpus=cpus), port)


class OtlpSink:
    """An OTLP/HTTP endpoint that accepts every export and keeps only counts: what the
    daemon's span export costs is measured, not a collector."""

    def __init__(self) -> None:
        sink = self
        self.requests = 0
        self.bytes = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                self.rfile.read(n)
                sink.requests += 1
                sink.bytes += n
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- blackbox


BLACKBOX_CONFIG = f"""modules:
  {MODULE}:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      no_follow_redirects: true
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


@dataclass
class Blackbox:
    proc: Proc
    port: int

    def probe_url(self, target: str) -> str:
        from urllib.parse import urlencode

        return (f"http://{HOST}:{self.port}/probe?"
                + urlencode({"target": target, "module": MODULE}))


def blackbox(workdir: Path, cpus: Iterable[int] | None) -> Blackbox:
    binary = which(BLACKBOX)
    if binary is None:
        raise BenchError(f"{BLACKBOX} is not installed")
    port = free_port()
    cfg = workdir / "blackbox.yml"
    cfg.write_text(BLACKBOX_CONFIG)
    argv = [binary, f"--config.file={cfg}", f"--web.listen-address={HOST}:{port}",
            "--log.level=warn"]
    return Blackbox(Proc("blackbox", argv, cpus=cpus), port)


# --------------------------------------------------------------------------- targets


NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  keepalive_timeout 0;
  server {{
    listen {host}:{port} backlog=4096;
    location / {{ default_type text/plain; return 200 "ok\\n"; }}
  }}
}}
"""


def nginx(workdir: Path, cpus: Iterable[int] | None) -> tuple[Proc, int]:
    binary = which(NGINX)
    if binary is None:
        raise BenchError("nginx is not installed")
    port = free_port()
    d = workdir / "nginx"
    d.mkdir(exist_ok=True)
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, host=HOST, port=port))
    argv = [binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")]
    return Proc("nginx", argv, cpus=cpus), port


def py_target(cpus: Iterable[int] | None, delay: float = 0.0, name: str = "target"
              ) -> tuple[Proc, int]:
    port = free_port()
    argv = [PYTHON, "-m", "bench.workers", "target", "--port", str(port),
            "--delay", repr(delay)]
    return Proc(name, argv, cpus=cpus), port


@contextlib.contextmanager
def http_target(workdir: Path, cpus: Iterable[int] | None, prefer_nginx: bool = True
                ) -> Iterator[tuple[str, str]]:
    """A fast loopback HTTP target: (url, kind). nginx when installed, else our own."""
    if prefer_nginx and which(NGINX) is not None:
        proc, port = nginx(workdir, cpus)
        kind = "nginx"
    else:
        proc, port = py_target(cpus)
        kind = "python asyncio target (nginx not installed)"
    with running(proc, workdir):
        wait_port(port, 15, proc)
        yield f"http://{HOST}:{port}/", kind


def simulator(cpus: Iterable[int] | None) -> tuple[Proc, int]:
    port = free_port()
    argv = [PYTHON, "-m", "monitor", "simulator", "--listen", f"{HOST}:{port}"]
    env = dict(os.environ, JWT_SECRET_STAGING=JWT_SECRET)
    return Proc("simulator", argv, env=env, cpus=cpus), port


def mint_token() -> str:
    import jwt

    return jwt.encode({"sub": "bench-user"}, JWT_SECRET, algorithm="HS256")


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
