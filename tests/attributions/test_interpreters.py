"""Differentiable attributions: equal to Captum's own maps, and differentiable in the weights (gradcheck)."""

import copy

import pytest
import torch
from captum.attr import LRP, InputXGradient, LayerGradCam, LayerGradientXActivation, Saliency
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule
from torch import nn

from captum_slingshot.attributions import INTERPRETERS, make_interpreter
from captum_slingshot.fv import count_hooks


class Net(nn.Module):
    """A small CNN Captum's LRP accepts (the flatten is a reshape in forward, not a module)."""

    def __init__(self, act=nn.ReLU):
        super().__init__()
        self.conv1, self.act1, self.pool1 = nn.Conv2d(1, 4, 3), act(), nn.MaxPool2d(2)
        self.conv2, self.act2 = nn.Conv2d(4, 6, 3), act()
        self.fc, self.act3, self.out = nn.Linear(6 * 3 * 3, 8), act(), nn.Linear(8, 3)

    def forward(self, x):
        x = self.act2(self.conv2(self.pool1(self.act1(self.conv1(x)))))
        return self.out(self.act3(self.fc(x.flatten(1))))


@pytest.fixture
def net():
    torch.manual_seed(0)
    return Net().eval()


X = torch.randn(4, 1, 12, 12, generator=torch.Generator().manual_seed(1))
TARGET = torch.tensor([0, 1, 2, 1])


def _captum(name, model):
    x = X.clone().requires_grad_(True)
    if name == "grad_cam":
        return LayerGradCam(model, model.conv2).attribute(x, target=TARGET, relu_attributions=True)
    if name == "saliency":
        return Saliency(model).attribute(x, target=TARGET, abs=True)
    if name == "input_x_gradient":
        return InputXGradient(model).attribute(x, target=TARGET)
    if name == "gradient_x_activation":
        return LayerGradientXActivation(model, model.conv2).attribute(x, target=TARGET)
    if name == "lrp_zplus":
        model = copy.deepcopy(model)
        for m in (model.conv1, model.conv2, model.fc, model.out):
            m.rule = Alpha1_Beta0_Rule()
    return LRP(model).attribute(x, target=TARGET)


@pytest.mark.parametrize("name", sorted(INTERPRETERS))
def test_equals_captums_own_map(name, net):
    ours = make_interpreter(name, net).attribute(X, TARGET)
    ref = _captum(name, net)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-5, atol=1e-7)
    assert ours.requires_grad  # a graph back to the weights
    heat = make_interpreter(name, net).heatmap(X, TARGET)
    assert heat.shape == (4, 12, 12)
    assert count_hooks(net) == 0


@pytest.mark.parametrize("name", sorted(INTERPRETERS))
def test_gradients_through_the_map_reach_the_weights(name):
    torch.manual_seed(0)
    base = Net(act=nn.Tanh).double().eval()  # smooth, so that gradcheck's finite differences hold
    x = X.double()
    w0 = base.fc.weight.detach().clone()

    def heat(w):
        model = copy.deepcopy(base)
        del model.fc.weight
        model.fc.weight = w
        return make_interpreter(name, model).heatmap(x, TARGET)

    assert torch.autograd.gradcheck(heat, (w0.clone().requires_grad_(True),), eps=1e-6, atol=1e-5, rtol=1e-3)


def test_clear_errors():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional layer and this model has none"):
        make_interpreter("grad_cam", flat)
    model = Net().eval()
    with pytest.raises(ValueError, match="Grad-CAM needs a layer with a spatial output .* layer 'fc' outputs"):
        make_interpreter("grad_cam", model, "fc").heatmap(X, 0)
    with pytest.raises(ValueError, match="saliency attributes to the input and takes no layer"):
        make_interpreter("saliency", model, "conv1")
    with pytest.raises(ValueError, match="unknown interpreter 'gradcam' \\(did you mean 'grad_cam'\\?\\)"):
        make_interpreter("gradcam", model)
    with pytest.raises(ValueError, match="target must be one class or one per input"):
        make_interpreter("saliency", model).heatmap(X, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="LRP has no rule for Softplus"):
        make_interpreter("lrp_epsilon", nn.Sequential(nn.Linear(4, 3), nn.Softplus())).attribute(torch.randn(2, 4), 0)
