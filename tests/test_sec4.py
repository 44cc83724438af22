"""Checks of the section-4 helpers (experiments/sec4_cnn.py) against known answers and torch itself."""
from __future__ import annotations

import types

import pytest
import torch
import torch.nn as nn

from experiments import sec4_cnn
from experiments.sec4_cnn import (apply_kernels, conv_output_size, gradient_extent, hand_made_kernels,
                                  input_gradient_map, layer_geometry, match_templates, receptive_fields,
                                  recording_cross_entropy, shift_images, weight_mosaic)
from models import SmallCNN


# ----------------------------------------------------------------------------- output size
@pytest.mark.parametrize("n", [7, 28, 31])
@pytest.mark.parametrize("k,p,s,d", [(1, 0, 1, 1), (3, 0, 1, 1), (3, 1, 1, 1), (3, 1, 2, 1), (5, 2, 3, 1),
                                     (3, 2, 1, 2), (5, 0, 2, 2), (2, 0, 2, 1), (7, 3, 2, 1)])
def test_output_size_formula_matches_torch_conv(n, k, p, s, d):
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    if d * (k - 1) + 1 > n + 2 * p:  # kernel larger than the padded input: torch refuses it too
        with pytest.raises(RuntimeError):
            conv(torch.zeros(1, 1, n, n))
        return
    with torch.no_grad():
        out = conv(torch.zeros(1, 1, n, n))
    assert out.shape[-1] == conv_output_size(n, k, p, s, d)


@pytest.mark.parametrize("n,k,s,p", [(28, 2, 2, 0), (7, 2, 2, 0), (14, 3, 2, 1), (9, 3, 3, 0)])
def test_output_size_formula_matches_torch_pooling(n, k, s, p):
    for pool in (nn.MaxPool2d(k, s, p), nn.AvgPool2d(k, s, p)):
        assert pool(torch.zeros(1, 1, n, n)).shape[-1] == conv_output_size(n, k, p, s)


def test_output_size_known_cases():
    assert conv_output_size(28, 3, 1, 1) == 28        # "same" padding
    assert conv_output_size(224, 11, 2, 4) == 55      # AlexNet conv1
    assert conv_output_size(224, 7, 3, 2) == 112      # ResNet stem


# ----------------------------------------------------------------------------- receptive fields
def test_receptive_field_of_small_cnn():
    rows = receptive_fields(layer_geometry(SmallCNN().features))
    assert [r["layer"] for r in rows] == ["conv1", "pool1", "conv2", "pool2"]
    assert [r["rf"] for r in rows] == [3, 4, 8, 10]
    assert [r["jump"] for r in rows] == [1, 2, 2, 4]


def test_layer_geometry_skips_pointwise_layers():
    plain = layer_geometry(SmallCNN().features)
    with_bn = layer_geometry(SmallCNN(batch_norm=True, pool="avg").features)
    assert plain == [("conv1", 3, 1, 1, 1), ("pool1", 2, 2, 0, 1), ("conv2", 3, 1, 1, 1), ("pool2", 2, 2, 0, 1)]
    assert with_bn == plain


def test_receptive_field_alexnet_and_vgg16_published_values():
    alexnet = [("conv1", 11, 4, 0, 1), ("pool1", 3, 2, 0, 1), ("conv2", 5, 1, 2, 1), ("pool2", 3, 2, 0, 1),
               ("conv3", 3, 1, 1, 1), ("conv4", 3, 1, 1, 1), ("conv5", 3, 1, 1, 1), ("pool5", 3, 2, 0, 1)]
    assert [r["rf"] for r in receptive_fields(alexnet)] == [11, 19, 51, 67, 99, 131, 163, 195]
    vgg16 = []
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        vgg16 += [(f"conv{block}_{i}", 3, 1, 1, 1) for i in range(1, convs + 1)] + [(f"pool{block}", 2, 2, 0, 1)]
    rows = {r["layer"]: r["rf"] for r in receptive_fields(vgg16)}
    assert rows["conv5_3"] == 196 and rows["pool5"] == 212


def test_receptive_field_dilation_and_stacking():
    assert receptive_fields([("c", 3, 1, 2, 2)])[-1]["rf"] == 5
    assert [r["rf"] for r in receptive_fields([("c", 3, 1, 1, 1)] * 3)] == [3, 5, 7]


def test_gradient_support_equals_theoretical_field():
    """In a linear stack with positive weights every pixel of the field has a non-zero gradient, and no other."""
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.AvgPool2d(2),
                        nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.AvgPool2d(2))
    for layer in net:
        if isinstance(layer, nn.Conv2d):
            nn.init.constant_(layer.weight, 1.0)
    last = receptive_fields(layer_geometry(net))[-1]
    heat = input_gradient_map(net, torch.randn(2, 1, 28, 28))  # output 7×7, central unit (3, 3)
    centre = last["start"] + 3 * last["jump"]
    lo, hi = int(centre - (last["rf"] - 1) / 2), int(centre + (last["rf"] - 1) / 2)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[lo:hi + 1, lo:hi + 1] = True
    assert (lo, hi) == (9, 18)
    assert torch.equal(heat > 0, expected)
    assert gradient_extent(heat, (centre, centre))["extent"] == last["rf"] == 10


def test_gradient_of_random_cnn_stays_inside_field():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    heat = input_gradient_map(model.features, torch.randn(8, 1, 28, 28))
    inside = torch.zeros_like(heat, dtype=torch.bool)
    inside[9:19, 9:19] = True  # pool2's central unit: 10×10 field centred at 13.5
    assert heat[~inside].abs().max() == 0
    assert heat[inside].gt(0).float().mean() > 0.5


def test_gradient_extent_on_known_map():
    heat = torch.zeros(11, 11)
    heat[5, 5] = 8.0
    heat[4:7, 4:7] += 1.0   # ring of 8 ones around the centre: centre holds 9 of 17
    heat[0, 10] = 0.001     # below 1% of the peak: ignored by the extent
    found = gradient_extent(heat, (5, 5), mass=0.9, inner_side=1)
    assert found["extent"] == 3
    assert found["box"] == [4, 4, 6, 6]
    assert found["mass_side"] == 3
    assert found["inner_share"] == pytest.approx(9 / 17.001, rel=1e-4)


# ----------------------------------------------------------------------------- shifts
def test_shift_moves_a_pixel_and_fills_the_border():
    x = torch.zeros(1, 1, 10, 10)
    x[0, 0, 5, 5] = 1.0
    out = shift_images(x, 2, -1, fill=-0.5)
    assert out[0, 0, 7, 4] == 1.0
    assert (out[0, 0, :2] == -0.5).all() and (out[0, 0, :, -1:] == -0.5).all()  # uncovered top and right
    assert out.eq(1.0).sum() == 1


def test_per_sample_shifts_match_single_shifts_and_roll():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 12, 12)
    dy, dx = torch.tensor([0, 3, -2, 1]), torch.tensor([1, 0, -3, -1])
    batch = shift_images(x, dy, dx, fill=0.0)
    for i in range(4):
        single = shift_images(x[i:i + 1], int(dy[i]), int(dx[i]), fill=0.0)
        assert torch.equal(batch[i:i + 1], single)
        rolled = torch.roll(x[i], shifts=(int(dy[i]), int(dx[i])), dims=(1, 2))
        rows = slice(max(0, int(dy[i])), 12 + min(0, int(dy[i])))
        cols = slice(max(0, int(dx[i])), 12 + min(0, int(dx[i])))
        assert torch.equal(batch[i][:, rows, cols], rolled[:, rows, cols])  # same where nothing wrapped
    assert torch.equal(shift_images(x, 0, 0, fill=9.0), x)


# ----------------------------------------------------------------------------- kernels, templates, mosaic
def test_kernels_on_constant_and_step_images():
    kernels = hand_made_kernels()
    names = list(kernels)
    flat = torch.full((1, 1, 9, 9), 0.7)
    out = apply_kernels(flat, [w for w, _ in kernels.values()])
    assert out.shape == (1, len(names), 9, 9)
    for i, name in enumerate(names):
        expected = 0.0 if name in ("Sobel x", "Sobel y", "Laplacian") else 0.7  # weights sum to 0 or to 1
        assert torch.allclose(out[0, i], torch.full((9, 9), expected), atol=1e-6), name
    step = torch.zeros(1, 1, 9, 9)
    step[..., 5:] = 1.0  # a vertical edge between columns 4 and 5
    sx, sy = apply_kernels(step, [kernels["Sobel x"][0], kernels["Sobel y"][0]])[0]
    assert torch.equal(sx.abs().sum(0).nonzero().flatten(), torch.tensor([4, 5]))
    assert torch.allclose(sx[:, 4], torch.full((9,), 4.0)) and sy.abs().max() == 0


def test_match_templates_is_sign_invariant():
    templates = sec4_cnn.edge_templates()
    filters = torch.tensor([templates["vertical edge"], templates["horizontal edge"]], dtype=torch.float32)
    names, cos = match_templates(torch.cat([filters, -filters]), templates)
    assert names == ["vertical edge", "horizontal edge"] * 2
    assert torch.allclose(cos, torch.ones(4))


def test_weight_mosaic_places_tiles():
    w = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2).numpy()
    canvas = weight_mosaic(w)
    assert canvas.shape == (2 * 3 - 1, 3 * 3 - 1)
    for o in range(2):
        for i in range(3):
            assert (canvas[o * 3:o * 3 + 2, i * 3:i * 3 + 2] == w[o, i]).all()
    assert torch.isnan(torch.tensor(canvas[2])).all()  # gutter row


def test_recording_cross_entropy_keeps_training_steps_only():
    loss_fn, steps = recording_cross_entropy()
    logits = torch.randn(5, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1])
    train_loss = loss_fn(logits, y)
    loss_fn(logits.detach(), y)  # an evaluation call
    assert steps == [pytest.approx(float(train_loss.detach()))]
    assert torch.allclose(train_loss, nn.functional.cross_entropy(logits, y))


# ----------------------------------------------------------------------------- reuse of 4.3's weights
def _context(tmp_path):
    import config
    from experiments.registry import get_task
    from utils.context import RunContext

    return RunContext(get_task("4.4"), config.get_preset("tiny"), torch.device("cpu"), 0, tmp_path, tmp_path)


def _fake_dataset(name="fashion-mnist"):
    return types.SimpleNamespace(name=name, shape=(1, 28, 28), num_classes=10, y_train=torch.zeros(3))


def _save_43(tmp_path, model, dataset):
    from experiments.registry import get_task
    from utils.results import write_json

    folder = tmp_path / get_task("4.3").dirname
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "model.pt")
    write_json(folder / "metrics.json", {"status": "done", "dataset": [dataset], "mode": "quick"})


def test_trained_cnn_reuses_compatible_weights(tmp_path):
    torch.manual_seed(1)
    saved = SmallCNN()
    _save_43(tmp_path, saved, "fashion-mnist")
    model, info = sec4_cnn.trained_cnn(_context(tmp_path), _fake_dataset(), epochs=1)
    assert info["source"] == "reused 4.3"
    assert torch.equal(model.features[0].weight, saved.features[0].weight)


def test_trained_cnn_retrains_for_another_dataset(tmp_path, monkeypatch):
    _save_43(tmp_path, SmallCNN(), "digits")
    calls = []

    def fake_train(ctx, ds, *, epochs):
        calls.append(epochs)
        return SmallCNN(), types.SimpleNamespace(seconds=0.0), None

    monkeypatch.setattr(sec4_cnn, "train_small_cnn", fake_train)
    _, info = sec4_cnn.trained_cnn(_context(tmp_path), _fake_dataset(), epochs=2)
    assert calls == [2] and info["source"] == "trained here" and "digits" in info["detail"]
