import pytest

from captum_slingshot.fv.strategies import STRATEGIES, AMStrategy, available_strategies, get_strategy, register_strategy
from captum_slingshot.fv.transforms import Resize


def test_named_strategies_match_the_paper_and_lucent():
    assert set(STRATEGIES) >= {"none", "gc", "tr", "adam", "adam_gc_tr", "lucent"}
    gc = get_strategy("gc")
    assert (gc.optimizer, gc.lr, gc.steps, gc.clip_grad_norm, gc.transforms) == ("sgd", 0.1, 200, 1.0, None)
    lu = get_strategy("lucent")
    assert (lu.optimizer, lu.lr, lu.steps, lu.transforms) == ("adam", 0.05, 512, "lucent_standard")


def test_overrides_make_copies():
    s = get_strategy("gc", lr=1.0, steps=100)
    assert (s.lr, s.steps) == (1.0, 100)
    assert get_strategy("gc").lr == 0.1


def test_lucent_resize_rule():
    small = get_strategy("lucent").build_transforms((64, 64))
    assert isinstance(small.transforms[-1], Resize) and small.output_size((64, 64)) == (224, 224)
    big = get_strategy("lucent").build_transforms((224, 224))
    assert not isinstance(big.transforms[-1], Resize)
    assert get_strategy("gc").build_transforms((28, 28)) is None
    assert get_strategy("gc", resize_to=56).build_transforms((28, 28)).output_size((28, 28)) == (56, 56)


def test_registry_and_validation():
    register_strategy(AMStrategy("my_sgd", lr=0.5, steps=3))
    assert get_strategy("my_sgd").lr == 0.5
    register_strategy(AMStrategy("my_sgd", lr=0.5, steps=3))  # the same one again: fine
    with pytest.raises(ValueError, match="already registered"):
        register_strategy(AMStrategy("my_sgd", lr=0.1))
    STRATEGIES.unregister("my_sgd")
    assert "my_sgd" not in STRATEGIES and "gc" in available_strategies()
    with pytest.raises(ValueError, match="unknown AM strategy"):
        get_strategy("lbfgs")
    with pytest.raises(ValueError, match="optimizer must be"):
        AMStrategy("x", optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr must be positive"):
        get_strategy("gc", lr=0)
    with pytest.raises(ValueError, match="clip_grad_norm"):
        get_strategy("gc", clip_grad_norm=-1.0)
    with pytest.raises(ValueError, match="unknown transform set"):
        get_strategy("tr", transforms="nope")
