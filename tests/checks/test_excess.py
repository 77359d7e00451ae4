"""activation_excess: separation on the manipulated toy, reuse of a render, errors."""

import pytest
import torch

from captum_slingshot.checks import activation_excess, audit_layer
from captum_slingshot.fv import count_hooks, render

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


def test_a_given_render_is_used(toy):
    fv = render(toy.manipulated, LAYER, [MANIPULATED, 3], toy.param, "gc", n_starts=3, seed=5)
    a = activation_excess(toy.manipulated, LAYER, [MANIPULATED, 3], param=toy.param, data=toy.data, fv=fv,
                          strategies="gc")
    b = activation_excess(toy.manipulated, LAYER, [MANIPULATED, 3], param=toy.param, data=toy.data,
                          n_starts=3, seed=5, strategies="gc")
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="fv must be a render of these 1 units"):
        activation_excess(toy.manipulated, LAYER, [MANIPULATED], param=toy.param, data=toy.data, fv=fv)


def test_the_strongest_strategy_decides(toy):
    """A unit whose TR render climbs far beyond the natural range is caught even if GC's does not."""
    units = [MANIPULATED, 3]
    fvs = {s: render(toy.manipulated, LAYER, units, toy.param, s, n_starts=2, seed=1, steps=20) for s in ("gc", "tr")}
    base = activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data, strategies=("gc",),
                             fv=fvs["gc"])
    fvs["tr"].activations[1] = 1e4  # unit 3's TR FV "reaches" an activation no natural input has
    s, det = activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data,
                               strategies=("gc", "tr"), steps=20, fv=fvs, return_details=True)
    assert det["strongest"][1] == "tr" and s[1] > 100 * max(1.0, float(base[1].abs()))
    assert s[0] >= base[0]  # the max over strategies never lowers a score
    with pytest.raises(ValueError, match="strategies is empty"):
        activation_excess(toy.manipulated, LAYER, units, param=toy.param, data=toy.data, strategies=())


def test_audit_runs_it_by_name(toy):
    rep = audit_layer(toy.manipulated, LAYER, param=toy.param, data=toy.data,
                      checks=("strategy_divergence", "activation_excess"), progress=False)
    assert rep.z["activation_excess"].argmax().item() == MANIPULATED


def test_the_default_audit_renders_each_strategy_once(toy, monkeypatch):
    """activation_excess comes first in DEFAULT_CHECKS, yet reuses strategy_divergence's renders."""
    from captum_slingshot.checks import _util, divergence

    calls = []

    def counting(real):
        def wrapped(*args, **kwargs):
            calls.append(args[4] if len(args) > 4 else kwargs.get("strategy"))
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(divergence, "render", counting(divergence.render))
    monkeypatch.setattr(_util, "render", counting(_util.render))
    rep = audit_layer(toy.manipulated, LAYER, param=toy.param, data=toy.data, n_starts=2, steps=10, progress=False)
    assert rep.checks == ["activation_excess", "strategy_divergence"]
    assert len(calls) == 4  # gc, tr, adam, gc@lucent_fourier: once each


def test_errors(toy):
    with pytest.raises(ValueError, match="pass data="):
        activation_excess(toy.manipulated, LAYER, 0, param=toy.param)
    with pytest.raises(ValueError, match="out of range"):
        activation_excess(toy.manipulated, LAYER, 12, param=toy.param, data=toy.data)
