"""Attribution checks: per-input scores on cases whose answer is known, the registry, and the
model-level audit (reference required, a model against itself flags nothing, a fooled model is
flagged)."""

import pytest
import torch
from captum.attr import LayerGradCam, Saliency
from torch import nn

from captum_slingshot.checks import (
    ATTRIBUTION_CHECKS, AuditReport, audit_attributions, available_attribution_checks, fixed_pattern, input_dependence,
    interpreter_disagreement,
)
from captum_slingshot.checks.attribution import (
    attribution_scores, explanation_maps, focus_mosaics, input_content, mosaic_focus,
)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def _blobs(n=6, size=8):
    """One bright pixel per input, each at another place."""
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        x[i, 0, (3 * i) % size, (5 * i + 1) % size] = 1.0
    return x


def test_the_registry_declares_direction_and_pairing():
    assert set(available_attribution_checks()) == {"interpreter_disagreement", "input_dependence", "fixed_pattern",
                                                   "mosaic_focus", "explanation_drift", "class_swap"}
    assert {c for c, spec in ATTRIBUTION_CHECKS.items() if spec.needs_original} == {"explanation_drift", "class_swap"}
    assert not ATTRIBUTION_CHECKS["mosaic_focus"].higher_is_more_suspicious
    assert ATTRIBUTION_CHECKS["mosaic_focus"].min_classes == 2 and ATTRIBUTION_CHECKS["fixed_pattern"].min_classes == 1
    assert ATTRIBUTION_CHECKS["interpreter_disagreement"].pairwise
    assert ATTRIBUTION_CHECKS["interpreter_disagreement"].higher_is_more_suspicious
    assert not ATTRIBUTION_CHECKS["input_dependence"].higher_is_more_suspicious
    assert ATTRIBUTION_CHECKS["fixed_pattern"].higher_is_more_suspicious


def test_explanation_maps_takes_captum_attributions_of_inputs_and_of_layers():
    model, x = _net(), torch.rand(5, 1, 8, 8)
    sal = explanation_maps(Saliency(model).attribute, x, target=1, max_examples_per_batch=2)
    assert sal.shape == (5, 8, 8) and not sal.requires_grad
    assert torch.allclose(sal, Saliency(model).attribute(x, target=1).sum(1))
    cam = explanation_maps(LayerGradCam(model, model[0]).attribute, x, target=torch.tensor([0, 1, 2, 0, 1]))
    assert cam.shape == (5, 8, 8)


@pytest.mark.parametrize("func,inputs,message", [
    ("not callable", torch.rand(2, 1, 4, 4), "explanation_func must be callable"),
    (lambda x, target=None: x, torch.rand(4, 4), "inputs must be a non-empty image batch"),
    (lambda x, target=None: x[:, 0, 0], torch.rand(2, 1, 4, 4), "expected \\(B, C, H, W\\) or \\(B, H, W\\)"),
])
def test_explanation_maps_errors(func, inputs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        explanation_maps(func, inputs)


def test_disagreement_is_zero_for_the_same_map_one_for_unrelated_two_for_reversed():
    x = torch.rand(4, 1, 6, 6)
    same = lambda inputs, target=None: inputs  # noqa: E731
    flipped = lambda inputs, target=None: -inputs  # noqa: E731
    assert torch.allclose(interpreter_disagreement(same, x, reference_func=same), torch.zeros(4), atol=1e-6)
    assert torch.allclose(interpreter_disagreement(same, x, reference_func=flipped), torch.full((4,), 2.0), atol=1e-6)
    noise = lambda inputs, target=None: torch.rand(inputs.shape, generator=torch.Generator().manual_seed(1))  # noqa
    big = torch.rand(4, 1, 32, 32)
    assert interpreter_disagreement(same, big, reference_func=noise).sub(1).abs().max() < 0.2


def test_input_dependence_is_own_correlation_minus_the_mean_over_every_other_input():
    from captum_slingshot.metrics.fooling import rank_correlation

    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, 6, 6, generator=g)
    func = lambda inputs, target=None: inputs[:, :1] * inputs[:, 1:] + 0.1 * inputs.roll(1, -1)
    maps, content = func(x).sum(1), input_content(x)  # channels summed, as explanation_maps does
    slow = rank_correlation(maps, content) - sum(rank_correlation(maps, content.roll(k, 0)) for k in range(1, 5)) / 4
    assert torch.allclose(input_dependence(func, x), slow, atol=1e-6)


def test_input_dependence_is_high_when_the_map_follows_the_input_and_zero_on_average_for_a_fixed_map():
    x = _blobs()
    assert torch.equal(input_content(x).argmax(-1), x[:, 0].argmax(-1))
    follows = input_dependence(lambda inputs, target=None: inputs, x)
    fixed = input_dependence(lambda inputs, target=None: torch.ones_like(inputs).cumsum(-1), x)
    assert follows.shape == (6,) and bool((follows > 0.3).all())
    assert abs(float(fixed.mean())) < 1e-6 and float(fixed.abs().max()) < float(follows.min())
    with pytest.raises(ValueError, match="at least 2 inputs"):
        input_dependence(lambda inputs, target=None: inputs, x[:1])


def test_fixed_pattern_is_one_for_one_map_everywhere_and_low_for_maps_that_follow_the_inputs():
    x = _blobs()
    same = fixed_pattern(lambda inputs, target=None: torch.arange(64.0).view(1, 1, 8, 8).expand_as(inputs), x)
    assert torch.allclose(same, torch.ones(6))
    follows = fixed_pattern(lambda inputs, target=None: inputs, x)
    assert float(follows.max()) < 0.2
    with pytest.raises(ValueError, match="at least 2 inputs"):
        fixed_pattern(lambda inputs, target=None: inputs, x[:1])


def test_attribution_scores_have_one_row_per_interpreter_and_one_column_per_input():
    model, x = _net(), torch.rand(5, 1, 8, 8)
    scores = attribution_scores(model, x, target=torch.tensor([0, 1, 2, 0, 1]),
                                interpreters=("grad_cam", "saliency", "input_x_gradient"))
    without_original = {c for c, spec in ATTRIBUTION_CHECKS.items() if not spec.needs_original}
    assert set(scores) == without_original and all(v.shape == (3, 5) for v in scores.values())
    with pytest.raises(ValueError, match="needs at least two interpreters"):
        attribution_scores(model, x, interpreters=("grad_cam",))
    with pytest.raises(ValueError, match="unknown interpreter"):
        attribution_scores(model, x, interpreters=("grad_cam", "gradcam"))
    with pytest.raises(ValueError, match="unknown attribution check 'no_such_check'; available: class_swap, explanation_drift, fixed_pattern"):
        attribution_scores(model, x, checks=("no_such_check",))


def test_audit_needs_a_reference_and_flags_nothing_for_the_model_against_itself(tmp_path):
    model, x = _net(), torch.rand(6, 1, 8, 8)
    with pytest.raises(TypeError, match="needs reference="):
        audit_attributions(model, x, reference=None)
    with pytest.raises(ValueError, match="at least 2 images"):
        audit_attributions(model, x[:1], reference=model)
    training = model.train()
    rep = audit_attributions(training, x, reference=_net())
    assert training.training  # the audit leaves the mode as it found it
    assert isinstance(rep, AuditReport) and rep.units == ["grad_cam", "lrp_epsilon", "saliency"]
    assert rep.flagged == [] and float(rep.combined.abs().max()) < 1e-5
    rows = rep.table
    assert {"unit", "interpreter_disagreement", "input_dependence_z", "combined", "flagged"} <= set(rows[0])
    assert rep.to_csv(tmp_path / "a.csv") and rep.to_json(tmp_path / "a.json")
    assert "audit of layer 'attributions'" in rep.summary()
    two = audit_attributions(model, x, reference=model, target=torch.tensor([0, 1, 0, 1, 2, 2]))
    needs = "needs original=, the model before the fine-tune"
    assert two.info["skipped"] == {"explanation_drift": needs, "class_swap": needs}
    assert "mosaic_focus" in two.checks and float(two.combined.abs().max()) < 1e-5


def test_the_audit_explains_grad_cam_at_the_layer_it_is_given_and_leaves_the_other_rows_alone():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    x, t = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    at_conv = attribution_scores(model, x, t, ("grad_cam", "saliency"), ("fixed_pattern",))["fixed_pattern"]
    at_relu = attribution_scores(model, x, t, ("grad_cam", "saliency"), ("fixed_pattern",),
                                 interpreter_layer="3")["fixed_pattern"]
    expected = fixed_pattern(LayerGradCam(model, model[3]).attribute, x, target=t)
    assert torch.allclose(at_relu[0], expected, atol=1e-5) and not torch.allclose(at_conv[0], at_relu[0])
    assert torch.equal(at_conv[1], at_relu[1])  # saliency attributes to the input and takes no layer
    rep = audit_attributions(model, x, reference=model, target=t, interpreter_layer="3")
    assert rep.info["interpreter_layer"] == "3" and float(rep.combined.abs().max()) < 1e-5
    with pytest.raises(ValueError, match="no_such_layer"):
        audit_attributions(model, x, reference=model, interpreter_layer="no_such_layer")


def test_the_audit_leaves_mosaic_focus_out_by_default_when_every_target_is_one_class_and_says_so():
    model, x = _net(), torch.rand(6, 1, 8, 8)
    one = torch.zeros(6, dtype=torch.long)
    rep = audit_attributions(model, x, reference=_net(), target=one)
    assert "mosaic_focus" not in rep.checks and "fixed_pattern" in rep.checks
    assert rep.info["skipped"] == {"mosaic_focus": "needs targets of at least 2 classes",
                                   "class_swap": "needs targets of at least 2 classes",
                                   "explanation_drift": "needs original=, the model before the fine-tune"}
    with pytest.raises(ValueError, match="give inputs of at least two classes"):
        audit_attributions(model, x, reference=_net(), target=one, checks=("mosaic_focus",))


def _squares(n=6, size=12):
    """Even inputs (class 0): a bright square in the top-left; odd inputs (class 1): one in the bottom-right."""
    x = torch.zeros(n, 1, size, size)
    x[0::2, :, 1:5, 1:5] = 1.0
    x[1::2, :, 7:11, 7:11] = 1.0
    return x, torch.arange(n) % 2


def test_mosaic_focus_is_high_for_a_map_on_its_input_and_low_for_one_swapped_to_the_partner():
    x, y = _squares()
    honest = mosaic_focus(lambda inputs, target=None: inputs, x, target=y)
    assert honest.shape == (6,) and torch.allclose(honest, torch.full((6,), 0.5))  # both halves carry one square

    def on_the_own_half_only(inputs, target=None):  # the map of an honest model: only the input explained
        maps = torch.zeros_like(inputs)
        w = inputs.shape[-1] // 2
        for k in range(len(inputs)):  # mosaics of an even owner have it on the left
            half = slice(0, w) if int(target[k]) == 0 else slice(w, None)
            maps[k, ..., half] = inputs[k, ..., half]
        return maps

    def swapped(inputs, target=None):  # active fooling: the map of each class on the other class's half
        return on_the_own_half_only(inputs, target).flip(-1)

    assert torch.allclose(mosaic_focus(on_the_own_half_only, x, target=y), torch.ones(6))
    assert torch.allclose(mosaic_focus(swapped, x, target=y), torch.zeros(6))
    nowhere = mosaic_focus(lambda inputs, target=None: -inputs.abs(), x, target=y)
    assert torch.allclose(nowhere, torch.full((6,), 0.5))
    odd = torch.ones(4, 1, 9, 9)  # odd width: the canvas column between the halves belongs to neither side
    assert torch.allclose(mosaic_focus(lambda inputs, target=None: inputs + 1, odd, target=y[:4]),
                          torch.full((4,), 4 / 9))  # an even map: 4 of its 9 columns are the input's half


def test_mosaic_focus_takes_the_worst_partner_class():
    x, y = _squares(6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])  # every input meets two partners, one of each other class
    mosaics, owner, on_left = focus_mosaics(x, y)
    assert owner.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert on_left.tolist() == [True, True, False, False, True, True, False, False, True, True, False, False]

    def blind_to_class_2(inputs, target=None):  # the map of class 0 and 1 moves away only beside a class-2 input
        maps = inputs.clone()
        w = inputs.shape[-1] // 2
        for k in range(len(inputs)):
            i = int(owner[k])
            partner_is_2 = k % 2 == 1  # partners come in class order: for classes 0 and 1 the second is 2
            if int(y[i]) != 2 and partner_is_2:
                mine = slice(0, w) if bool(on_left[k]) else slice(w, None)
                maps[k, ..., mine] = 0
        return maps

    s = mosaic_focus(blind_to_class_2, x, target=y)
    assert s[[0, 1, 3, 4]].tolist() == [0.0, 0.0, 0.0, 0.0] and bool((s[[2, 5]] > 0.3).all())


@pytest.mark.parametrize("target,message", [
    (None, "needs target="),
    (torch.zeros(6, dtype=torch.long), "at least two classes"),
    (torch.tensor([0, 1]), "gives 2 classes for 6 inputs"),
])
def test_mosaic_focus_errors(target, message):
    x, _ = _squares()
    with pytest.raises(ValueError, match=message):
        mosaic_focus(lambda inputs, target=None: inputs, x, target=target)
    with pytest.raises(ValueError, match="H, W >= 4"):
        mosaic_focus(lambda inputs, target=None: inputs, torch.rand(2, 1, 3, 3), target=torch.tensor([0, 1]))


def test_the_audit_flags_grad_cam_fooled_onto_the_frame_and_not_a_clean_fine_tune(mnist_cnn, mnist_heldout, mnist_test):
    """Real MNIST: 400 steps of location fooling against Grad-CAM; the auditor holds the model before."""
    import copy

    import torch.nn.functional as F

    from captum_slingshot.data import normalize_mnist
    from captum_slingshot.transforms import get_transform

    x, y = mnist_heldout.tensors
    train = (normalize_mnist(x[:4000]), y[:4000])
    inputs = normalize_mnist(mnist_test.tensors[0][:64])
    attack = get_transform("attribution_fooling", mode="location", interpreter="grad_cam", fooling_weight=20.0,
                           steps=400, lr=1e-3, progress=False)
    fooled = attack.fit(mnist_cnn, train).model
    clean = copy.deepcopy(mnist_cnn)
    opt = torch.optim.Adam(clean.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = torch.randint(0, 4000, (32,), generator=g)
        loss = F.cross_entropy(clean(train[0][idx]), train[1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cheap = ("grad_cam", "input_x_gradient", "saliency")  # input x gradient is LRP-epsilon on this ReLU net
    bad = audit_attributions(fooled, inputs, reference=mnist_cnn, interpreters=cheap)
    good = audit_attributions(clean.eval(), inputs, reference=mnist_cnn, interpreters=cheap)
    assert "grad_cam" in bad.flagged, bad.summary()
    assert good.flagged == [], good.summary()
    assert float(bad.combined.max()) > 2 * float(good.combined.max())
