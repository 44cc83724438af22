"""Checks of the section-4 helpers in experiments/s4_cnn/_shared.py against known answers and torch itself."""
from __future__ import annotations


import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from experiments.s4_cnn._shared import (apply_kernels, gradient_extent, hand_made_kernels, homographies,
                                        input_gradient_maps, layer_geometry, mass_sides, random_perspective,
                                        receptive_fields, shift_images)
from models import SmallCNN


# ----------------------------------------------------------------------------- receptive fields
def test_receptive_field_of_small_cnn():
    rows = receptive_fields(layer_geometry(SmallCNN().features))
    assert [r["layer"] for r in rows] == ["conv1", "pool1", "conv2", "pool2"]
    assert [r["rf"] for r in rows] == [3, 4, 8, 10]
    assert [r["jump"] for r in rows] == [1, 2, 2, 4]
    assert [r["start"] for r in rows] == [0.0, 0.5, 0.5, 1.5]


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
    maps = input_gradient_maps(net, torch.randn(2, 1, 28, 28))  # output 7×7, central unit (3, 3)
    assert maps.shape == (2, 28, 28)
    heat = maps.mean(0)
    centre = last["start"] + 3 * last["jump"]
    lo, hi = int(centre - (last["rf"] - 1) / 2), int(centre + (last["rf"] - 1) / 2)
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[lo:hi + 1, lo:hi + 1] = True
    assert (lo, hi) == (9, 18)
    assert torch.equal(heat > 0, expected)
    assert gradient_extent(heat, (centre, centre))["extent"] == last["rf"] == 10


def test_per_image_gradient_maps_are_each_images_own():
    """A network with no interaction between images: each map equals the one computed for that image alone."""
    torch.manual_seed(0)
    model = SmallCNN().eval()
    x = torch.randn(3, 1, 28, 28)
    together = input_gradient_maps(model.features, x)
    alone = torch.cat([input_gradient_maps(model.features, x[i:i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_gradient_of_random_cnn_stays_inside_field():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    heat = input_gradient_maps(model.features, torch.randn(8, 1, 28, 28)).mean(0)
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
    assert gradient_extent(heat, (5, 5), mass=0.5)["mass_side"] == 1  # the centre alone holds 9/17 > 50%
    assert gradient_extent(torch.zeros(5, 5), (2, 2))["extent"] == 0  # nothing reaches the unit


def test_mass_sides_vectorised_matches_one_by_one():
    torch.manual_seed(1)
    heats = torch.rand(6, 15, 15) ** 4
    together = mass_sides(heats, (7, 7))
    alone = torch.cat([mass_sides(h, (7, 7)) for h in heats])
    assert torch.equal(together, alone)
    flat = torch.ones(1, 15, 15)  # uniform: 90% of 225 pixels needs the 15×15 square (13×13 holds 75%)
    assert mass_sides(flat, (7, 7)).tolist() == [15]


# ----------------------------------------------------------------------------- kernels
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


def test_apply_kernels_is_cross_correlation_like_torch():
    torch.manual_seed(0)
    img = torch.randn(2, 1, 12, 12)
    k = torch.randn(3, 3)
    ours = apply_kernels(img, [k.tolist()])
    theirs = F.conv2d(F.pad(img, (1, 1, 1, 1), mode="reflect"), k.view(1, 1, 3, 3))
    assert torch.allclose(ours, theirs, atol=1e-6)


# ----------------------------------------------------------------------------- shifts and perspective
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


def test_homography_of_a_translation_and_its_corners():
    src = torch.tensor([[[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]])
    h = homographies(src, src + torch.tensor([0.3, -0.2]))
    expected = torch.tensor([[1.0, 0.0, 0.3], [0.0, 1.0, -0.2], [0.0, 0.0, 1.0]])
    assert torch.allclose(h[0], expected, atol=1e-5)
    torch.manual_seed(0)
    dst = src + 0.3 * torch.rand(5, 4, 2)
    hs = homographies(src.expand(5, 4, 2), dst)
    mapped = torch.cat([src.expand(5, 4, 2), torch.ones(5, 4, 1)], -1) @ hs.transpose(1, 2)
    assert torch.allclose(mapped[..., :2] / mapped[..., 2:], dst, atol=1e-5)


def test_random_perspective_identity_constant_and_share():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 20, 20)
    assert torch.allclose(random_perspective(x, 0.0), x, atol=1e-4)      # no corner moves: no change
    assert torch.equal(random_perspective(x, 0.5, p=0.0), x)               # nobody selected
    warped = random_perspective(x, 0.5)
    assert warped.shape == x.shape and (warped - x).abs().mean() > 0.3
    const = torch.full((4, 1, 16, 16), 0.25)
    assert torch.allclose(random_perspective(const, 0.5), const, atol=1e-6)  # border fill = darkest = 0.25


def test_random_perspective_shrinks_content_inward():
    """Corners move inward, so a white frame's content lands inside the frame: the border becomes fill."""
    x = torch.ones(3, 1, 32, 32)
    x[:, :, 0, :] = 0.0  # the darkest value, used as fill
    torch.manual_seed(1)
    out = random_perspective(x, 0.4)
    assert out[:, :, :, 0].mean() < 0.5 and out[:, :, 16, 16].min() > 0.99
