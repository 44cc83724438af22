"""scratch.losses against torch.nn.functional (value and gradient, float64), their stability at
extreme inputs, and finite differences that catch a 1 % error in any loss's gradient."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from scratch import losses
from scratch.gradcheck import check_loss


def compare_loss(torch_ref, loss_fn, torch_fn, pred, target, target_t=None, **kwargs):
    pred_t = torch_ref.leaf(pred)
    target_t = torch.tensor(target) if target_t is None else target_t
    loss_t = torch_fn(pred_t, target_t)
    loss, dpred = loss_fn(pred, target, **kwargs)
    np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-12, atol=1e-14)
    torch_ref.assert_close(dpred, torch_ref.vjp(loss_t, np.array(1.0), pred_t)[0])


def test_softmax_cross_entropy_matches_torch(rng, torch_ref):
    logits, labels = rng.standard_normal((6, 5)) * 3, rng.integers(0, 5, 6)
    compare_loss(torch_ref, losses.softmax_cross_entropy, TF.cross_entropy, logits, labels)
    compare_loss(torch_ref, losses.softmax_cross_entropy, TF.cross_entropy, logits[:1], labels[:1])


def test_softmax_cross_entropy_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    loss, dlogits = losses.softmax_cross_entropy(logits, np.array([2, 1]))
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(loss, 1000.0)  # (2000 + 0) / 2
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-15)


def test_softmax_and_log_softmax(rng):
    logits = rng.standard_normal((4, 3)) * 50
    probs = losses.softmax(logits)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-15)
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), 1).numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(losses.log_softmax(logits),
                               torch.log_softmax(torch.from_numpy(logits), 1).numpy(), rtol=1e-12)


def test_bce_matches_torch(rng, torch_ref):
    probs, targets = rng.uniform(0.01, 0.99, (4, 3)), rng.uniform(0, 1, (4, 3))
    compare_loss(torch_ref, losses.bce, TF.binary_cross_entropy, probs, targets)
    # torch clamps log at -100: p = 0 or 1 stays finite
    compare_loss(torch_ref, losses.bce, TF.binary_cross_entropy, np.array([0.0, 1.0, 0.5]),
                 np.array([1.0, 0.0, 1.0]))


def test_bce_with_logits_matches_torch_and_is_stable(rng, torch_ref):
    logits, targets = rng.standard_normal((5, 2)) * 4, rng.integers(0, 2, (5, 2)).astype(float)
    compare_loss(torch_ref, losses.bce_with_logits, TF.binary_cross_entropy_with_logits, logits, targets)
    compare_loss(torch_ref, losses.bce_with_logits, TF.binary_cross_entropy_with_logits,
                 np.array([800.0, -800.0, 0.0]), np.array([0.0, 1.0, 1.0]))


def test_regression_losses_match_torch(rng, torch_ref):
    pred, target = rng.standard_normal((5, 3)) * 2, rng.standard_normal((5, 3))
    compare_loss(torch_ref, losses.mse, TF.mse_loss, pred, target)
    compare_loss(torch_ref, losses.mae, TF.l1_loss, pred, target)
    for delta in (0.5, 1.0, 2.0):
        compare_loss(torch_ref, losses.huber, lambda p, t: TF.huber_loss(p, t, delta=delta), pred,
                     target, delta=delta)


def test_mae_gradient_is_zero_at_ties_like_torch(torch_ref):
    target = np.array([1.0, 2.0])
    compare_loss(torch_ref, losses.mae, TF.l1_loss, target.copy(), target)


def _loss_inputs(rng):
    target = rng.standard_normal((4, 3))
    away = rng.choice([-1.0, 1.0], (4, 3)) * rng.uniform(0.1, 0.9, (4, 3))  # no kink within 0.1
    return {
        "softmax_cross_entropy": (rng.standard_normal((5, 4)), rng.integers(0, 4, 5), {}),
        "bce": (rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3)), {}),
        "bce_with_logits": (rng.standard_normal((4, 3)), rng.integers(0, 2, (4, 3)).astype(float), {}),
        "mse": (target + away, target, {}),
        "mae": (target + away, target, {}),
        "huber": (target + away * 2.5, target, {"delta": 1.0}),  # |d| in (0.25, 2.25), both sides of δ
    }


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "bce", "bce_with_logits", "mse", "mae", "huber"])
def test_finite_differences_pass_and_catch_a_one_percent_error(rng, name):
    pred, target, kwargs = _loss_inputs(rng)[name]
    loss_fn = getattr(losses, name)

    def wrong(p, t, **kw):
        value, grad = loss_fn(p, t, **kw)
        return value, grad * 1.01

    assert check_loss(loss_fn, pred, target, eps=1e-6, **kwargs)["pred"] < 1e-7
    assert check_loss(wrong, pred, target, eps=1e-6, **kwargs)["pred"] > 4e-3  # 0.01 / 2.01
