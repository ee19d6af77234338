"""Models given the same names share one fields set (monitor.config.schema.base.FieldsSet):
that set must never change, whichever pydantic path a model goes through."""

from __future__ import annotations

import copy
import pickle
import sys

import pytest

from monitor.config import load_text
from monitor.config.schema import HttpSpec, ProbeSpec
from monitor.config.schema.base import FieldsSet

TEXT = """\
probes:
  - {name: a, http: {url: 'http://127.0.0.1:1/a', expect: {status: [200]}}}
  - {name: b, http: {url: 'http://127.0.0.1:1/b', expect: {status: [200]}}}
  - {name: c, interval: 30s, http: {url: 'http://127.0.0.1:1/c', follow_redirects: false}}
  - {name: d, websocket: {url: 'ws://127.0.0.1:1/d'}}
"""


def _specs() -> list[ProbeSpec]:
    return [p.spec for p in load_text(TEXT, env={}).probes]


def test_models_given_the_same_names_share_one_fields_set() -> None:
    a, b, c, d = _specs()
    assert a.http and b.http and c.http and d.websocket
    assert isinstance(a.model_fields_set, FieldsSet)
    assert a.model_fields_set is b.model_fields_set == {"name", "http"}
    assert a.http.model_fields_set is b.http.model_fields_set == {"url", "expect"}
    assert c.model_fields_set == {"name", "interval", "http"}
    assert c.http.model_fields_set == {"url", "follow_redirects"}
    assert d.model_fields_set == {"name", "websocket"}
    # as pydantic builds them without the load's table: the same names, a set of their own
    raw = [{"name": "a", "http": {"url": "http://127.0.0.1:1/a", "expect": {"status": [200]}}},
           {"name": "c", "interval": "30s",
            "http": {"url": "http://127.0.0.1:1/c", "follow_redirects": False}},
           {"name": "d", "websocket": {"url": "ws://127.0.0.1:1/d"}}]
    for spec, data in zip((a, c, d), raw, strict=True):
        alone = ProbeSpec.model_validate(data)
        assert type(alone.model_fields_set) is set
        assert alone.model_fields_set == spec.model_fields_set
        assert alone.model_dump(exclude_unset=True) == spec.model_dump(exclude_unset=True)
        assert alone == spec


def test_a_shared_fields_set_refuses_every_change() -> None:
    shared = _specs()[0].model_fields_set
    assert isinstance(shared, FieldsSet)
    changes = [lambda: shared.add("x"), lambda: shared.discard("name"),
               lambda: shared.remove("name"), shared.clear, shared.pop,
               lambda: shared.update({"x"}), lambda: shared.difference_update({"name"}),
               lambda: shared.intersection_update({"name"}),
               lambda: shared.symmetric_difference_update({"x"})]
    for change in changes:
        with pytest.raises(TypeError):
            change()
    for op in ("__ior__", "__iand__", "__isub__", "__ixor__"):
        with pytest.raises(TypeError):
            getattr(shared, op)({"x"})
    assert shared == {"name", "http"}


def test_no_pydantic_path_changes_a_shared_fields_set() -> None:
    a, b, c, _ = _specs()
    assert a.http and b.http and c.http
    shared, shared_http = a.model_fields_set, a.http.model_fields_set
    made: list[ProbeSpec] = [
        a.model_copy(), a.model_copy(deep=True), a.model_copy(update={"interval": 5.0}),
        a.model_copy(update={"labels": {"team": "x"}}, deep=True),
        copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a)),
        ProbeSpec.model_construct(**dict(a)),
        ProbeSpec.model_construct(_fields_set=shared, **dict(a)),
    ]
    http_made: list[HttpSpec] = [
        a.http.model_copy(update={"follow_redirects": False}), copy.deepcopy(a.http),
        a.http.model_copy(deep=True)]
    with pytest.raises(Exception, match="frozen"):
        a.interval = 5.0  # type: ignore[misc]
    with pytest.raises(Exception, match="frozen"):
        a.http.follow_redirects = False  # type: ignore[misc]
    assert made[2].model_fields_set == {"name", "http", "interval"} and made[2].interval == 5.0
    assert made[3].model_fields_set == {"name", "http", "labels"}
    assert http_made[0].model_fields_set == {"url", "expect", "follow_redirects"}
    for m in [*made[:7], *http_made]:
        assert m.model_fields_set is not shared and m.model_fields_set is not shared_http
    # every copy, and the one made with the shared set itself, dumps as the original does
    for m in (made[0], made[1], made[4], made[5], made[6], made[8]):
        assert m.model_dump(exclude_unset=True) == a.model_dump(exclude_unset=True)
    assert shared is b.model_fields_set == {"name", "http"}
    assert shared_http is b.http.model_fields_set == {"url", "expect"}
    assert c.model_fields_set == {"name", "interval", "http"}


def test_a_models_fields_dict_shares_its_keys_and_reads_as_pydantics_own() -> None:
    """monitor.config.schema.base.key_sharing: each model of a load keeps its fields in a
    dict sharing its keys with the others of its class (PEP 412), a third of the size of
    the dict pydantic made; fails if CPython stops sharing them."""
    a, b, c, d = _specs()
    assert a.http and b.http
    raw = {"name": "a", "http": {"url": "http://127.0.0.1:1/a", "expect": {"status": [200]}}}
    alone = ProbeSpec.model_validate(raw)
    assert alone.http is not None
    for model, own in ((a, alone), (a.http, alone.http)):
        assert list(model.__dict__.items()) == list(own.__dict__.items())
        assert sys.getsizeof(model.__dict__) < sys.getsizeof(own.__dict__) * 3 // 4, (
            sys.getsizeof(model.__dict__), sys.getsizeof(own.__dict__))
        assert model == own and model.model_dump() == own.model_dump()
        assert model.model_dump_json() == own.model_dump_json()
    for spec in (a, b, c, d):
        assert list(spec.__dict__) == list(ProbeSpec.model_fields)
    copied = a.model_copy(update={"interval": 5.0})
    assert copied.interval == 5.0 and a.interval is None and b.interval is None
    assert pickle.loads(pickle.dumps(a)) == a
