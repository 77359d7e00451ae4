"""One registry shape for everything looked up by name.

Transforms, checks, AM strategies, transform sets, parametrizations and models are each kept in a
:class:`Registry`: a read-only mapping ``name -> object`` with a one-line description per name.
Registering a second, different object under a taken name raises; registering the same object
again (a module imported twice) is a no-op.

Example:
    >>> reg = Registry("widget")
    >>> @reg.register("round", description="a round widget")
    ... def round_widget():
    ...     return "o"
    >>> reg["round"](), reg.describe()
    ('o', {'round': 'a round widget'})
    >>> reg.get("rond")
    Traceback (most recent call last):
    ...
    ValueError: unknown widget 'rond' (did you mean 'round'?); available: round
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Dict, Generic, Iterator, Mapping, Optional, TypeVar

__all__ = ["Registry", "first_line"]

T = TypeVar("T")


def first_line(obj: Any) -> str:
    """The first line of ``obj``'s docstring (``""`` when it has none)."""
    doc = inspect.getdoc(obj) if (inspect.isclass(obj) or callable(obj)) else None
    return doc.strip().splitlines()[0] if doc else ""


def _identity(obj: Any) -> Any:
    """What makes two registrations "the same object": a function or class by its qualified name
    (so that re-importing a module is harmless), anything else by equality."""
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return ("def", getattr(obj, "__module__", "?"), getattr(obj, "__qualname__", repr(obj)))
    return obj


class Registry(Mapping[str, T], Generic[T]):
    """Objects registered by name, each with a one-line description.

    Args:
        kind: what the registry holds, for error messages ("model transform", "check" ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}
        self._descriptions: Dict[str, str] = {}

    # -- mapping -------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"

    # -- registration --------------------------------------------------------------------
    def register(self, name: str, obj: Any = None, *, description: Optional[str] = None) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator that registers what it decorates.

        ``description`` defaults to the first line of the object's docstring. Returns ``obj``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")

        def add(item: Any) -> Any:
            old = self._items.get(name)
            if old is not None and old is not item and _identity(old) != _identity(item):
                raise ValueError(f"a {self.kind} named {name!r} is already registered ({old!r}); "
                                 "choose another name or unregister the old one first")
            self._items[name] = item
            self._descriptions[name] = first_line(item) if description is None else " ".join(str(description).split())
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (no error if it is not there)."""
        self._items.pop(name, None)
        self._descriptions.pop(name, None)

    # -- lookup --------------------------------------------------------------------------
    def get(self, name: str, default: Any = ...) -> T:  # type: ignore[override]
        """The object registered as ``name``; an unknown name raises ``ValueError`` listing the names
        (or returns ``default`` when one is given)."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            if default is not ...:
                return default
            close = difflib.get_close_matches(str(name), list(self._items), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}{hint}; available: {', '.join(self)}") from None

    def describe(self) -> Dict[str, str]:
        """``{name: one-line description}``, sorted by name."""
        return {n: self._descriptions[n] for n in self}

    def where(self, predicate: Callable[[T], bool]) -> Dict[str, T]:
        """The entries whose object satisfies ``predicate``."""
        return {n: self._items[n] for n in self if predicate(self._items[n])}
