"""monitor.frozen.fast_init: the same records as @dataclass makes them, built faster."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, dataclass, field
from typing import Any, ClassVar

import pytest

from monitor.auth.variants import Credential
from monitor.frozen import fast_init
from monitor.outcomes import Outcome
from monitor.probes.answer import Answer
from monitor.probes.context import ProbeContext
from monitor.probes.http.verdict import Channel, Judged
from monitor.probes.record import Measured, Verdict
from monitor.probes.request import Prepared
from monitor.result import Evidence, Result
from monitor.trace import TraceContext

# Every record the run path builds with fast_init.
FAST = (Result, Evidence, Verdict, Measured, TraceContext, ProbeContext, Prepared, Channel,
        Judged, Credential, Answer)


def _plain_twin(cls: type) -> type:
    """The same fields in a class @dataclass(frozen=True, slots=True) alone makes."""
    fields = [(f.name, f.type, f) for f in dataclasses.fields(cls)]
    copies = [(name, tp, field(default=f.default) if f.default is not dataclasses.MISSING
               else field(default_factory=f.default_factory)
               if f.default_factory is not dataclasses.MISSING else field())
              for name, tp, f in fields]
    return dataclasses.make_dataclass(cls.__name__, copies, frozen=True, slots=True)


def _args(cls: type) -> dict[str, Any]:
    """A distinct value for every field without a default."""
    return {f.name: f"value of {f.name}" for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_same_signature_as_the_dataclass_init(cls: type) -> None:
    ours = inspect.signature(cls.__init__)
    theirs = inspect.signature(_plain_twin(cls).__init__)
    assert [(p.name, p.kind, repr(p.default)) for p in ours.parameters.values()] == \
        [(p.name, p.kind, repr(p.default)) for p in theirs.parameters.values()]
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_builds_what_the_dataclass_init_builds(cls: type) -> None:
    twin = _plain_twin(cls)
    required = _args(cls)
    ours, theirs = cls(**required), twin(**required)
    assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)
    # Every field given, positionally and by name: each lands in its own slot.
    every = {f.name: f"given {f.name}" for f in dataclasses.fields(cls)}
    assert [getattr(cls(*every.values()), n) for n in every] == list(every.values())
    assert [getattr(cls(**every), n) for n in every] == list(every.values())
    with pytest.raises(TypeError):
        cls(*every.values(), "one too many")
    if required:
        with pytest.raises(TypeError):
            cls()


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_still_frozen_equal_and_hashable(cls: type) -> None:
    one, two = cls(**_args(cls)), cls(**_args(cls))
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(FrozenInstanceError):
        setattr(one, name, "changed")
    assert one == two
    assert repr(one) == repr(two)
    assert dataclasses.replace(one) == one
    assert not hasattr(one, "__dict__")


def test_default_factories_make_a_new_value_each_time() -> None:
    a = Result(probe="p", type="http", target="t", outcome=Outcome.SUCCESS, started_at=0.0,
               duration_seconds=0.0)
    b = Result(probe="p", type="http", target="t", outcome=Outcome.SUCCESS, started_at=0.0,
               duration_seconds=0.0)
    assert a.evidence == Evidence() and a.evidence is not b.evidence

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Holder:
        items: list[int] = field(default_factory=list)

    first, second = Holder(), Holder()
    assert first.items == [] and first.items is not second.items
    given = [1]
    assert Holder(given).items is given


def test_refuses_what_it_would_not_reproduce() -> None:
    @dataclass(frozen=True, slots=True)
    class Posted:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        x: int = field(kw_only=True)

    @dataclass(frozen=True, slots=True)
    class NotInInit:
        x: int = field(default=0, init=False)

    @dataclass(frozen=True, slots=True)
    class WithClassVar:
        limit: ClassVar[int] = 3
        x: int = 0

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(slots=True)
    class NotFrozen:
        x: int

    for cls in (Posted, KeywordOnly, NotInInit, WithClassVar, NoSlots, NotFrozen):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_a_subclass_sets_its_base_fields() -> None:
    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Child(Base):
        b: int = 2

    child = Child(1)
    assert (child.a, child.b) == (1, 2)
    assert Child(1, 3) == Child(a=1, b=3)


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_what_is_built_is_the_record_class_itself(cls: type) -> None:
    # A record of many fields is filled through a twin class; what comes out is never it.
    built = cls(**_args(cls))
    assert type(built) is cls
    assert isinstance(built, cls)


def test_big_records_go_through_the_twin_and_small_ones_do_not() -> None:
    from monitor.frozen import TWIN_FIELDS

    assert len(dataclasses.fields(Result)) >= TWIN_FIELDS
    assert "_fast_switch" in Result.__init__.__code__.co_names
    assert len(dataclasses.fields(Channel)) < TWIN_FIELDS
    assert "_fast_switch" not in Channel.__init__.__code__.co_names


def test_a_failing_default_factory_leaves_no_half_built_twin() -> None:
    from monitor.frozen import TWIN_FIELDS

    def boom() -> int:
        raise RuntimeError("factory failed")

    fields = [(f"f{i}", int, field(default=i)) for i in range(TWIN_FIELDS)]
    Big = fast_init(dataclasses.make_dataclass(
        "Big", [*fields, ("last", int, field(default_factory=boom))], frozen=True, slots=True))
    assert Big(last=1).last == 1
    with pytest.raises(RuntimeError, match="factory failed"):
        Big()
    made = Big.__new__(Big)
    with pytest.raises(RuntimeError):
        made.__init__()  # type: ignore[misc]
    assert type(made) is Big  # turned back, though its init failed


def test_a_big_subclass_sets_its_base_fields_without_the_twin() -> None:
    from monitor.frozen import TWIN_FIELDS

    @dataclass(frozen=True, slots=True)
    class Base:
        a: int

    fields = [(f"f{i}", int, field(default=i)) for i in range(TWIN_FIELDS)]
    Child = fast_init(dataclasses.make_dataclass(
        "Child", fields, bases=(Base,), frozen=True, slots=True))
    child = Child(7)
    assert child.a == 7 and child.f0 == 0
    assert "_fast_switch" not in Child.__init__.__code__.co_names
    with pytest.raises(FrozenInstanceError):
        child.a = 1


def test_a_field_may_not_take_the_init_s_own_names() -> None:
    @dataclass(frozen=True, slots=True)
    class Clash:
        _fast_switch: int

    with pytest.raises(TypeError):
        fast_init(Clash)
