"""deploy/Dockerfile, deploy/docker-compose.yml and deploy/systemd/synthmon.service.

No Docker daemon is assumed: the files are checked statically, and the systemd unit with
`systemd-analyze verify` (`make system-deps` installs systemd)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import bcrypt

from monitor.web.hashgate import default_workers
from monitor.web.origin import AllowedHosts, split_host
from tests.support.hostile import make_cert
from tests.support.servers import free_port, need_tool

from .support import DEPLOY, ROOT, load_yaml, run

DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
UNIT = DEPLOY / "systemd" / "synthmon.service"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _json_or_shell(args: str) -> list[str]:
    import json

    return list(json.loads(args)) if args.startswith("[") else shlex.split(args)


def test_dockerfile() -> None:
    ins = _instructions()
    assert ins[0] == ("FROM", "python:3.11-slim")
    (user,) = [a for i, a in ins if i == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    (healthcheck,) = [a for i, a in ins if i == "HEALTHCHECK"]
    assert "/-/healthy" in healthcheck
    runs = " ".join(a for i, a in ins if i == "RUN")
    assert re.search(r"pip install (--\S+ \S+ )*\.", runs), runs
    (entrypoint,) = [_json_or_shell(a) for i, a in ins if i == "ENTRYPOINT"]
    (cmd,) = [_json_or_shell(a) for i, a in ins if i == "CMD"]
    assert entrypoint + cmd == [
        "synthmon", "run", "-c", "/etc/synthmon/probes.yaml", "--listen", "0.0.0.0:9115"
    ]
    # the user is created with the uid USER names
    assert re.search(rf"useradd .*--uid {user.split(':')[0]}\b", runs)


def test_dockerfile_copies_exist_and_are_not_ignored() -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.split("/")[0], pat):
                result = not negate
        return result

    for instruction, args in _instructions():
        if instruction == "COPY":
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source.rstrip("/")), f"{source} is excluded from the context"
    assert ignored(".venv") and ignored(".git") and ignored("tests")


def test_compose_stack() -> None:
    compose = load_yaml(COMPOSE)
    services = compose["services"]
    assert {"synthmon", "prometheus", "alertmanager", "grafana"} <= set(services)
    build = services["synthmon"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")) and "secrets/" not in source:
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    prometheus = services["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus
    alertmanager = services["alertmanager"]["volumes"]
    routing_key = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")["receivers"][0][
        "pagerduty_configs"
    ][0]["routing_key_file"]
    assert any(v.split(":")[1] == routing_key for v in alertmanager), alertmanager
    # secrets only from the environment, never inline
    env = services["synthmon"]["environment"]
    assert env["JWT_SECRET_STAGING"].startswith("${JWT_SECRET_STAGING")


def test_compose_prometheus_reaches_synthmon_by_a_name_it_answers_to() -> None:
    """Prometheus scrapes synthmon:9115, so Host is `synthmon`: the daemon must answer to
    that name (it refuses names it does not know, against DNS rebinding)."""
    command = load_yaml(COMPOSE)["services"]["synthmon"]["command"]
    names = [command[i + 1] for i, word in enumerate(command) if word == "--allowed-host"]
    allowed = AllowedHosts.for_listen("0.0.0.0", names)
    scrape = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]
    (job,) = [j for j in scrape if j["job_name"] == "synthmon"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert targets
    for target in targets:
        host = split_host(target, "http")
        assert host is not None and allowed.allows(host[0]), target


def test_compose_secrets_dir_is_ignored_by_git() -> None:
    result = run(["git", "check-ignore", "-q", "deploy/secrets/pagerduty-routing-key"], cwd=ROOT)
    assert result.returncode == 0


def _unit() -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def test_systemd_unit_is_hardened() -> None:
    service = dict(_unit()["Service"])
    assert service["DynamicUser"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["EnvironmentFile"].lstrip("-").startswith("/etc/synthmon/")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert " run -c /etc/synthmon/probes.yaml" in service["ExecStart"]
    assert "--listen 127.0.0.1:" in service["ExecStart"]
    assert dict(_unit()["Install"])["WantedBy"] == "multi-user.target"


def _bytes(value: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_systemd_unit_bounds_memory_and_tasks() -> None:
    """MemoryMax above what the daemon takes at 10,000 probes (150 MB, README) and below
    what would starve a host; TasksMax above the threads the daemon can start (the main
    one, asyncio's executor at most 32, the password checks at most 4, the OTLP exporter)
    and far below a fork bomb."""
    service = dict(_unit()["Service"])
    memory_max, memory_high = _bytes(service["MemoryMax"]), _bytes(service["MemoryHigh"])
    assert 256 << 20 <= memory_high < memory_max <= 1 << 30
    tasks = int(service["TasksMax"])
    assert 1 + 32 + max(default_workers(), 4) + 1 + 8 <= tasks <= 256


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` of the unit, with ExecStart pointed at this venv's synthmon
    (the unit's /opt path does not exist here)."""
    analyze = need_tool("systemd-analyze", "apt-get install systemd, or `make system-deps`")
    synthmon = Path(sys.executable).parent / "synthmon"
    assert synthmon.exists(), synthmon
    text = UNIT.read_text().replace("/opt/synthmon/venv/bin/synthmon", str(synthmon))
    unit = tmp_path / "synthmon.service"
    unit.write_text(text)
    result = run([analyze, "verify", str(unit)])
    assert result.returncode == 0, result.stdout + result.stderr
    # bad values are only warned about ("Failed to parse ..., ignoring"), with exit 0
    warnings = [line for line in result.stderr.splitlines() if unit.name in line]
    assert warnings == [], result.stderr


def _healthcheck_script() -> str:
    (healthcheck,) = [a for i, a in _instructions() if i == "HEALTHCHECK"]
    command = _json_or_shell(healthcheck.split("CMD", 1)[1].strip())
    assert command[:2] == ["python", "-c"]
    return command[2]


def test_dockerfile_healthcheck_over_http_and_tls(tmp_path: Path) -> None:
    """The image's HEALTHCHECK, run as Docker would against real daemons: healthy over plain
    HTTP, and over TLS with basic auth when the web config leaves the health endpoints open;
    unhealthy when they need a password, or when nothing listens."""
    script = _healthcheck_script()
    assert "127.0.0.1:9115/-/healthy" in script
    config = tmp_path / "probes.yaml"
    config.write_text("probes: []\n")
    cert = make_cert(tmp_path / "tls", ["127.0.0.1"])
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=10)).decode()

    def check(port: int) -> int:
        return subprocess.run([sys.executable, "-c", script.replace("9115", str(port))],
                              capture_output=True, timeout=30, check=False).returncode

    def daemon(web: str | None) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        args = [sys.executable, "-m", "monitor", "run", "-c", str(config), "--listen",
                f"127.0.0.1:{port}"]
        if web is not None:
            web_yml = tmp_path / f"web-{port}.yml"
            web_yml.write_text(web)
            args += ["--web-config", str(web_yml)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=ROOT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return proc, port
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)

    tls = (f"tls_server_config: {{cert_file: {cert.cert_file}, key_file: {cert.key_file}}}\n"
           f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
    cases = [(None, 0), (tls + "open_health_endpoints: true\n", 0), (tls, 1),
             ("basic_auth_users: {prometheus: '" + hashed + "'}\n", 1)]
    for web, expected in cases:
        proc, port = daemon(web)
        try:
            assert check(port) == expected, web
        finally:
            proc.terminate()
            proc.wait(10)
    assert check(free_port()) == 1  # nothing listens
