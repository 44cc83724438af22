"""Checks of the section-1 and section-2 helpers: hand-written gradients against finite differences and torch,
optimizers and schedules against torch, and helpers on cases with known answers."""
from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch

import config
import scratch
from experiments.sec1_foundations import (
    GATE_INPUTS, GATE_TARGETS, GateNets, ShallowNets, activation_vs_torch, chain_rule_trace, epochs_to_reach,
    gradient_difference, logistic_regression_on_gate, losses_vs_torch, robust_line_fit, scratch_mlp,
    torch_and_scratch_mlp, train_scratch, ACTIVATION_NAMES)
from experiments.sec2_optimization import (
    ARCHITECTURES, OPTIMIZER_NAMES, TRAJECTORY_LRS, IllConditionedBowl, Rosenbrock, backprop_equation_checks, compile_latex,
    composite_network_check, depth_model, initialise, layer_statistics, lr_range_test, make_schedules,
    optimizer_trajectory, residual_block_class, run_verdict, smooth_losses, suggest_lr, torch_schedule_curve,
    weight_grad_norms)
from scratch.gradcheck import check_layer, numerical_gradient
from scratch.schedules import lr_curve
from utils.train import FitResult


# ----------------------------------------------------------------------------- 1.1 logic gates
@pytest.mark.parametrize("restart", [0, 1, 2])
def test_chain_rule_partials_equal_finite_differences(restart):
    net = GateNets(restarts=3, seed=7)
    for x, y in zip(GATE_INPUTS, GATE_TARGETS["XOR"]):
        trace = chain_rule_trace(net, x, y, restart=restart)
        assert len(trace["partials"]) == 9          # every weight and bias of the 2-2-1 net
        for name, part in trace["partials"].items():
            assert part["chain_rule"] == pytest.approx(np.prod(list(part["factors"].values())), abs=1e-15)
            assert part["chain_rule"] == pytest.approx(part["finite_difference"], abs=1e-7), name


def test_gate_backward_matches_torch_autograd():
    net = GateNets(restarts=4, seed=3)
    X = np.array(GATE_INPUTS)
    y = np.array(GATE_TARGETS["XOR"])
    p, cache = net.forward(X)
    grads = net.backward(cache, y)
    params = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    z1 = torch.einsum("nk,rjk->rnj", torch.tensor(X), params["W1"]) + params["b1"][:, None, :]
    z2 = torch.einsum("rnj,rj->rn", torch.relu(z1), params["w2"]) + params["b2"][:, None]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z2, torch.tensor(y).expand_as(z2), reduction="none")
    loss.mean(dim=1).sum().backward()
    for name, g in grads.items():
        np.testing.assert_allclose(g, params[name].grad.numpy(), atol=1e-12, err_msg=name)
    np.testing.assert_allclose(net.loss(p, y), loss.mean(dim=1).detach().numpy(), atol=1e-12)


def test_gate_training_lowers_every_loss_and_and_is_solved():
    X, y = np.array(GATE_INPUTS), np.array(GATE_TARGETS["AND"])
    net = GateNets(restarts=6, seed=0)
    curves = net.train(X, y, steps=2000, lr=0.5)
    assert np.all(curves[-1] <= curves[0] + 1e-12)
    p, _ = net.forward(X)
    assert np.any(np.all((p > 0.5) == (y > 0.5), axis=1))


def test_single_neuron_cannot_fit_xor_but_fits_and():
    X = np.array(GATE_INPUTS)
    loss_xor, _ = logistic_regression_on_gate(X, np.array(GATE_TARGETS["XOR"]), steps=3000, lr=0.5)
    loss_and, correct_and = logistic_regression_on_gate(X, np.array(GATE_TARGETS["AND"]), steps=3000, lr=0.5)
    assert loss_xor == pytest.approx(math.log(2), abs=1e-6)   # the best a line can do: p = 0.5 everywhere
    assert correct_and == 4 and loss_and < 0.05


# ----------------------------------------------------------------------------- 1.2 - 1.5
def test_activations_match_torch():
    x = np.linspace(-5, 5, 201)
    for name in ACTIVATION_NAMES:
        value_gap, grad_gap = activation_vs_torch(name, x)
        assert value_gap < 1e-12 and grad_gap < 1e-12, name


def test_losses_match_torch():
    assert max(losses_vs_torch(np.linspace(-3, 3, 61)).values()) < 1e-12


def test_shallow_nets_backward_matches_finite_differences():
    net = ShallowNets(n_functions=2, width=5, seed=1)
    x = np.linspace(-1, 1, 7)[:, None]
    targets = np.stack([np.sin(3 * x), x ** 2])
    _, dy = net.mse(x, targets)
    net.backward(dy)
    for param, grad in zip(net.params, net.grads):
        numeric = numerical_gradient(lambda _: float(net.mse(x, targets)[0].sum()), param)
        np.testing.assert_allclose(grad, numeric, atol=1e-7)


def test_manual_backprop_matches_autograd_in_float64():
    net, copy = torch_and_scratch_mlp((12, 9, 7, 4), seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    grad_gap, loss_gap = gradient_difference(net, copy, rng.standard_normal((16, 12)), rng.integers(0, 4, 16))
    assert grad_gap < 1e-12 and loss_gap < 1e-12


def test_robust_line_fit_recovers_a_clean_line_and_resists_outliers():
    from scratch import losses

    x = np.linspace(-1, 1, 50)
    a, b = robust_line_fit(x, 2 * x + 1, losses.mse)
    assert a == pytest.approx(2, abs=1e-3) and b == pytest.approx(1, abs=1e-3)
    y = 2 * x + 1
    y[::10] += 10                                              # 5 gross outliers
    _, b_mse = robust_line_fit(x, y, losses.mse)
    _, b_huber = robust_line_fit(x, y, losses.huber)
    assert abs(b_huber - 1) < abs(b_mse - 1) / 2


def test_epochs_to_reach():
    assert epochs_to_reach([0.5, 0.8, 0.92, 0.95], 0.9) == 3
    assert epochs_to_reach([0.5, 0.6], 0.9) is None


def test_train_scratch_labels_divergence_without_raising():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((64, 8)).astype(np.float32), rng.integers(0, 3, 64),
            rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 3, 16))
    model = scratch_mlp((8, 16, 16, 3), "relu", seed=0)
    opt = scratch.SGD(model.param_arrays(), lr=1e6, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # overflow must not even warn
        run = train_scratch(model, data, opt, epochs=5, batch_size=16)
    assert run.status == "diverged"
    assert all(math.isfinite(v) for v in run.train_loss)       # only the finite epochs are kept

    model = scratch_mlp((8, 16, 3), "relu", seed=0)
    run = train_scratch(model, data, scratch.SGD(model.param_arrays(), lr=0.1), epochs=3, batch_size=16)
    assert run.status == "done" and len(run.test_acc) == 3 and run.train_loss[-1] < run.train_loss[0]


# ----------------------------------------------------------------------------- 2.1 gradient checks
def test_whole_cnn_gradient_check():
    assert composite_network_check(seed=0) < 1e-7


def test_residual_block_gradients():
    block = residual_block_class()(6, activation="tanh", init="xavier_normal", rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((4, 6))
    errors = check_layer(block, x, eps=1e-3, order=4, rng=0)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-8


# ----------------------------------------------------------------------------- 2.2 optimizers
@pytest.mark.parametrize("surface", [Rosenbrock(), IllConditionedBowl()], ids=["rosenbrock", "bowl"])
def test_optimizer_trajectories_match_torch(surface):
    for name in OPTIMIZER_NAMES:
        lr = TRAJECTORY_LRS[type(surface).__name__][name]   # the rates task 2.2 plots
        path, path_t, grad_gap = optimizer_trajectory(surface, name, lr, steps=150)
        assert path.shape == (151, 2)
        assert np.max(np.abs(path - path_t)) < 1e-12, name
        assert grad_gap < 1e-10                               # hand-written surface gradient vs autograd
        assert not np.allclose(path[-1], path[0])             # it actually moved


def test_surfaces_have_their_minimum_where_stated():
    for surface in (Rosenbrock(), IllConditionedBowl()):
        np.testing.assert_allclose(surface.grad(np.array(surface.minimum)), 0, atol=1e-12)
        assert surface.value(*surface.minimum) == pytest.approx(0, abs=1e-12)
    bowl = IllConditionedBowl()
    eig = np.linalg.eigvalsh([[bowl.a11, bowl.a12], [bowl.a12, bowl.a22]])
    np.testing.assert_allclose(eig, [1, 25], rtol=1e-12)


# ----------------------------------------------------------------------------- 2.3 schedules
def test_schedules_match_torch_and_end_where_stated():
    total, base = 80, 0.1
    schedules = make_schedules(base, total)
    assert len(schedules) == 8
    for name, schedule in schedules.items():
        curve = lr_curve(schedule, total)
        np.testing.assert_allclose(curve, torch_schedule_curve(name, base, total), atol=1e-12, err_msg=name)
        assert curve.max() <= base * (1 + 1e-12)
    assert lr_curve(schedules["exponential (to 1%)"], total + 1)[-1] == pytest.approx(0.01 * base)
    assert lr_curve(schedules["cosine"], total + 1)[-1] == pytest.approx(0, abs=1e-15)


# ----------------------------------------------------------------------------- 2.4 LR range test
def test_smooth_losses_bias_correction():
    np.testing.assert_allclose(smooth_losses([3.0] * 5, beta=0.9), 3.0)   # no pull towards 0 at the start
    np.testing.assert_allclose(smooth_losses([1.0, 0.0], beta=0.5), [1.0, 1 / 3])


def test_suggest_lr_finds_the_steepest_descent():
    lrs = np.logspace(-5, 0, 300)
    t = np.log10(lrs)
    loss = 2 - np.tanh(2 * (t + 3)) + np.where(t > -1, 50 * (t + 1) ** 2, 0)   # steepest at 1e-3, blows up > 1e-1
    lr, index = suggest_lr(lrs, loss)
    assert lr == pytest.approx(1e-3, rel=0.05)
    assert index < np.argmin(loss)


def test_lr_range_test_stops_when_the_loss_explodes():
    torch.manual_seed(0)
    x, y = torch.randn(640, 10), torch.randint(0, 3, (640,))
    model = torch.nn.Linear(10, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    lrs, raw, smoothed, stopped = lr_range_test(model, x, y, opt, lr_min=1e-4, lr_max=1e4, batch_size=8, seed=0)
    assert stopped and len(lrs) < 80 and len(lrs) == len(raw) == len(smoothed)
    assert np.all(np.diff(lrs) > 0)
    assert lrs[1] / lrs[0] == pytest.approx((1e4 / 1e-4) ** (1 / 79))


# ----------------------------------------------------------------------------- 2.5 verdicts
def test_run_verdict():
    diverged = FitResult(status="diverged")
    assert run_verdict(diverged, None, 10) == "diverged"
    flat = FitResult()
    flat.history["train_loss"] = [2.5, 2.4]                     # no better than ln 10 = 2.30
    assert run_verdict(flat, 0.25, 10) == "failed to learn"
    good = FitResult()
    good.history["train_loss"] = [1.0, 0.4]
    assert run_verdict(good, 0.85, 10) == "trained"
    assert run_verdict(good, 0.15, 10) == "failed to learn"     # under twice chance


# ----------------------------------------------------------------------------- 2.6 / 2.7
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
    assert 0.2 < he_acts[-1] / he_acts[0] < 5
    assert small_acts[-1] / small_acts[0] < 1e-6


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_depth_model_has_depth_weight_matrices(arch):
    model = depth_model(arch, depth=6, width=16, seed=0)
    rng = np.random.default_rng(0)
    norms = weight_grad_norms(model, rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32))
    assert len(norms) == 6 and all(n > 0 for n in norms)


def test_sigmoid_gradient_vanishes_faster_than_residual():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((128, 64)).astype(np.float32), rng.integers(0, 10, 128)
    ratio = {}
    for arch in ("sigmoid", "ReLU + residual"):
        n = weight_grad_norms(depth_model(arch, depth=12, width=32, seed=0), x, y)
        ratio[arch] = n[0] / n[-1]
    assert ratio["sigmoid"] < 1e-4 < ratio["ReLU + residual"]


# ----------------------------------------------------------------------------- 2.8 derivation
def test_backprop_equations_hold():
    checks = backprop_equation_checks(seed=1, sizes=(4, 5, 3), batch=5)
    assert len(checks) == 8
    assert max(checks.values()) < 1e-8


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_derivation_tex_compiles(tmp_path):
    pdf, message = compile_latex(config.ROOT / "docs" / "backprop_derivation.tex", tmp_path)
    assert pdf is not None, message
    assert pdf.exists() and pdf.stat().st_size > 10_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
