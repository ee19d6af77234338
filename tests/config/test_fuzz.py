"""probes.yaml under fuzzing: whatever the file says, loading ends in a valid Config or in
a ConfigError whose every line says ``probes.yaml:LINE: ...`` (LINE a number within the
document, or ``?``).

Three kinds of documents:

* valid ones, generated from a strategy per config model (defaults, auth providers, HTTP and
  WebSocket probes with their expectations and steps): every one must load, with the probes
  it was written with, and be usable by the daemon: its durations finite, its timeouts
  shorter than its intervals, its names unique, and the scheduler, the surfacer and the
  target label must accept it;
* valid ones with one targeted mistake (a bad duration, URL, status, label name, auth
  reference, a misspelt key, a missing matcher, a repeated name): the one problem reported
  is that mistake, at its key and on its line;
* near-valid and text-mutated ones (wrong types, unknown and misspelt keys, weird unicode,
  deep nesting, huge numbers, anchors and aliases): robustness, whatever loads must be usable.

The examples are bounded in number and derandomized: of 60 valid documents all load, with
their probes; of 200 near-valid ones 8 load (none with a probe: robustness only); of 200
text-mutated ones 43 (17 with probes). The module runs in well under a minute.
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

from monitor.config import Config, ConfigError, load_text, parse_duration
from monitor.probes.context import target_of
from monitor.sinks.metrics import Surfacer
from tests.support.hostile import ROOT

PROBLEM = re.compile(r"^probes\.yaml:(\d+|\?): \S")
ENV = {"STAGING_URL": "http://127.0.0.1:8000", "STAGING_WS_URL": "ws://127.0.0.1:8000",
       "JWT_SECRET_STAGING": "s3cret-value",
       "EMPTY": "", "WEIRD": "ünï\u200bcödé ${NOT_AGAIN}"}
FUZZ = settings(max_examples=200, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Seconds no document may take to load or refuse: an alias bomb left to expand would take
# minutes; the slowest legitimate document here takes ~0.3 s on an idle machine.
SLOW_LOAD = 5.0


def assert_well_formed(problems: list[str], text: str) -> None:
    assert problems, "a ConfigError without problems"
    last_line = text.count("\n") + 1
    for problem in problems:
        m = PROBLEM.match(problem)
        assert m, repr(problem)
        assert m.group(1) == "?" or 1 <= int(m.group(1)) <= last_line, (problem, last_line)
        assert "\n" not in problem and "\r" not in problem, repr(problem)
        assert len(problem) < 2000, problem[:200]
        assert "Traceback" not in problem


def check(text: str, env: dict[str, str] | None = None) -> Config | None:
    """The property: a usable Config (returned), or a ConfigError with clear one-line
    problems (None)."""
    t0 = time.monotonic()
    try:
        config = load_text(text, "probes.yaml", env=ENV if env is None else env)
    except ConfigError as exc:
        assert_well_formed(exc.problems, text)
        return None
    finally:
        assert time.monotonic() - t0 < SLOW_LOAD, "loading took too long"
    assert_usable(config)
    return config


def assert_usable(config: Config) -> None:
    names = [p.key for p in config.probes]  # a negative probe's variants share its name
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
    scheme = draw(st.sampled_from(["ws", "wss", "WSS", "http", ""] if ws else
                                  ["http", "https", "HtTpS", "ftp", "", "ws", "WS"]))
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
@given(st.one_of(st.sampled_from([GOOD, SHIPPED]),
                 st.deferred(lambda: valid_documents().map(dump_valid))), st.lists(st.tuples(
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


# --------------------------------------------------------------------------- valid documents
# A strategy per model of monitor/config.py, within the rules the loader states: every
# document drawn here is a valid probes.yaml.

RESERVED = {"probe", "type", "target", "outcome", "location", "phase", "step", "le",
            "reason", "version", "job", "instance"}
printable = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
                    max_size=16)  # any unicode but control characters
tokens = st.from_regex(r"\A[A-Za-z0-9_.-]{1,12}\Z")  # header names, subprotocols, fields
label_names = st.from_regex(r"\A[a-zA-Z_][a-zA-Z0-9_]{0,10}\Z").filter(
    lambda n: n not in RESERVED)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), printable)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(printable, inner, max_size=3)), max_leaves=6)
dotted = st.from_regex(r"\A[a-z_]{1,6}(\.[a-z0-9_]{1,6}){0,2}\Z")
regexes = st.sampled_from(["ok", "^v[0-9]+$", "(?i)healthy", ".*", r"\d{3}", "a|b", "[^x]+"])


def ms(value: int) -> str:
    """A duration in one of the spellings the loader documents."""
    if value % 60_000 == 0:
        return f"{value // 60_000}m"
    if value % 1000 == 0:
        return f"{value // 1000}s"
    if value > 60_000:
        return f"{value // 60_000}m{value % 60_000 / 1000:g}s"
    return f"{value}ms"


any_duration = st.integers(1, 3_600_000).map(ms)


@st.composite
def interval_and_timeout(draw: st.DrawFn) -> tuple[int, int]:
    interval = draw(st.integers(2, 3_600_000))
    return interval, draw(st.integers(1, interval - 1))


@st.composite
def host_urls(draw: st.DrawFn, schemes: list[str]) -> str:
    host = draw(st.sampled_from(["127.0.0.1", "localhost", "[::1]", "staging.example.test",
                                 "xn--bcher-kva.example"]))
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    path = draw(st.from_regex(r"\A(/[A-Za-z0-9._~-]{0,8}){0,3}\Z"))
    query = draw(st.sampled_from(["", "?x=1", "?a=b&c=%20"]))
    if draw(st.integers(0, 4)) == 0:  # from the environment, as probes.yaml does
        base = "${STAGING_URL}" if schemes[0].startswith("http") else "${STAGING_WS_URL}"
        return f"{base}{path}{query}"
    # RFC 3986: a scheme in any case (HTTP://, WsS://) is the same scheme
    scheme = "".join(c.upper() if draw(st.booleans()) else c
                     for c in draw(st.sampled_from(schemes)))
    return f"{scheme}://{host}{port}{path}{query}"


headers = st.dictionaries(tokens, printable, max_size=2)


@st.composite
def jwt_provider(draw: st.DrawFn, inline_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "jwt",
                           "algorithm": draw(st.sampled_from(["HS256", "HS384", "HS512"]))}
    if inline_secret:
        out["secret"] = draw(printable.filter(bool))
    else:
        out["secret_env"] = "JWT_SECRET_STAGING"
    if draw(st.booleans()):
        out["claims"] = draw(st.dictionaries(printable, json_values, max_size=3))
    if draw(st.booleans()):
        out["ttl"] = draw(any_duration)
    return out


@st.composite
def token_endpoint_provider(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "token_endpoint", "url": draw(host_urls(["http", "https"]))}
    optional = {"method": st.sampled_from(["POST", "GET"]),
                "format": st.sampled_from(["json", "form"]),
                "fields": st.dictionaries(tokens, printable, max_size=2),
                "secret_fields_env": st.just({"password": "JWT_SECRET_STAGING"}),
                "token_field": dotted, "expires_in_field": dotted,
                "default_ttl": any_duration, "timeout": any_duration}
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=4)):
        out[key] = draw(optional[key])
    return out


providers = st.one_of(jwt_provider(), token_endpoint_provider())


@st.composite
def http_spec(draw: st.DrawFn, auth_names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"url": draw(host_urls(["http", "https"]))}
    body = draw(st.sampled_from(["none", "body", "json_body"]))
    if body == "body":
        out["body"] = draw(printable)
    elif body == "json_body":
        out["json_body"] = draw(json_values.filter(lambda v: v is not None))
    expect = draw(st.fixed_dictionaries({}, optional={
        "status": st.lists(st.one_of(st.integers(100, 599),
                                     st.sampled_from(["2xx", "3xx", "4xx", "5xx"]),
                                     st.integers(100, 598).map(lambda c: f"{c}-{c + 1}")),
                           min_size=1, max_size=3),
        "json": st.dictionaries(dotted, json_values, max_size=3),
        "body_regex": regexes,
        "headers": st.dictionaries(tokens, regexes, max_size=2),
        "max_latency": any_duration}))
    if expect:
        out["expect"] = expect
    optional = {"method": st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                           "OPTIONS"]),
                "headers": headers, "follow_redirects": st.booleans(),
                "max_body_bytes": st.integers(1, 10**9),
                "tls": st.fixed_dictionaries({}, optional={
                    "insecure_skip_verify": st.booleans(), "server_name": tokens}),
                "auth": st.one_of(st.sampled_from(auth_names) if auth_names else st.nothing(),
                                  jwt_provider(), token_endpoint_provider())}
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=4)):
        out[key] = draw(optional[key])
    return out


@st.composite
def step(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["expect", "send", "expect_events"]))
    if kind == "expect":
        action = draw(st.fixed_dictionaries({}, optional={
            "timeout": any_duration, "max_latency": any_duration}))
        matcher = draw(st.sampled_from(["json", "regex", "both"]))
        if matcher in ("json", "both"):
            action["json"] = draw(st.dictionaries(printable, json_values, max_size=2))
        if matcher in ("regex", "both"):
            action["regex"] = draw(regexes)
    elif kind == "send":
        action = ({"json": draw(json_values.filter(lambda v: v is not None))}
                  if draw(st.booleans()) else {"text": draw(printable)})
    else:
        action = {"types": draw(st.lists(printable, min_size=1, max_size=4))}
        action |= draw(st.fixed_dictionaries({}, optional={
            "in_order": st.booleans(), "field": dotted, "timeout": any_duration,
            "fail_on": st.lists(printable, max_size=2), "max_latency": any_duration}))
    out: dict[str, Any] = {kind: action}
    if draw(st.booleans()):
        out["name"] = draw(printable)
    return out


@st.composite
def websocket_spec(draw: st.DrawFn, auth_names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"url": draw(host_urls(["ws", "wss"]))}
    rejected = draw(st.integers(0, 3)) == 0
    auth = draw(st.one_of(st.none(),
                          st.sampled_from(auth_names) if auth_names else st.nothing(),
                          jwt_provider(inline_secret=rejected)))
    if auth is not None:
        out["auth"] = auth
        out["send_token_as"] = draw(st.lists(st.sampled_from(
            ["authorization_header", "subprotocol", "query"]), unique=True, max_size=3))
    if rejected:
        out["expect_rejected"] = True
    elif draw(st.booleans()):
        out["steps"] = draw(st.lists(step(), max_size=4))
    optional = {"subprotocols": st.lists(tokens, max_size=2), "headers": headers,
                "expect_subprotocol": tokens, "max_latency": any_duration,
                "diagnose": st.booleans(), "max_message_bytes": st.integers(1, 10**9),
                "tls": st.fixed_dictionaries({}, optional={"insecure_skip_verify": st.booleans(),
                                                           "server_name": tokens})}
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=4)):
        out[key] = draw(optional[key])
    return out


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    default_interval, default_timeout = 60_000, 10_000
    if draw(st.booleans()):
        default_interval, default_timeout = draw(interval_and_timeout())
        doc["defaults"] = {"interval": ms(default_interval), "timeout": ms(default_timeout)}
        if draw(st.booleans()):
            doc["defaults"]["labels"] = draw(st.dictionaries(label_names, printable,
                                                             max_size=2))
    auth = draw(st.dictionaries(tokens, providers, max_size=2))
    if auth:
        doc["auth"] = auth
    names = draw(st.lists(st.from_regex(r"\A[A-Za-z0-9_.:-]{1,40}\Z").filter(
        lambda n: n not in (".", "..")), min_size=1, max_size=5, unique=True))
    probes = []
    for name in names:
        out: dict[str, Any] = {"name": name}
        timing = draw(st.sampled_from(["defaults", "both", "interval", "timeout"]))
        if timing == "both":
            interval, timeout = draw(interval_and_timeout())
            out["interval"], out["timeout"] = ms(interval), ms(timeout)
        elif timing == "interval":
            out["interval"] = ms(draw(st.integers(default_timeout + 1, default_timeout * 100)))
        elif timing == "timeout":
            out["timeout"] = ms(draw(st.integers(1, default_interval - 1)))
        if draw(st.booleans()):
            out["labels"] = draw(st.dictionaries(label_names, printable, max_size=2))
        kind = draw(st.sampled_from(["http", "websocket"]))
        out[kind] = draw((http_spec if kind == "http" else websocket_spec)(sorted(auth)))
        probes.append(out)
    doc["probes"] = probes
    # Timings are drawn with timeout < interval only; retries (whose budget must fit the
    # interval too) are off here and tested in test_loader.
    doc.setdefault("defaults", {})["retries"] = 0
    return doc


VALID = settings(FUZZ, max_examples=60)
_NUMBER_LIKE = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")


class _Quoting(yaml.SafeDumper):
    """PyYAML writes "1e100" plain, as YAML 1.1 reads it a string; the loader reads it as
    YAML 1.2 does, a float. Such strings are quoted, so that the text says what is meant."""


_Quoting.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style='"' if _NUMBER_LIKE.match(value) else None))


def dump_valid(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Quoting, allow_unicode=True, default_flow_style=None,
                     sort_keys=False)


@VALID
@given(valid_documents())
def test_valid_documents_load_with_their_probes_and_are_usable(doc: dict[str, Any]) -> None:
    text = dump_valid(doc)
    try:
        config = load_text(text, "probes.yaml", env=ENV)
    except ConfigError as exc:
        raise AssertionError(f"a valid document was refused: {exc.problems}\n{text}") from None
    assert_usable(config)
    assert [p.name for p in config.probes] == [p["name"] for p in doc["probes"]]
    for probe, written in zip(config.probes, doc["probes"], strict=True):
        assert probe.type == ("http" if "http" in written else "websocket")
        if "interval" in written:
            assert probe.interval == parse_duration(written["interval"])
        if "timeout" in written:
            assert probe.timeout == parse_duration(written["timeout"])
        url = written[probe.type]["url"].replace("${STAGING_URL}", ENV["STAGING_URL"]) \
            .replace("${STAGING_WS_URL}", ENV["STAGING_WS_URL"])
        scheme, sep, rest = url.partition("://")
        assert probe.spec.url == scheme.lower() + sep + rest  # the scheme's canonical case


def _display(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _line_of(text: str, path: tuple[Any, ...]) -> int:
    """The line of ``path``'s key (or list item) in ``text``, by PyYAML's composer."""
    node = yaml.compose(text)
    line = 1
    for part in path:
        if isinstance(part, int):
            node = node.value[part]
            line = node.start_mark.line + 1
            continue
        for key, value in node.value:
            if key.value == part:
                node, line = value, key.start_mark.line + 1
                break
        else:
            return line  # a key that is not there: its mapping's line
    return line


@st.composite
def one_mistake(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[Any, ...], str]:
    """A valid document with one mistake: (document, the path it is at, the message)."""
    doc = draw(valid_documents())
    i = draw(st.integers(0, len(doc["probes"]) - 1))
    probe = doc["probes"][i]
    kind = "http" if "http" in probe else "websocket"
    spec = probe[kind]
    mistakes = ["interval", "url", "label", "typo", "repeat", "auth"]
    if kind == "http":
        mistakes.append("status")
    elif spec.get("steps"):
        mistakes.append("matcher")
    mistake = draw(st.sampled_from(mistakes))
    if mistake == "interval":
        probe["interval"] = draw(st.sampled_from(["5x", "-1s", "fast", "1h1x"]))
        return doc, ("probes", i, "interval"), "must be a duration like 5s"
    if mistake == "url":
        spec["url"] = draw(st.sampled_from(["ftp://h/", "h/", "gopher://h", "file:///etc"]))
        scheme = "an http:// or https://" if kind == "http" else "a ws:// or wss://"
        return doc, ("probes", i, kind, "url"), f"must be {scheme} URL"
    if mistake == "label":
        name = draw(st.sampled_from([*sorted(RESERVED), "9lives", "a-b", "ü"]))
        probe["labels"] = {**probe.get("labels", {}), name: "x"}
        return doc, ("probes", i, "labels", name), "label name must match"
    if mistake == "typo":
        key = draw(st.sampled_from(["interval", "timeout", "labels"]))
        typos = {key[:i] + key[i + 1:] for i in range(len(key))} | {key + "s", key.upper()}
        typos |= {key[:i] + key[i + 1] + key[i] + key[i + 2:] for i in range(len(key) - 1)}
        typo = draw(st.sampled_from(sorted(typos - {key} - set(probe))))
        probe[typo] = probe.pop(key, "1s" if key != "labels" else {})
        return doc, ("probes", i, typo), "unknown key"
    if mistake == "repeat":
        if len(doc["probes"]) < 2:
            doc["probes"].append({"name": probe["name"], "http": {"url": "http://h/"}})
            return doc, ("probes", len(doc["probes"]) - 1, "name"), "duplicate probe name"
        j = draw(st.integers(0, len(doc["probes"]) - 1).filter(lambda j: j != i))
        doc["probes"][j]["name"] = probe["name"]
        later = max(i, j)
        return doc, ("probes", later, "name"), "duplicate probe name"
    if mistake == "auth":
        spec["auth"] = "no-such-provider"
        spec.pop("send_token_as", None)
        return doc, ("probes", i, kind, "auth"), "unknown auth provider 'no-such-provider'"
    if mistake == "status":
        spec["expect"] = {**spec.get("expect", {}), "status": [draw(st.sampled_from(
            [99, 600, 999, "6xx", "300-200"]))]}
        return doc, ("probes", i, "http", "expect", "status"), "must be status codes"
    j = draw(st.integers(0, len(spec["steps"]) - 1))
    spec["steps"][j] = {"expect": {"timeout": "1s"}}
    return doc, ("probes", i, "websocket", "steps", j, "expect"), "needs json or regex"


@VALID
@given(one_mistake())
def test_one_mistake_is_reported_at_its_key_and_line(
        case: tuple[dict[str, Any], tuple[Any, ...], str]) -> None:
    doc, path, message = case
    text = dump_valid(doc)
    with pytest.raises(ConfigError) as info:
        load_text(text, "probes.yaml", env=ENV)
    assert_well_formed(info.value.problems, text)
    expected = f"probes.yaml:{_line_of(text, path)}: {_display(path)}: "
    ours = [p for p in info.value.problems if p.startswith(expected)]
    assert ours and message in ours[0], (expected, message, info.value.problems, text)
    # the mistake is all that is reported (a misspelt timeout may also leave the default
    # one too long for the probe's interval)
    others = [p for p in info.value.problems if p not in ours]
    assert all("must be shorter than the interval" in p for p in others), info.value.problems
