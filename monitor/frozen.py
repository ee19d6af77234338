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
    scope: dict[str, Any] = {"_FACTORY": _FACTORY}
    args: list[str] = []
    body: list[str] = []
    for i, f in enumerate(fields):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes positional fields only")
        # Names of our own, so that a field cannot shadow them.
        setter = f"_set{i}"
        owner = next(k for k in cls.__mro__ if f.name in k.__dict__)  # a base's field
        scope[setter] = owner.__dict__[f.name].__set__
        value = f.name
        if f.default is not dataclasses.MISSING:
            scope[f"_default{i}"] = f.default
            args.append(f"{f.name}=_default{i}")
        elif f.default_factory is not dataclasses.MISSING:
            scope[f"_factory{i}"] = f.default_factory
            args.append(f"{f.name}=_FACTORY")
            value = f"_factory{i}() if {f.name} is _FACTORY else {f.name}"
        else:
            args.append(f.name)
        body.append(f"    {setter}(self, {value})\n")
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


__all__ = ["fast_init"]
