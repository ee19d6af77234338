"""A faster ``__init__`` for the frozen, slotted records every run makes.

A frozen dataclass assigns each field in ``__init__`` through ``object.__setattr__(self,
"name", value)``, a generic attribute lookup by name, because its own ``__setattr__``
refuses. A run builds about a hundred such fields (Result, Evidence, Verdict, Measured, the
trace, the request): with ``bench.cost``, that was about 70,000 instructions of an HTTP run,
more than a tenth of what aiohttp's request itself costs.

:func:`fast_init` replaces the generated ``__init__`` by one that assigns through each
slot's own descriptor (``type(cls).field.__set__``), which is what ``object.__setattr__``
ends up calling anyway, without finding it by name first: half the cost, the same
object. The class stays what ``@dataclass`` made it: frozen (assigning still raises
FrozenInstanceError), the same fields, defaults and default factories, the same
signature, ``__eq__``, ``__hash__``, ``__repr__``, ``replace`` and ``asdict``.

A record of :data:`TWIN_FIELDS` fields or more (none inherited) is built faster still:
its ``__init__`` turns the new object into an instance of a plain slotted twin class of
the same layout (``object.__setattr__(self, "__class__", twin)``), assigns its fields
with ordinary attribute stores (which the interpreter does inline, a tenth of a descriptor
call each), and turns it back. The two class switches cost about four descriptor calls
(``bench``: 5,200 instructions against 5,900 for five fields, 9,400 against 20,300 for
twenty-five), so a smaller record keeps the descriptor calls. Nothing outside ``__init__``
ever sees the twin: an exception inside it turns the object back too.

Only for what it reproduces exactly: a class with ``__post_init__``, an ``InitVar``, a
field left out of ``__init__`` or keyword-only fields is refused (TypeError at import),
so that a record changed that way cannot silently lose what its ``__init__`` did.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """The default of a field made by its default factory (shown as dataclasses shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
# From this many fields on, __init__ assigns through the twin class (see the docstring).
TWIN_FIELDS = 5
# Names the generated __init__ uses for itself; a field may not take one.
_OURS = "_fast_"


def fast_init(cls: type[T]) -> type[T]:
    """``cls`` (a ``@dataclass(frozen=True, slots=True)``) with the faster ``__init__``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init is for @dataclass(frozen=True, slots=True)")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fast_init does not call __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if len(fields) != len(cls.__dataclass_fields__):  # type: ignore[attr-defined]
        # InitVar and ClassVar pseudo-fields: not what this __init__ reproduces.
        raise TypeError(f"{cls.__name__}: fast_init does not take InitVar or ClassVar fields")
    if any(f.name.startswith(_OURS) for f in fields):
        raise TypeError(f"{cls.__name__}: fast_init reserves field names starting {_OURS}")
    # A twin has the layout of a class whose slots are all its own (no base but object).
    twin = _twin(cls) if cls.__base__ is object and len(fields) >= TWIN_FIELDS else None
    scope: dict[str, Any] = {"_FACTORY": _FACTORY, "_fast_switch": object.__setattr__,
                             "_fast_twin": twin, "_fast_cls": cls}
    args: list[str] = []
    body: list[str] = []
    for i, f in enumerate(fields):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes positional fields only")
        value = f.name
        if f.default is not dataclasses.MISSING:
            scope[f"_fast_default{i}"] = f.default
            args.append(f"{f.name}=_fast_default{i}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_fast_factory{i}"] = f.default_factory
            args.append(f"{f.name}=_FACTORY")
            value = f"_fast_factory{i}() if {f.name} is _FACTORY else {f.name}"
        else:
            args.append(f.name)
        if twin is not None:
            body.append(f"        self.{f.name} = {value}\n")
        else:
            owner = next(k for k in cls.__mro__ if f.name in k.__dict__)  # a base's field
            scope[f"_fast_set{i}"] = owner.__dict__[f.name].__set__
            body.append(f"    _fast_set{i}(self, {value})\n")
    if twin is not None:
        # Into the twin past the record's own __setattr__; back by a plain store, which
        # the twin allows (cheaper than a call of object.__setattr__).
        body = ["    _fast_switch(self, '__class__', _fast_twin)\n", "    try:\n", *body,
                "    finally:\n", "        self.__class__ = _fast_cls\n"]
    source = f"def __init__(self, {', '.join(args)}):\n" + ("".join(body) or "    pass\n")
    exec(source, scope)  # our own code, made of the class's field names
    init = scope["__init__"]
    original = cls.__init__
    init.__qualname__ = original.__qualname__
    init.__module__ = original.__module__
    init.__doc__ = original.__doc__
    init.__annotations__ = dict(original.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _twin(cls: type) -> type:
    """A plain class with ``cls``'s slots (the same layout, so an object may switch between
    them) and nothing else: no ``__setattr__`` refusing the stores."""
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__dict__["__slots__"],
                                               "__module__": cls.__module__})
    return twin


__all__ = ["TWIN_FIELDS", "fast_init"]
