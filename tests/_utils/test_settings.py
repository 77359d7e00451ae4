"""_utils.settings: flat options convert text and YAML values the same way, with clear errors."""

from dataclasses import dataclass

import pytest

from captum_slingshot._utils.settings import FlatOption, flat_values, options_of, setting


@pytest.mark.parametrize("kind,text,value", [
    ("int", "7", 7), ("float", "2e-3", 0.002), ("float", 3, 3.0), ("bool", "true", True), ("bool", False, False),
    ("text", "gc", "gc"), ("ints", "1,2, 3", (1, 2, 3)), ("ints", [4, 5], (4, 5)), ("floats", "0.5", (0.5,)),
    ("selector", "3", 3), ("selector", "0,5,5", (0, 5, 5)), ("selector", 2, 2), ("tensor", "z.pt", "z.pt"),
])
def test_values_convert(kind, text, value):
    assert FlatOption("x", "", None, kind).convert(text) == value


@pytest.mark.parametrize("option,text,message", [
    (FlatOption("steps", "", 1, "int"), "many", "expected an integer, got 'many'"),
    (FlatOption("gamma", "", 1.0, "float"), True, "expected a number, got True"),
    (FlatOption("gamma", "", 1.0, "float"), [1, 2], "expected a number"),
    (FlatOption("tunnel", "", True, "bool"), "maybe", "expected true or false"),
    (FlatOption("loss", "", "a", "text", choices=("a", "b")), "c", "expected one of a, b, got 'c'"),
    (FlatOption("units", "", None, "ints"), "1,x", "expected comma-separated integers"),
    (FlatOption("unit", "", 0, "selector"), "", "the unit is empty"),
    (FlatOption("steps", "", 1, "int"), None, "expected an integer"),
])
def test_bad_values_say_what_was_expected(option, text, message):
    with pytest.raises(ValueError, match=message):
        option.convert(text)


def test_optional_options_take_none_and_flags_follow_the_default():
    opt = FlatOption("clip_grad_norm", "", 1.0, "float", optional=True)
    assert opt.convert("none") is None and opt.convert("null") is None and opt.convert(None) is None
    assert opt.flag == "--clip-grad-norm"
    assert FlatOption("tunnel", "", True, "bool").flag == "--no-tunnel"
    assert FlatOption("adam_normalized", "", False, "bool").flag == "--adam-normalized"
    with pytest.raises(ValueError, match="kind must be one of"):
        FlatOption("x", "", None, "complex")


def test_settings_dataclasses_declare_their_options():
    @dataclass(frozen=True)
    class Part:
        weight: float = setting(1.0, "a weight (0: off)", flat="part_weight", kind="float", flat_default=0.0)
        name: str = setting("a", "a name", flat="part_name", kind="text", choices=("a", "b"))
        other: int = 3  # not an option

    opts = options_of(Part)
    assert [(o.name, o.default) for o in opts] == [("part_weight", 0.0), ("part_name", "a")]
    assert Part().weight == 1.0  # the field's own default; the flat default means "off"
    assert flat_values(Part(weight=2.0)) == {"part_weight": 2.0, "part_name": "a"}

    @dataclass(frozen=True)
    class Clash:
        part_name: int = setting(1, "", flat="part_name", kind="int")

    with pytest.raises(ValueError, match="declared twice with different kinds"):
        options_of(Part, Clash)
    with pytest.raises(TypeError, match="use tuples"):
        setting([1], "", flat="x", kind="ints")
