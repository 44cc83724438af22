"""The section-1 helpers: the batched gate networks and their chain-rule trace (experiments.s1_foundations._shared),
and the scratch training loop shared with section 2 (experiments.common.scratch_training)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import scratch
from experiments.common.scratch_training import scratch_mlp, train_scratch
from experiments.s1_foundations._shared import (GATE_INPUTS, GATE_TARGETS, GateNets, chain_rule_trace,
                                                failure_reason, logistic_regression_on_gate, unit_roles)

X = np.array(GATE_INPUTS)


@pytest.mark.parametrize("width, units", [(2, (0, 1)), (5, (1, 3))])
def test_chain_rule_partials_equal_finite_differences(width, units):
    net = GateNets(width, restarts=3, seed=7)
    for r in range(3):
        for x, y in zip(GATE_INPUTS, GATE_TARGETS["XOR"]):
            trace = chain_rule_trace(net.one(r), x, y, units=units)
            assert len(trace["partials"]) == 9          # b2, then w2, W1 (2 inputs) and b1 of each traced unit
            p, _ = net.forward(np.array([x]))
            assert trace["forward"]["p"] == pytest.approx(p[r, 0], abs=1e-14)
            for name, part in trace["partials"].items():
                assert part["chain_rule"] == pytest.approx(np.prod(list(part["factors"].values())), abs=1e-15)
                assert part["chain_rule"] == pytest.approx(part["finite_difference"], abs=1e-7), name


def test_an_off_relu_passes_exactly_zero_gradient():
    P = {"W1": np.array([[1.0, 1.0], [-1.0, -1.0]]), "b1": np.array([0.0, 0.5]), "w2": np.array([0.5, 2.0]),
         "b2": np.array(0.1)}
    trace = chain_rule_trace(P, (1.0, 1.0), 0.0)    # unit 2: z1 = -1.5 < 0
    for name in ("w2[2]", "W1[2,1]", "W1[2,2]", "b1[2]"):
        assert trace["partials"][name]["chain_rule"] == 0.0
    p = 1 / (1 + math.exp(-(0.5 * 2 + 0.1)))
    assert trace["partials"]["b2"]["chain_rule"] == pytest.approx(p)          # ∂BCE/∂z2 = p − y with y = 0
    assert trace["partials"]["W1[1,1]"]["chain_rule"] == pytest.approx(p * 0.5)


def test_gate_backward_matches_torch_autograd():
    net = GateNets(3, restarts=4, seed=3, copies=2)
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


def test_copies_start_identical_and_train_on_their_own_targets():
    net = GateNets(4, restarts=3, seed=0, copies=3)
    assert net.count == 9
    np.testing.assert_array_equal(net.params["W1"][:3], net.params["W1"][3:6])
    Y = np.repeat(np.array([GATE_TARGETS[g] for g in GATE_TARGETS]), 3, axis=0)
    logged, curves = net.train(X, Y, steps=200, lr=0.5, log_every=50)
    assert logged == [0, 50, 100, 150, 199] and curves.shape == (5, 9)
    assert not np.allclose(net.params["W1"][:3], net.params["W1"][6:])   # AND and XOR copies moved apart


def test_gate_training_lowers_every_loss_and_a_wide_net_solves_xor():
    y = np.array(GATE_TARGETS["XOR"])
    net = GateNets(16, restarts=6, seed=42)
    _, curves = net.train(X, y, steps=3000, lr=0.5, log_every=100)
    assert np.all(curves[-1] <= curves[0] + 1e-12)
    p, _ = net.forward(X)
    assert np.all((p > 0.5) == (y > 0.5))                     # every one of the 6 seeds
    assert curves[-1].max() < 0.01


def test_unit_roles_and_failure_reasons():
    z1 = np.array([[-1.0, 2.0, 1.0], [-1.0, 3.0, -1.0], [-2.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])   # (inputs, units)
    assert {k: int(v) for k, v in unit_roles(z1).items()} == {"dead": 1, "linear": 1, "bending": 1}
    y = np.array(GATE_TARGETS["XOR"])
    assert "dead net" in failure_reason(-np.ones((4, 2)), y)
    assert "linear" in failure_reason(np.array([[1.0, -1], [2, -1], [3, -1], [4, -1]]), y)
    shared_off = np.array([[-1.0, -1], [-1, -1], [1, -1], [-1, 1]])   # inputs 1 and 2 (targets 0, 1) all off
    assert "share the output" in failure_reason(shared_off, y)


def test_single_neuron_cannot_fit_xor_but_fits_and_and_or():
    loss_xor, _ = logistic_regression_on_gate(X, np.array(GATE_TARGETS["XOR"]), steps=3000, lr=0.5)
    assert loss_xor == pytest.approx(math.log(2), abs=1e-6)   # the best a line can do: p = 0.5 everywhere
    for gate in ("AND", "OR"):
        loss, correct = logistic_regression_on_gate(X, np.array(GATE_TARGETS[gate]), steps=3000, lr=0.5)
        assert correct == 4 and loss < 0.05


def test_train_scratch_labels_divergence_without_raising():
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((64, 8)).astype(np.float32), rng.integers(0, 3, 64),
            rng.standard_normal((16, 8)).astype(np.float32), rng.integers(0, 3, 16))
    model = scratch_mlp((8, 16, 16, 3), "relu", seed=0)
    opt = scratch.SGD(model.param_arrays(), lr=1e6, momentum=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # overflow must not even warn
        run = train_scratch(model, data, opt, epochs=5, batch_size=16)
    assert run.status == "diverged" and run.diverged
    assert math.isnan(run.train_loss[-1]) and all(math.isfinite(v) for v in run.train_loss[:-1])
    assert len(run.val_acc) == len(run.train_loss) - 1         # the diverged epoch has no held-out numbers

    model = scratch_mlp((8, 16, 3), "relu", seed=0)
    run = train_scratch(model, data, scratch.SGD(model.param_arrays(), lr=0.1), epochs=3, batch_size=16)
    assert run.status == "done" and len(run.val_acc) == 3 and run.stopped_epoch == 3
    assert run.train_loss[-1] < run.train_loss[0]
    loss, acc = scratch.evaluate(model, data[2], data[3])
    assert run.val_loss[-1] == pytest.approx(loss) and run.val_acc[-1] == pytest.approx(acc)


def test_scratch_mlp_layers_and_seeded_weights():
    a, b = scratch_mlp((8, 16, 16, 3), "tanh", seed=1), scratch_mlp((8, 16, 16, 3), "tanh", seed=1)
    assert [type(layer).__name__ for layer in a.layers] == ["Linear", "Activation", "Linear", "Activation", "Linear"]
    for pa, pb in zip(a.param_arrays(), b.param_arrays()):
        np.testing.assert_array_equal(pa, pb)
    assert a.num_parameters() == 8 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
