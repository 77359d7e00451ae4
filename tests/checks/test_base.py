"""The check registry: one function + one decorator line adds a check the audit can run; checks declare
what they need (data, shared renders, cost) and the audit reads only that."""

import pytest
import torch
from torch import nn

from captum_slingshot.checks import (
    CHECKS,
    audit_layer,
    available_checks,
    get_check,
    natural_gap,
    register_check,
    slingshot_field,
    activation_excess,
    strategy_divergence,
    unregister_check,
)
from captum_slingshot.fv import PixelParam


def test_builtin_checks_are_registered_with_direction_and_description():
    checks = available_checks()
    assert list(checks) == ["activation_excess", "natural_gap", "processing_similarity", "slingshot_field",
                            "strategy_divergence"]
    for name, fn in (("natural_gap", natural_gap), ("slingshot_field", slingshot_field),
                     ("strategy_divergence", strategy_divergence), ("activation_excess", activation_excess)):
        spec = get_check(name)
        assert spec.function is fn and spec.higher_is_more_suspicious is True and spec.name == name
        assert checks[name] == spec.description and spec.description and "\n" not in spec.description
        assert CHECKS[name] is spec
    needs = {n: (CHECKS[n].needs_data, CHECKS[n].uses_renders, CHECKS[n].cost) for n in checks}
    assert needs == {"activation_excess": (True, True, "renders"), "natural_gap": (True, True, "renders"),
                     "processing_similarity": (True, True, "renders"),
                     "slingshot_field": (False, False, "gradients"), "strategy_divergence": (False, True, "renders")}
    assert get_check("natural_gap").parameters() >= {"k", "n_starts", "strategy", "lpips"}
    assert "renders" not in get_check("natural_gap").parameters()  # the audit passes it, not the user


def test_unknown_check_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown check 'nope'; available: activation_excess, natural_gap"):
        get_check("nope")
    with pytest.raises(ValueError, match="already registered"):
        @register_check("slingshot_field")
        def other(model, layer, neuron_selector, *, param, **kw):
            return None
    with pytest.raises(ValueError, match="non-empty string name"):
        register_check("")
    with pytest.raises(ValueError, match="min_scale must be positive"):
        register_check("x", min_scale=0)
    with pytest.raises(ValueError, match="cost must be one of"):
        register_check("x", cost="cheap")


def test_a_new_check_is_one_function_and_one_decorator_and_low_scores_can_be_suspicious():
    # a check where LOW is suspicious: the audit must flip its z-scores
    @register_check("bias_check", higher_is_more_suspicious=False, description="small bias", min_scale=0.1)
    def bias_check(model, layer, neuron_selector, *, param, data=None, max_examples_per_batch=None,
                   seed=0, offset=0.0, return_details=False):
        scores = layer.bias.detach()[neuron_selector] + offset  # the audit passes the module
        return (scores, {"raw": scores}) if return_details else scores

    try:
        assert "bias_check" in CHECKS and get_check("bias_check").function is bias_check
        model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8))
        with torch.no_grad():
            model[1].bias.copy_(torch.tensor([1.0, 1.1, 0.9, 1.0, 1.05, -3.0, 0.95, 1.0]))
        rep = audit_layer(model, "1", param=PixelParam((1, 2, 2)), checks=("bias_check",), offset=0.5,
                          progress=False)
        assert rep.flagged == [5]
        assert rep.table[5]["bias_check"] == pytest.approx(-2.5)
        assert rep.z["bias_check"][5] > 3.5 and rep.details["bias_check"]["raw"].shape == (8,)
    finally:
        unregister_check("bias_check")
    assert "bias_check" not in available_checks()
