"""The attribution checks that compare with the model before a fine-tune (``explanation_drift``, ``class_swap``):
per-input scores on cases whose answer is known, their errors, and the audit's ``original=``."""

import pytest
import torch
from torch import nn

from captum_slingshot.checks.attribution import (
    attribution_scores, audit_attributions, class_swap, explanation_drift, mosaic_classes,
)


def _halves(inputs, target):
    """A map per class: class c lights the c-th vertical third of the image, plus a little of the input
    (so that no map is constant and ranks have no ties)."""
    t = torch.as_tensor(target).reshape(-1).expand(inputs.shape[0])
    w = inputs.shape[-1]
    m = torch.zeros(inputs.shape[0], inputs.shape[-2], w)
    for k, c in enumerate(t.tolist()):
        m[k, :, c * w // 3:(c + 1) * w // 3] = 1.0
    return m + 0.01 * inputs[:, 0]


def test_explanation_drift_is_zero_for_the_same_maps_and_two_for_reversed_ones():
    x = torch.rand(5, 1, 6, 6)
    same = lambda inputs, target=None: inputs  # noqa: E731
    assert torch.allclose(explanation_drift(same, x, original_func=same), torch.zeros(5), atol=1e-6)
    assert torch.allclose(explanation_drift(lambda inputs, target=None: -inputs, x, original_func=same),
                          torch.full((5,), 2.0), atol=1e-6)
    moved = explanation_drift(lambda inputs, target=None: inputs.roll(3, -1), x, original_func=same)
    assert bool(((moved > 0.3) & (moved < 1.7)).all())  # another ranking, not a reversed one
    with pytest.raises(TypeError, match="original_func must be its explanation function"):
        explanation_drift(same, x, original_func=None)


def test_class_swap_finds_the_swapped_pair_among_three_classes():
    torch.manual_seed(0)
    x, t = torch.rand(9, 1, 12, 12), torch.tensor([0, 1, 2] * 3)
    honest = class_swap(_halves, x, original_func=_halves, target=t)
    assert bool((honest < 0).all())  # explains each class as the original did: rho with its own map is highest

    def swaps_1_and_2(inputs, target=None):
        c = torch.as_tensor(target).reshape(-1).expand(inputs.shape[0])
        return _halves(inputs, torch.where(c == 1, 2, torch.where(c == 2, 1, c)))

    s = class_swap(swaps_1_and_2, x, original_func=_halves, target=t)
    assert bool((s[t != 0] > 0.5).all()) and bool((s[t == 0] < 0).all())
    with pytest.raises(ValueError, match="at least two classes"):
        class_swap(_halves, x, original_func=_halves, target=torch.zeros(9, dtype=torch.long))
    with pytest.raises(TypeError, match="original_func must be its explanation function"):
        class_swap(_halves, x, original_func="original", target=t)


def test_mosaic_classes_follow_the_mosaics_layout():
    own, partner = mosaic_classes(torch.rand(4, 1, 8, 8), torch.tensor([2, 0, 2, 1]))
    assert own.tolist() == [2, 2, 0, 0, 2, 2, 1, 1] and partner.tolist() == [0, 1, 1, 2, 0, 1, 0, 2]


def _net(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def test_the_audit_runs_the_checks_against_the_original_when_it_is_given_one():
    original, x, t = _net(0), torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    original.train()
    same = audit_attributions(original, x, reference=original, target=t, original=original)
    assert original.training  # left in the mode it was found in
    assert {"explanation_drift", "class_swap"} <= set(same.checks) and same.info["skipped"] == {}
    assert same.info["original"] == "Sequential" and float(same.combined.abs().max()) < 1e-5
    drift = same.details["explanation_drift"]["per_input"]
    assert drift.shape == (3, 6) and float(drift.abs().max()) < 1e-5  # the model against itself: no drift
    other = audit_attributions(_net(1), x, reference=original, target=t, original=original)
    assert float(other.z["explanation_drift"].min()) > 3.5 and other.flagged  # another model is far from it
    with pytest.raises(ValueError, match="compare with the model before the fine-tune: pass original="):
        attribution_scores(original, x, t, checks=("explanation_drift",))
    with pytest.raises(TypeError, match="original must be the model before the fine-tune"):
        attribution_scores(original, x, t, original="model.pt")


def test_the_audit_asks_the_original_for_each_map_once_for_both_models(monkeypatch):
    from captum_slingshot.attributions import interpreters as interp

    original, x, t = _net(0), torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    calls = []
    real = interp.make_interpreter

    def counting(name, model, layer=None):
        made = real(name, model, layer)
        if model is original:
            heat = made.heatmap
            made.heatmap = lambda inputs, target=None: calls.append(inputs.shape[0]) or heat(inputs, target)
        return made

    monkeypatch.setattr("captum_slingshot.checks.attribution.audit.make_interpreter", counting)
    rep = audit_attributions(_net(1), x, reference=_net(2), target=t, original=original, interpreters=("saliency",),
                             checks=("explanation_drift", "class_swap"))
    # the inputs once, and the mosaics for their own and for their partners' classes once each: not again for the
    # reference, though class_swap builds its mosaics anew
    assert sorted(calls) == [6, 12, 12] and rep.z["class_swap"].shape == (1,)
