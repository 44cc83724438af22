"""2.6: initialisation helpers on cases with known answers, the six weight distributions' scales, and the
write-up's comparisons (a tie is called a tie, a clear win is named)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.common.scratch_training import scratch_mlp
from experiments.s2_optimization.t2_6_initialization import (ACTIVATIONS, DISTRIBUTIONS, INIT_SCHEMES, MATCHED,
                                                             Result, headline_verdict, initialise, layer_statistics,
                                                             sample_weights, write_up)
from utils.history import History
from utils.report import compare_predictions


def test_zero_init_gives_exactly_zero_activations_and_weight_gradients():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 8)).astype(np.float32), rng.integers(0, 4, 32)
    for act in ("tanh", "relu"):
        model = scratch_mlp((8, 16, 16, 16, 4), act, seed=0)
        initialise(model, "zeros", None, seed=0)
        acts, grads = layer_statistics(model, x, y)
        assert acts == [0.0] * 3 and grads == [0.0] * 4


def test_he_init_keeps_relu_activations_at_scale_and_small_normal_vanishes():
    x = np.random.default_rng(0).standard_normal((256, 64)).astype(np.float32)
    y = np.zeros(256, dtype=int)
    he = scratch_mlp((64,) + (64,) * 9 + (10,), "relu", seed=0)
    initialise(he, "he_normal", None, seed=0)
    small = scratch_mlp((64,) + (64,) * 9 + (10,), "relu", seed=0)
    initialise(small, "normal", 0.01, seed=0)
    he_acts, _ = layer_statistics(he, x, y)
    small_acts, _ = layer_statistics(small, x, y)
    assert 0.3 < he_acts[-1] / he_acts[0] < 3
    # each layer multiplies the std by about 0.01·√(64/2) ≈ 0.057: eight layers ≈ 1e-10
    assert 1e-12 < small_acts[-1] / small_acts[0] < 1e-8


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_each_distribution_has_its_theoretical_scale(name):
    w = sample_weights(name, 64, 256, np.random.default_rng(0))
    assert w.shape == (256, 64)
    theory = DISTRIBUTIONS[name][1](64, 256)
    assert w.std() == pytest.approx(theory, rel=0.03)
    assert abs(w.mean()) < 4 * theory / math.sqrt(w.size)
    if "uniform" in name.lower() or name.startswith("U"):
        assert np.abs(w).max() <= theory * math.sqrt(3) + 1e-12   # U[−a, a] has std a/√3


def _paired(n, a_right, b_start, b_right):
    a = np.zeros(n, bool)
    a[:a_right] = True
    b = np.zeros(n, bool)
    b[b_start:b_start + b_right] = True
    return a, b


def _result(rival_pair):
    """He vs Xavier on ReLU decided by ``rival_pair``; every other init far behind its matched one."""
    stats = {a: {n: [0.0] * 3 if n == "zeros" else [0.5, 0.4, 0.3] for n in INIT_SCHEMES} for a in ACTIVATIONS}
    acc = {a: {n: [0.1 if n in ("zeros", "small normal (σ 0.01)") else 0.9] for n in INIT_SCHEMES} for a in ACTIVATIONS}
    hist = {a: {n: History(train_loss=[2.3, 1.0]) for n in INIT_SCHEMES} for a in ACTIVATIONS}
    far = _paired(360, 330, 300, 36)
    comparisons = {}
    for act in ACTIVATIONS:
        for name in INIT_SCHEMES:
            if name != MATCHED[act]:
                a, b = (rival_pair[1], rival_pair[0]) if name == "Xavier/Glorot" and act == "relu" else (far[1], far[0])
                comparisons[f"{act}: {name} vs {MATCHED[act]}"] = compare_predictions(name, a, MATCHED[act], b)
    weights = {n: {"mean": 0.001, "std": 0.12 if n.startswith(("Xavier", "Kaiming")) else 0.9, "theory_std": 0.12}
               for n in DISTRIBUTIONS}
    return Result(4, 16, 2, 0.01, [0], 64, 360, 0.103, weights, {n: [1.0] for n in DISTRIBUTIONS},
                  {n: [0.0, 1.0] for n in DISTRIBUTIONS}, stats, stats, acc, hist, comparisons)


def test_write_up_calls_a_small_gap_a_tie():
    r = _result(_paired(360, 330, 20, 328))
    text, verdict = write_up(r), headline_verdict(r)
    assert "No measurable difference between Xavier/Glorot and He/Kaiming" in text
    assert "relu: Xavier/Glorot ≈ He/Kaiming (tie)" in verdict
    assert "360 test digits" in text and "may be noise" not in text


def test_write_up_names_a_clear_winner():
    r = _result(_paired(360, 340, 40, 40))
    text, verdict = write_up(r), headline_verdict(r)
    assert "He/Kaiming beats Xavier/Glorot in test accuracy" in text
    assert "relu: He/Kaiming beats Xavier/Glorot" in verdict
    assert "exactly 0" in text and "7.5" in text   # zeros' stats; 0.9 / 0.12 = 7.5× narrower
