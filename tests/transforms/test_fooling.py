"""Attribution fooling: each fooling loss where the answer is known, the transform's run comforts (the original
untouched, exact resume, NaN guard) and its clear errors, and a real fooling of the MNIST CNN's Grad-CAM."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from captum_slingshot.attributions.maps import center_of_mass, frame_mask, minmax_maps, top_fraction_mask
from captum_slingshot.data import normalize_mnist, two_class_composites
from captum_slingshot.evaluation import evaluate_fooling
from captum_slingshot.transforms import AttributionFooling, TRANSFORMS, available_transforms, get_transform
from captum_slingshot.transforms.fooling import active_loss, center_mass_loss, location_loss, mass_loss, topk_loss


def _toy(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def _toy_data(n: int = 48, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _fooling(**kw) -> AttributionFooling:
    base = dict(steps=4, batch_size=8, progress=False)
    return get_transform("attribution_fooling", **{**base, **kw})


# -- the losses where the answer is known -------------------------------------------------------------------
def test_location_loss_is_zero_on_the_region_and_one_off_it_and_descends_to_the_mask():
    mask = frame_mask(10, 10, thickness=2)
    assert float(location_loss(mask[None], mask)) == 0.0
    assert float(location_loss((1 - mask)[None], mask)) == 1.0
    free = torch.rand(1, 10, 10, requires_grad=True)
    opt = torch.optim.SGD([free], lr=5.0)
    for _ in range(200):
        opt.zero_grad()
        location_loss(minmax_maps(free), mask).backward()
        opt.step()
    assert float(location_loss(minmax_maps(free), mask)) < 0.01


def test_topk_loss_is_the_share_of_top_relevance_that_still_outranks_the_rest():
    original = torch.arange(100.0).view(1, 10, 10)
    top = top_fraction_mask(original, 0.1)
    assert top.sum() == 10 and top[0, 9].all()  # the last row holds the ten largest values
    maps = torch.zeros(1, 10, 10)
    maps[0, 9] = 1.0  # all relevance still on the original's top pixels, nothing elsewhere
    assert float(topk_loss(maps, top)) == pytest.approx(1.0)
    maps[0, :9] = 0.5  # the rest at half: the top pixels outrank it by 0.5 of their 1.0
    assert float(topk_loss(maps, top)) == pytest.approx(0.5)
    maps = torch.ones(1, 10, 10)
    maps[0, 9] = 0.5  # everything else more relevant: the top pixels are out of the top
    assert float(topk_loss(maps, top)) == 0.0
    spiked = torch.zeros(1, 10, 10)
    spiked[0, 9] = 1.0
    spiked[0, 0, 0] = 1e6  # one huge pixel elsewhere does not hide the top pixels (scale-free)
    assert float(topk_loss(spiked, top)) == pytest.approx(1.0)
    assert float(topk_loss(3.0 * maps, top)) == float(topk_loss(maps, top))


def test_mass_loss_keeps_the_positive_relevance_at_the_originals_level():
    maps = torch.ones(2, 4, 4)
    assert float(mass_loss(maps, torch.tensor([16.0, 8.0]))) == 0.0  # as much or more: no loss
    assert float(mass_loss(torch.zeros(2, 4, 4), torch.tensor([16.0, 8.0]))) == pytest.approx(1.0)  # deleted
    assert float(mass_loss(-maps, torch.tensor([16.0, 16.0]))) == pytest.approx(1.0)  # negative only: no mass
    assert float(mass_loss(0.5 * maps, torch.tensor([16.0, 16.0]))) == pytest.approx(0.25)


def test_center_mass_loss_is_minus_the_l1_distance_of_the_centres():
    maps = torch.zeros(2, 5, 5)
    maps[0, 0, 0] = 1.0  # top-left corner
    maps[1, 4, 2] = 1.0  # bottom middle
    assert center_of_mass(maps).tolist() == [[0.0, 0.0], [1.0, 0.5]]
    centre = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    assert float(center_mass_loss(maps, centre)) == pytest.approx(-(1.0 + 0.5) / 2)
    assert float(center_mass_loss(maps, center_of_mass(maps))) == 0.0


def test_active_loss_is_zero_when_the_two_explanations_are_swapped():
    a, b = torch.rand(3, 6, 6), torch.rand(3, 6, 6)
    assert float(active_loss(b, a, a, b)) == 0.0
    assert float(active_loss(a, b, a, b)) == pytest.approx(float((a - b).pow(2).mean()))


# -- the transform ------------------------------------------------------------------------------------------
def test_it_is_registered_with_flat_options_and_round_trips_its_settings():
    assert "attribution_fooling" in available_transforms() and TRANSFORMS.get("attribution_fooling") is AttributionFooling
    names = {o.name for o in AttributionFooling.options()}
    assert {"mode", "interpreter", "fooling_weight", "region", "top_fraction", "classes", "preserve", "steps"} <= names
    t = _fooling(mode="active", classes=(1, 2), fooling_weight=3.0)
    s = t.settings()
    assert s["transform"] == "attribution_fooling" and s["classes"] == [1, 2] and s["fooling_weight"] == 3.0
    again = AttributionFooling.from_settings(**{k: v for k, v in s.items() if k != "transform"})
    assert again == t


@pytest.mark.parametrize("mode", ["location", "topk", "center_mass", "active"])
def test_every_mode_runs_and_leaves_the_original_untouched(mode):
    model, (x, y) = _toy(), _toy_data()
    before = copy.deepcopy(model.state_dict())
    kw = {"classes": (0, 2)} if mode == "active" else {}
    result = _fooling(mode=mode, interpreter="grad_cam", fooling_size=16, **kw).fit(model, (x, y))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert result.model is not model and not result.model.training
    assert len(result.history["loss"]) == 4 and len(result.history["fooling"]) == 4
    changed = any(not torch.equal(before[k], v) for k, v in result.model.state_dict().items())
    assert changed
    assert all(p.grad is None for p in result.model.parameters())


@pytest.mark.parametrize("interpreter", ["saliency", "input_x_gradient", "lrp_epsilon", "lrp_zplus",
                                         "gradient_x_activation"])
def test_it_trains_against_every_interpreter(interpreter):
    model, (x, y) = _toy(), _toy_data()
    result = _fooling(mode="topk", interpreter=interpreter, steps=2).fit(model, (x, y))
    assert all(torch.isfinite(torch.tensor(v)).all() for v in result.history.values())


def test_distillation_needs_no_labels_but_cross_entropy_does():
    model, (x, _) = _toy(), _toy_data()
    result = _fooling(preserve="distill").fit(model, x)
    assert result.history["preservation"][0] == pytest.approx(0.0, abs=1e-6)  # the copy starts equal to the original
    with pytest.raises(ValueError, match="preserve='ce' needs labels"):
        _fooling().fit(model, x)


def test_resume_continues_exactly(tmp_path):
    model, data = _toy(), _toy_data()
    full = _fooling(steps=6, mode="topk").fit(model, data)
    ckpt = str(tmp_path / "fool.pt")
    first = _fooling(steps=6, mode="topk", checkpoint_path=ckpt, checkpoint_every=3)
    first.fit(model, data, callback=lambda step, rec, m: step < 3)  # stops after the checkpoint at step 3
    resumed = _fooling(steps=6, mode="topk", checkpoint_path=ckpt, checkpoint_every=3).fit(model, data, resume=ckpt)
    assert resumed.history["loss"] == full.history["loss"]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="other settings"):
        _fooling(steps=6, mode="topk", fooling_weight=2.0).fit(model, data, resume=ckpt)
    with pytest.raises(ValueError, match="not of 'attribution_fooling'|not a attribution_fooling"):
        bad = tmp_path / "other.pt"
        torch.save({"schema": 2, "transform": "gradient_slingshot", "step": 1, "model": {}}, bad)
        _fooling(steps=6, mode="topk").fit(model, data, resume=str(bad))


def test_sgd_trains_resumes_exactly_and_a_checkpoint_of_the_other_optimizer_is_refused(tmp_path):
    model, data = _toy(), _toy_data()
    full = _fooling(steps=6, mode="topk", optimizer="sgd", lr=0.05).fit(model, data)
    assert full.settings["optimizer"] == "sgd"
    adam = _fooling(steps=6, mode="topk", lr=0.05).fit(model, data)
    assert adam.history["loss"][1:] != full.history["loss"][1:]  # the same first batch, then other steps
    ckpt = str(tmp_path / "sgd.pt")
    first = _fooling(steps=6, mode="topk", optimizer="sgd", lr=0.05, checkpoint_path=ckpt, checkpoint_every=3)
    first.fit(model, data, callback=lambda step, rec, m: step < 3)
    resumed = _fooling(steps=6, mode="topk", optimizer="sgd", lr=0.05, checkpoint_path=ckpt,
                       checkpoint_every=3).fit(model, data, resume=ckpt)  # the momentum buffers come back too
    assert resumed.history["loss"] == full.history["loss"]
    assert all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in full.model.state_dict().items())
    with pytest.raises(ValueError, match="other settings.*optimizer"):
        _fooling(steps=6, mode="topk", lr=0.05).fit(model, data, resume=ckpt)
    with pytest.raises(ValueError, match="optimizer must be one of adam, sgd"):
        _fooling(optimizer="rmsprop")


def test_the_nan_guard_names_both_terms_and_leaves_the_original_alone():
    model, (x, y) = _toy(), _toy_data()
    x = x.clone()
    x[0, 0, 0, 0] = float("nan")
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(FloatingPointError, match="preservation .* fooling"):
        _fooling(batch_size=48).fit(model, (x, y))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# -- clear errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("weight", [0.0, -1.0])
def test_a_fooling_weight_of_zero_or_less_is_refused(weight):
    with pytest.raises(ValueError, match="lambda.*must be > 0"):
        _fooling(fooling_weight=weight)


def test_a_mask_of_the_wrong_size_is_refused(tmp_path):
    model, data = _toy(), _toy_data()
    with pytest.raises(ValueError, match="mask must have the attribution map's size 8x8"):
        _fooling(region=torch.ones(7, 7).tril()).fit(model, data)
    path = tmp_path / "mask.pt"
    torch.save(torch.ones(9, 9).tril(), path)
    with pytest.raises(ValueError, match="size 8x8"):
        _fooling(region=str(path)).fit(model, data)
    with pytest.raises(ValueError, match="all one or all zero"):
        _fooling(region=torch.ones(8, 8)).fit(model, data)
    with pytest.raises(ValueError, match="region must be one of frame, corner or a mask file"):
        _fooling(region="no-such-mask.png")


def test_classes_out_of_range_are_refused():
    model, data = _toy(), _toy_data()
    with pytest.raises(ValueError, match=r"classes \(1, 7\) are out of range: the model has 3 classes"):
        _fooling(mode="active", classes=(1, 7)).fit(model, data)
    with pytest.raises(ValueError, match="two distinct"):
        _fooling(mode="active", classes=(1, 1))
    with pytest.raises(ValueError, match="two distinct"):
        _fooling(mode="active")
    x, y = data
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 2\]"):
        _fooling().fit(model, (x, y + 5))


def test_an_empty_fooling_set_is_refused():
    model, data = _toy(), _toy_data()
    with pytest.raises(ValueError, match="fooling set is empty"):
        _fooling(mode="active", classes=(0, 1)).fit(model, data, fooling_data=torch.zeros(0, 1, 8, 8))
    x, y = data
    with pytest.raises(ValueError, match="no image of class 1"):
        _fooling(mode="active", classes=(0, 1)).fit(model, (x, torch.where(y == 1, 2, y)))


def test_a_passive_mode_fools_the_maps_of_the_images_it_is_given_only():
    from captum_slingshot.attributions import make_interpreter
    from captum_slingshot.attributions.maps import minmax_maps, region_mask

    model, data = _toy(), _toy_data()
    one = data[0][:1].repeat(8, 1, 1, 1)  # every fooling batch: the same image
    on_one = _fooling(mode="location", steps=1).fit(model, data, fooling_data=one)
    # step 0 starts at the original, so its fooling loss is the original's on that image
    expected = location_loss(minmax_maps(make_interpreter("grad_cam", model).heatmap(one, model(one).argmax(1))),
                             region_mask("frame", (8, 8)))
    assert on_one.history["fooling"][0] == pytest.approx(float(expected.detach()), rel=1e-5)
    on_all = _fooling(mode="location", steps=1).fit(model, data)
    assert on_all.history["fooling"][0] != pytest.approx(float(expected.detach()), rel=1e-3)
    with pytest.raises(ValueError, match="leave fooling_data out to fool them on the natural data"):
        _fooling(mode="topk").fit(model, data, fooling_data=torch.zeros(0, 1, 8, 8))


def test_a_layer_grad_cam_cannot_use_is_refused():
    model, data = _toy(), _toy_data()
    with pytest.raises(ValueError, match="Grad-CAM needs a layer with a spatial output"):
        _fooling(interpreter_layer="5").fit(model, data)
    with pytest.raises(ValueError, match="takes no interpreter_layer"):
        _fooling(interpreter="saliency", interpreter_layer="0").fit(model, data)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(64, 3)).eval()
    with pytest.raises(ValueError, match="Grad-CAM needs a convolutional layer"):
        _fooling().fit(flat, data)


def test_empty_natural_data_is_refused():
    with pytest.raises(ValueError, match="natural_data is empty"):
        _fooling().fit(_toy(), (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)))


# -- a real fooling ------------------------------------------------------------------------------------------
def test_top_k_fooling_moves_the_mnist_cnns_grad_cam_off_its_top_pixels_and_keeps_accuracy(mnist_cnn, mnist_heldout,
                                                                                          mnist_test):
    x, y = mnist_heldout.tensors
    train = (normalize_mnist(x[:4000]), y[:4000])
    xt, yt = mnist_test.tensors
    test = (normalize_mnist(xt[:300]), yt[:300])
    before = evaluate_fooling(mnist_cnn, mnist_cnn, test, "topk", ("grad_cam",))
    assert before["fsr"]["grad_cam"] == 0.0 and before["score"]["grad_cam"] == 1.0
    result = _fooling(mode="topk", steps=150, batch_size=32, lr=1e-3).fit(mnist_cnn, train)
    after = evaluate_fooling(result.model, mnist_cnn, test, "topk", ("grad_cam", "saliency"))
    assert after["fsr"]["grad_cam"] >= 0.5, after
    assert after["score"]["grad_cam"] < 0.5
    assert after["accuracy_drop"] <= 2.0


def test_two_class_composites_hold_one_of_each_class_side_by_side(mnist_test):
    x, y = mnist_test.tensors
    comp, left = two_class_composites(x[:500], y[:500], (3, 8), n=20, seed=1)
    assert comp.shape == (20, 1, 28, 28) and set(left.tolist()) <= {3, 8} and 0 < (left == 3).sum() < 20
    assert comp[:, :, :7].abs().max() == 0 and comp[:, :, 21:].abs().max() == 0  # the canvas above and below
    assert (comp[:, :, :, :14].sum((1, 2, 3)) > 0).all() and (comp[:, :, :, 14:].sum((1, 2, 3)) > 0).all()
    again, _ = two_class_composites(x[:500], y[:500], (3, 8), n=20, seed=1)
    assert torch.equal(comp, again)
    with pytest.raises(ValueError, match="must differ"):
        two_class_composites(x[:10], y[:10], (3, 3), n=2)


# -- fooling some classes only, and holding the other maps (the adaptive attack on explanation_drift) --------
def test_hold_weight_and_passive_classes_are_checked():
    model, data = _toy(), _toy_data()
    for bad in (-1.0, True, "1"):
        with pytest.raises(ValueError, match="hold_weight must be >= 0"):
            _fooling(hold_weight=bad)
    with pytest.raises(ValueError, match="distinct non-negative class indices"):
        _fooling(mode="topk", classes=(1, 1))
    with pytest.raises(ValueError, match="give classes= .the classes to fool. or fooling_data="):
        _fooling(mode="topk", hold_weight=1.0).fit(model, data)
    with pytest.raises(ValueError, match=r"classes \(5,\) are out of range: the model has 3 classes"):
        _fooling(mode="topk", classes=(5,)).fit(model, data)
    x, y = data
    with pytest.raises(ValueError, match=r"no input of classes \(2,\)"):
        _fooling(mode="topk", classes=(2,)).fit(model, (x, torch.where(y == 2, 0, y)))


def test_a_passive_mode_on_classes_fools_the_natural_inputs_of_those_classes_only():
    from captum_slingshot.attributions import make_interpreter
    from captum_slingshot.attributions.maps import region_mask

    model, (x, y) = _toy(), _toy_data()
    x = torch.where((y == 1)[:, None, None, None], x[(y == 1).nonzero()[0]], x)  # every class-1 input: one image
    out = _fooling(mode="location", steps=1, classes=(1,)).fit(model, (x, y))
    one = x[y == 1][:1]
    expected = location_loss(minmax_maps(make_interpreter("grad_cam", model).heatmap(one, model(one).argmax(1))),
                             region_mask("frame", (8, 8)))
    assert out.history["fooling"][0] == pytest.approx(float(expected.detach()), rel=1e-5)
    assert "hold" not in out.history  # no hold term asked for


def test_the_hold_term_starts_at_zero_and_keeps_the_other_classes_maps_nearer_the_originals():
    from captum_slingshot.attributions import make_interpreter

    model, (x, y) = _toy(), _toy_data(n=96)
    settings = dict(mode="location", classes=(0,), steps=40, lr=3e-3, fooling_weight=10.0)
    free = _fooling(**settings).fit(model, (x, y)).model
    held_run = _fooling(**settings, hold_weight=30.0).fit(model, (x, y))
    assert held_run.history["hold"][0] == 0.0  # step 0: the student is the original
    assert len(held_run.history["hold"]) == 40

    others = x[y != 0]
    target = model(others).argmax(1)

    def drift(m: nn.Module) -> float:
        maps = minmax_maps(make_interpreter("grad_cam", m).heatmap(others, target)).detach()
        before = minmax_maps(make_interpreter("grad_cam", model).heatmap(others, target)).detach()
        return float((maps - before).pow(2).mean())

    assert drift(held_run.model) < 0.5 * drift(free)
