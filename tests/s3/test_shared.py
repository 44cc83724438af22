"""Section-3 helpers on cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.s3_regularization._shared import (add_weight_penalty, bias_variance_decomposition,
                                                   bootstrap_predictions, compare_accuracy, compare_gaps, compare_mse,
                                                   compare_spread, fit_polynomial, lambda_label, log_histogram,
                                                   near_zero_share, over_seeds, prune_small_weights, smooth_target,
                                                   tied_with_best, weight_matrices, weight_penalty)
from experiments.s3_regularization._shared_norm import NORMS, batch_norm_internals, norm_cnn, norm_layer
from models import MLP
from utils.report import compare_predictions


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


# ----------------------------------------------------------------------------- the rule, section-3 cases
def test_compare_mse_one_seed_uses_blocks_of_neighbours_and_several_seeds_the_spread():
    x = np.linspace(0, 1, 200)
    a = 0.06 + 0.05 * np.sin(6 * np.pi * x) ** 2       # smooth, correlated along x
    same = compare_mse("A", "B", seeds_a=[a.mean()], seeds_b=[a.mean()], errors_a=a, errors_b=a + 0.01 * np.sin(6 * np.pi * x))
    assert same.winner is None and "moving blocks" in same.sentence() and same.n == 200
    clear = compare_mse("A", "B", seeds_a=[a.mean()], seeds_b=[a.mean() + 0.1], errors_a=a, errors_b=a + 0.1)
    assert clear.winner == "A" and clear.diff == pytest.approx(-0.1)
    seeds = compare_mse("A", "B", seeds_a=[0.06, 0.061, 0.059], seeds_b=[0.07, 0.071, 0.069], errors_a=a, errors_b=a)
    assert seeds.method == "seeds" and seeds.winner == "A"


def test_compare_accuracy_names_the_examples():
    a, b = np.ones(300, bool), np.r_[np.ones(200, bool), np.zeros(100, bool)]
    c = compare_accuracy("A", "B", seeds_a=[1.0], seeds_b=[0.67], correct_a=a, correct_b=b, unit="validation images")
    assert c.winner == "A" and "300 validation images" in c.sentence()
    tie = compare_accuracy("A", "B", seeds_a=[0.9, 0.91], seeds_b=[0.905, 0.9], correct_a=a, correct_b=b)
    assert tie.method == "seeds" and tie.winner is None


def test_compare_gaps_pairs_models_on_the_same_examples():
    n_tr, n_te = 3000, 2000
    tr_a, tr_b = np.r_[np.ones(2700), np.zeros(300)] > 0, np.r_[np.ones(2900), np.zeros(100)] > 0
    te = np.r_[np.ones(1670), np.zeros(330)] > 0
    c = compare_gaps("dropout", "none", train_a=tr_a, train_b=tr_b, test_a=te, test_b=te)
    assert c.value_a == pytest.approx(0.9 - 0.835) and c.value_b == pytest.approx(2900 / n_tr - 0.835)
    assert c.winner == "dropout" and c.unit == "training and test images" and c.n == n_tr + n_te
    tie = compare_gaps("dropout", "none", train_a=tr_a, train_b=tr_a, test_a=te, test_b=te)
    assert tie.winner is None and tie.diff == 0.0
    seeds = compare_gaps("dropout", "none", seeds_a=[0.06, 0.07], seeds_b=[0.13, 0.14])
    assert seeds.method == "seeds" and seeds.winner == "dropout"


def test_compare_spread():
    rng = np.random.default_rng(0)
    narrow, wide = rng.normal(0.97, 0.002, 10), rng.normal(0.97, 0.009, 50)
    c = compare_spread("k-fold", narrow, "single", wide)
    assert c.winner == "k-fold" and c.value_a == pytest.approx(np.std(narrow, ddof=1))
    assert compare_spread("k-fold", narrow, "single", np.tile(narrow, 5)).winner is None


def test_tied_with_best():
    win = compare_predictions("A", np.ones(300, bool), "B", np.zeros(300, bool))
    tie = compare_predictions("A", np.ones(300, bool), "C", np.ones(300, bool))
    assert tied_with_best(["A", "B", "C"], {"B": win, "C": tie}) == ["A", "C"]
    assert tied_with_best(["A", "B"], {"B": win}) == ["A"]


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
        model.net[3].weight.copy_(torch.tensor([[5e-4, 0.3], [-0.7, 2e-3]]))
    assert prune_small_weights(model, 1e-3) == 4
    assert model.net[1].weight[0, 0] == 0 and model.net[1].weight[0, 1] == -2.0 and model.net[3].weight[1, 1] == 2e-3


def test_small_helpers():
    assert lambda_label(0.0) == "0" and lambda_label(1e-4) == "1e-4" and lambda_label(1e-2) == "1e-2"
    assert over_seeds([0.9123]) == "91.2%"
    assert over_seeds([0.91, 0.93]) == "92.0% ± 1.4% (2 seeds)"
    bins = np.logspace(-6, 0, 7)
    counts = log_histogram(np.array([0.0, -1e-9, 5e-6, 3e-4, -0.5, 2.0]), bins)
    assert counts.tolist() == [3, 0, 1, 0, 0, 2]   # below the first edge → first bin; above the last → last


# ----------------------------------------------------------------------------- normalization
def test_norm_layers_normalise_what_they_claim():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5) * 3 + 2
    with torch.no_grad():
        inst = norm_layer("instance", 4)(x)
        layer = norm_layer("layer", 4)(x)
        group = norm_layer("group", 4, groups=2)(x)
        batch = norm_layer("batch", 4).train()(x)
    torch.testing.assert_close(inst.mean((2, 3)), torch.zeros(6, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.mean((1, 2, 3)), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(group.reshape(6, 2, -1).mean(2), torch.zeros(6, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.nn.GroupNorm(4, 4)(x), inst, atol=1e-5, rtol=1e-5)
    assert isinstance(norm_layer("none", 4), torch.nn.Identity)
    with pytest.raises(ValueError):
        norm_layer("weight", 4)


def test_norm_cnn_variants_share_their_initial_weights():
    models = {k: norm_cnn(k, 1, 10, channels=(4, 8), seed=3) for k in NORMS}
    convs = {k: [p for p in m.parameters() if p.ndim >= 2] for k, m in models.items()}
    for k in NORMS:
        assert len(convs[k]) == 3
        for a, b in zip(convs["none"], convs[k]):
            assert torch.equal(a, b), k
    assert models["batch"](torch.randn(5, 1, 28, 28)).shape == (5, 10)


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
    # so train mode and eval mode compute the same function. Batch size 500 > 64 images is skipped.
    out = batch_norm_internals(model, x, x, (2, 8, 500), x, torch.zeros(64, dtype=torch.long))
    assert out["running_vs_population_mean_abs_error"] < 1e-6
    assert out["batch_vs_population_var_rel_error"] < 1e-5
    assert out["train_vs_eval_logit_mean_abs_diff"] < 1e-5
    assert out["train_vs_eval_prediction_agreement"] == 1.0
    assert out["same_example_other_batch_logit_change"]["eval_mode"] == 0.0
    assert out["batch_sizes"] == [2, 8] and len(out["train_mode_accuracy"]) == 2
    for k, v in model.state_dict().items():  # probes ran on copies
        assert torch.equal(v, before[k]), k


def test_batch_norm_internals_of_a_cnn_in_chunks():
    torch.manual_seed(1)
    model = norm_cnn("batch", 1, 10, channels=(2, 3), seed=1)
    x = torch.randn(2300, 1, 8, 8)           # more than one 1000-image chunk
    out = batch_norm_internals(model.eval(), x, x[:32], (1, 4, 32, 500), x[:40], torch.zeros(40, dtype=torch.long))
    assert out["channels"] == [2, 3] and out["population_mean"].shape == (5,)
    with torch.no_grad():
        first = model[1](model[0](x))       # the first BN layer's input, all at once
    np.testing.assert_allclose(out["population_mean"][:2], first.mean((0, 2, 3)).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["population_var"][:2], first.var((0, 2, 3), unbiased=False).numpy(), rtol=1e-4)
    assert out["batch_sizes"] == [1, 4, 32] and out["eval_examples"] == 40
