"""Section 5's shared helpers and models: ResNet-18 against torchvision, plain vs residual blocks,
augmentation, per-class subsets, gradient norms, and the ImageNet weights' hash check and offline failure."""
from __future__ import annotations

import hashlib
import time

import pytest
import torch
import torch.nn as nn

from experiments.s5_modern import _shared as sh
from models import BasicBlock, CifarNet, CifarResNet, count_parameters, resnet18_cifar
from utils.download import DataUnavailable


def test_our_resnet18_matches_torchvision_with_the_cifar_stem():
    from experiments.s5_modern.t5_1_resnet18 import torchvision_twin

    ours, theirs = resnet18_cifar(10, 3, 64), torchvision_twin()
    assert count_parameters(ours) == count_parameters(theirs) == 11_173_962
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    assert [len(s) for s in ours.stages] == [2, 2, 2, 2] and ours.depth == 18
    out = ours.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert ours.features(torch.randn(2, 3, 32, 32)).shape == (2, 512)


def test_plain_block_has_no_shortcut_and_residual_block_adds_its_input():
    plain = BasicBlock(8, 8, residual=False)
    res = BasicBlock(8, 8, residual=True)
    res.load_state_dict(plain.state_dict())
    for block in (plain, res):
        nn.init.zeros_(block.bn2.weight)          # the main path outputs zero (bn2's bias is zero)
    x = torch.randn(3, 8, 6, 6)
    assert torch.equal(plain.eval()(x), torch.zeros_like(x))
    assert torch.allclose(res.eval()(x), torch.relu(x))   # identity shortcut, then ReLU
    down = BasicBlock(8, 16, stride=2)
    assert down(x).shape == (3, 16, 3, 3) and len(down.shortcut) == 2
    assert len(BasicBlock(8, 16, stride=2, residual=False).shortcut) == 0


def test_paper_style_depths_and_one_channel_inputs():
    net = CifarResNet((3, 3, 3), (16, 32, 64), num_classes=10)
    assert net.depth == 20
    plain = CifarResNet((3, 3, 3), (16, 32, 64), residual=False)
    # option-B shortcuts (1×1 conv + BN) exist only in the residual net, at the two stage changes
    assert count_parameters(net) - count_parameters(plain) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    grey = CifarNet(1, 10, (8, 8, 16, 16))
    assert grey(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_cifar_augment_keeps_shape_and_mirrors_or_shifts_content():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = sh.cifar_augment(padding=0)(x)           # no padding: each image is itself or its mirror
    assert out.shape == x.shape
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    shifted = sh.cifar_augment(padding=2)(x)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)


def test_clip_batch_and_per_class_subset():
    assert sh.clip_batch(128, 50) == 6 and sh.clip_batch(128, 10_000) == 128 and sh.clip_batch(128, 10) == 4
    y = torch.tensor([0] * 7 + [1] * 5 + [2] * 9)
    idx = sh.per_class_subset(y, 3, [0, 2], seed=1)
    assert torch.bincount(y[idx], minlength=3).tolist() == [3, 0, 3]
    assert torch.equal(idx, sh.per_class_subset(y, 3, [0, 2], seed=1))   # same seed, same picks
    assert len(sh.per_class_subset(y, None, [0, 1, 2], seed=1)) == 21


def test_per_class_accuracy():
    import numpy as np

    acc = sh.per_class_accuracy(np.array([1, 0, 1, 1], bool), [0, 0, 1, 2], ["a", "b", "c", "d"])
    assert acc["a"] == 0.5 and acc["b"] == 1.0 and acc["c"] == 1.0 and acc["d"] != acc["d"]  # nan: no examples


def test_conv_gradient_norms_one_per_3x3_conv_input_to_output():
    torch.manual_seed(0)
    net = CifarResNet((2, 2, 2), (4, 8, 16))
    norms = sh.conv_gradient_norms(net, torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,)), "cpu")
    assert len(norms) == net.depth - 1          # stem + two per block; the classifier is not a conv
    assert all(n > 0 for n in norms)
    assert all(p.grad is None for p in net.parameters())   # gradients cleared afterwards


def test_sha256_prefix_in_the_file_name_is_checked(tmp_path):
    payload = b"weights" * 100
    digest = hashlib.sha256(payload).hexdigest()
    good = tmp_path / f"resnet18-{digest[:8]}.pth"
    good.write_bytes(payload)
    bad = tmp_path / "resnet18-00000000.pth"
    bad.write_bytes(payload)
    assert sh.sha256_prefix_ok(good)
    assert not sh.sha256_prefix_ok(bad)
    plain_name = tmp_path / "no_hash.pth"
    plain_name.write_bytes(payload)
    assert not sh.sha256_prefix_ok(plain_name)


def test_imagenet_weights_fail_fast_offline_and_load_when_served(tmp_path, monkeypatch):
    start = time.perf_counter()
    with pytest.raises(DataUnavailable):
        sh.imagenet_resnet18_state(tmp_path)       # DL_OFFLINE is set by the test suite
    assert time.perf_counter() - start < 5
    state = {"w": torch.arange(4.0)}
    blob = tmp_path / "blob.pth"
    torch.save(state, blob)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    named = tmp_path / "weights" / f"resnet18-{digest[:8]}.pth"
    named.parent.mkdir()
    blob.rename(named)                              # already cached: no download needed
    loaded = sh.imagenet_resnet18_state(tmp_path, url=f"http://127.0.0.1:9/{named.name}")
    assert torch.equal(loaded["w"], state["w"])
    named.write_bytes(b"tampered")
    with pytest.raises(DataUnavailable, match="sha256"):
        sh.imagenet_resnet18_state(tmp_path, url=f"http://127.0.0.1:9/{named.name}")


def test_imagenet_view_resizes_and_normalises():
    class DS:
        mean, std = (0.5,), (0.25,)

    x = torch.zeros(2, 1, 32, 32)                  # normalised zeros = pixel value 0.5
    out = sh.imagenet_view(DS, x, size=64)
    assert out.shape == (2, 3, 64, 64)
    expected = (0.5 - torch.tensor(sh.IMAGENET_MEAN)) / torch.tensor(sh.IMAGENET_STD)
    assert torch.allclose(out[0, :, 10, 10], expected, atol=1e-6)
