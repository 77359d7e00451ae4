"""natural_gap: separation on the manipulated toy, data forms, reuse of a render, errors."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from captum_slingshot.checks import RenderCache, natural_gap
from captum_slingshot.fv import count_hooks

from .conftest import LAYER, MANIPULATED

UNITS = list(range(10))


@pytest.fixture(scope="module")
def gap(reports):
    """The check's scores and details for all 10 logits, as the audit computed them."""
    man, clean = reports["manipulated"], reports["clean"]
    return ((man.scores["natural_gap"], man.details["natural_gap"]),
            (clean.scores["natural_gap"], clean.details["natural_gap"]))


def test_a_direct_call_gives_the_audits_score(gap, toy):
    # the audit reused strategy_divergence's GC render; rendering again gives the same starts
    direct = natural_gap(toy.manipulated, LAYER, [MANIPULATED, 5], param=toy.param, data=toy.data)
    torch.testing.assert_close(direct, gap[0][0][[MANIPULATED, 5]], atol=1e-3, rtol=0)


def test_separates_the_manipulated_logit(gap):
    (man, det), (clean, cdet) = gap
    others = torch.cat([man[1:], clean])
    # measured: 0.97 against at most 0.37 (other logits) / 0.25 (clean model)
    assert man[MANIPULATED] > others.max() + 0.3, (man, clean)
    # the feature-space part carries most of it (LPIPS: 0.15 against at most 0.10)
    feature_others = torch.cat([det["feature"][1:], cdet["feature"]])
    assert det["feature"][MANIPULATED] > feature_others.max() + 0.3


def test_details_are_the_units_top_natural_images(gap, toy):
    _, det = gap[0]
    assert det["top_images"].shape == (10, 16, 1, 14, 14) and det["fv_images"].shape == (10, 4, 1, 14, 14)
    vals = det["top_values"]
    assert torch.all(vals[:, :-1] >= vals[:, 1:])  # descending
    idx = det["top_indices"][MANIPULATED]
    torch.testing.assert_close(det["top_images"][MANIPULATED], toy.data[idx])
    with torch.no_grad():
        torch.testing.assert_close(toy.manipulated(toy.data[idx])[:, MANIPULATED], vals[MANIPULATED])
    assert torch.all(det["natural_max"] == vals[:, 0])


def test_data_forms_give_the_same_score_and_a_render_can_be_reused(toy):
    kw = dict(param=toy.param, k=8, n_starts=2, steps=30, lpips=False)
    x = toy.data[:200]
    base = natural_gap(toy.manipulated, LAYER, [0, 4], data=x, **kw)
    ds = TensorDataset(x, torch.zeros(200, dtype=torch.long))
    for data in (ds, DataLoader(ds, batch_size=64), [(xi, 0) for xi in x]):
        torch.testing.assert_close(natural_gap(toy.manipulated, LAYER, [0, 4], data=data, **kw), base)
    cache = RenderCache(toy.manipulated, LAYER, [0, 4], toy.param, seed=0)
    torch.testing.assert_close(natural_gap(toy.manipulated, LAYER, [0, 4], data=x, renders=cache, **kw), base)
    assert list(cache.results()) == ["gc"]
    single = natural_gap(toy.manipulated, LAYER, 4, data=x, **kw)
    assert single.dim() == 0 and single.item() == pytest.approx(base[1].item(), abs=1e-5)
    assert count_hooks(toy.manipulated) == 0


def test_errors(toy):
    kw = dict(param=toy.param, lpips=False, steps=2, n_starts=1)
    with pytest.raises(ValueError, match="pass data="):
        natural_gap(toy.clean, LAYER, 0, **kw)
    with pytest.raises(ValueError, match="data yields no inputs"):
        natural_gap(toy.clean, LAYER, 0, data=toy.data[:0], **kw)
    with pytest.raises(ValueError, match="data yields no inputs"):
        natural_gap(toy.clean, LAYER, 0, data=TensorDataset(toy.data[:0]), **kw)
    with pytest.raises(ValueError, match="k=20 is larger than the data \\(10 inputs\\)"):
        natural_gap(toy.clean, LAYER, 0, data=toy.data[:10], k=20, **kw)
    with pytest.raises(ValueError, match="k must be a positive int"):
        natural_gap(toy.clean, LAYER, 0, data=toy.data, k=0, **kw)
    with pytest.raises(ValueError, match="out of range"):
        natural_gap(toy.clean, LAYER, 12, data=toy.data, **kw)
    cache = RenderCache(toy.clean, LAYER, [0, 1, 2], toy.param)
    with pytest.raises(ValueError, match="RenderCache of another model, layer or list of units"):
        natural_gap(toy.clean, LAYER, [0, 1], data=toy.data, renders=cache, **kw)
