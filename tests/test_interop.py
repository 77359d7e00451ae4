"""Captum interop: the tuple conventions of captum.metrics, NeuronGradient as our field."""

import pytest
import torch
from captum.metrics import sensitivity_max
from torch import nn

from captum_slingshot.interop import captum_explanation, neuron_gradient


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).eval()


def test_plain_tensor_function_breaks_sensitivity_max_and_the_wrapper_fixes_it():
    model = _model()
    x = torch.randn(4, 6)

    def grad_of_unit(inp):  # written for one tensor, as most user code is
        inp = inp.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(inp)[:, 1].sum(), inp)
        return g

    with pytest.raises((TypeError, RuntimeError, AttributeError)):
        sensitivity_max(grad_of_unit, x, n_perturb_samples=3)  # gets a tuple, returns a tensor
    torch.manual_seed(1)
    s = sensitivity_max(captum_explanation(grad_of_unit), x, n_perturb_samples=3)
    assert s.shape == (4,) and torch.isfinite(s).all() and (s > 0).all()


def test_sensitivity_is_zero_for_a_constant_explanation():
    # a linear model's input gradient does not change under perturbation: sensitivity 0
    lin = nn.Linear(6, 3)
    expl = captum_explanation(lambda inp: neuron_gradient(lin, lin, 2, inp))
    assert torch.allclose(sensitivity_max(expl, torch.randn(5, 6), n_perturb_samples=4), torch.zeros(5))


def test_outputs_are_tuples_details_are_dropped_and_bad_shapes_refused():
    f = captum_explanation(lambda x: (x * 2, {"fitted": 1.0}))
    (out,) = f((torch.ones(3, 2),))
    assert torch.equal(out, torch.full((3, 2), 2.0))
    pair = captum_explanation(lambda xs: (xs[0], xs[1]))((torch.ones(2, 1), torch.zeros(2, 4)))
    assert [t.shape for t in pair] == [(2, 1), (2, 4)]
    with pytest.raises(ValueError, match="one explanation per input, batch first"):
        captum_explanation(lambda x: x.sum())((torch.ones(3, 2),))
    with pytest.raises(ValueError, match="returned \\(5,\\) for a batch of 3"):
        captum_explanation(lambda x: torch.zeros(5))((torch.ones(3, 2),))


def test_neuron_gradient_is_the_units_input_gradient():
    model = _model()
    x = torch.randn(7, 6, requires_grad=True)
    (expected,) = torch.autograd.grad(model(x)[:, 2].sum(), x)
    torch.testing.assert_close(neuron_gradient(model, "2", 2, x.detach()), expected)
