import pytest
import torch
from torch import nn

from captum_slingshot.fv.units import (
    Direction,
    LayerCapture,
    LayerNotReachedError,
    capture_layer,
    check_selector,
    count_hooks,
    resolve_layer,
    select_neuron,
    unit_activation,
)


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.unused = nn.Linear(3, 3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


class _Exploding(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_resolve_layer_by_name_and_module(gray_cnn):
    assert resolve_layer(gray_cnn, "3") is gray_cnn[3]
    assert resolve_layer(gray_cnn, gray_cnn[7]) is gray_cnn[7]


def test_unknown_layer_name_suggests(gray_cnn):
    with pytest.raises(ValueError, match="unknown layer '33'.*Did you mean"):
        resolve_layer(gray_cnn, "33")
    with pytest.raises(ValueError, match="not a submodule"):
        resolve_layer(gray_cnn, nn.Linear(2, 2))


def test_selectors_follow_captum_semantics():
    out = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    torch.testing.assert_close(select_neuron(out, 1), out[:, 1].mean((1, 2)))
    torch.testing.assert_close(select_neuron(out, (2, 1, 3)), out[:, 2, 1, 3])
    v = torch.tensor([1.0, 0.0, -2.0])
    torch.testing.assert_close(select_neuron(out, Direction(v)), out.mean((2, 3)) @ v)
    torch.testing.assert_close(select_neuron(out, lambda h: h[:, 0, 0, 0]), out[:, 0, 0, 0])
    logits = torch.randn(5, 10)
    torch.testing.assert_close(select_neuron(logits, 7), logits[:, 7])


def test_bad_selectors():
    with pytest.raises(ValueError, match="out of range.*index 10 on dimension 0 of size 10"):
        check_selector(10, (10,))
    with pytest.raises(ValueError, match="has 3 indices"):
        check_selector((1, 2, 3), (10,))
    with pytest.raises(TypeError, match="neuron_selector must be"):
        check_selector(1.5, (10,))
    with pytest.raises(ValueError, match="one value per example"):
        select_neuron(torch.randn(4, 3), lambda h: h)
    with pytest.raises(ValueError, match="direction has 2 entries"):
        select_neuron(torch.randn(4, 3), Direction([1.0, 2.0]))


def test_hooks_removed_after_success_and_failure(gray_cnn):
    x = torch.randn(2, 1, 28, 28)
    assert unit_activation(gray_cnn, "7", 3, x).shape == (2,)
    assert count_hooks(gray_cnn) == 0
    bad = nn.Sequential(nn.Conv2d(1, 2, 3), _Exploding())
    with pytest.raises(RuntimeError, match="boom"):
        capture_layer(bad, "1", x, stop=False)
    with pytest.raises(RuntimeError, match="boom"):
        with LayerCapture(bad, "1", stop=False) as cap:
            assert count_hooks(bad) == 1
            cap.run(x)
    assert count_hooks(bad) == 0


def test_stop_skips_the_rest_of_the_network():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), _Exploding())
    out = capture_layer(model, "0", torch.randn(1, 1, 8, 8), stop=True)
    assert out.shape == (1, 2, 6, 6)
    assert count_hooks(model) == 0


def test_layer_never_reached():
    model = _Branchy()
    with pytest.raises(LayerNotReachedError, match="never reached layer Linear \\('unused'\\)"):
        unit_activation(model, "unused", 0, torch.randn(1, 1, 5, 5))
    assert count_hooks(model) == 0


def test_unit_activation_out_of_range(gray_cnn):
    with pytest.raises(ValueError, match="out of range for layer '7'"):
        unit_activation(gray_cnn, "7", 10, torch.randn(1, 1, 28, 28))


# -- transformers: Token units over (B, tokens, D) --------------------------------------------------


def _tiny_vit():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                                hidden_dim=8, mlp_dim=16, num_classes=3).eval()


def test_token_selects_one_token_feature_or_direction():
    from captum_slingshot.fv import Token

    h = torch.randn(2, 5, 4)
    assert torch.equal(select_neuron(h, Token(2)), h[:, 0, 2])
    assert torch.equal(select_neuron(h, Token(2, token=3)), h[:, 3, 2])
    assert torch.allclose(select_neuron(h, Token(2, token=None)), h[:, :, 2].mean(1))
    v = torch.tensor([1.0, 0.0, -2.0, 0.5])
    assert torch.allclose(select_neuron(h, Token(Direction(v))), h[:, 0] @ v)
    assert Token(v) == Token(Direction(v)) and Token(1) != Token(1, token=2) and len({Token(1), Token(1)}) == 1


def test_token_errors_are_clear():
    from captum_slingshot.fv import Token

    with pytest.raises(ValueError, match=r"needs a layer with outputs \(B, tokens, D\)"):
        check_selector(Token(0), (4, 6, 6), "layer 'conv'")
    with pytest.raises(ValueError, match="it has 5 tokens"):
        check_selector(Token(0, token=7), (5, 4))
    with pytest.raises(ValueError, match="feature 4 of D = 4"):
        check_selector(Token(4), (5, 4))
    with pytest.raises(ValueError, match="direction of 3 entries but the layer has D = 4"):
        check_selector(Token([1.0, 2.0, 3.0]), (5, 4))
    with pytest.raises(TypeError, match="token index or None"):
        Token(0, token="cls")
    with pytest.raises(ValueError, match=r"use Token\(Direction"):  # a channel direction on tokens points to Token
        Direction(torch.ones(4))(torch.randn(2, 5, 4))


def test_layer_units_of_a_transformer_are_the_features_of_the_cls_token():
    from captum_slingshot.fv import PixelParam, Token, has_attention, layer_units

    model = _tiny_vit()
    param = PixelParam((3, 16, 16))
    assert has_attention(model) and not has_attention(nn.Sequential(nn.Conv2d(3, 4, 3)))
    assert layer_units(model, "encoder.layers.encoder_layer_0", param) == [Token(d) for d in range(8)]
    assert layer_units(model, "encoder.layers.encoder_layer_0", param, token=None)[0] == Token(0, token=None)
    assert layer_units(model, "heads.head", param) == [0, 1, 2]  # logits stay ints
    x = torch.randn(2, 3, 16, 16)
    assert unit_activation(model, "encoder.layers.encoder_layer_0", Token(3), x).shape == (2,)
