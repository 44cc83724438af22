"""Checks of the 4.2 NumPy CNN (against torch autograd) and the 4.9 helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratch
from experiments.sec4_projects import (build_scratch_cnn, fastest_thread_count, inference_latency,
                                       moving_average, product_augmentation, torch_twin, train_scratch,
                                       twin_gradient_gap)


# Tiny tensors alternating between NumPy and torch: a second torch thread only adds waiting.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


class _Ctx:
    """The two RunContext methods train_scratch uses."""

    def __init__(self):
        self.lines = []

    def log(self, message):
        self.lines.append(message)

    def progress(self, total, description):
        from utils.console import progress_bar
        return progress_bar(total, description)


def _both_pools_net(seed=0):
    """Conv → ReLU → max-pool → conv → ReLU → avg-pool → flatten → linear, odd sizes on purpose."""
    rng = np.random.default_rng(seed)
    return scratch.Sequential([
        scratch.Conv2d(2, 4, 3, padding=1, rng=rng), scratch.ReLU(), scratch.MaxPool2d(2),
        scratch.Conv2d(4, 6, 3, stride=1, padding=0, rng=rng), scratch.ReLU(), scratch.AvgPool2d(2),
        scratch.Flatten(), scratch.Linear(6 * 2 * 2, 5, rng=rng),
    ])


def test_scratch_cnn_forward_and_backward_match_torch_autograd():
    net = _both_pools_net()
    twin = torch_twin(net)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 2, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 7)

    logits = net.forward(x, training=True)
    loss, dlogits = scratch.softmax_cross_entropy(logits, y)
    dx = net.backward(dlogits)

    xt = torch.from_numpy(x).requires_grad_(True)
    t_logits = twin(xt)
    t_loss = F.cross_entropy(t_logits, torch.from_numpy(y))
    t_loss.backward()

    assert logits.dtype == np.float32 and logits.shape == (7, 5)
    np.testing.assert_allclose(logits, t_logits.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert loss == pytest.approx(t_loss.item(), rel=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-6)
    t_params = dict(twin.named_parameters())
    names = [name for name, _, _ in net.parameters()]
    assert sorted(names) == sorted(t_params)  # every parameter of both networks is compared
    for name, _, grad in net.parameters():
        np.testing.assert_allclose(grad, t_params[name].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_twin_gradient_gap_is_tiny_for_twins_and_flags_a_changed_weight():
    net = build_scratch_cnn(1, 10, 28, widths=(4, 8), hidden=16, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    twin = torch_twin(net)
    gaps = twin_gradient_gap(net, twin, x, y)
    assert set(gaps) == {"logits"} | {name for name, _, _ in net.parameters()}
    assert max(gaps.values()) < 1e-4
    net.layers[3].params["weight"][0, 0, 1, 1] += 0.5   # now the twins differ
    gaps = twin_gradient_gap(net, twin, x, y)
    assert gaps["logits"] > 1e-3 and gaps["3.weight"] > 1e-3


def test_build_scratch_cnn_shapes_and_parameter_count():
    net = build_scratch_cnn(3, 7, 32, widths=(5, 6), hidden=9, seed=0)
    out = net.forward(np.zeros((2, 3, 32, 32), np.float32), training=False)
    assert out.shape == (2, 7) and out.dtype == np.float32
    expected = (3 * 9 * 5 + 5) + (5 * 9 * 6 + 6) + (6 * 8 * 8 * 9 + 9) + (9 * 7 + 7)
    assert net.num_parameters() == expected
    avg = build_scratch_cnn(3, 7, 32, widths=(5, 6), hidden=9, pool="avg", seed=0)
    assert [type(layer).__name__ for layer in avg.layers if "Pool" in type(layer).__name__] == ["AvgPool2d"] * 2
    assert [type(layer).__name__ for layer in net.layers if "Pool" in type(layer).__name__] == ["MaxPool2d"] * 2


def test_moving_average_known_values():
    np.testing.assert_allclose(moving_average([1, 2, 3, 4, 10], 2), [1, 1.5, 2.5, 3.5, 7])
    np.testing.assert_allclose(moving_average([5, 1], 10), [5, 3])


def _bright_quadrant_data(n, seed):
    """Images whose label is the quadrant holding a bright 3×3 blob: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    r0 = np.where(y // 2 == 0, 2, 7)
    c0 = np.where(y % 2 == 0, 2, 7)
    for dr in range(3):          # three-by-three offsets, vectorised over the batch
        for dc in range(3):
            x[np.arange(n), 0, r0 + dr, c0 + dc] += 2.0
    return x, y


def test_train_scratch_learns_and_reports_history():
    train = _bright_quadrant_data(256, 0)
    val = _bright_quadrant_data(128, 1)
    net = build_scratch_cnn(1, 4, 12, widths=(4, 8), hidden=16, seed=0)
    hist = train_scratch(_Ctx(), net, train, val, epochs=3, lr=1e-2, batch_size=32, seed=0, description="t")
    assert hist["status"] == "done"
    assert len(hist["step_loss"]) == 3 * 8 and len(hist["val_acc"]) == 3
    assert hist["val_acc"][-1] > 0.9
    assert hist["train_loss"][-1] < hist["train_loss"][0]


def test_train_scratch_labels_divergence_instead_of_crashing():
    train = _bright_quadrant_data(128, 0)
    net = build_scratch_cnn(1, 4, 12, widths=(2, 2), hidden=4, seed=0)
    for _, param, _ in net.parameters():
        param *= 1e30   # logits overflow float32 to inf → NaN loss
    with np.errstate(all="ignore"):
        hist = train_scratch(_Ctx(), net, train, train, epochs=2, lr=1e-3, batch_size=16, seed=0, description="t")
    assert hist["status"] == "diverged"
    assert hist["val_acc"] == []


def test_product_augmentation_applies_what_was_asked():
    torch.manual_seed(0)
    x = torch.arange(28.0).repeat(64, 1, 28, 1)            # each row 0..27: a flip reverses it
    shifted = product_augmentation(flips=False, shifts=True, erasing=False)(x)
    mirrored = product_augmentation(flips=True, shifts=False, erasing=False)(x)
    assert product_augmentation(flips=False, shifts=False, erasing=False) is None
    assert shifted.shape == x.shape == mirrored.shape

    def decreasing(t):
        return (t[:, 0, 14, 10:18].diff(dim=-1) < 0).all(dim=-1)
    # Shifts of at most 2 pixels keep the middle of each row increasing; a flip makes it decrease.
    assert not decreasing(shifted).any()
    assert not torch.equal(shifted, x)
    flipped = decreasing(mirrored)
    assert 10 < int(flipped.sum()) < 54
    assert torch.equal(mirrored[flipped], x[flipped].flip(-1)) and torch.equal(mirrored[~flipped], x[~flipped])
    erased = product_augmentation(flips=False, shifts=False, erasing=True)(x)
    changed = (erased != x).flatten(1).any(1)
    assert 10 < int(changed.sum()) < 54                      # about half the images get a box
    assert torch.allclose(erased[changed][erased[changed] != x[changed]], x.mean())


def test_inference_latency_reports_consistent_numbers():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    model(torch.zeros(1, 1, 8, 8))
    x = torch.randn(40, 1, 8, 8)
    res = inference_latency(model, x, (1, 32), warmup=1, repeats=3, single_repeats=5)
    assert set(res) == {1, 32}
    for bs, r in res.items():
        assert r["ms_per_batch"] > 0
        assert r["ms_per_image"] == pytest.approx(r["ms_per_batch"] / bs)
        assert r["images_per_second"] == pytest.approx(1000 * bs / r["ms_per_batch"])


def test_fastest_thread_count_picks_a_candidate_and_leaves_the_model_untouched():
    from models import ProductClassifier

    torch.manual_seed(0)
    model = ProductClassifier(1, 10, 28, width=4, hidden=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    best, timings = fastest_thread_count(model, x, y, F.cross_entropy, (1, 2))
    assert best in (1, 2) and set(timings) == {1, 2}
    assert timings[best] == min(timings.values()) and all(t > 0 for t in timings.values())
    assert torch.get_num_threads() == threads
    for k, v in model.state_dict().items():   # running statistics included
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())


def test_product_classifier_shapes_and_channels_last_agreement():
    from models import ProductClassifier

    torch.manual_seed(0)
    for c, size in ((1, 28), (3, 32)):
        model = ProductClassifier(c, 10, size, width=4, convs_per_block=2, hidden=8).eval()
        x = torch.randn(3, c, size, size)
        out = model(x)
        assert out.shape == (3, 10)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(fast, out, rtol=1e-4, atol=1e-5)
