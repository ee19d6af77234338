"""probes.yaml under fuzzing: whatever the file says, loading ends in a valid Config or in
a ConfigError whose every line says ``probes.yaml:LINE: ...`` (LINE a number or ``?``).

Hypothesis builds near-valid documents (the right shape with wrong types, unknown and
misspelt keys, weird unicode, deep nesting, huge numbers, anchors and aliases) and mutates
valid documents as text. A Config that loads must also be usable by the daemon: its
durations finite, its timeouts shorter than its intervals, its names unique, and the
scheduler, the surfacer and the target label must accept it. The examples are bounded in
number and the whole module runs in well under 30 s.
"""

from __future__ import annotations

import math
import re
import string
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, load_text
from monitor.probes.context import target_of
from monitor.sinks.metrics import Surfacer
from tests.support.hostile import ROOT

PROBLEM = re.compile(r"^probes\.yaml:(\d+|\?): \S")
ENV = {"STAGING_URL": "http://127.0.0.1:8000", "JWT_SECRET_STAGING": "s3cret-value",
       "EMPTY": "", "WEIRD": "ünï\u200bcödé ${NOT_AGAIN}"}
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW_LOAD = 2.0  # seconds: no document may take longer than this to load or refuse


def check(text: str, env: dict[str, str] | None = None) -> None:
    """The property: a usable Config, or a ConfigError with clear one-line problems."""
    t0 = time.monotonic()
    try:
        config = load_text(text, "probes.yaml", env=ENV if env is None else env)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError without problems"
        for problem in exc.problems:
            assert PROBLEM.match(problem), repr(problem)
            assert "\n" not in problem and "\r" not in problem, repr(problem)
            assert len(problem) < 2000, problem[:200]
            assert "Traceback" not in problem
        return
    finally:
        assert time.monotonic() - t0 < SLOW_LOAD, "loading took too long"
    names = [p.name for p in config.probes]
    assert len(names) == len(set(names))
    for probe in config.probes:
        assert math.isfinite(probe.interval) and math.isfinite(probe.timeout)
        assert 0 < probe.timeout < probe.interval
        IntervalTrigger(seconds=probe.interval,
                        start_date=datetime.fromtimestamp(time.time(), UTC), timezone=UTC)
        target_of(probe.spec.url)
    Surfacer(location="fuzz").configure(config)


# --------------------------------------------------------------------------- leaves

weird_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)  # any unicode
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["5s", "100ms", "1m30s", "0s", "-1s", "5x", "", "1e999", "99999999h",
                     "${STAGING_URL}", "${UNSET}", "${UNSET:-7s}", "${EMPTY:-}", "$$",
                     "${WEIRD}", "\u202e", "\x00", "a\nb", "200", "2xx", "200-299", "9xx"]),
    weird_text,
)
durations = st.one_of(
    st.sampled_from(["1s", "500ms", "10s", "1m", "2h", "1m30s", "0.5s", "0ms", "10x", "-5s",
                     "8760h", "87600000h", ".inf", "${UNSET:-3s}"]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-5, max_value=10**25),
)
KEYS = ["defaults", "auth", "probes", "interval", "timeout", "labels", "name", "http",
        "websocket", "url", "method", "headers", "body", "json_body", "expect", "status",
        "json", "body_regex", "max_latency", "follow_redirects", "max_body_bytes", "tls",
        "steps", "send", "expect_events", "types", "fail_on", "subprotocols",
        "send_token_as", "expect_subprotocol", "diagnose", "expect_rejected", "type",
        "algorithm", "secret_env", "secret_file", "claims", "ttl", "ca_file",
        "insecure_skip_verify", "server_name", "regex", "text", "field", "in_order"]


def _typo(key: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["drop", "swap", "case", "suffix", "unicode"]))
    if kind == "drop" and len(key) > 2:
        i = data.draw(st.integers(0, len(key) - 1))
        return key[:i] + key[i + 1:]
    if kind == "swap" and len(key) > 2:
        i = data.draw(st.integers(0, len(key) - 2))
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    if kind == "case":
        return key.upper()
    if kind == "unicode":
        return key + data.draw(st.sampled_from(["\u200b", "ı", "\u0301", "😀", "\t"]))
    return key + "s"


# --------------------------------------------------------------------------- documents


@st.composite
def urls(draw: st.DrawFn, ws: bool) -> Any:
    scheme = draw(st.sampled_from(["ws", "wss", "http", ""] if ws else
                                  ["http", "https", "ftp", "", "ws"]))
    host = draw(st.sampled_from(["127.0.0.1", "[::1]", "localhost", "h.invalid", "", "ünï.test",
                                 "user:pw@127.0.0.1", "[::1", "127.0.0.1:99999", "a b",
                                 "${STAGING_URL}", "127.0.0.1:0"]))
    path = draw(st.sampled_from(["/", "/health", "/api/v1/websocket?x=1#f", "", "/%zz", "/ü"]))
    value = f"{scheme}://{host}{path}" if scheme else host + path
    return draw(st.one_of(st.just(value), scalars))


@st.composite
def auth_provider(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["jwt", "token_endpoint", "oauth", None]))
    out: dict[str, Any] = {"type": kind}
    if kind == "jwt" or draw(st.booleans()):
        out["algorithm"] = draw(st.sampled_from(["HS256", "RS256", "ES256", "none", "hs256"]))
        for key in draw(st.lists(st.sampled_from(
                ["secret_env", "secret_file", "private_key_file", "secret"]), max_size=2)):
            out[key] = draw(st.sampled_from(["JWT_SECRET_STAGING", "/nonexistent", "x"]))
        out["claims"] = draw(st.dictionaries(weird_text, scalars, max_size=3))
        out["ttl"] = draw(durations)
    if kind == "token_endpoint" or draw(st.booleans()):
        out["url"] = draw(urls(ws=False))
        out["secret_fields_env"] = draw(st.dictionaries(weird_text, weird_text, max_size=2))
    return out


@st.composite
def steps(draw: st.DrawFn) -> Any:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["expect", "send", "expect_events", "both", "none"]))
        step: dict[str, Any] = {}
        if kind in ("expect", "both"):
            step["expect"] = draw(st.fixed_dictionaries(
                {}, optional={"json": st.dictionaries(weird_text, scalars, max_size=2),
                              "regex": st.sampled_from(["ok", "(", "[", ".*"]),
                              "timeout": durations, "max_latency": durations}))
        if kind in ("send", "both"):
            step["send"] = draw(st.fixed_dictionaries(
                {}, optional={"json": scalars, "text": scalars}))
        if kind == "expect_events":
            step["expect_events"] = {"types": draw(st.lists(weird_text, max_size=3)),
                                     "timeout": draw(durations)}
        out.append(step)
    return out


@st.composite
def probe(draw: st.DrawFn, names: list[str]) -> Any:
    ws = draw(st.booleans())
    spec: dict[str, Any] = {"url": draw(urls(ws=ws))}
    if draw(st.booleans()):
        spec["headers"] = draw(st.dictionaries(
            st.sampled_from(["Authorization", "X-Test", "Bad\nName", "ü"]), scalars, max_size=2))
    if draw(st.booleans()):
        spec["tls"] = draw(st.fixed_dictionaries(
            {}, optional={"ca_file": scalars, "insecure_skip_verify": scalars}))
    if ws:
        spec["steps"] = draw(steps())
        spec["send_token_as"] = draw(st.lists(st.sampled_from(
            ["authorization_header", "subprotocol", "query", "cookie"]), max_size=2))
        spec["auth"] = draw(st.one_of(st.sampled_from(["staging_jwt", "stagin_jwt", "login"]),
                                      auth_provider(), st.none()))
        spec["expect_rejected"] = draw(scalars)
    else:
        spec["expect"] = draw(st.fixed_dictionaries({}, optional={
            "status": st.one_of(scalars, st.lists(scalars, max_size=3)),
            "json": st.dictionaries(weird_text, scalars, max_size=2),
            "max_latency": durations,
            "headers": st.dictionaries(weird_text, st.sampled_from(["^v1", "(", "x"]),
                                       max_size=2)}))
        spec["max_body_bytes"] = draw(st.integers(-(10**20), 10**20))
    out: dict[str, Any] = {
        "name": draw(st.one_of(st.sampled_from(names), weird_text,
                               st.text(string.ascii_letters, min_size=101, max_size=102))),
        "websocket" if ws else "http": spec,
    }
    if draw(st.booleans()):
        out["interval"] = draw(durations)
    if draw(st.booleans()):
        out["timeout"] = draw(durations)
    if draw(st.booleans()):
        out["labels"] = draw(st.dictionaries(
            st.one_of(st.sampled_from(["team", "probe", "le", "9x", "a-b", ""]), weird_text),
            scalars, max_size=2))
    if draw(st.integers(0, 5)) == 0:  # both kinds, or neither
        out["http" if ws else "websocket"] = spec
    return out


def _sprinkle(node: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Randomly misspell keys, add unknown ones, and swap values for odd ones."""
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            roll = data.draw(st.integers(0, 19))
            if roll == 0 and isinstance(key, str):
                key = _typo(key, data)
            elif roll == 1:
                value = data.draw(scalars)
            elif roll == 2:
                out[data.draw(st.sampled_from([*KEYS, "x", "🙂", 3, None, True]))] = \
                    data.draw(scalars)
            out[key] = _sprinkle(value, data, depth + 1)
        return out
    if isinstance(node, list):
        return [_sprinkle(v, data, depth + 1) for v in node]
    return node


@st.composite
def documents(draw: st.DrawFn) -> Any:
    names = ["api-health", "ws", "p", "ü", "a b", "x" * 100]
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["defaults"] = draw(st.fixed_dictionaries({}, optional={
            "interval": durations, "timeout": durations,
            "labels": st.dictionaries(weird_text, scalars, max_size=2)}))
    if draw(st.booleans()):
        doc["auth"] = draw(st.dictionaries(
            st.sampled_from(["staging_jwt", "login", "ü", ""]), auth_provider(), max_size=2))
    doc["probes"] = draw(st.lists(probe(names), max_size=4))
    return doc


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, default_flow_style=None, sort_keys=False)


# --------------------------------------------------------------------------- the tests


@FUZZ
@given(documents(), st.data())
def test_near_valid_documents(doc: Any, data: st.DataObject) -> None:
    check(dump(_sprinkle(doc, data)))


GOOD = (ROOT / "tests" / "config" / "test_loader.py").read_text().split('GOOD = """\\\n', 1)[1] \
    .split('"""', 1)[0]
SHIPPED = (ROOT / "probes.yaml").read_text()
SNIPPETS = ["&a [1, 2]", "*a", "*undefined", "<<: *a", "!!python/object:os.system x",
            "!custom 3", "? complex key", "- - - -", "{", "}", "[", "]", "'", '"', "|", ">",
            "%YAML 1.1", "---", "...", "\t", "\x00", "\ufeff", "\u2028", "#", ": :", "@",
            "${", "${X", "${STAGING_URL", "&b {<<: *b}", "!!binary aGVsbG8=", "9" * 5000,
            "0x1F", "0o17", "1_000", ".nan", "-.inf", "2001-12-14t21:59:43.10-05:00"]


@FUZZ
@given(st.sampled_from([GOOD, SHIPPED]), st.lists(st.tuples(
    st.sampled_from(["insert", "delete", "duplicate", "indent", "truncate", "replace"]),
    st.integers(0, 10**6), st.one_of(st.sampled_from(SNIPPETS), weird_text)),
    min_size=1, max_size=4))
def test_mutated_valid_documents(base: str, edits: list[tuple[str, int, str]]) -> None:
    lines = base.splitlines(keepends=True)
    for op, where, snippet in edits:
        i = where % max(len(lines), 1)
        if op == "insert":
            col = where % (len(lines[i]) + 1) if lines else 0
            lines[i:i + 1] = [lines[i][:col] + snippet + lines[i][col:]] if lines else [snippet]
        elif op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "indent" and lines:
            lines[i] = " " * (where % 5) + lines[i].lstrip(" ")
        elif op == "truncate":
            lines = lines[:i]
        elif op == "replace" and lines:
            value = ": " + snippet.replace("\n", " ")
            head = re.split(r":\s", lines[i], maxsplit=1)
            lines[i] = head[0] + value + "\n" if len(head) == 2 else lines[i]
    check("".join(lines))


@settings(FUZZ, max_examples=20)
@given(st.integers(1, 12), st.integers(2, 12), st.sampled_from(["list", "map"]))
def test_alias_bombs_are_refused_quickly(levels: int, fan: int, shape: str) -> None:
    """A few hundred bytes of anchors that would expand into billions of nodes."""
    out = ["x0: &x0 [lol, lol]"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*x{i - 1}"] * fan)
        out.append(f"x{i}: &x{i} [{refs}]" if shape == "list" else
                   f"x{i}: &x{i} {{{', '.join(f'k{j}: *x{i - 1}' for j in range(fan))}}}")
    text = "\n".join(out) + f"\nprobes:\n  - name: p\n    http: {{url: 'http://h/', " \
                            f"json_body: *x{levels}}}\n"
    check(text)
    text = "\n".join(out) + f"\ndefaults: {{labels: *x{levels}}}\n"
    check(text)


@pytest.mark.parametrize("text", [
    "probes: " + "[" * 5000 + "]" * 5000,
    "probes:\n  - name: p\n    http: {url: 'http://h/', json_body: " + "{a: " * 3000
    + "1" + "}" * 3000 + "}\n",
    "a: &a [*a]\nprobes: *a\n",
    "&a {probes: [*a]}\n",
    "probes:\n  - &p {name: p, http: {url: 'http://h/'}}\n  - *p\n",
    "defaults: {interval: .nan, timeout: .nan}\n",
    "defaults: {interval: .inf, timeout: 1s}\n",
    "defaults: {interval: 1e308, timeout: 1e307}\n",
    "defaults: {interval: " + "9" * 4000 + ", timeout: 1s}\n",
    "defaults: {interval: 99999999999h, timeout: 1s}\n",
    "probes:\n  - {name: p, http: {url: 'http://h/', max_body_bytes: " + "9" * 5000 + "}}\n",
    "probes:\n  - {name: p, interval: 1e-300, timeout: 1e-301, http: {url: 'http://h/'}}\n",
    "\ufeffprobes: []\n",
    "probes:\n  - {name: p, http: {url: 'http://h/'}, labels: {\"a\\nb\": x}}\n",
    "probes:\n  - {name: p, http: {url: 'http://h/', headerz: {}}}\n",
    "probes:\n  - {\"na\\u0000me\": p, http: {url: 'http://h/'}}\n",
    "? [a, b]\n: c\n",
    "defaults: &b {<<: *b}\n",
    "probes: [" + ", ".join(f"{{name: p{i}, http: {{url: 'http://h/'}}}}" for i in range(300))
    + "]\nprobes: []\n",  # a duplicate key: ruamel quotes the whole first value
    "probes:\n  - {? [a]: b}\n",
    "--- a\n--- b\n",
    "!!python/object/apply:os.system ['true']\n",
    "probes: !!set {a, b}\n",
    "probes:\n  - name: p\n    http: {url: \"http://h/\\ud800\"}\n",
])
def test_known_nasty_documents(text: str) -> None:
    check(text)


def test_huge_and_non_finite_durations_are_refused_with_a_line() -> None:
    for value in (".nan", ".inf", "1e308", "99999999999h"):
        with pytest.raises(ConfigError) as info:
            load_text(f"defaults:\n  interval: {value}\n  timeout: 1s\n", env={})
        assert info.value.problems[0].startswith("probes.yaml:2: defaults.interval: "), \
            info.value.problems


def test_alias_bomb_error_names_the_problem() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)) + "probes: *i\n"
    with pytest.raises(ConfigError) as info:
        load_text(text, env={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("probes.yaml:?: ")
    assert "aliases" in info.value.problems[0]


def test_unknown_keys_at_every_level_get_a_did_you_mean() -> None:
    text = """\
defaults: {intervall: 60s}
auth:
  j: {type: jwt, secret_env: X, claimz: {}}
probes:
  - name: p
    timout: 5s
    http:
      urll: http://h/
      url: http://h/
      expect: {stauts: 200, jsn: {}}
      tls: {ca_fil: x}
  - name: q
    websocket:
      url: ws://h/
      subprotocol: [a]
      steps: [{expct: {json: {}}}, {expect_event: {types: [a]}}]
"""
    with pytest.raises(ConfigError) as info:
        load_text(text, env={})
    found = info.value.problems
    for line, key, guess in [
        (1, "defaults.intervall", "interval"), (3, "auth.j.claimz", "claims"),
        (6, "probes[0].timout", "timeout"), (8, "probes[0].http.urll", "url"),
        (10, "probes[0].http.expect.stauts", "status"),
        (10, "probes[0].http.expect.jsn", "json"), (11, "probes[0].http.tls.ca_fil", "ca_file"),
        (15, "probes[1].websocket.subprotocol", "subprotocols"),
        (16, "probes[1].websocket.steps[0].expct", "expect"),
        (16, "probes[1].websocket.steps[1].expect_event", "expect_events"),
    ]:
        expected = f"probes.yaml:{line}: {key}: unknown key; did you mean '{guess}'?"
        assert expected in found, (expected, found)


def test_duplicates_and_timeouts_from_defaults_are_refused() -> None:
    """Beyond test_config: a timeout equal to the interval, a default timeout longer than a
    probe's interval, and a name repeated three times (each repeat reported)."""
    text = """\
defaults: {interval: 10s, timeout: 10s}
probes:
  - {name: a, http: {url: 'http://h/'}}
  - {name: a, interval: 5s, http: {url: 'http://h/'}}
  - {name: a, interval: 20s, http: {url: 'http://h/'}}
"""
    with pytest.raises(ConfigError) as info:
        load_text(text, env={})
    found = info.value.problems
    assert "probes.yaml:3: probes[0].interval: timeout (10s) must be shorter than the " \
           "interval (10s)" in found, found
    assert "probes.yaml:4: probes[1].interval: timeout (10s) must be shorter than the " \
           "interval (5s)" in found, found
    assert "probes.yaml:4: probes[1].name: duplicate probe name 'a' (first used by " \
           "probes[0])" in found, found
    assert "probes.yaml:5: probes[2].name: duplicate probe name 'a' (first used by " \
           "probes[0])" in found, found
