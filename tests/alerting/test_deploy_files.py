"""deploy/Dockerfile, deploy/docker-compose.yml and deploy/systemd/synthmon.service.

No Docker daemon is assumed: the files are checked statically, and the systemd unit with
`systemd-analyze verify` (`make system-deps` installs systemd)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import sys
from pathlib import Path

from tests.support.servers import need_tool

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
