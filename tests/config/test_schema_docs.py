"""`synthmon schema` is a valid JSON Schema that accepts the shipped probes.yaml, and the
README's probes.yaml reference is the one generated from it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from monitor.config import json_schema, load_text, substituted_data
from tests.support.servers import ROOT

SHIPPED = ROOT / "monitor" / "probes.yaml"
README = ROOT / "README.md"
ENV = {"STAGING_URL": "https://staging.example.com", "STAGING_WS_URL": "wss://staging.example.com",
       "AUTH_URL": "https://auth.example.com", "JWT_SECRET_STAGING": "x" * 32,
       "E2E_PASSWORD": "y" * 16}


def gen_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference",
                                                  ROOT / "scripts" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator().iter_errors(data)]


@pytest.mark.parametrize("env", [ENV, {}], ids=["staging", "defaults"])
def test_shipped_probes_yaml_is_valid_against_the_schema(env: Mapping[str, str]) -> None:
    text = SHIPPED.read_text()
    data = substituted_data(text, env)
    assert errors(data) == []
    load_text(text, env=env)  # and the loader agrees


def test_shipped_probes_yaml_as_an_editor_sees_it() -> None:
    """Before substitution, as yaml-language-server validates it: ${VAR} must be accepted."""
    assert errors(yaml.safe_load(SHIPPED.read_text())) == []


def test_readme_walkthrough_is_valid_against_the_schema() -> None:
    readme = README.read_text()
    section = readme.split("\n## probes.yaml\n", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "probes:" in block
    assert errors(substituted_data(block, ENV)) == []


def test_schema_rejects_what_an_editor_should_flag() -> None:
    base = substituted_data(SHIPPED.read_text(), ENV)
    typo = json.loads(json.dumps(base))
    typo["probes"][0]["http"]["expcet"] = {}
    assert any("expcet" in e for e in errors(typo))
    bad_duration = json.loads(json.dumps(base))
    bad_duration["defaults"]["interval"] = "5 minutes"
    assert any(e.startswith("defaults.interval") for e in errors(bad_duration))
    bad_type = json.loads(json.dumps(base))
    bad_type["auth"]["staging_jwt"]["type"] = "basic"
    assert errors(bad_type)
    bad_placement = json.loads(json.dumps(base))
    ws = next(p for p in reversed(bad_placement["probes"]) if "websocket" in p)
    ws["websocket"]["send_token_as"] = ["cookie"]
    assert errors(bad_placement)
    # A flow's steps are checked like the probes of their kind.
    flow_step = json.loads(json.dumps(base))
    flow = next(p for p in flow_step["probes"] if "flow" in p)["flow"]
    flow[0]["http"]["methd"] = "GET"
    assert any("methd" in e for e in errors(flow_step))
    as_mapping = json.loads(json.dumps(base))
    entry = next(p for p in as_mapping["probes"] if "flow" in p)
    entry["flow"] = {"steps": entry["flow"]}
    assert errors(as_mapping)  # written as a list


def test_schema_command_prints_the_schema() -> None:
    proc = subprocess.run([sys.executable, "-m", "monitor", "schema"], capture_output=True,
                          text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == json.loads(json.dumps(json_schema()))
    assert printed["$schema"].endswith("2020-12/schema")
    assert printed["title"] == "synthmon probes.yaml"


def test_readme_reference_is_current() -> None:
    gen = gen_reference()
    current = README.read_text(encoding="utf-8")
    assert current.count(gen.START) == 1 and current.count(gen.END) == 1
    wanted = gen.splice(current, gen.generate())
    assert wanted == current, (
        "README.md's probes.yaml reference is out of date: run "
        ".venv/bin/python scripts/gen_reference.py")


def test_reference_documents_every_key_of_every_object() -> None:
    gen = gen_reference()
    text = gen.generate()
    schema = json_schema()
    for name, node in [("top level", schema), *schema["$defs"].items()]:
        for key in node.get("properties", {}):
            assert f"| `{key}` |" in text, (name, key)
    # the incident's keys, with their types
    assert "| `send_token_as` | list of `authorization_header` \\| `subprotocol`" in text
    assert "| `diagnose` | boolean | `true` |" in text
    assert "| `interval` | duration | `1m` |" in text
    assert "| `status` | status codes | `200-299` |" in text
    # issue 25: URL fields by name, whatever the case of their scheme; the redirect limit
    assert "| `url` | http(s) URL | **required** |" in text
    assert "| `url` | ws(s) URL | **required** |" in text
    assert "| `max_redirects` | integer 1 to 20 | `10` |" in text


def test_gen_reference_check_mode(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text("# x\n<!-- reference:start -->\nold\n<!-- reference:end -->\ntail\n")
    script = str(ROOT / "scripts" / "gen_reference.py")
    run = [sys.executable, script, "--readme", str(stale)]
    proc = subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "out of date" in proc.stderr
    assert subprocess.run(run, capture_output=True, timeout=60).returncode == 0
    text = stale.read_text()
    assert text.startswith("# x\n<!-- reference:start -->\n_Generated") and text.endswith(
        "<!-- reference:end -->\ntail\n")
    assert subprocess.run([*run, "--check"], capture_output=True, timeout=60).returncode == 0
