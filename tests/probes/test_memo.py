"""monitor.probes.memo: what a run works out from a spec, once per live spec object; a
reload's new specs are worked out anew, and the dropped ones are forgotten with them."""

from __future__ import annotations

import gc
from types import SimpleNamespace

from monitor.config import load_text
from monitor.probes.memo import SpecMemo
from monitor.probes.record import NAMED, Named, named
from monitor.targets import target_of


def _config(url: str) -> str:
    return f"probes:\n  - name: p\n    http: {{url: '{url}', expect: {{status: [200]}}}}\n"


def test_kept_for_each_spec_object() -> None:
    memo: SpecMemo[object, str] = SpecMemo()
    spec = load_text(_config("http://example.test/a"), env={}).probes[0].spec
    assert memo.get(spec) is None
    assert memo.put(spec, "made") == "made"
    assert memo.get(spec) == "made"
    other = load_text(_config("http://example.test/a"), env={}).probes[0].spec
    assert other == spec and other is not spec  # equal, but another object: not known
    assert memo.get(other) is None


def test_named_is_what_the_probe_says() -> None:
    for yaml in (_config("http://user@example.test:8080/a?token=x"),
                 "probes:\n  - name: w\n    websocket: {url: 'ws://example.test/ws'}\n"):
        probe = load_text(yaml, env={}).probes[0]
        assert named(probe) == Named(probe.name, probe.type, target_of(probe.spec.url))
        assert named(probe) is named(probe)


def test_a_reload_is_seen_and_the_dropped_specs_are_forgotten() -> None:
    old = load_text(_config("http://example.test/old"), env={}).probes[0]
    assert named(old).target == "http://example.test/old"
    gc.collect()  # specs of earlier tests left to the collector: not this test's to count
    before = len(NAMED)
    # The reload: the same probe with another URL, the old config dropped.
    new = load_text(_config("http://example.test/new"), env={}).probes[0]
    del old
    gc.collect()
    assert len(NAMED) == before - 1
    assert named(new).target == "http://example.test/new"
    assert len(NAMED) == before


def test_what_cannot_be_held_weakly_is_not_kept() -> None:
    memo: SpecMemo[object, int] = SpecMemo()
    stand_in = SimpleNamespace(url="x")
    assert memo.put(stand_in, 1) == 1
    assert memo.get(stand_in) is None and len(memo) == 0


def test_an_http_verdict_reads_the_expect_section_of_its_own_config() -> None:
    from multidict import CIMultiDict

    from monitor.outcomes import Outcome
    from monitor.probes.http.verdict import Channel, evaluate
    from monitor.redact import Redactor

    def outcome(status_expected: str) -> Outcome:
        yaml = ("probes:\n  - name: p\n    http: {url: 'http://example.test/', "
                f"expect: {{status: [{status_expected}], headers: {{X-A: b}}}}}}\n")
        spec = load_text(yaml, env={}).probes[0].spec.http
        assert spec is not None
        return evaluate(spec.expect, 200, b"", False, CIMultiDict({"X-A": "b"}), 0.01,
                        Redactor(), Channel("HTTP/1.1", "http://example.test/"))[0]

    assert outcome("200") is Outcome.SUCCESS
    gc.collect()
    assert outcome("201") is Outcome.UNEXPECTED_STATUS  # a reload's section, read anew
    assert outcome("200") is Outcome.SUCCESS
