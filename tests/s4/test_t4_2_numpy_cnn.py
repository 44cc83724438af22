"""4.2: the NumPy CNN against torch autograd, the lockstep twin training, and the write-up's verdicts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import scratch
from experiments.s4_cnn import t4_2_numpy_cnn as t42
from experiments.s4_cnn._shared_projects import (StepLog, batch_plan, build_scratch_cnn, discrete_disagreements,
                                                 torch_twin, train_lockstep)
from utils.history import History
from utils.plotting import moving_average
from utils.report import compare_predictions

@pytest.fixture(autouse=True)
def _one_thread():
    """One torch and one BLAS thread: tiny NumPy/torch ops only wait for a second one on a busy CPU."""
    from utils.provenance import limit_threads

    with limit_threads(1):
        yield


class _Ctx:
    """The two RunContext methods train_lockstep uses."""

    def log(self, message):
        pass

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


def test_discrete_disagreements_rounding_only_for_twins_and_counts_relu_flips():
    net = build_scratch_cnn(1, 10, 28, widths=(4, 8), hidden=16, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)   # no flat regions: no exact ties
    y = rng.integers(0, 10, 8)
    same = discrete_disagreements(net, torch_twin(net), x, y)
    assert same["relu_flips"] == 0 and same["pool_flips"] == 0
    assert same["gradient_gap"] < 1e-4
    # Shift the twin's first bias far up: every first-layer pre-activation becomes positive in torch, so
    # exactly the NumPy network's non-positive ones flip.
    twin = torch_twin(net)
    with torch.no_grad():
        twin[0].bias += 100.0
    pre = net.layers[0].forward(x, training=True)
    moved = discrete_disagreements(net, twin, x, y)
    assert moved["relu_flips"] >= int((pre <= 0).sum()) > 0
    assert moved["gradient_gap"] > 1e-2


def test_discrete_disagreements_counts_exact_max_pool_ties():
    net = scratch.Sequential([scratch.MaxPool2d(2), scratch.Flatten(), scratch.Linear(4, 2, rng=0)])
    twin = torch_twin(net)
    x = np.ones((1, 1, 4, 4), np.float32)           # all four windows tied at 1
    x[0, 0, 0, 0] = 2.0                             # the first window has a clear winner
    probe = discrete_disagreements(net, twin, x, np.array([1]))
    assert probe["tied_windows"] == pytest.approx(3 / 4)
    assert probe["pool_flips"] == 0 and probe["pool_flips_at_ties"] == 0  # both take the first of equal values


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


def test_batch_plan_covers_each_epoch_once_in_numpy_or_torch_order():
    plan = batch_plan(10, 4, 7, seed=3)
    assert [len(b) for b in plan] == [4, 4, 2, 4, 4, 2, 4]
    assert sorted(np.concatenate(plan[:3])) == list(range(10))
    assert sorted(np.concatenate(plan[3:6])) == list(range(10))
    np.testing.assert_array_equal(np.concatenate(plan[:3]), np.random.default_rng(3).permutation(10))
    t_plan = batch_plan(10, 4, 3, seed=3, torch_order=True)
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(np.concatenate(t_plan), expected)


def _bright_quadrant_data(n, seed):
    """Images whose label is the quadrant holding a bright 3×3 blob: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    r0, c0 = np.where(y // 2 == 0, 2, 7), np.where(y % 2 == 0, 2, 7)
    for dr in range(3):
        for dc in range(3):
            x[np.arange(n), 0, r0 + dr, c0 + dc] += 2.0
    return x, y


def test_train_lockstep_keeps_the_twins_together_and_learns():
    (x, y), val = _bright_quadrant_data(256, 0), _bright_quadrant_data(128, 1)
    net = build_scratch_cnn(1, 4, 12, widths=(2, 4), hidden=8, seed=0)
    plan = batch_plan(len(y), 32, 24, seed=0)
    shuffled = batch_plan(len(y), 32, 24, 0, torch_order=True)
    twins = {"twin": (torch_twin(net), plan), "shuffled": (torch_twin(net), shuffled)}
    log = train_lockstep(_Ctx(), net, twins, x, y, val, lr=1e-2, plan=plan, eval_after={7, 23}, description="t")
    runs = log.runs
    assert set(runs) == {"NumPy", "twin", "shuffled"} and log.val_step == [8, 24]
    assert all(len(r.train_loss) == 24 and len(r.val_acc) == 2 and r.unit == "step" for r in runs.values())
    assert abs(runs["NumPy"].train_loss[0] - runs["twin"].train_loss[0]) < 1e-5   # same weights, same batch
    assert abs(runs["NumPy"].train_loss[0] - runs["shuffled"].train_loss[0]) > 1e-3  # another batch
    assert runs["NumPy"].val_acc[-1] > 0.9 and abs(runs["NumPy"].val_acc[-1] - runs["twin"].val_acc[-1]) <= 1 / 128
    assert runs["NumPy"].status == "done"


def test_train_lockstep_labels_divergence_instead_of_crashing():
    x, y = _bright_quadrant_data(64, 0)
    net = build_scratch_cnn(1, 4, 12, widths=(2, 2), hidden=4, seed=0)
    for _, param, _ in net.parameters():
        param *= 1e30   # logits overflow float32 to inf → NaN loss
    plan = batch_plan(len(y), 16, 8, seed=0)
    log = train_lockstep(_Ctx(), net, {}, x, y, (x, y), lr=1e-3, plan=plan, eval_after={7}, description="t")
    assert log.runs["NumPy"].status == "diverged" and len(log.runs["NumPy"].train_loss) == 1


# ------------------------------------------------------------------ write_up on hand-built results
def _result(*, np_correct, twin_correct, own_correct, probe_gap=3e-6, same_drift=1e-4):
    n, steps = len(np_correct), 20
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 2.0, steps)

    def run(loss, seconds):
        return History(train_loss=list(loss), val_acc=[0.8], val_loss=[0.5], unit="step", seconds=seconds)
    runs = {"NumPy": run(base, 10.0), t42.SAME: run(base + same_drift, 5.0), t42.OWN: run(base + 0.1, 5.0),
            t42.F64: run(base + same_drift / 10, 9.0)}
    correct = {"NumPy": np_correct, t42.SAME: twin_correct, t42.OWN: own_correct, t42.F64: twin_correct}
    pairs = {"same_batches": ("NumPy", t42.SAME), "own_order": ("NumPy", t42.OWN), "float64": (t42.SAME, t42.F64)}
    probe = {"relu_flips": 0, "pool_flips": 5, "pool_flips_at_ties": 5, "tied_windows": 0.15, "gradient_gap": probe_gap}
    clean = {**probe, "pool_flips": 0, "pool_flips_at_ties": 0, "gradient_gap": 2e-6}
    return t42.Result("digits", [str(i) for i in range(10)], "conv → FC", 1000, 64, 2e-3, steps, 10, 640, 64, n,
                      StepLog(runs, [steps]), {k: float(np.mean(v)) for k, v in correct.items()},
                      {k: compare_predictions(a, correct[a], b, correct[b]) for k, (a, b) in pairs.items()},
                      {k: int((correct[a] != correct[b]).sum()) for k, (a, b) in pairs.items()},
                      {t42.PROBE_NP: [probe] * 3, t42.PROBE_AVG: [clean] * 3, t42.PROBE_64: [clean] * 3},
                      np.diag(np.full(10, n // 10)))


def test_write_up_calls_a_small_gap_a_tie_and_names_the_batch_order_when_it_matters():
    n = 2000
    np_c = np.arange(n) % 5 != 0                       # 80.0%
    twin_c = np_c.copy()
    twin_c[:2] = ~twin_c[:2]                            # 2 images differ: a tie, within 0.5 points
    own_c = np.arange(n) % 10 != 0                      # 90.0%: a clear win of the other batch order
    text = t42.write_up(_result(np_correct=np_c, twin_correct=twin_c, own_correct=own_c))
    assert "No measurable difference between NumPy and PyTorch twin" in text
    assert "(within 0.5 points)" in text and "NumPy beats" not in text and "PyTorch twin beats" not in text
    assert "PyTorch twin, own batch order beats NumPy" in text
    assert "The batch order, not the implementation, is the measured cause" in text
    assert "**passes**" in text and "may be noise" not in text


def test_write_up_names_a_real_gap_and_a_failed_gradient_check():
    n = 2000
    np_c = np.arange(n) % 10 != 0                       # 90%
    twin_c = np.arange(n) % 5 != 0                      # 80%
    r = _result(np_correct=np_c, twin_correct=twin_c, own_correct=twin_c.copy())
    r.probes[t42.PROBE_AVG] = [{**p, "gradient_gap": 0.5} for p in r.probes[t42.PROBE_AVG]]
    text = t42.write_up(r)
    assert "NumPy beats PyTorch twin" in text and "**outside** 0.5 points" in text
    assert "**fails: a backward pass is wrong**" in text
    assert "did not move the test accuracy more than the implementation" in text
