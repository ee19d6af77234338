"""Several probes files read as one (``-c DIR``, ``-c A -c B``, ``-c A B``), as teams keep
their probes apart: names unique across files, every error naming its own file, line and
key as written in that file, a reload re-reading them all, ``check``, ``once`` and ``run``
alike."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from monitor.config import ConfigError, load_file, load_files
from monitor.daemon import Daemon, DaemonOptions
from tests.support.servers import ROOT, serving_daemon

SHARED = """\
defaults: {interval: 1h, timeout: 5s, labels: {environment: staging}}
auth:
  staging_jwt: {type: jwt, secret_env: JWT_SECRET_STAGING, claims: {sub: u}}
probes:
  - name: api-health
    http: {url: "http://127.0.0.1:1/api/health"}
"""
CHAT = """\
# the chat team's probes
probes:
  - name: ws-golden-path
    labels: {team: chat}
    websocket:
      url: ws://127.0.0.1:1/api/v1/websocket
      auth: staging_jwt
"""
PAYMENTS = """\
defaults: {labels: {team: payments}}
probes:
  - name: pay
    http: {url: "http://127.0.0.1:1/pay"}
"""
ENV = {"JWT_SECRET_STAGING": "s3cret"}


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "probes.d"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def problems(paths: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_files(paths, env=ENV if env is None else env)  # type: ignore[arg-type]
    return info.value.problems


def test_a_directory_is_every_yaml_in_it_in_name_order(tmp_path: Path) -> None:
    d = tree(tmp_path, {"10-shared.yaml": SHARED, "20-chat.yml": CHAT,
                        "30-payments.yaml": PAYMENTS, "notes.txt": "not: yaml: at all",
                        "probes.yaml.bak": "::::", ".hidden.yaml": ":::"})
    (d / "sub").mkdir()
    (d / "sub" / "deeper.yaml").write_text(":::")  # not read: only the directory's own files
    config = load_file(d, env=ENV)
    assert [p.name for p in config.probes] == ["api-health", "ws-golden-path", "pay"]
    assert config.files == tuple(str(d / n) for n in ("10-shared.yaml", "20-chat.yml",
                                                       "30-payments.yaml"))
    assert config.path == str(d)
    ws = config.probe("ws-golden-path")
    # The provider of one file and the defaults of another apply across files.
    assert ws.auth_name == "staging_jwt" and ws.timeout == 5 and ws.interval == 3600
    assert dict(ws.labels) == {"environment": "staging", "team": "chat"}
    # Defaults merge label by label.
    assert dict(config.probe("pay").labels) == {"environment": "staging", "team": "payments"}


def test_several_files_as_named_and_a_kubernetes_configmap_layout(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(SHARED)
    b.write_text(CHAT)
    assert [p.name for p in load_files([b, a], env=ENV).probes] == \
        ["ws-golden-path", "api-health"]  # the order given
    assert len(load_files([a, a, b], env=ENV).probes) == 2  # a file named twice is read once
    # A mounted ConfigMap: each key a symlink into a hidden, timestamped directory.
    mount = tmp_path / "mount"
    data = mount / "..2024_01_01_00_00_00.1"
    data.mkdir(parents=True)
    (data / "shared.yaml").write_text(SHARED)
    (data / "chat.yaml").write_text(CHAT)
    os.symlink(data.name, mount / "..data")
    for name in ("shared.yaml", "chat.yaml"):
        os.symlink(f"..data/{name}", mount / name)
    assert sorted(p.name for p in load_file(mount, env=ENV).probes) == \
        ["api-health", "ws-golden-path"]


def test_names_are_unique_across_files(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": SHARED, "b.yaml": "probes:\n  - name: other\n"
                        "    http: {url: 'http://127.0.0.1:1/'}\n  - name: api-health\n"
                        "    http: {url: 'http://127.0.0.1:1/x'}\n"})
    assert problems(d) == [f"{d / 'b.yaml'}:4: probes[1].name: duplicate probe name "
                           f"'api-health' (first used by probes[0] in {d / 'a.yaml'}:5)"]


def test_providers_and_defaults_set_in_two_files_are_refused(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": SHARED, "b.yaml": """\
defaults:
  interval: 30s
  labels: {environment: prod, team: b}
auth:
  staging_jwt: {type: jwt, secret_env: OTHER}
  own: {type: jwt, secret_env: JWT_SECRET_STAGING}
probes:
  - {name: b, http: {url: "http://127.0.0.1:1/"}}
"""})
    a, b = d / "a.yaml", d / "b.yaml"
    assert problems(d) == [
        f"{b}:2: defaults.interval: default interval is already set in {a}:1; defaults "
        "apply to every file, so set it in one (or per probe)",
        f"{b}:3: defaults.labels.environment: default labels.environment is already set in "
        f"{a}:1; defaults apply to every file, so set it in one (or per probe)",
        f"{b}:5: auth.staging_jwt: auth provider staging_jwt is already set in {a}:3; "
        "provider names are shared by every file",
    ]


def test_every_error_names_its_own_file_line_and_key(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": SHARED + "  - name: a2\n    http: {url: nope}\n",
                        "b.yaml": CHAT.replace("staging_jwt", "staging_jtw")
                        + "  - name: b2\n    timeout: 2h\n    http: {url: '${UNSET_URL}'}\n",
                        "c.yaml": "probes: {name: x}\n", "d.yaml": "defaults: [1]\n"})
    a, b, c, dd = (d / n for n in ("a.yaml", "b.yaml", "c.yaml", "d.yaml"))
    found = problems(d)
    assert found == [
        f"{a}:8: probes[1].http.url: must be an http:// or https:// URL; got 'nope'",
        f"{b}:7: probes[0].websocket.auth: unknown auth provider 'staging_jtw'; did you "
        "mean 'staging_jwt'?",
        f"{b}:9: probes[1].timeout: timeout (7200s) must be shorter than the interval "
        "(3600s)",
        f"{b}:10: probes[1].http.url: environment variable UNSET_URL is not set (set it, or "
        "give a default: ${UNSET_URL:-value})",
        f"{c}:1: probes: must be a list of probes (- name: ...)",
        f"{dd}:1: defaults: must be a mapping (key: value)",
    ], found


def test_yaml_errors_of_every_file_together_and_paths_that_are_not_there(
        tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": "probes: [\n", "b.yaml": "a: b: c\n", "c.yaml": SHARED})
    found = problems(d)
    assert len(found) == 2 and found[0].startswith(f"{d / 'a.yaml'}:")
    assert found[1].startswith(f"{d / 'b.yaml'}:1: invalid YAML")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.md").write_text("no probes here")
    assert problems([empty, tmp_path / "nope.yaml"]) == [
        f"{empty}: no *.yaml or *.yml files in this directory",
        f"{tmp_path / 'nope.yaml'}: file not found"]


def test_missing_secret_is_placed_in_the_file_of_its_provider(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": CHAT, "b.yaml": SHARED})
    config = load_file(d, env={})
    assert [m.text for m in config.missing_secrets] == [
        f"{d / 'b.yaml'}:3: auth.staging_jwt.secret_env: secret environment variable "
        "JWT_SECRET_STAGING is not set"]
    assert config.missing_secrets[0].line == 3


async def test_a_reload_reads_every_file_again(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": SHARED})
    daemon = Daemon(DaemonOptions(str(d), env=ENV))
    async with serving_daemon(daemon) as base, aiohttp.ClientSession() as http:
        assert daemon.config is not None and len(daemon.config.probes) == 1
        (d / "b.yaml").write_text(CHAT)  # a team adds its file
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 200, await resp.text()
        assert [p.name for p in daemon.config.probes] == ["api-health", "ws-golden-path"]
        (d / "c.yaml").write_text(PAYMENTS.replace("name: pay", "name: api-health"))
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 400
            errors = (await resp.json())["errors"]
        assert errors == [f"{d / 'c.yaml'}:3: probes[0].name: duplicate probe name "
                          f"'api-health' (first used by probes[0] in {d / 'a.yaml'}:5)"]
        assert len(daemon.config.probes) == 2  # the running config stays
        (d / "c.yaml").unlink()
        (d / "b.yaml").unlink()  # and a team removes its file
        async with http.post(base + "/-/reload") as resp:
            assert resp.status == 200
        assert [p.name for p in daemon.config.probes] == ["api-health"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **ENV})


def test_check_and_once_take_a_directory_or_several_files(tmp_path: Path) -> None:
    d = tree(tmp_path, {"a.yaml": SHARED, "b.yaml": CHAT})
    ok = _cli("check", "-c", str(d))
    assert ok.returncode == 0 and f"{d} (2 files): 2 probes OK" in ok.stdout, ok.stderr
    for args in (["-c", str(d / "a.yaml"), "-c", str(d / "b.yaml")],
                 ["-c", str(d / "a.yaml"), str(d / "b.yaml")]):
        assert _cli("check", *args).returncode == 0
    (d / "c.yaml").write_text("probes:\n  - name: c\n    http: {url: nope}\n")
    bad = _cli("check", "-c", str(d))
    assert bad.returncode == 1
    assert f"{d / 'c.yaml'}:3: probes[0].http.url: must be an http:// or https:// URL" \
        in bad.stderr and "Traceback" not in bad.stderr
    # once reads them alike: every probe of every file runs (here, to a closed port).
    (d / "c.yaml").unlink()
    once = _cli("once", "-c", str(d / "a.yaml"), str(d / "b.yaml"), "--format", "json",
                "--retries", "0")
    assert once.returncode == 1, once.stderr
    assert '"probe": "ws-golden-path"' in once.stdout and '"probe": "api-health"' in once.stdout
