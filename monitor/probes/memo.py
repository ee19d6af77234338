"""What a run works out from its probe's spec alone, worked out once per spec.

A config's specs are frozen pydantic models, and every run of a probe reads the same one
until a reload replaces it. Reading a field of a pydantic model costs several times a
plain attribute (its ``__getattr__`` hook is looked up on every read), and some of what a
run derives from its spec walks the spec (its kind, its ``target`` label: about 10,000
instructions of every run, with ``bench.cost``).

A :class:`SpecMemo` keeps, for each spec object, what a run made of it. It holds the
spec only weakly: when a reload drops a spec, its entry goes with it (nothing is kept for
specs no probe has any more, and an entry can never answer for another object that
happens to get the same ``id``). An entry costs about 180 bytes besides its value (a
weak reference carrying it, its key, its slot), so a memo is for what saves a run more
than that costs 10,000 probes. Only for what depends on the spec alone, and only for
frozen specs.
"""

from __future__ import annotations

import weakref
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Ref(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a spec that carries its entry: the spec's id and what was made
    of it (an entry is this one object: 10,000 probes' specs are 10,000 entries)."""

    __slots__ = ("key", "value")
    key: int
    value: object


class SpecMemo(Generic[K, V]):
    """What was made of each live spec object: ``memo.get(spec)`` (None before
    ``memo.put(spec, value)``)."""

    __slots__ = ("_entries", "_forget")

    def __init__(self) -> None:
        self._entries: dict[int, _Ref] = {}
        entries = self._entries

        def forget(ref: _Ref) -> None:
            # Called as the spec is freed, before its id can be another object's.
            if entries.get(ref.key) is ref:
                del entries[ref.key]

        self._forget = forget

    def get(self, spec: K) -> V | None:
        ref = self._entries.get(id(spec))
        if ref is not None and ref() is spec:
            return ref.value  # type: ignore[return-value]
        return None

    def put(self, spec: K, value: V) -> V:
        """Remember ``value`` for ``spec`` (not for what cannot be held weakly, a test's
        stand-in for a spec); returns ``value``."""
        try:
            ref = _Ref(spec, self._forget)
        except TypeError:
            return value
        ref.key, ref.value = id(spec), value
        self._entries[ref.key] = ref
        return value

    def __len__(self) -> int:
        return len(self._entries)


__all__ = ["SpecMemo"]
