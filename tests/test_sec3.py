"""Checks of the section-3 helpers on cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.sec3_regularization import (
    add_weight_penalty, batch_norm_internals, bias_variance_decomposition, bootstrap_predictions, class_proportions,
    epochs_to_reach, evaluation_noise_note, fit_polynomial, lambda_label, max_proportion_deviation, near_zero_share,
    prune_small_weights, random_split, smooth_target, stratified_split, weight_matrices, weight_penalty)
from models import MLP


# ----------------------------------------------------------------------------- bias–variance
def test_decomposition_known_answer():
    x = np.linspace(0, 1, 50)
    f = smooth_target(x)
    offset, spread_, sigma = 0.5, 0.3, 0.2
    # Two models: f + 0.5 ± 0.3 → mean prediction f + 0.5 (bias² 0.25), variance 0.09.
    preds = np.stack([f + offset + spread_, f + offset - spread_])
    noise = sigma * np.where(np.arange(x.size) % 2 == 0, 1.0, -1.0)  # mean zero: the cross term vanishes
    out = bias_variance_decomposition(preds, f, f + noise)
    assert out["bias_squared"] == pytest.approx(offset ** 2)
    assert out["variance"] == pytest.approx(spread_ ** 2)
    assert out["noise"] == pytest.approx(sigma ** 2)
    assert out["test_mse"] == pytest.approx(offset ** 2 + spread_ ** 2 + sigma ** 2)
    assert out["residual"] == pytest.approx(0.0, abs=1e-12)


def test_decomposition_perfect_model_has_only_noise():
    x = np.linspace(0, 1, 40)
    f = smooth_target(x)
    y = f + np.random.default_rng(0).normal(0, 0.1, x.size)
    out = bias_variance_decomposition(np.tile(f, (5, 1)), f, y)
    assert out["bias_squared"] < 1e-30 and out["variance"] < 1e-30
    assert out["test_mse"] == pytest.approx(out["noise"])


def test_bootstrap_variance_of_the_mean():
    # Fitting a constant (the sample mean): its bootstrap variance is var(y)/n (population variance).
    rng = np.random.default_rng(1)
    x = np.arange(40.0)
    y = rng.normal(0, 2.0, x.size)

    def fit_mean(xs, ys):
        return lambda q: np.full(np.shape(q), ys.mean())

    preds = bootstrap_predictions(x, y, np.zeros(3), fit_mean, 4000, np.random.default_rng(2))
    assert preds.shape == (4000, 3)
    assert preds[:, 0].var() == pytest.approx(y.var() / y.size, rel=0.1)
    assert preds[:, 0].mean() == pytest.approx(y.mean(), abs=0.05)


def test_bootstrap_of_an_exact_polynomial_has_no_bias_or_variance():
    x = np.linspace(0, 1, 30)
    y = 1 - 2 * x + 3 * x ** 2  # noise-free: every resample with >= 3 distinct x recovers it
    x_test = np.linspace(0, 1, 20)
    preds = bootstrap_predictions(x, y, x_test, lambda a, b: fit_polynomial(a, b, 2), 50, np.random.default_rng(0))
    out = bias_variance_decomposition(preds, 1 - 2 * x_test + 3 * x_test ** 2, 1 - 2 * x_test + 3 * x_test ** 2)
    assert out["bias_squared"] < 1e-20 and out["variance"] < 1e-20


# ----------------------------------------------------------------------------- penalties and sparsity
@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_weight_penalty_hooks_match_autograd(kind):
    lam = 0.01
    torch.manual_seed(0)
    hooked = MLP(6, (5, 4), 3)
    plain = MLP(6, (5, 4), 3)
    plain.load_state_dict(hooked.state_dict())
    add_weight_penalty(hooked, kind, lam)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    torch.nn.functional.cross_entropy(hooked(x), y).backward()
    # Reference: the penalty written into the loss, differentiated by autograd (biases not penalised).
    penalty = sum((w.abs() if kind == "l1" else w ** 2).sum() for w in weight_matrices(plain))
    (torch.nn.functional.cross_entropy(plain(x), y) + lam * penalty).backward()
    for (name, a), b in zip(hooked.named_parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    assert weight_penalty(plain, kind, lam) == pytest.approx(float(lam * penalty.detach()), rel=1e-6)


def test_weight_penalty_rejects_unknown_kind():
    with pytest.raises(ValueError):
        add_weight_penalty(MLP(2, (2,), 2), "l3", 0.1)


def test_near_zero_share_and_pruning():
    assert near_zero_share([0.0, 5e-4, -5e-4, 2e-3, -1.0], 1e-3) == pytest.approx(3 / 5)
    assert near_zero_share([], 1e-3) == 0.0
    model = MLP(3, (2,), 2)
    with torch.no_grad():
        model.net[1].weight.copy_(torch.tensor([[1e-4, -2.0, 3e-4], [0.5, -1e-5, 1.0]]))
    assert prune_small_weights(model, 1e-3) == 3 + int((model.net[3].weight.abs() < 1e-3).sum())
    assert model.net[1].weight[0, 0] == 0 and model.net[1].weight[0, 1] == -2.0


# ----------------------------------------------------------------------------- splits
def test_stratified_split_keeps_class_proportions():
    y = np.repeat(np.arange(4), [100, 50, 30, 20])  # imbalanced classes
    parts = stratified_split(y, (0.6, 0.2, 0.2), seed=3)
    everything = np.concatenate(parts)
    assert np.array_equal(np.sort(everything), np.arange(y.size))  # disjoint and complete
    for part, frac in zip(parts, (0.6, 0.2, 0.2)):
        counts = np.bincount(y[part], minlength=4)
        assert np.all(np.abs(counts - frac * np.bincount(y)) <= 1)  # within one example per class
    assert max_proportion_deviation(y[parts[1]], y, 4) < 0.01


def test_random_split_and_proportions():
    parts = random_split(10, (0.7, 0.3), seed=0)
    assert [len(p) for p in parts] == [7, 3]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(10))
    assert class_proportions([0, 0, 1, 3], 4) == pytest.approx([0.5, 0.25, 0.0, 0.25])
    assert max_proportion_deviation([0, 0], [0, 1], 2) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- normalization
def test_batch_norm_internals_with_population_running_stats():
    torch.manual_seed(0)
    model = MLP(5, (7,), 3, batch_norm=True)
    x = torch.randn(64, 5)
    bn = model.net[2]
    with torch.no_grad():
        pre = model.net[1](model.net[0](x))
        bn.running_mean.copy_(pre.mean(0))
        bn.running_var.copy_(pre.var(0, unbiased=False))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # The batch is the whole population: batch, running and population statistics coincide,
    # so train mode and eval mode compute the same function.
    out = batch_norm_internals(model, x, x, (2, 8), x, torch.zeros(64, dtype=torch.long))
    assert out["running_vs_population_mean_abs_error"] < 1e-6
    assert out["batch_vs_population_var_rel_error"] < 1e-6
    assert out["train_vs_eval_logit_mean_abs_diff"] < 1e-5
    assert out["train_vs_eval_prediction_agreement"] == 1.0
    assert out["same_example_other_batch_logit_change"]["eval_mode"] == 0.0
    assert set(out["train_mode_accuracy_by_batch_size"]) == {2, 8}
    for k, v in model.state_dict().items():  # probes ran on copies
        assert torch.equal(v, before[k]), k


def test_small_helpers():
    assert epochs_to_reach([0.5, 0.7, 0.9, 0.95], 0.9) == 3
    assert epochs_to_reach([0.5, 0.6], 0.9) is None
    assert lambda_label(0.0) == "0" and lambda_label(1e-4) == "1e-4"
    assert "smaller than twice" in evaluation_noise_note(0.80, 0.81, 100)
    assert "larger than twice" in evaluation_noise_note(0.60, 0.90, 1000)
