"""activation_excess: separation on the manipulated toy, renders from a shared cache, errors."""

import pytest
import torch

from captum_slingshot.checks import RenderCache, activation_excess, audit_layer
from captum_slingshot.fv import count_hooks, get_strategy, render

from .conftest import LAYER, MANIPULATED

UNITS = list(range(10))


def test_separates_the_manipulated_logit(toy):
    man, det = activation_excess(toy.manipulated, LAYER, UNITS, param=toy.param, data=toy.data,
                                 return_details=True)
    clean = activation_excess(toy.clean, LAYER, UNITS, param=toy.param, data=toy.data)
    others = torch.cat([man[:MANIPULATED], man[MANIPULATED + 1:]])
    assert man[MANIPULATED] > others.max() and man[MANIPULATED] > clean.max()
    # the score is what its formula says, from the returned parts: per strategy, then the max
    assert det["labels"] == ["gc", "tr", "adam"] and det["fv_activation"].shape == (10, 3)
    rng = (det["natural_max"] - det["natural_median"])[:, None]
    per = (det["fv_activation"] - det["natural_max"][:, None]) / rng
    torch.testing.assert_close(det["per_strategy"], per)
    torch.testing.assert_close(man, per.max(1).values)
    assert det["strongest"][MANIPULATED] in det["labels"]
    assert count_hooks(toy.manipulated) == 0


def test_renders_come_from_a_shared_cache(toy):
    units = [MANIPULATED, 3]
    cache = RenderCache(toy.manipulated, LAYER, units, toy.param, seed=5)
    a = activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data, renders=cache,
                          n_starts=3, strategies="gc")
    assert list(cache.results()) == ["gc"] and cache.results()["gc"].activations.shape == (2, 3)
    b = activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data,
                          n_starts=3, seed=5, strategies="gc")
    torch.testing.assert_close(a, b)  # the cache renders what the check would have
    with pytest.raises(ValueError, match="RenderCache of another model, layer or list of units"):
        activation_excess(toy.manipulated, LAYER, [MANIPULATED], param=toy.param, data=toy.data, renders=cache)


def test_the_strongest_strategy_decides(toy):
    """A unit whose TR render climbs far beyond the natural range is caught even if GC's does not."""
    units = [MANIPULATED, 3]
    cache = RenderCache(toy.manipulated, LAYER, units, toy.param, seed=1)
    kw = dict(param=toy.param, data=toy.data, renders=cache, n_starts=2, steps=20)
    base = activation_excess(toy.manipulated, LAYER, units, strategies=("gc",), **kw)
    cache.get(get_strategy("tr", steps=20), n_starts=2).activations[1] = 1e4  # unit 3's TR FV "reaches" it
    s, det = activation_excess(toy.manipulated, LAYER, units, strategies=("gc", "tr"), return_details=True, **kw)
    assert det["strongest"][1] == "tr" and s[1] > 100 * max(1.0, float(base[1].abs()))
    assert s[0] >= base[0]  # the max over strategies never lowers a score
    with pytest.raises(ValueError, match="strategies is empty"):
        activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data, strategies=())


def test_audit_runs_it_by_name(toy):
    rep = audit_layer(toy.manipulated, LAYER, param=toy.param, data=toy.data,
                      checks=("strategy_divergence", "activation_excess"), progress=False)
    assert rep.z["activation_excess"].argmax().item() == MANIPULATED


def test_the_default_audit_renders_each_strategy_once(toy, monkeypatch):
    """activation_excess and strategy_divergence share the audit's render cache: GC, TR and Adam once."""
    from captum_slingshot.checks import renders

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[4].name)
        return render(*args, **kwargs)

    monkeypatch.setattr(renders, "render", counting)
    rep = audit_layer(toy.manipulated, LAYER, param=toy.param, data=toy.data, n_starts=2, steps=10, progress=False)
    assert rep.checks == ["activation_excess", "strategy_divergence"]
    assert calls == ["gc", "tr", "adam", "gc"]  # the last in lucent's Fourier parametrization
    assert list(rep.renders) == ["gc", "tr", "adam", "gc@lucent_fourier"]


def test_errors(toy):
    with pytest.raises(ValueError, match="pass data="):
        activation_excess(toy.manipulated, LAYER, 0, param=toy.param)
    with pytest.raises(ValueError, match="out of range"):
        activation_excess(toy.manipulated, LAYER, 12, param=toy.param, data=toy.data)
