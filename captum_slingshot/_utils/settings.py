"""Settings dataclasses as flat, named options: one source for Python, the command line and YAML.

A settings dataclass declares each field with :func:`setting`: its default, a one-line help, the
*flat name* under which it appears on the command line (``--flat-name``) and in YAML files
(``flat_name:``), and its kind. :func:`options_of` collects those declarations as
:class:`FlatOption` objects, which convert text or YAML values and know their defaults; the
command line and the study runner build their options from them, so an option of the library is
reachable from both and the two cannot drift.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Optim:
    ...     lr: float = setting(1e-3, "learning rate", flat="lr", kind="float")
    ...     clip: float = setting(1.0, "gradient clipping (none: off)", flat="clip", kind="float", optional=True)
    >>> [(o.name, o.default) for o in options_of(Optim)]
    [('lr', 0.001), ('clip', 1.0)]
    >>> options_of(Optim)[1].convert("none"), options_of(Optim)[0].convert("2e-3")
    (None, 0.002)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ["FlatOption", "setting", "options_of", "flat_values", "KINDS", "is_none", "check_positive"]

#: what a flat option holds
KINDS = ("int", "float", "bool", "text", "ints", "floats", "selector", "tensor")


def is_none(v: Any) -> bool:
    """``None``, or a text that means none (``none``, ``null``, empty)."""
    return v is None or (isinstance(v, str) and v.strip().lower() in ("none", "null", ""))


def _numbers(v: Any, cast: type, word: str) -> Tuple[Any, ...]:
    items = v if isinstance(v, (list, tuple)) else str(v).replace(" ", "").split(",")
    try:
        return tuple(cast(str(x)) for x in items if str(x) != "")
    except ValueError:
        raise ValueError(f"expected comma-separated {word}, got {v!r}") from None


@dataclass(frozen=True)
class FlatOption:
    """One flat setting: a command-line flag ``--name-with-dashes`` and a YAML key ``name_with_underscores``.

    Attributes:
        name: the flat name (underscores).
        help: one line.
        default: the value when the option is not given.
        kind: one of :data:`KINDS` (``"bool"`` options are switches; ``"selector"``: an int or a
            tuple of ints; ``"tensor"``: a path to a ``.pt`` file or an image, or a named value
            from ``choices``).
        optional: ``None`` (``none`` in text) is a valid value.
        choices: the valid values (for ``"text"``; named values for ``"tensor"``).
    """

    name: str
    help: str
    default: Any = None
    kind: str = "text"
    optional: bool = False
    choices: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")

    def convert(self, value: Any) -> Any:
        """``value`` (a command-line text or a YAML value) as the option's type; a ``ValueError``
        that says what was expected otherwise."""
        if self.optional and is_none(value):
            return None
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
                return value.strip().lower() in ("true", "yes", "on")
            raise ValueError(f"expected true or false, got {value!r}")
        if isinstance(value, (dict,)) or (isinstance(value, bool) and kind != "text"):
            raise ValueError(f"expected {self._word()}, got {value!r}")
        if kind in ("int", "float"):
            if isinstance(value, (list, tuple)):
                raise ValueError(f"expected {self._word()}, got {value!r}")
            try:
                out: Any = (int if kind == "int" else float)(str(value).strip())
            except ValueError:
                raise ValueError(f"expected {self._word()}, got {value!r}") from None
        elif kind == "ints":
            out = _numbers(value, int, "integers")
        elif kind == "floats":
            out = _numbers(value, float, "numbers")
        elif kind == "selector":
            if isinstance(value, int):
                out = value
            else:
                values = _numbers(value, int, "integers")
                if not values:
                    raise ValueError("the unit is empty")
                out = values[0] if len(values) == 1 else values
        else:  # text, tensor
            if value is None or isinstance(value, (bool, list, tuple)):
                raise ValueError(f"expected {self._word()}, got {value!r}")
            out = str(value)
        if self.choices is not None and kind == "text" and out not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {out!r}")
        return out

    def _word(self) -> str:
        words = {"int": "an integer", "float": "a number", "text": "a text value", "tensor": "a file name",
                 "ints": "integers", "floats": "numbers", "selector": "an index or C,H,W"}
        return words[self.kind] + (" or none" if self.optional else "")

    @property
    def flag(self) -> str:
        """The command-line flag: ``--name-with-dashes`` (``--no-name`` for switches on by default)."""
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.kind == "bool" and self.default is True else f"--{dashed}"


_SAME = object()


def setting(default: Any, help: str, *, flat: str, kind: str, optional: bool = False,
            choices: Optional[Sequence[str]] = None, flat_default: Any = _SAME) -> Any:
    """A dataclass field that is also a flat option (see the module docstring).

    ``flat_default``: the option's default when it differs from the field's, for a field of an
    optional part whose flat default means "off" (e.g. a weight of 0).
    """
    shown = default if flat_default is _SAME else flat_default
    meta = {"option": FlatOption(flat, help, shown, kind, optional, tuple(choices) if choices else None)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults of frozen settings")
    return dataclasses.field(default=default, metadata=meta)


def options_of(*classes: type) -> List[FlatOption]:
    """The flat options declared by the fields of ``classes`` (dataclasses), in field order; an
    option declared by several classes (the ``gamma`` of two losses) appears once and must agree."""
    out: Dict[str, FlatOption] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            opt = f.metadata.get("option")
            if opt is None:
                continue
            old = out.get(opt.name)
            if old is not None and (old.kind, old.optional) != (opt.kind, opt.optional):
                raise ValueError(f"option {opt.name!r} is declared twice with different kinds")
            out.setdefault(opt.name, opt)
    return list(out.values())


def flat_values(obj: Any, skip: Iterable[str] = ()) -> Dict[str, Any]:
    """``{flat name: value}`` of the fields of the dataclass instance ``obj`` that declare an option."""
    skip = set(skip)
    out = {}
    for f in dataclasses.fields(obj):
        opt = f.metadata.get("option")
        if opt is not None and f.name not in skip:
            out[opt.name] = getattr(obj, f.name)
    return out


def check_positive(name: str, value: Any, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive number (an int, not a bool, with ``integer``).

    Example:
        >>> check_positive("steps", 0, integer=True)
        Traceback (most recent call last):
        ...
        ValueError: steps must be a positive integer, got 0
    """
    ok = (isinstance(value, int) and not isinstance(value, bool)) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}")
