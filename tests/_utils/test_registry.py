"""_utils.registry: one registry shape; duplicates raise, re-imports do not, unknown names are explained."""

import pytest

from captum_slingshot._utils.registry import Registry


def test_register_lookup_describe_and_unregister():
    reg = Registry("widget")

    @reg.register("round")
    def round_widget():
        """A round widget.

        More text that is not the description."""

    reg.register("square", object(), description="  a   square\nwidget ")
    assert list(reg) == ["round", "square"] and len(reg) == 2 and "round" in reg
    assert reg.describe() == {"round": "A round widget.", "square": "a square widget"}
    assert reg.get("round") is round_widget and reg.get("nope", None) is None
    reg.unregister("square")
    reg.unregister("square")  # twice is fine
    assert list(reg) == ["round"]


def test_duplicates_raise_but_the_same_object_again_does_not():
    reg = Registry("widget")

    def a():
        pass

    reg.register("a", a)
    reg.register("a", a)  # a module imported twice registers the same function again

    def same_name():
        pass

    same_name.__qualname__ = a.__qualname__  # a re-imported module: a new function object, same name
    reg.register("a", same_name)
    with pytest.raises(ValueError, match="a widget named 'a' is already registered"):
        reg.register("a", lambda: None)
    reg.register("n", 3)
    reg.register("n", 3)  # equal values are the same registration
    with pytest.raises(ValueError, match="already registered"):
        reg.register("n", 4)
    with pytest.raises(ValueError, match="non-empty string name"):
        reg.register("", 1)


def test_unknown_names_suggest_the_closest():
    reg = Registry("check")
    reg.register("natural_gap", 1)
    reg.register("slingshot_field", 2)
    with pytest.raises(ValueError, match="unknown check 'natural_gpa' \\(did you mean 'natural_gap'\\?\\); "
                                         "available: natural_gap, slingshot_field"):
        reg.get("natural_gpa")
    with pytest.raises(KeyError):
        reg["natural_gpa"]  # the Mapping interface keeps KeyError
