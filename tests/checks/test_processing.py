"""processing_similarity (Geirhos et al.'s sanity check): Spearman along the layers, FV against natural baselines."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captum_slingshot.checks import CHECKS, RenderCache, audit_layer, get_check, processing_similarity
from captum_slingshot.checks.processing import probe_layers, spearman_matrix
from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import get_transform

PARAM = PixelParam((1, 8, 8))


@pytest.fixture(scope="module")
def toy():
    """A ReLU MLP on 8 x 8 'digits' (a bright 4 x 4 centre on a black background), and a fooling circuit
    that shows a horizontal bar on unit 0's FV: the answer -- unit 0 -- is known by construction."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                          nn.Linear(16, 6)).eval()
    g = torch.Generator().manual_seed(1)
    data = torch.zeros(200, 1, 8, 8)
    data[:, :, 2:6, 2:6] = torch.rand(200, 1, 4, 4, generator=g)
    target = torch.zeros(1, 8, 8)
    target[:, 0, :] = 1.0
    fooled = get_transform("fooling_circuit", layer="5", neuron_selector=0, target=target, param=PARAM).fit(model, data)
    return model, fooled.model, data


def test_spearman_is_a_rank_correlation_with_ties_averaged():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    b = torch.tensor([[1.0, 4.0, 9.0, 16.0], [4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    rho = spearman_matrix(a, b)[0]
    assert torch.allclose(rho[:2], torch.tensor([1.0, -1.0])) and abs(float(rho[2]) - 0.8944) < 1e-3


def test_registered_with_its_direction_and_cost():
    spec = get_check("processing_similarity")
    assert CHECKS["processing_similarity"] is spec and spec.function is processing_similarity
    assert (spec.higher_is_more_suspicious, spec.needs_data, spec.uses_renders, spec.cost) == (True, True, True, "renders")
    assert {"k", "n_starts", "strategy", "layers"} <= spec.parameters() and "renders" not in spec.parameters()


def test_the_rerouted_unit_scores_highest(toy):
    clean, fooled, data = toy
    scores, details = processing_similarity(fooled, "5", list(range(6)), param=PARAM, data=data, k=6, n_starts=2,
                                            steps=60, return_details=True)
    assert int(scores.argmax()) == 0 and float(scores[0]) > 1.0  # processed like nothing natural
    assert details["layers"] == ["1", "3", "5.inner", "5"]
    assert details["gap"].shape == (6, 4) and details["figure_images"].shape == (6, 2, 1, 8, 8)
    assert details["top_images"].shape == (6, 6, 1, 8, 8)
    # the clean model's unit 0 sits among its neighbours
    clean_scores = processing_similarity(clean, "5", list(range(6)), param=PARAM, data=data, k=6, n_starts=2, steps=60)
    assert float(clean_scores[0]) < float(scores[0]) - 0.5


def test_it_draws_the_audits_shared_renders(toy):
    _, fooled, data = toy
    report = audit_layer(fooled, "5", param=PARAM, data=data, checks=("processing_similarity", "activation_excess"),
                         strategies=("gc",), k=6, n_starts=2, steps=60, progress=False)
    assert list(report.renders) == ["gc"]  # one render, shared by both checks
    assert report.z["processing_similarity"].argmax() == 0
    single = processing_similarity(fooled, "5", 0, param=PARAM, data=data, k=6, n_starts=2, steps=60)
    assert single.dim() == 0 and torch.isclose(single, report.scores["processing_similarity"][0])


def test_clear_errors(toy):
    model, _, data = toy
    with pytest.raises(ValueError, match="pass data"):
        processing_similarity(model, "5", 0, param=PARAM)
    with pytest.raises(ValueError, match="k must be an int >= 2"):
        processing_similarity(model, "5", 0, param=PARAM, data=data, k=1)
    with pytest.raises(ValueError, match="at least 2 k"):
        processing_similarity(model, "5", 0, param=PARAM, data=data[:10], k=8)
    other = RenderCache(model, "5", [1], PARAM)
    with pytest.raises(ValueError, match="another model, layer or list of units"):
        processing_similarity(model, "5", [0], param=PARAM, data=data, k=4, renders=other)
    assert [type(m).__name__ for m in probe_layers(model, model[3], data[:1])] == ["Linear", "Linear"]
